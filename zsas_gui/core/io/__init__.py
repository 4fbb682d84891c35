"""Files: image reading and mask writing (:mod:`.imageio`), atomic writes (:mod:`.atomic`),
importing masks made elsewhere (:mod:`.label_import`) and colour maps for heatmap images.

May import: the ground floor only (``errors``, ``types``). Everything else may import it.
"""
