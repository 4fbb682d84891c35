"""Slide figure and video frames of an :class:`~.explain.Explanation` (matplotlib, no pyplot).

    png = figure_png(image, expl, "carpet.png")      # 1920 px wide: header + 2 x 4 panels
    for name, png in frame_pngs(image, expl, "carpet.png"): ...   # one PNG per step

matplotlib is imported inside the functions (through its Agg canvas, never pyplot), so importing
this module is light and no GUI backend is touched.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np

from .explain import STEP_NAMES, Explanation, Step, render_step

FIG_WIDTH_PX = 1920
FRAME_WIDTH_PX = 1280
DPI = 100
TEST_MODEL_WARNING = ("RANDOM-WEIGHT TEST MODELS: the panels show the method's plumbing, "
                      "not a real detection.")
LEGEND = ("green + positive point · red − negative point · cyan ring N · magenta stage mask · "
          "yellow box = stage-3 box prompt · inset = the stage's low-res logits over SAM's padded "
          "square ({h}×{w}; grey 0, white +, black −), fed to the next stage")


def header_lines(expl: Explanation, image_name: str, device: str | None = None) -> list[str]:
    """Title, models and parameters of the run, one string per line."""
    p, (h, w) = expl.params, expl.image_hw
    models = f"CLIP {expl.models.get('clip')}   ·   SAM {expl.models.get('sam')}"
    if device:
        models += f"   ·   device {device}"
    gate = "off" if p.gate is None else f"{p.gate:.2f}"
    obj = expl.text_prompts.object_name if expl.text_prompts else None
    params = (f"τ {p.tau:.2f}  ·  k_pos {p.k_pos}  ·  k_neg {p.k_neg}  ·  spacing {p.d_min_1024:g} px"
              f"  ·  ring {p.ring_1024:g} px (both in SAM's 1024 frame)  ·  negatives {p.negative_rule}"
              f"  ·  gate {gate}  ·  min area {p.min_area_frac:g}"
              + ("  ·  per component" if p.per_component else "")
              + (f"  ·  object \"{obj}\"" if obj else "")
              + ("  ·  prompts: the user's" if expl.prompts_source == "user" else ""))
    return [f"zsas explain  ·  {image_name}  ({w}×{h} px)", models, params]


def _panel_image(image: np.ndarray, step: Step, colormap: str, width_px: int) -> np.ndarray:
    """render_step, resized (area) to ``width_px`` wide so the figure's pixels are exact."""
    import cv2

    rgb = render_step(image, step, colormap)
    h, w = rgb.shape[:2]
    size = (width_px, max(1, round(h * width_px / w)))
    interp = cv2.INTER_AREA if width_px < w else cv2.INTER_NEAREST
    return cv2.resize(rgb, size, interpolation=interp)


def _canvas_png(fig, compact: bool = False) -> bytes:
    """Render a matplotlib Figure (Agg) to PNG bytes: RGB, or a 256-colour palette."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..io.imageio import encode_png

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])
    if not compact:
        return encode_png(rgb)
    from PIL import Image

    im = Image.fromarray(rgb)
    palette = im.quantize(256, method=Image.Quantize.FASTOCTREE)
    buf = io.BytesIO()
    im.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def figure_png(image: np.ndarray, expl: Explanation, image_name: str, device: str | None = None,
               colormap: str = "jet", compact: bool = True) -> bytes:
    """The slide figure (:func:`build_figure`) as PNG bytes. ``compact``: a 256-colour
    dithered palette PNG (about a third of the size; text stays sharp), else RGB."""
    return _canvas_png(build_figure(image, expl, image_name, device, colormap), compact)


def figure_size_px(hw: tuple[int, int], random_models: bool) -> tuple[int, int]:
    """(width, height) in pixels of the figure for an (H, W) image."""
    lay = _layout(hw, random_models)
    return FIG_WIDTH_PX, lay["fig_h"]


def _layout(hw: tuple[int, int], random_models: bool) -> dict[str, float]:
    H, W = hw
    lay = {"margin": 28, "gap": 22, "title_h": 36, "cap_h": 72, "row_gap": 8, "foot_h": 56,
           "head_h": 150 + (34 if random_models else 0)}
    lay["panel_w"] = (FIG_WIDTH_PX - 2 * lay["margin"] - 3 * lay["gap"]) / 4
    lay["img_h"] = lay["panel_w"] * min(max(H / W, 0.45), 1.3)
    lay["row_h"] = lay["title_h"] + lay["img_h"] + lay["cap_h"]
    lay["fig_h"] = round(lay["head_h"] + 2 * lay["row_h"] + lay["row_gap"] + lay["foot_h"])
    return lay


def build_figure(image: np.ndarray, expl: Explanation, image_name: str, device: str | None = None,
                 colormap: str = "jet"):
    """The slide figure as a matplotlib ``Figure`` (no pyplot): 1920 px wide at 100 dpi, a
    header (image, models, parameters, a red warning for random test models), 2 rows x 4 panels
    (one axes per step, numbered title above, caption below), a legend.
    image: (H, W, 3) uint8 RGB, the image the explanation was made from."""
    from matplotlib.figure import Figure

    steps = expl.steps()
    lay = _layout(expl.image_hw, expl.random_models)
    margin, gap, panel_w, img_h = lay["margin"], lay["gap"], lay["panel_w"], lay["img_h"]
    head_h, title_h, row_h, row_gap = lay["head_h"], lay["title_h"], lay["row_h"], lay["row_gap"]
    fig_h, foot_h = lay["fig_h"], lay["foot_h"]
    fig = Figure(figsize=(FIG_WIDTH_PX / DPI, fig_h / DPI), dpi=DPI, facecolor="white")

    def text(x_px, y_px, s, **kw):   # y_px from the top, baseline-independent (va="top")
        fig.text(x_px / FIG_WIDTH_PX, 1 - y_px / fig_h, s, va="top", **kw)

    lines = header_lines(expl, image_name, device)
    text(margin, 18, lines[0], fontsize=24, weight="bold")
    text(margin, 66, lines[1], fontsize=14, color="#222222")
    text(margin, 98, lines[2], fontsize=13, color="#222222")
    if expl.random_models:
        text(margin, 134, TEST_MODEL_WARNING, fontsize=15, weight="bold", color="#c00000")

    wrap = int(panel_w / 8.9)   # ~characters per caption line at 12.5 pt
    for i, step in enumerate(steps):
        r, c = divmod(i, 4)
        x = margin + c * (panel_w + gap)
        y = head_h + r * (row_h + row_gap)
        text(x, y + 4, f"{i + 1}  {step.title}", fontsize=14.5, weight="bold")
        ax = fig.add_axes((x / FIG_WIDTH_PX, 1 - (y + title_h + img_h) / fig_h,
                           panel_w / FIG_WIDTH_PX, img_h / fig_h), label=step.name)
        ax.imshow(_panel_image(image, step, colormap, int(panel_w)), interpolation="none")
        ax.set_axis_off()
        cap = "\n".join(textwrap.wrap(step.caption, wrap)[:3])
        text(x, y + title_h + img_h + 6, cap, fontsize=12.5, color="#111111", linespacing=1.25)
    h, w = expl.mask_input_size
    legend = "\n".join(textwrap.wrap(LEGEND.format(h=h, w=w), 200))
    text(margin, fig_h - foot_h + 6, legend, fontsize=12, color="#444444", linespacing=1.3)
    return fig


def frame_pngs(image: np.ndarray, expl: Explanation, image_name: str, colormap: str = "jet",
               width_px: int = FRAME_WIDTH_PX) -> list[tuple[str, bytes]]:
    """One captioned PNG per step, all the same size (for a video or a GIF):
    [("01_heatmap.png", bytes), ..., ("08_stage3.png", bytes)]."""
    from matplotlib.figure import Figure

    H, W = expl.image_hw
    img_h = min(720, round(width_px * H / W))
    img_w = round(img_h * W / H)
    top, bottom = 64, 84 + (30 if expl.random_models else 0)
    fig_h = top + img_h + bottom
    out = []
    for i, step in enumerate(expl.steps()):
        fig = Figure(figsize=(width_px / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
        fig.text(0.5, 1 - 12 / fig_h, f"{i + 1}/{len(STEP_NAMES)}  {step.title}", ha="center",
                 va="top", fontsize=22, weight="bold")
        x0 = (width_px - img_w) / 2
        ax = fig.add_axes((x0 / width_px, bottom / fig_h, img_w / width_px, img_h / fig_h))
        ax.imshow(_panel_image(image, step, colormap, img_w), interpolation="none")
        ax.set_axis_off()
        cap = "\n".join(textwrap.wrap(step.caption, 120)[:2])
        fig.text(0.5, (bottom - 10) / fig_h, cap, ha="center", va="top", fontsize=15)
        if expl.random_models:
            fig.text(0.5, 8 / fig_h, f"{image_name} · {TEST_MODEL_WARNING}", ha="center",
                     va="bottom", fontsize=12, color="#c00000")
        out.append((f"{i + 1:02d}_{step.name}.png", _canvas_png(fig)))
    return out
