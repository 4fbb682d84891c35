"""The document model: no Qt, no torch.

- :mod:`.record`: :class:`AnnotationRecord`, one image's stored annotation;
- :mod:`.project`: :class:`Project`, a folder of images with its sidecar store ``FOLDER/.zsas/``;
- :mod:`.importer`: existing masks as starting annotations.
"""
