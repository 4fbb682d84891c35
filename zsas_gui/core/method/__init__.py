"""The paper's method on a map and SAM's decoder: PPG (point prompts from the map and SAM's
features, :mod:`.ppg`), CPS (the three-pass cascade, :mod:`.refine`) and the per-component mode
(:mod:`.per_component`). Pure numpy/torch functions of their inputs; no model loading, no files.

May import: the ground floor only (``types``, ``frames``, ``errors``).
"""
