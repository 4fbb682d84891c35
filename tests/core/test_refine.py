"""CPS: the cascade's wiring (with a scripted decoder) and on a real tiny SAM."""

import numpy as np
import pytest

from zsas_gui.core.method.refine import clean_mask, iter_cascade, score_map
from zsas_gui.core.types import Prompts


class ScriptedDecoder:
    """A MaskDecoder test double returning prepared outputs and recording every call."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.calls = []

    def decode(self, points, labels, box, mask_input, multimask):
        self.calls.append({"points": points, "box": box, "mask_input": mask_input, "multimask": multimask})
        return self.outputs.pop(0)


def out(masks, ious, lowres_fill):
    masks = np.asarray(masks, bool)
    low = np.stack([np.full((4, 4), f, np.float32) for f in lowres_fill])
    return masks, np.asarray(ious, np.float32), low


def square(hw, y0, y1, x0, x1):
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


PROMPTS = Prompts([[5, 5], [1, 1]], [1, 0])


def test_three_stages_pass_logits_box_and_keep_best_iou():
    hw = (10, 10)
    m1, m2b, m3b = square(hw, 2, 6, 2, 6), square(hw, 3, 8, 1, 7), square(hw, 3, 7, 2, 6)
    dec = ScriptedDecoder([
        out([m1], [0.5], [1.0]),
        out([np.zeros(hw), m2b, m1], [0.1, 0.9, 0.3], [2.0, 2.5, 2.7]),
        out([m3b, m1, m2b], [0.8, 0.2, 0.1], [3.0, 3.1, 3.2]),
    ])
    stages = []
    gen = iter_cascade(dec, PROMPTS)
    try:
        while True:
            stages.append(next(gen))
    except StopIteration as stop:
        returned = stop.value
    assert [s.index for s in stages] == [1, 2, 3] and returned == stages
    assert dec.calls[0]["mask_input"] is None and dec.calls[0]["multimask"] is False
    np.testing.assert_array_equal(dec.calls[1]["mask_input"], np.full((4, 4), 1.0))  # L1
    np.testing.assert_array_equal(dec.calls[2]["mask_input"], np.full((4, 4), 2.5))  # L2 of best
    np.testing.assert_array_equal(dec.calls[2]["box"], [1, 3, 6, 7])  # bbox(M2), inclusive
    np.testing.assert_array_equal(stages[1].mask, m2b)
    np.testing.assert_array_equal(stages[2].mask, m3b)
    assert stages[2].iou == pytest.approx(0.8)


def test_empty_stage1_stops_before_box():
    dec = ScriptedDecoder([out([np.zeros((6, 6))], [0.2], [0.0])])
    stages = list(iter_cascade(dec, PROMPTS))
    assert len(stages) == 1 and len(dec.calls) == 1


def test_empty_stage2_stops_before_box():
    hw = (6, 6)
    dec = ScriptedDecoder([out([square(hw, 1, 3, 1, 3)], [0.2], [0.0]),
                           out([np.zeros(hw)] * 3, [0.9, 0.1, 0.1], [0, 0, 0])])
    assert [s.index for s in iter_cascade(dec, PROMPTS)] == [1, 2]
    assert len(dec.calls) == 2


def test_no_positive_point_runs_nothing():
    dec = ScriptedDecoder([])
    assert list(iter_cascade(dec, Prompts([[1, 1]], [0]))) == []


def test_clean_mask_removes_small_islands_and_fills_small_holes():
    m = square((40, 40), 5, 25, 5, 25)
    m[10:12, 10:12] = False          # 4-px hole
    m[35, 35] = True                 # 1-px island
    c = clean_mask(m, min_area_px=10)
    assert c[10:12, 10:12].all() and not c[35, 35]
    assert c.sum() == 400


def test_score_map_gates_by_mask_and_is_zero_for_an_empty_mask():
    S = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    m = np.zeros((4, 4), bool)
    np.testing.assert_array_equal(score_map(S, m), np.zeros((4, 4)))
    m[0, :2] = True
    sm = score_map(S, m)
    assert sm.dtype == np.float32 and sm[0, 1] == S[0, 1] and sm[3, 3] == 0


def test_cascade_on_tiny_sam_uses_model_mask_input_size(tiny_pipeline):
    from synthetic import blob_image

    image = blob_image((96, 128), [(40, 30)])
    feats = tiny_pipeline.features("img", image)
    prompts = Prompts([[40, 30], [100, 80]], [1, 0])
    from zsas_gui.core.types import MethodParams

    stages = []
    gen = tiny_pipeline.iter_refine(feats, prompts, MethodParams())
    try:
        while True:
            stages.append(next(gen))
    except StopIteration as stop:
        result = stop.value
    h, w = tiny_pipeline.sam.mask_input_size
    assert (h, w) == (64, 64)                      # tiny SAM: 256-px input, not real SAM's 256x256
    for s in stages:
        assert s.mask.shape == (96, 128) and s.mask.dtype == bool
        assert s.low_res_logits.shape == (h, w)
    assert list(result.stages) == stages
    assert result.pred_mask.shape == (96, 128) and result.score_map.dtype == np.float32


def _clean_mask_whole_image(mask, min_area_px):
    """The reference: label the whole image (what clean_mask must equal)."""
    import cv2

    out = mask.copy()
    for value in (True, False):
        n, labels, stats, _ = cv2.connectedComponentsWithStats((out == value).astype(np.uint8), connectivity=8)
        small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < min_area_px]
        out[np.isin(labels, small)] = not value
    return out


def test_clean_mask_equals_whole_image_labelling_on_random_masks():
    """Masks of every shape: noisy, touching borders, thin strips left outside the box.
    (Images smaller than min_area itself never occur: min_area is a fraction < 1 of the image.)"""
    rng = np.random.default_rng(0)
    cases = 0
    for _ in range(3000):
        h, w = rng.integers(2, 40, size=2)
        m = rng.random((h, w)) < rng.uniform(0.05, 0.97)
        m[: rng.integers(0, h)] = False
        m[:, : rng.integers(0, w)] = False
        if rng.random() < 0.3:
            m[rng.integers(0, h):] = False
        if rng.random() < 0.3:
            m[:, rng.integers(0, w):] = False
        min_area = int(rng.integers(2, 40))
        if h * w < min_area or not m.any():
            continue
        np.testing.assert_array_equal(clean_mask(m, min_area), _clean_mask_whole_image(m, min_area))
        cases += 1
    assert cases > 1500
