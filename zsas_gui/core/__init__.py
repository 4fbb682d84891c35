"""The method and everything around it. No Qt here; torch is imported lazily by the modules
that need it.

Packages by concern, lower floors first (a package imports only from floors below it;
``tests/test_layers.py`` checks it):

- ground: ``types`` (result dataclasses), ``frames`` (coordinate frames), ``errors``, ``metrics/``
- ``io/`` (images, atomic writes, mask import), ``method/`` (PPG, CPS cascade)
- ``models/`` (registry, download, loading, device)
- ``maps/`` (anomaly maps), ``sam/`` (SAM decoder/encoder engines), ``export/`` (label formats)
- ``engine/`` (the Pipeline, caches, presets, batch job), ``explain/``, ``evaluation/``

See docs/architecture.md for one image's path through them.
"""
