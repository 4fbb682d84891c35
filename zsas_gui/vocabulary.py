"""The project's words, defined once: review statuses, mask sources, the default defect class,
export formats and the CLI's exit statuses.

The floor under every layer: it imports nothing (not even the rest of zsas_gui), so the CLI's
``--help`` and the state layer read it without torch or Qt. ``tests/test_vocabulary.py`` checks
that no other module defines these names again.
"""

#: Review states. ``unreviewed``: nobody looked (a fresh or auto-labelled image);
#: ``accepted``: the mask is right as proposed; ``edited``: a person changed the mask;
#: ``rejected``: the proposal is wrong and not fixed; ``good``: the image is defect-free.
STATUSES = ("unreviewed", "accepted", "edited", "rejected", "good")
#: Statuses whose images count as defect-free regardless of their mask.
NORMAL_STATUSES = ("good",)
#: Statuses that claim a defect: an empty mask with one of these is an export validation failure.
DEFECT_STATUSES = ("accepted", "edited")
#: The statuses exported when the caller does not say.
DEFAULT_INCLUDE = ("accepted", "edited", "good")

#: How a stored mask was made: the method alone, the method with user prompts, hand-painted,
#: or imported from existing ground truth (a record's ``provenance.mask_source``).
MASK_SOURCES = ("auto", "refined", "edited", "imported")
#: A document's mask source while it has no mask (never stored in a record).
NO_MASK = "none"

#: Defect class given to images at the project root or in a folder named ``good``, and used
#: when the user leaves the class empty (records require a non-empty class).
DEFAULT_CLASS = "defect"

#: Export layouts (docs/labels.md), one module each in ``zsas_gui.core.export``.
FORMATS = ("mvtec", "folder", "coco", "labelme", "yolo", "png")

#: CLI exit status when the run finished but some images failed (they are listed).
EXIT_SOME_FAILED = 3
