"""zsas-gui: zero-shot industrial anomaly segmentation (CLIP heatmap -> PPG points -> cascaded SAM).

Layers (dependencies point down only): ``qt`` -> ``state`` -> ``core``.
Importing this package is cheap: torch, open_clip, segment_anything and Qt are imported lazily.
"""

__version__ = "0.1.0"
