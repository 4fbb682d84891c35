"""The batch commands on a Ray cluster (``zsas segment|label ... --ray [ADDRESS]``).

- :mod:`.inputs`: the image list (folders, list files, ``s3://``/``gs://`` prefixes through
  pyarrow's file systems) and reading one image from any of them;
- :mod:`.runtime`: Ray itself: the install hint, joining or starting a runtime, actor pool sizes;
- :mod:`.job`: the driver: Ray Data ``map_batches`` over the image list, progress bar, results;
- :mod:`.workers`: the actor classes (models loaded once per actor) that run the same
  :class:`~zsas_gui.core.engine.pipeline.Pipeline` and write the same files as the local commands.

May import ``core`` and ``state``; imported only by ``cli``. Ray and pyarrow are optional (the
``ray`` extra) and imported lazily, inside functions. See docs/scale.md.
"""
