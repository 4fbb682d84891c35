"""Helpers of the Ray tests: synthetic image folders, subprocess drivers, file trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from synthetic import blob_image

REPO = Path(__file__).resolve().parents[2]


def make_images(folder: Path, n: int, hw=(64, 80)) -> list[Path]:
    """``n`` small synthetic images (one blob each, at different places) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = blob_image(hw, [(10 + (7 * i) % 60, 10 + (5 * i) % 44)], seed=i)
        path = folder / f"img{i:03d}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


def zsas_process(args: list[str]) -> subprocess.Popen:
    """``python -m zsas_gui.cli ARGS`` as a separate driver process (this checkout first)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "zsas_gui.cli", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """{relative posix path: bytes} of every file under ``root`` (hidden files skipped)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def as_array(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)
