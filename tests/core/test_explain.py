"""The method stage by stage: intermediates in their documented frames, taken from the run (not
recomputed), rendered, and drawn by `zsas explain` as a figure with all eight panels."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from zsas_gui.cli import main
from zsas_gui.core.engine import pipeline as pipeline_mod
from zsas_gui.core.explain.explain import STEP_NAMES, explain_run, render_step
from zsas_gui.core.types import MethodParams, Prompts

HW = (72, 120)   # non-square: a swapped (row, col) or (x, y) shows up as a shape or range error


@pytest.fixture
def image():
    """(72, 120, 3) uint8 grey noise with a bright disc at (x, y) = (90, 30)."""
    rng = np.random.default_rng(0)
    img = rng.integers(90, 110, size=(*HW, 3), dtype=np.uint8)
    yy, xx = np.mgrid[: HW[0], : HW[1]]
    img[(xx - 90) ** 2 + (yy - 30) ** 2 <= 64] = 240
    return img


def test_intermediates_have_documented_shapes_and_frames(tiny_pipeline, image):
    e = explain_run(tiny_pipeline, image, MethodParams())
    H, W = HW
    assert e.image_hw == HW and tiny_pipeline.encoder_calls == {"clip": 1, "sam": 1}
    for arr in (e.S, e.R, e.similarity, e.score_map):
        assert arr.shape == HW and arr.dtype == np.float32
    for arr in (e.region, e.ring, e.pred_mask):
        assert arr.shape == HW and arr.dtype == bool
    assert 0.0 <= e.S.min() and e.S.max() <= 1.0
    np.testing.assert_array_equal(e.R, np.where(e.S >= e.params.tau, e.S, 0))   # eq. 1
    assert e.region.any() and e.ring.any() and not (e.ring & e.region).any()     # eq. 3
    # points: (x, y) image pixels; positives score S there, negatives lie in the ring and score
    # the similarity there
    pts, lab, sc = e.prompts.points, e.prompts.labels, e.prompts.scores
    assert pts.shape == (len(lab), 2) and pts.dtype == np.float32
    assert (pts[:, 0] >= 0).all() and (pts[:, 0] <= W - 1).all()
    assert (pts[:, 1] >= 0).all() and (pts[:, 1] <= H - 1).all()
    xs, ys = pts[:, 0].astype(int), pts[:, 1].astype(int)
    assert (lab == 1).sum() == 3 and (lab == 0).sum() == 3
    np.testing.assert_allclose(sc[lab == 1], e.R[ys, xs][lab == 1])
    assert e.region[ys, xs][lab == 1].all() and e.ring[ys, xs][lab == 0].all()
    np.testing.assert_allclose(sc[lab == 0], e.similarity[ys, xs][lab == 0])
    # cascade: three stages, logits of the model's mask_input_size over SAM's padded square
    assert [s.index for s in e.stages] == [1, 2, 3]
    for s in e.stages:
        assert s.mask.shape == HW and s.mask.dtype == bool
        assert s.low_res_logits.shape == tiny_pipeline.sam.mask_input_size
        assert s.low_res_logits.dtype == np.float32 and np.isfinite(s.iou)
    box = e.stages[2].box
    assert box.shape == (4,) and 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H
    assert len(e.stages[1].candidates_iou) == 3 and e.stages[1].iou == e.stages[1].candidates_iou.max()


def test_steps_in_method_order_with_captions_and_renders(tiny_pipeline, image):
    e = explain_run(tiny_pipeline, image, MethodParams())
    steps = e.steps()
    assert [s.name for s in steps] == list(STEP_NAMES)
    assert steps[6].caption.startswith("Stage 2: points + stage-1 mask logits")
    assert f"predicted IoU {e.stages[1].iou:.2f}" in steps[6].caption
    assert f"τ = {e.params.tau:.2f}" in steps[1].caption
    assert "3 positive" in steps[4].caption and "3 negative" in steps[4].caption
    for step in steps:
        assert step.title and step.caption and "\n" not in step.caption
        rgb = render_step(image, step)
        assert rgb.shape == (*HW, 3) and rgb.dtype == np.uint8
        assert not np.array_equal(rgb, image), step.name          # something was drawn
    # stage steps carry the cascade's own masks
    for k in (1, 2, 3):
        assert steps[4 + k].data["mask"] is e.stage(k)[0].mask


def test_stage_masks_are_the_ones_the_cascade_produced(tiny_pipeline, image, monkeypatch):
    decoded, yielded = [], []
    make_decoder = tiny_pipeline._decoder_for

    def recording_decoder(feats):
        inner = make_decoder(feats)

        class Recorder:
            def decode(self, *args, **kw):
                out = inner.decode(*args, **kw)
                decoded.append(out)
                return out
        return Recorder()

    real_cascade = pipeline_mod.iter_cascade

    def spying_cascade(*args, **kw):
        gen = real_cascade(*args, **kw)
        try:
            while True:
                stage = next(gen)
                yielded.append(stage)
                yield stage
        except StopIteration as stop:
            return stop.value

    monkeypatch.setattr(tiny_pipeline, "_decoder_for", recording_decoder)
    monkeypatch.setattr(pipeline_mod, "iter_cascade", spying_cascade)
    e = explain_run(tiny_pipeline, image, MethodParams())
    assert len(decoded) == len(yielded) == len(e.stages) == 3   # the decoder ran once per stage
    for stage, seen, (masks, ious, low) in zip(e.stages, yielded, decoded):
        assert stage is seen                                      # the very objects yielded
        assert np.shares_memory(stage.mask, masks)                # views of the decoder's output
        assert np.shares_memory(stage.low_res_logits, low)
        assert stage.iou == float(ious.max() if len(ious) > 1 else ious[0])
    assert e.stages is e.result.stages


def test_user_prompts_are_the_ones_refined(tiny_pipeline, image):
    user = Prompts(np.array([[95.0, 28.0], [10.0, 60.0]], np.float32), np.array([1, 0]))
    e = explain_run(tiny_pipeline, image, MethodParams(), prompts=user)
    assert e.prompts_source == "user" and e.prompts is user
    assert e.auto_prompts is not user and len(e.auto_prompts) == 6       # PPG still shown
    assert e.steps()[4].caption.startswith("User's prompts: 1 positive, 1 negative")
    assert tiny_pipeline.encoder_calls == {"clip": 1, "sam": 1}


@pytest.mark.parametrize("params, expect", [
    (MethodParams(gate=1.0), "not run (gated"),
    (MethodParams(negative_rule="lowest_score"), "Stage 3: points + box(M2)"),
    (MethodParams(per_component=True, tau=0.7), "components)"),
])
def test_every_variant_gives_eight_renderable_steps(tiny_pipeline, image, params, expect):
    e = explain_run(tiny_pipeline, image, params)
    steps = e.steps()
    assert [s.name for s in steps] == list(STEP_NAMES)
    assert expect in steps[7].caption
    if params.negative_rule == "lowest_score":
        assert e.similarity is None and steps[3].caption.startswith("Not used")
    for step in steps:
        assert render_step(image, step).shape == (*HW, 3)


def test_figure_has_all_eight_panels(tiny_pipeline, image):
    from zsas_gui.core.explain.explain_figure import build_figure, figure_size_px

    e = explain_run(tiny_pipeline, image, MethodParams())
    fig = build_figure(image, e, "blob.png", "cpu")
    assert [ax.get_label() for ax in fig.axes] == list(STEP_NAMES)
    texts = " ".join(t.get_text() for t in fig.texts)
    for i, step in enumerate(e.steps()):
        assert f"{i + 1}  {step.title}" in texts
    assert "RANDOM-WEIGHT TEST MODELS" in texts and "blob.png" in texts and "τ 0.50" in texts
    w, h = figure_size_px(HW, True)
    assert (round(fig.get_figwidth() * fig.dpi), round(fig.get_figheight() * fig.dpi)) == (w, h) == (1920, h)


def test_zsas_explain_writes_figure_and_frames(tmp_path, tiny_models, image, capsys):
    from zsas_gui.core.explain.explain_figure import FRAME_WIDTH_PX, figure_size_px

    clip, sam = tiny_models
    src = tmp_path / "blob.png"
    Image.fromarray(image).save(src)
    out, frames = tmp_path / "fig" / "explain.png", tmp_path / "frames"
    rc = main(["explain", str(src), "-o", str(out), "--clip", str(clip), "--sam", str(sam),
               "--device", "cpu", "--frames", str(frames), "--tau", "0.6"])
    assert rc == 0
    assert "random-weight test models" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size == figure_size_px(HW, True)
    names = sorted(p.name for p in frames.iterdir())
    assert names == [f"{i + 1:02d}_{n}.png" for i, n in enumerate(STEP_NAMES)]
    sizes = set()
    for n in names:
        with Image.open(frames / n) as im:
            sizes.add(im.size)
    assert len(sizes) == 1 and sizes.pop()[0] == FRAME_WIDTH_PX


def test_zsas_explain_user_errors(tmp_path, tiny_models, image, capsys):
    clip, sam = tiny_models
    src = tmp_path / "blob.png"
    Image.fromarray(image).save(src)
    assert main(["explain", str(src), "-o", str(tmp_path / "fig.jpg"), "--clip", str(clip),
                 "--sam", str(sam)]) == 1
    assert "PNG" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "missing.png"), "-o", str(tmp_path / "f.png"),
                 "--clip", str(clip), "--sam", str(sam)]) == 1
    err = capsys.readouterr().err
    assert "missing.png" in err and "Traceback" not in err


def test_explain_help_is_light():
    code = ("import contextlib, io, sys\nfrom zsas_gui.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['explain', '--help'])\n    except SystemExit:\n        pass\n"
            "print(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "zsas_gui.cli.explain_cmd" in loaded
    assert not {m for m in loaded if m.startswith(("torch", "cv2", "matplotlib", "PySide6"))}
