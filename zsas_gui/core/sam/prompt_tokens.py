"""SAM's sparse prompt tokens (points and box) in numpy, for the onnxruntime decoder.

``PromptTokens(sam.prompt_encoder)(coords, labels, box)`` equals
``sam.prompt_encoder((coords[None], labels[None]), box[None], None)[0][0]`` up to float rounding
(the sine/cosine of a random Fourier feature), without a dozen small torch calls per decoder call.
Coordinates are in the model's input frame (after ``ResizeLongestSide``), (x, y) pixels.
"""

from __future__ import annotations

import numpy as np


class PromptTokens:
    """The prompt encoder's point/box path with its weights copied out as float32 arrays."""

    def __init__(self, prompt_encoder):
        def arr(t) -> np.ndarray:
            return t.detach().float().cpu().numpy().copy()

        pe = prompt_encoder.pe_layer
        self.gaussian = arr(pe.positional_encoding_gaussian_matrix)           # (2, C/2)
        self.point = [arr(e.weight[0]) for e in prompt_encoder.point_embeddings]   # 4 x (C,): neg, pos, corners
        self.not_a_point = arr(prompt_encoder.not_a_point_embed.weight[0])   # (C,)
        h, w = (int(s) for s in prompt_encoder.input_image_size)
        self.size_xy = np.array([w, h], np.float32)

    def _encode(self, xy: np.ndarray) -> np.ndarray:
        """(K, 2) float32 (x, y) pixel centres -> (K, C) random Fourier features."""
        c = 2 * (xy / self.size_xy) - 1
        c = (2 * np.pi) * (c @ self.gaussian)
        return np.concatenate([np.sin(c), np.cos(c)], axis=-1).astype(np.float32, copy=False)

    def __call__(self, coords: np.ndarray, labels: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        """coords (N, 2) float32 (x, y), labels (N,) int (1 positive, 0 negative, -1 padding),
        box (4,) float32 xyxy or None -> (N + 1, C) tokens without a box (SAM adds a padding
        point), (N + 2, C) with one."""
        xy = np.asarray(coords, np.float32).reshape(-1, 2) + np.float32(0.5)
        lab = np.asarray(labels).reshape(-1)
        if box is None:
            xy = np.concatenate([xy, np.zeros((1, 2), np.float32)])
            lab = np.append(lab, -1)
        tokens = self._encode(xy)
        tokens[lab == -1] = self.not_a_point
        tokens[lab == 0] += self.point[0]
        tokens[lab == 1] += self.point[1]
        if box is not None:
            corners = self._encode(np.asarray(box, np.float32).reshape(2, 2) + np.float32(0.5))
            corners[0] += self.point[2]
            corners[1] += self.point[3]
            tokens = np.concatenate([tokens, corners])
        return tokens
