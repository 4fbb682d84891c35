"""The method and everything around it. No Qt here; torch is imported lazily by the modules
that need it (``anomaly_map``, ``refine``, ``models.loading``, ``pipeline``)."""
