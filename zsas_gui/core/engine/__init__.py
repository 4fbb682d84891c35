"""The engine around the method: :class:`~.pipeline.Pipeline` (features → map → points →
cascade, with its caches), the byte/disk caches, the presets and the batch job behind
``zsas segment``.

May import: ``maps``, ``method``, ``sam``, ``models``, ``io`` and the ground floor
(``types``, ``frames``, ``errors``). Imported by ``explain``, ``evaluation`` callers, state, cli
and qt; never imports them.
"""
