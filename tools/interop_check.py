"""Load every zsas export with the real tools and compare the pixels (not run by CI).

    python tools/interop_check.py [--data ../shared/data/magnetic_tile] [--work /tmp/zsas_interop]

1. Makes a venv per tool under WORK/venvs (pycocotools, datumaro, labelme, ultralytics, anomalib;
   each installed from PyPI with pip). The torch tools see the project venv's torch through a
   ``.pth`` file (torch + CUDA wheels are ~4 GB; the tools' own packages are installed as usual).
2. Copies the data set's images into WORK/project and imports its ground truth as accepted
   (``zsas label --from-masks DATA --import-status accepted --missing-good``).
3. Exports the project in every format (coco and labelme also with --polygons).
4. Loads each export with its tool, in the tool's venv (this file, run as ``--load``), and
   compares each image's mask with the ground truth: IoU per image, exact images.
5. Moves the export to another folder (nothing is left at the old place) and loads it again.
Prints a Markdown table (docs/labels.md keeps the last one) and the tool versions.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
TOOLS = {"pycocotools": "pycocotools", "datumaro": "datumaro", "labelme": "labelme",
         "ultralytics": "ultralytics", "anomalib": "anomalib"}
TORCH_TOOLS = ("ultralytics", "anomalib")
#: (export name, zsas format, extra export flags, tool that loads it, project). Projects: "all"
#: (the data set), "defects" (only test/crack: no good images), "defects+good" (the same with
#: --good-from DATA/train/good).
CHECKS = [("coco", "coco", [], "pycocotools", "all"), ("coco", "coco", [], "datumaro", "all"),
          ("coco-polygons", "coco", ["--polygons"], "pycocotools", "all"),
          ("coco-polygons", "coco", ["--polygons"], "datumaro", "all"),
          ("labelme", "labelme", [], "labelme", "all"),
          ("labelme-polygons", "labelme", ["--polygons"], "labelme", "all"),
          ("yolo", "yolo", [], "ultralytics", "all"), ("mvtec", "mvtec", [], "anomalib", "all"),
          ("folder", "folder", [], "anomalib", "all"), ("png", "png", [], "zsas", "all"),
          ("mvtec", "mvtec", [], "zsas", "all"), ("folder", "folder", [], "zsas", "all"),
          ("mvtec, no good images", "mvtec", [], "anomalib", "defects"),
          ("mvtec --test-only", "mvtec", ["--test-only"], "anomalib", "defects"),
          ("folder --test-only", "folder", ["--test-only"], "anomalib", "defects"),
          ("mvtec --good-from", "mvtec", ["--good-from", "{data}/train/good"], "anomalib", "defects"),
          ("folder --good-from", "folder", ["--good-from", "{data}/train/good"], "anomalib", "defects")]


# -- loaders: run inside a tool's venv; each returns {path relative to the export: (H, W) bool} ----
def load_pycocotools(out: Path) -> dict:
    from pycocotools.coco import COCO

    coco = COCO(str(out / "annotations" / "instances_default.json"))
    masks = {}
    for img_id, im in coco.imgs.items():
        m = np.zeros((im["height"], im["width"]), bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id])):
            m |= coco.annToMask(ann).astype(bool)
        assert (out / "images" / "default" / im["file_name"]).is_file(), im["file_name"]
        masks[f"images/default/{im['file_name']}"] = m
    return masks


def load_datumaro(out: Path) -> dict:
    import datumaro as dm

    found = dm.Dataset.detect(str(out))
    ds = dm.Dataset.import_from(str(out), "coco_instances").transform("polygons_to_masks")
    masks = {}
    for item in ds:
        h, w = item.media.size
        m = np.zeros((h, w), bool)
        for ann in item.annotations:
            if ann.type == dm.AnnotationType.mask:
                m |= np.asarray(ann.image).astype(bool)
        masks[Path(item.media.path).resolve().relative_to(out.resolve()).as_posix()] = m
    print(f"datumaro detects: {found}", file=sys.stderr)
    return masks


def load_labelme(out: Path) -> dict:
    try:
        from labelme._label_file import LabelFile  # labelme >= 6
    except ImportError:
        from labelme.label_file import LabelFile
    from labelme.utils import shapes_to_label
    from PIL import Image

    masks = {}
    for js in sorted(out.rglob("*.json")):
        if js.parent == out:
            continue                       # zsas_export.json
        lf = LabelFile(str(js))
        w, h = Image.open(io.BytesIO(lf.image_data)).size
        names = {s["label"]: i + 1 for i, s in enumerate(lf.shapes)}
        cls, _ = shapes_to_label((h, w), lf.shapes, names)
        masks[(js.parent / lf.image_path).relative_to(out).as_posix()] = cls > 0
    return masks


def load_ultralytics(out: Path) -> dict:
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset, polygon2mask

    data = check_det_dataset(str(out / "data.yaml"))
    ds = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False)
    masks = {}
    for lb in ds.labels:
        h, w = lb["shape"]
        m = np.zeros((h, w), bool)
        for seg in lb["segments"]:
            m |= polygon2mask((h, w), [(seg * [w, h]).ravel()], color=1, downsample_ratio=1).astype(bool)
        masks[Path(lb["im_file"]).resolve().relative_to(out.resolve()).as_posix()] = m
    return masks


def load_anomalib(out: Path) -> dict:
    import yaml
    from anomalib import data as adata

    cfg = yaml.safe_load((out / "datamodule.yaml").read_text())["data"]
    cls = getattr(adata, cfg["class_path"].rsplit(".", 1)[-1])
    os.chdir(out)                      # the snippet's roots are relative to its folder
    dm = cls(**cfg["init_args"], num_workers=0)
    dm.setup()
    masks = {"_meta": {"anomalib train images": len(dm.train_data)}}
    for split in (dm.train_data, dm.val_data, dm.test_data):
        for i in range(len(split)):
            item = split[i]
            key = Path(item.image_path).resolve().relative_to(out.resolve()).as_posix()
            gt = item.gt_mask
            h, w = item.image.shape[-2:]
            masks[key] = np.zeros((h, w), bool) if gt is None else np.asarray(gt).astype(bool).reshape(h, w)
    return masks


def run_loader(tool: str, out: str, result: str) -> None:
    masks = globals()[f"load_{tool}"](Path(out))
    meta = masks.pop("_meta", {})
    keys = sorted(masks)
    np.savez_compressed(result, keys=np.array(keys, dtype=object), meta=json.dumps(meta),
                        **{f"m{i}": masks[k] for i, k in enumerate(keys)})


def tool_version(tool: str) -> str:
    from importlib.metadata import version

    return version(tool)


# -- the driver (project venv) -------------------------------------------------------------------
def zsas(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "zsas_gui.cli", *args], check=True, env=env,
                          capture_output=True, text=True)
    print(proc.stdout, end="", flush=True)


def make_venvs(work: Path) -> dict[str, Path]:
    import sysconfig

    shared = work / "torch_site"
    shared.mkdir(parents=True, exist_ok=True)
    site = Path(sysconfig.get_paths()["purelib"])
    for p in site.iterdir():
        heavy = p.name.lower().startswith(("torch", "functorch", "nvidia", "cuda", "triton"))
        if heavy and not (shared / p.name).exists():
            (shared / p.name).symlink_to(p)
    pythons = {}
    for tool, package in TOOLS.items():
        venv = work / "venvs" / tool
        py = venv / "bin" / "python"
        if not py.exists():
            subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
            if tool in TORCH_TOOLS:
                purelib = subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                                  text=True).strip()
                (Path(purelib) / "zz_shared_torch.pth").write_text(f"{shared}\n")
            subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", package], check=True)
        pythons[tool] = py
    return pythons


def build_project(data: Path, work: Path, name: str) -> Path:
    """A project of the data set's images with its ground truth imported as accepted: ``all``
    of them, or only ``defects`` (test/crack: a project without good images)."""
    proj = work / f"project-{name}"
    if proj.exists():
        shutil.rmtree(proj)
    if name == "all":
        shutil.copytree(data, proj, ignore=shutil.ignore_patterns("ground_truth"))
    else:
        shutil.copytree(data / "test" / "crack", proj / "test" / "crack")
    zsas("label", str(proj), "--from-masks", str(data), "--import-status", "accepted", "--missing-good",
         *(["--allow-unmatched"] if name != "all" else []))
    return proj


def ground_truth(out: Path, by: str) -> dict[str, np.ndarray]:
    """Exported path (``by="export"``: the image, or the mask for png) or source path
    (``by="source"``) -> the project's stored mask (zeros for good images)."""
    sys.path.insert(0, str(ROOT))
    from zsas_gui.core.export import read_manifest
    from zsas_gui.state.project import Project

    manifest = read_manifest(out)
    proj = Project.open(manifest["source"], create=False)
    truth = {}
    for e in manifest["items"]:
        rec = proj.load(e["source"])
        m = rec.mask if rec.mask is not None and e["abnormal"] else np.zeros(e["size"], bool)
        truth[e["source"] if by == "source" else e.get("image", e.get("mask"))] = m
    return truth


def load_zsas(out: Path, work: Path) -> dict:
    """The round trip: a fresh copy of the project's images, the export imported back."""
    manifest = json.loads((out / "zsas_export.json").read_text())
    copy = work / "reimport"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(manifest["source"], copy, ignore=shutil.ignore_patterns(".zsas"))
    zsas("label", str(copy), "--from-masks", str(out), "--import-status", "accepted", "--missing-good")
    from zsas_gui.state.project import Project

    proj = Project.open(copy, create=False)
    return {e.rel: (proj.load(e.rel).mask if proj.load(e.rel).mask is not None else None) for e in proj.images}


def compare(got: dict, truth: dict) -> dict:
    ious, exact = [], 0
    for key, want in truth.items():
        if key not in got:
            continue
        m = got[key]
        m = np.zeros(want.shape, bool) if m is None else m
        if m.shape != want.shape:
            ious.append(0.0)
            continue
        union = (m | want).sum()
        ious.append(1.0 if union == 0 else float((m & want).sum() / union))
        exact += bool(np.array_equal(m, want))
    return {"loaded": len(ious), "of": len(truth), "extra": len(set(got) - set(truth)), "exact": exact,
            "mean_iou": float(np.mean(ious)) if ious else 0.0, "min_iou": float(min(ious)) if ious else 0.0}


def check(name, tool, out: Path, work: Path, pythons: dict) -> tuple[dict | None, str]:
    if tool == "zsas":
        return load_zsas(out, work), ""
    result = work / "results" / f"{name}-{tool}.npz"
    result.parent.mkdir(exist_ok=True)
    proc = subprocess.run([str(pythons[tool]), str(HERE), "--load", tool, str(out), str(result)],
                          cwd=work, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    z = np.load(result, allow_pickle=True)
    got = {k: z[f"m{i}"] for i, k in enumerate(z["keys"])}
    meta = json.loads(str(z["meta"]))
    return got, "; ".join(f"{k}: {v}" for k, v in meta.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "magnetic_tile")
    ap.add_argument("--work", type=Path, default=Path("/tmp/zsas_interop"))
    ap.add_argument("--load", nargs=3, metavar=("TOOL", "EXPORT", "RESULT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load:
        run_loader(*args.load)
        return 0
    work = args.work.resolve()
    pythons = make_venvs(work)
    versions = {t: subprocess.check_output([str(py), "-c", f"import importlib.metadata as m; print(m.version({TOOLS[t]!r}))"],
                                           text=True).strip() for t, py in pythons.items()}
    data = args.data.resolve()
    projects = {name: build_project(data, work, name) for name in ("all", "defects")}
    rows = []
    for name, fmt, flags, tool, project in CHECKS:
        rows.append(run_check(name, fmt, [f.format(data=data) for f in flags], tool, projects[project],
                              work, pythons))
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    print("\ntool versions: " + ", ".join(f"{t} {v}" for t, v in versions.items())
          + f"; python {sys.version.split()[0]}; data: {data.name}")
    return 0


def run_check(name, fmt, flags, tool, proj: Path, work: Path, pythons: dict) -> dict:
    from scipy.ndimage import binary_fill_holes

    out, moved = work / "exports" / name, work / "moved" / name
    for d in (out, moved):
        if d.exists():
            shutil.rmtree(d)
    row = {"export": name, "tool": tool}
    try:
        zsas("export", str(proj), "-f", fmt, "-o", str(out), "--category", "tile", *flags)
    except subprocess.CalledProcessError as exc:
        row["error"] = "zsas export refused: " + exc.stderr.strip().splitlines()[-1].strip()
        return row
    truth = ground_truth(out, "source" if tool == "zsas" else "export")
    filled = {k: binary_fill_holes(v) for k, v in truth.items()}
    got, note = check(name, tool, out, work, pythons)
    moved.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(out, moved)
    got_moved, note_moved = check(name, tool, moved, work, pythons)
    if got is None:
        row["error"] = note
        return row
    row.update(compare(got, truth), note=note, exact_filled=compare(got, filled)["exact"])
    row["moved"] = compare(got_moved, truth) if got_moved is not None else {"error": note_moved}
    return row


def print_table(rows: list[dict]) -> None:
    print("\n| export | tool | images loaded | pixel-exact | exact, holes filled | mean IoU | min IoU "
          "| moved, loaded again | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "loaded" not in r:
            print(f"| {r['export']} | {r['tool']} | {r['error']} | | | | | | |")
            continue
        mv = r["moved"]
        after = (f"failed: {mv['error']}" if "error" in mv else
                 "same" if (mv["exact"], mv["loaded"]) == (r["exact"], r["loaded"]) else
                 f"{mv['loaded']} loaded, {mv['exact']} exact")
        print(f"| {r['export']} | {r['tool']} | {r['loaded']}/{r['of']} | {r['exact']}/{r['of']} | "
              f"{r['exact_filled']}/{r['of']} | {r['mean_iou']:.4f} | {r['min_iou']:.4f} | {after} | {r['note']} |")


if __name__ == "__main__":
    sys.exit(main())
