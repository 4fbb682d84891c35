import numpy as np
import pytest

from zsas_gui.core.frames import (
    image_scale_from_1024,
    image_to_sam_grid,
    image_to_sam_points,
    mask_to_box,
    sam_grid_to_image,
    sam_input_size,
)


@pytest.mark.parametrize("hw,expected", [((768, 1024), (768, 1024)), ((500, 250), (1024, 512)),
                                         ((333, 1000), (341, 1024))])
def test_sam_input_size_matches_segment_anything(hw, expected):
    from segment_anything.utils.transforms import ResizeLongestSide

    assert sam_input_size(hw) == expected
    assert sam_input_size(hw) == ResizeLongestSide(1024).get_preprocess_shape(*hw, 1024)


def test_points_match_sam_transform():
    from segment_anything.utils.transforms import ResizeLongestSide

    pts = np.array([[0, 0], [249.5, 100], [10, 499]], np.float32)
    ours = image_to_sam_points(pts, (500, 250))
    theirs = ResizeLongestSide(1024).apply_coords(pts.copy(), (500, 250))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_grid_round_trip_keeps_a_blob_in_place():
    hw = (300, 600)   # padded: the image covers the top half of the square
    m = np.zeros(hw, np.float32)
    m[100:160, 400:480] = 1.0
    grid = image_to_sam_grid(m, 64)
    assert grid.shape == (64, 64)
    assert grid[33:, :].max() == 0          # the padding (bottom half) stays empty
    back = sam_grid_to_image(grid, hw)
    assert back.shape == hw
    ys, xs = np.nonzero(back > 0.5)
    assert abs(ys.mean() - 130) < 4 and abs(xs.mean() - 440) < 4


def test_scale_and_box():
    assert image_scale_from_1024((512, 2048)) == 2.0
    assert mask_to_box(np.zeros((5, 5), bool)) is None
    m = np.zeros((10, 20), bool)
    m[2:5, 7:9] = True
    np.testing.assert_array_equal(mask_to_box(m), [7, 2, 8, 4])
