"""The method, stage by stage: the intermediates of one run, collected (never recomputed).

    expl = explain_run(pipe, image, params)          # one run of the pipeline, traced
    for step in expl.steps():                        # heatmap, region, ring, similarity, points,
        rgb = render_step(image, step)               #   stage1, stage2, stage3: (H, W, 3) uint8
        print(step.title, "-", step.caption)

:class:`Explanation` holds references to the arrays the run produced: S, R and N from the PPG
result, the similarity map, the prompts the cascade used, and the :class:`StageResult` objects the
cascade yielded (the same objects as ``result.stages``). Rendering is numpy/OpenCV only (no Qt),
so the CLI figure, ``--frames`` and the app's method panel share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..frames import image_scale_from_1024
from ..io.colormap import colorize, overlay
from ..method.ppg import PPGResult
from ..types import MethodParams, Prompts, SegmentationResult, StageResult, TextPrompts

#: Step names in the order the method runs them (the app's strip and the figure's panels).
STEP_NAMES = ("heatmap", "region", "ring", "similarity", "points", "stage1", "stage2", "stage3")

STAGE_TITLES = {1: "points", 2: "+ stage-1 logits", 3: "+ box(M2) + stage-2 logits"}
STAGE_INPUTS = {1: "points only",
                2: "points + stage-1 mask logits",
                3: "points + box(M2) + stage-2 mask logits"}


@dataclass(frozen=True, eq=False)
class Step:
    """One view of the method. ``name``: one of :data:`STEP_NAMES`; ``title``: short panel
    title; ``caption``: one line saying what is shown; ``kind``: how :func:`render_step` draws
    it ("heatmap", "region", "ring", "similarity", "points", "stage"); ``data``: the arrays it
    draws (references into the :class:`Explanation`, all in the (H, W) image frame)."""

    name: str
    title: str
    caption: str
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, eq=False)
class Explanation:
    """Every intermediate of one run, in the image frame unless stated.

    ``S``: (H, W) float32 in [0, 1], the normalised anomaly map; ``R``: (H, W) float32, S inside
    the extreme region and 0 outside (eq. 1); ``region``: (H, W) bool, R > 0; ``ring``: (H, W)
    bool, N (eq. 3); ``similarity``: (H, W) float32 cosine similarity of SAM features to the
    region prototype, or None (lowest-score rule, no region, or gated); ``prompts``: the points
    the cascade used ((N, 2) float32 (x, y) image pixels, labels 1/0, scores);
    ``auto_prompts``: the points PPG chose (the same object unless the user's replaced them);
    ``stages``: the cascade's :class:`StageResult` objects (mask (H, W) bool, low_res_logits
    ``mask_input_size`` float32 over SAM's padded square); ``pred_mask``: (H, W) bool;
    ``score_map``: (H, W) float32.
    """

    image_hw: tuple[int, int]
    image_key: str
    params: MethodParams
    ppg: PPGResult
    result: SegmentationResult
    prompts_source: str                 # "auto" (PPG) or "user" (prompts passed in)
    models: dict[str, str | None]
    random_models: bool                 # True when either model is a random-weight test model
    long_side: int                      # SAM's input side (1024 for real SAM)
    mask_input_size: tuple[int, int]    # (h, w) of the low-res logits
    text_prompts: TextPrompts | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- the intermediates
    @property
    def S(self) -> np.ndarray:
        return self.ppg.S

    @property
    def region(self) -> np.ndarray:
        return self.ppg.region

    @property
    def R(self) -> np.ndarray:
        return np.where(self.ppg.region, self.ppg.S, 0.0).astype(np.float32)

    @property
    def ring(self) -> np.ndarray:
        return self.ppg.ring

    @property
    def similarity(self) -> np.ndarray | None:
        return self.ppg.similarity

    @property
    def prompts(self) -> Prompts:
        return self.result.prompts

    @property
    def auto_prompts(self) -> Prompts:
        return self.ppg.prompts

    @property
    def stages(self) -> tuple[StageResult, ...]:
        return self.result.stages

    @property
    def pred_mask(self) -> np.ndarray:
        return self.result.pred_mask

    @property
    def score_map(self) -> np.ndarray:
        return self.result.score_map

    @property
    def image_score(self) -> float:
        return float(self.result.anomaly.image_score)

    @property
    def gated(self) -> bool:
        return bool(self.result.gated)

    def stage(self, index: int) -> tuple[StageResult, ...]:
        """The results of stage ``index`` (1-3), one per component (usually one; none if the
        cascade stopped before it)."""
        return tuple(s for s in self.stages if s.index == index)

    # ---------------------------------------------------------------- the steps
    def steps(self) -> list[Step]:
        """The eight views in method order (:data:`STEP_NAMES`), each with a one-line caption."""
        p, hw = self.params, self.image_hw
        area = float(hw[0] * hw[1])
        scale = image_scale_from_1024(hw)
        pos = self.prompts.labels == 1
        common = {"S": self.S, "ring": self.ring, "region": self.region}
        source = map_source(self.result.provenance.get("map") or {})
        steps = [Step("heatmap", f"Anomaly map S from {source.split(' (')[0]}",
                      f"Map from {source}, normalised to [0, 1]; image score {self.image_score:.2f}",
                      "heatmap", {"S": self.S})]
        if self.gated:
            why = f"gated: image score {self.image_score:.2f} < gate {p.gate:.2f}, predicted normal"
        else:
            why = ""
        steps.append(Step(
            "region", "Extreme region R (eq. 1)",
            why or f"R = S · 1[S ≥ τ], τ = {p.tau:.2f}: {100 * self.region.sum() / area:.1f}% "
                   f"of the image",
            "region", {**common, "R": self.R}))
        steps.append(Step(
            "ring", "Ring N (eq. 3)",
            why or f"N = dilate(R, {p.ring_1024 * scale:.0f} px) − R: where negatives may go "
                   f"({100 * self.ring.sum() / area:.1f}%)",
            "ring", dict(common)))
        steps.append(Step("similarity", "SAM-feature similarity", why or self._similarity_caption(),
                          "similarity", {**common, "similarity": self.similarity}))
        steps.append(Step("points", "Point prompts (PPG)", self._points_caption(pos, scale),
                          "points", {**common, "prompts": self.prompts}))
        for k in (1, 2, 3):
            runs = self.stage(k)
            data = {"prompts": self.prompts, "stages": runs, "long_side": self.long_side,
                    "mask": _union([s.mask for s in runs], hw)}
            steps.append(Step(f"stage{k}", f"Stage {k}: {STAGE_TITLES[k]}",
                              self._stage_caption(k, runs), "stage", data))
        return steps

    def _similarity_caption(self) -> str:
        if self.params.negative_rule != "sam_similarity":
            return "Not used: negatives are the ring pixels of lowest S (shown in the ring)"
        sim = self.similarity
        if sim is None:
            if not self.region.any():
                return "No region R: no prototype to compare with"
            if self.params.per_component:
                return "Per-component mode: one prototype per component (not shown)"
            return "Not computed (no ring, or no negatives asked for)"
        vals = sim[self.ring] if self.ring.any() else sim.reshape(-1)
        return (f"cos(SAM features, prototype of R): {float(vals.min()):.2f} to "
                f"{float(vals.max()):.2f} in the ring; the lowest become negatives")

    def _points_caption(self, pos: np.ndarray, scale: float) -> str:
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if self.prompts_source == "user":
            return f"User's prompts: {n_pos} positive, {n_neg} negative (PPG's replaced)"
        if self.gated:
            return "No prompts: the gate predicted the image normal"
        if n_pos == 0:
            return "No prompts: R is empty (flat map)"
        rule = "least similar" if self.params.negative_rule == "sam_similarity" else "lowest S"
        return (f"{n_pos} positive = maxima of R ≥ {self.params.d_min_1024 * scale:.0f} px apart; "
                f"{n_neg} negative = {rule} ring pixels")

    def _stage_caption(self, k: int, runs: tuple[StageResult, ...]) -> str:
        if not runs:
            if self.gated:
                return f"Stage {k}: not run (gated: image predicted normal)"
            if self.prompts.n_pos == 0:
                return f"Stage {k}: not run (no positive point)"
            return f"Stage {k}: not run (stage-{k - 1} mask empty: the cascade stopped)"
        ious = ("/".join(f"{s.iou:.2f}" for s in runs) if len(runs) <= 3 else
                f"{min(s.iou for s in runs):.2f} to {max(s.iou for s in runs):.2f}")
        frac = 100 * float(_union([s.mask for s in runs], self.image_hw).mean())
        pick = "" if k == 1 else f" best of {len(runs[0].candidates_iou)},"
        text = f"Stage {k}: {STAGE_INPUTS[k]},{pick} predicted IoU {ious}; mask {frac:.1f}%"
        if k == 3:
            text += f"; final (cleaned) {100 * float(self.pred_mask.mean()):.1f}%"
        if len(runs) > 1:
            text += f" ({len(runs)} components)"
        return text


def _union(masks: list[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    """The one mask itself (not a copy), the union of several, or an empty (H, W) bool."""
    if len(masks) == 1:
        return masks[0]
    return np.logical_or.reduce(masks) if masks else np.zeros(hw, bool)


def explain_run(pipe, image: np.ndarray, params: MethodParams | None = None,
                text_prompts: TextPrompts | None = None, prompts: Prompts | None = None,
                image_key: str | None = None) -> Explanation:
    """Run the pipeline once on ``image`` ((H, W, 3) uint8 RGB) and collect its intermediates.

    Everything comes from that one run (:meth:`Pipeline.run_traced`, the pipeline's one
    orchestration :meth:`Pipeline.iter_run` driven to its end): the encoders run at most
    once (cached features are reused), the decoder runs once per stage. When ``prompts`` (points
    in (x, y) image pixels) replace PPG's, PPG still runs once on the cached features so R, N and
    the similarity can be shown; the cascade uses the given prompts.
    """
    params = params or MethodParams()
    trace = pipe.run_traced(image_key, image, params, text_prompts, prompts)
    ppg = trace.ppg if trace.ppg is not None else pipe.propose(trace.features, params)
    return explanation_from(trace.result, ppg, params, pipe, trace.features.image_key,
                            "auto" if prompts is None else "user", text_prompts)


def explanation_from(result: SegmentationResult, ppg: PPGResult, params: MethodParams, pipe,
                     image_key: str = "", prompts_source: str = "auto",
                     text_prompts: TextPrompts | None = None) -> Explanation:
    """An :class:`Explanation` from results the caller already has (the app's inference lane
    keeps its own PPG result and the cascade's SegmentationResult)."""
    sam = pipe.sam
    infos = [b.info for b in (pipe.clip, sam) if b is not None]
    random_models = any(i.get("random_test_model") for i in infos) or any(
        str(m or "").startswith("random-test:") for m in pipe.model_ids.values())
    return Explanation(
        image_hw=tuple(int(v) for v in ppg.S.shape), image_key=image_key or "", params=params,
        ppg=ppg, result=result, prompts_source=prompts_source, models=dict(pipe.model_ids),
        random_models=bool(random_models), long_side=sam.long_side if sam else 1024,
        mask_input_size=sam.mask_input_size if sam else (256, 256), text_prompts=text_prompts)


def map_source(info: dict[str, Any]) -> str:
    """Where a map came from, from its provenance (``mapper.info()``): "this folder (mutual,
    50 images, 49 others each, timm:efficientnet_lite0)", "good images (20 references, ...)" or
    "text prompts (CLIP ...)"."""
    kind = info.get("mapper", "vv")
    if kind == "mutual":
        return (f"this folder (mutual, {info.get('folder_images', 0)} images, "
                f"{info.get('others_per_image', 0)} others each, {info.get('backbone', '?')})")
    if kind == "references":
        return f"good images ({info.get('references', 0)} references, {info.get('backbone', '?')})"
    return f"text prompts (CLIP V-V, {info.get('model_id', 'CLIP')})"


# -------------------------------------------------------------------- rendering (numpy + cv2)
POS_COLOR = (40, 220, 60)      # RGB
NEG_COLOR = (235, 40, 40)
REGION_COLOR = (255, 150, 0)
RING_COLOR = (0, 220, 255)
MASK_COLOR = (255, 0, 200)


def render_step(image: np.ndarray, step: Step, colormap: str = "jet", inset: bool = True) -> np.ndarray:
    """Draw one step over the image. image: (H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB.
    Stage steps show the stage's mask, the points, the box (stage 3) and, with ``inset``, the
    low-res logits in SAM's padded square (top-right corner, the image area outlined)."""
    import cv2

    d, hw = step.data, image.shape[:2]
    unit = max(1, round(max(hw) / 256))
    if step.kind == "heatmap":
        return overlay(image, d["S"], heat_alpha=0.55, name=colormap)
    if step.kind == "region":
        out = _blend(_dim(image), colorize(d["R"], colormap), d["region"], 0.85)
        return _outline(out, d["region"], (255, 255, 255), unit)
    if step.kind == "ring":
        out = _blend(_dim(image), np.array(REGION_COLOR, np.uint8), d["region"], 0.55)
        out = _blend(out, np.array(RING_COLOR, np.uint8), d["ring"], 0.85)
        return _outline(out, d["region"], REGION_COLOR, unit)
    if step.kind == "similarity":
        sim, ring = d["similarity"], d["ring"]
        if sim is None:   # lowest-score rule: what is ranked is S in the ring
            return _outline(_blend(_dim(image), colorize(d["S"], colormap), ring, 0.9), ring,
                            (255, 255, 255), max(1, unit // 2))
        lo, hi = float(sim.min()), float(sim.max())
        col = colorize((sim - lo) / max(hi - lo, 1e-12), "viridis")
        out = _blend(_dim(image), col, np.ones(hw, bool), 0.35)
        out = _blend(out, col, ring, 0.95)
        return _outline(out, ring, (255, 255, 255), max(1, unit // 2))
    if step.kind == "points":
        out = overlay(image, d["S"], heat_alpha=0.3, name=colormap)
        out = _outline(out, d["ring"], RING_COLOR, max(1, unit // 2))
        return draw_points(out, d["prompts"], unit, scores=True)
    if step.kind == "stage":
        out = _blend(image, np.array(MASK_COLOR, np.uint8), d["mask"], 0.5)
        out = _outline(out, d["mask"], MASK_COLOR, unit, outer_only=True)
        for s in d["stages"]:
            if s.box is not None:
                x0, y0, x1, y1 = (int(v) for v in np.rint(s.box))
                cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), unit, cv2.LINE_AA)
        out = draw_points(out, d["prompts"], unit, scores=False)
        if inset and d["stages"]:
            _draw_logits_inset(out, d["stages"][0].low_res_logits, d["long_side"])
        return out
    raise ValueError(f"unknown step kind {step.kind!r}")


def draw_points(out: np.ndarray, prompts: Prompts, unit: int, scores: bool) -> np.ndarray:
    """Positive (green +) and negative (red −) discs at (x, y) image pixels, with scores."""
    import cv2

    out = np.ascontiguousarray(out)
    h, w = out.shape[:2]
    r = max(3, round(4.5 * unit))
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, unit * 0.3)
    for (x, y), lab, sc in zip(prompts.points, prompts.labels, prompts.scores):
        c = (int(np.rint(x)), int(np.rint(y)))
        color = POS_COLOR if lab == 1 else NEG_COLOR
        cv2.circle(out, c, r + unit, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, c, r, color, -1, cv2.LINE_AA)
        cv2.line(out, (c[0] - r // 2, c[1]), (c[0] + r // 2, c[1]), (255, 255, 255), max(1, unit // 2))
        if lab == 1:
            cv2.line(out, (c[0], c[1] - r // 2), (c[0], c[1] + r // 2), (255, 255, 255), max(1, unit // 2))
        if scores and np.isfinite(sc):
            text = f"{sc:.2f}"
            (tw, th), _ = cv2.getTextSize(text, font, fs, max(1, unit // 2))
            tx = int(np.clip(c[0] + r + 2 * unit, 0, w - tw - 1))
            if tx < c[0] + r and c[0] - r - 2 * unit - tw >= 0:
                tx = c[0] - r - 2 * unit - tw
            ty = int(np.clip(c[1] + th // 2, th + 1, h - 2))
            cv2.putText(out, text, (tx, ty), font, fs, (0, 0, 0), max(2, unit), cv2.LINE_AA)
            cv2.putText(out, text, (tx, ty), font, fs, (255, 255, 255), max(1, unit // 2), cv2.LINE_AA)
    return out


def _dim(image: np.ndarray, keep: float = 0.45) -> np.ndarray:
    grey = image.astype(np.float32).mean(axis=2, keepdims=True)
    return np.clip(keep * grey + 10, 0, 255).astype(np.uint8).repeat(3, axis=2)


def _blend(base: np.ndarray, color: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    """base with ``color`` ((3,) or (H, W, 3) uint8) blended in at ``where`` ((H, W) bool)."""
    out = base.copy()
    col = np.broadcast_to(color, base.shape)[where].astype(np.float32)
    out[where] = np.clip((1 - alpha) * base[where] + alpha * col, 0, 255).astype(np.uint8)
    return out


def _outline(out: np.ndarray, mask: np.ndarray, color, thickness: int,
             outer_only: bool = False) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(out)
    if mask.any():
        mode = cv2.RETR_EXTERNAL if outer_only else cv2.RETR_LIST
        contours, _ = cv2.findContours(mask.astype(np.uint8), mode, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), thickness, cv2.LINE_AA)
    return out


def _draw_logits_inset(out: np.ndarray, logits: np.ndarray, long_side: int) -> None:
    """In place: the logits ((h, w) over SAM's padded square) as a grey square in the top-right
    corner (mid grey = 0, white = most positive, black = most negative), the resized image's
    area outlined in yellow."""
    import cv2

    from ..frames import sam_input_size

    h, w = out.shape[:2]
    side = max(16, int(0.26 * min(h, w)))
    pad = max(2, side // 40)
    lg = logits.astype(np.float32)
    grey = 0.5 + 0.5 * lg / max(float(np.abs(lg).max()), 1e-12)
    tile = cv2.resize(np.clip(grey * 255, 0, 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    tile = np.repeat(tile[:, :, None], 3, axis=2)
    nh, nw = sam_input_size((h, w), long_side)
    cv2.rectangle(tile, (0, 0), (int(side * nw / long_side) - 1, int(side * nh / long_side) - 1),
                  (255, 255, 0), max(1, pad // 2))
    x0 = w - side - 2 * pad
    out[pad:side + 3 * pad, x0 - pad:w - pad] = 255
    out[2 * pad:side + 2 * pad, x0:x0 + side] = tile
