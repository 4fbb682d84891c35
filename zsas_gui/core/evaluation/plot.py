"""Line plots of metric curves drawn with OpenCV (a runtime dependency already), so the report
needs no plotting library: axes, grid, one polyline per curve, a legend, a title."""

from __future__ import annotations

import os

import numpy as np

from ..io.imageio import save_png

# RGB colours per series, in order
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
_W, _H = 640, 520
_L, _R, _T, _B = 70, 20, 40, 60        # margins: plot area is [_L, _W - _R] x [_T, _H - _B]


def _text(img, s, org, scale=0.45, color=(0, 0, 0), thick=1):
    import cv2
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def _text_size(s, scale=0.45, thick=1) -> tuple[int, int]:
    import cv2
    (w, h), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    return w, h


def _cut_at(x: np.ndarray, y: np.ndarray, x_max: float) -> tuple[np.ndarray, np.ndarray]:
    """For a curve with non-decreasing x: the part with x <= x_max, ended by the interpolated
    point at x_max (a curve drawn on a shorter x range stops at the border)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    beyond = np.flatnonzero(x > x_max)
    if not beyond.size or np.any(np.diff(x) < 0):
        return x, y
    i = int(beyond[0])
    if i == 0:
        return x[:0], y[:0]
    y_end = y[i - 1] + (y[i] - y[i - 1]) * (x_max - x[i - 1]) / (x[i] - x[i - 1])
    return np.append(x[:i], x_max), np.append(y[:i], y_end)


def draw_curves(series: list[tuple[str, np.ndarray, np.ndarray]], title: str, xlabel: str, ylabel: str,
                x_range: tuple[float, float] = (0.0, 1.0), y_range: tuple[float, float] = (0.0, 1.0),
                diagonal: bool = False) -> np.ndarray:
    """Render curves to an image. ``series``: ``(label, x, y)`` with x, y (T,) float arrays
    (NaN points are skipped). Returns (520, 640, 3) uint8 RGB."""
    import cv2

    img = np.full((_H, _W, 3), 255, np.uint8)
    x0, x1 = x_range
    y0, y1 = y_range
    pw, ph = _W - _L - _R, _H - _T - _B

    def to_px(x, y):
        px = _L + (np.asarray(x, float) - x0) / (x1 - x0) * pw
        py = _T + (1 - (np.asarray(y, float) - y0) / (y1 - y0)) * ph
        return px, py

    for i in range(6):                                      # grid and tick labels
        fx, fy = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        (gx, _), (_, gy) = to_px(fx, y0), to_px(x0, fy)
        cv2.line(img, (int(gx), _T), (int(gx), _T + ph), (225, 225, 225), 1)
        cv2.line(img, (_L, int(gy)), (_L + pw, int(gy)), (225, 225, 225), 1)
        lab = f"{fx:.2f}".rstrip("0").rstrip(".") if fx else "0"
        _text(img, lab, (int(gx) - _text_size(lab)[0] // 2, _T + ph + 18))
        lab = f"{fy:.2f}".rstrip("0").rstrip(".") if fy else "0"
        _text(img, lab, (_L - 8 - _text_size(lab)[0], int(gy) + 5))
    cv2.rectangle(img, (_L, _T), (_L + pw, _T + ph), (0, 0, 0), 1)
    if diagonal:
        a, b = to_px([x0, x1], [y0, y1])
        cv2.line(img, (int(a[0]), int(b[0])), (int(a[1]), int(b[1])), (170, 170, 170), 1, cv2.LINE_AA)
    for i, (_, x, y) in enumerate(series):
        x, y = _cut_at(np.asarray(x, float), np.asarray(y, float), x1)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 1:
            continue
        px, py = to_px(np.clip(x[ok], x0, x1), np.clip(y[ok], y0, y1))
        pts = np.stack([px, py], axis=1).round().astype(np.int32)
        keep = np.r_[True, np.any(pts[1:] != pts[:-1], axis=1)]      # drop repeated pixels
        cv2.polylines(img, [pts[keep].reshape(-1, 1, 2)], False, COLORS[i % len(COLORS)], 2, cv2.LINE_AA)
    lw = max((_text_size(s[0])[0] for s in series), default=0) + 40
    top = _T + ph - 12 - 20 * len(series)                   # legend, inside the lower right
    cv2.rectangle(img, (_L + pw - lw - 10, top), (_L + pw - 6, _T + ph - 6), (255, 255, 255), -1)
    cv2.rectangle(img, (_L + pw - lw - 10, top), (_L + pw - 6, _T + ph - 6), (160, 160, 160), 1)
    for i, (label, _, _) in enumerate(series):
        yy = top + 18 + 20 * i
        cv2.line(img, (_L + pw - lw, yy - 4), (_L + pw - lw + 22, yy - 4), COLORS[i % len(COLORS)], 3)
        _text(img, label, (_L + pw - lw + 30, yy))
    _text(img, title, ((_W - _text_size(title, 0.55)[0]) // 2, 24), 0.55, thick=1)
    _text(img, xlabel, (_L + (pw - _text_size(xlabel)[0]) // 2, _H - 18))
    tw, th = _text_size(ylabel)
    strip = np.full((th + 8, tw + 4, 3), 255, np.uint8)
    _text(strip, ylabel, (2, th + 2))
    strip = np.rot90(strip)                                  # vertical y label
    yy = _T + (ph - strip.shape[0]) // 2
    img[yy:yy + strip.shape[0], 6:6 + strip.shape[1]] = strip
    return img


def save_curve_plots(folder: str | os.PathLike, stem: str, curves) -> list[str]:
    """Write ``STEM_roc.png``, ``STEM_pr.png`` and ``STEM_pro.png`` for one
    :class:`~.run.Curves`; returns the file names."""
    from pathlib import Path

    folder = Path(folder)
    per = curves.per_predictor
    names = list(per)

    def label(p, key, short):
        v = per[p]["metrics"].get(key)
        return f"{p}  {short} {v:.3f}" if v is not None else f"{p}  {short} n/a"

    roc = [(label(p, "pixel_auroc", "AUROC"), *per[p]["roc"]) for p in names]
    pr = [(label(p, "pixel_ap", "AP"), *per[p]["pr"]) for p in names]
    pro = [(label(p, "aupro", "AUPRO"), *per[p]["pro"]) for p in names]
    written = []
    for suffix, series, xl, yl, xr, diag in (
            ("roc", roc, "false positive rate", "true positive rate", (0.0, 1.0), True),
            ("pr", pr, "recall", "precision", (0.0, 1.0), False),
            ("pro", pro, "false positive rate (AUPRO range)", "per-region overlap", (0.0, 0.3), False)):
        img = draw_curves(series, f"{curves.title}: pixel {suffix.upper()} curve", xl, yl, x_range=xr,
                          diagonal=diag)
        save_png(folder / f"{stem}_{suffix}.png", img)
        written.append(f"{stem}_{suffix}.png")
    return written
