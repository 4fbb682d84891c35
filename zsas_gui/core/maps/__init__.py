"""Anomaly maps: where an image looks abnormal, as a float32 (H, W) map. Today the text-prompted
CLIP V-V map (ALGORITHM.md §1): the surgery stream, the text features and their cache.

May import: ``models`` and the ground floor (``types``, ``frames``, ``errors``). Never imports
``engine``, ``method`` or ``sam``.
"""
