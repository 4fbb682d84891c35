"""Model registry, download, loading and device choice. Heavy imports happen inside functions."""
