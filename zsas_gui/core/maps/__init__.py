"""Anomaly maps: where an image looks abnormal, as a float32 (H, W) map. The text-prompted
CLIP V-V map (ALGORITHM.md §1: the surgery stream, the text features and their cache) and the
folder maps (§1b: ``mutual`` against the other images of the folder, ``references`` against good
images) on patch-feature backbones (the CLIP tower or timm), all behind one mapper protocol.

May import: ``models`` and the ground floor (``types``, ``frames``, ``errors``). Never imports
``engine``, ``method`` or ``sam``.
"""
