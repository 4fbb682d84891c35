"""How often the mask cleanup's order matters (docs/decisions.md D13).

clean_mask removes small islands, then fills small holes; segment-anything's mask generator
fills holes first (remove_small_regions "holes", then "islands"). On random masks this prints
how many results differ between the two orders (SAM's own function both ways) and between
clean_mask and SAM's function in our order (SAM keeps the largest island when every island is
small; clean_mask then returns an empty mask).

    python benchmarks/cleanup_order.py
"""

import numpy as np
from segment_anything.utils.amg import remove_small_regions

from zsas_gui.core.method.refine import clean_mask


def sam_cleanup(mask: np.ndarray, min_area: int, order: tuple[str, str]) -> np.ndarray:
    for mode in order:
        mask, _ = remove_small_regions(mask, min_area, mode)
    return mask


def main(n: int = 300) -> None:
    rng = np.random.default_rng(0)
    differ = same_order_differ = order_only = 0
    for _ in range(n):
        h, w = rng.integers(16, 64, size=2)
        m = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        min_area = int(rng.integers(2, 30))
        ours = clean_mask(m, min_area)
        differ += not np.array_equal(sam_cleanup(m, min_area, ("holes", "islands")), ours)
        sam_ours = sam_cleanup(m, min_area, ("islands", "holes"))
        same_order_differ += not np.array_equal(sam_ours, ours)
        order_only += not np.array_equal(sam_ours, sam_cleanup(m, min_area, ("holes", "islands")))
    print(f"random_masks: {n}")
    print(f"differ_from_sam_holes_first: {differ}")
    print(f"differ_from_sam_in_our_order: {same_order_differ}")
    print(f"sam_order_only_differs: {order_only}")


if __name__ == "__main__":
    main()
