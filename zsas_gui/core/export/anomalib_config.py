"""The ``datamodule.yaml`` written beside the anomaly layouts (mvtec, folder): a ready ``data:``
block for ``anomalib train --config`` (anomalib >= 2.0).

Paths in it are relative, so the export can be moved: anomalib resolves ``root`` against the
working directory, and the comment at the top says to run it from the export folder. A test-only
mvtec export (no good images, opted in with ``test_only``) says so at the top.
"""

from __future__ import annotations

import json

CONFIG = "datamodule.yaml"
#: Why the anomaly layouts need good images, and the ways out (the validation messages).
_NO_GOOD = ("anomalib trains on normal images, and none of the exported images is good: mark some images "
            "good, or pass --good-from DIR (a folder of defect-free images)")
_MVTEC_NEEDS_GOOD = _NO_GOOD + ", or --test-only for an export that can only test a model trained elsewhere"
#: anomalib's Folder refuses an empty ``normal_dir`` even for testing (anomalib 2.7: "Found 0
#: DirType.NORMAL images"), so --test-only cannot help there.
_FOLDER_NEEDS_GOOD = _NO_GOOD + ("; anomalib's Folder refuses a dataset without normal images even for "
                                 "testing, so for a test-only export use --format mvtec --test-only")


def no_good_message(fmt: str, test_only: bool) -> str:
    """What to say when an export of ``fmt`` has no good image ("" when that is fine): mvtec
    needs good images unless ``test_only``; folder always needs them; other layouts never."""
    if fmt == "folder":
        return _FOLDER_NEEDS_GOOD
    return _MVTEC_NEEDS_GOOD if fmt == "mvtec" and not test_only else ""


def datamodule_yaml(class_path: str, init_args: dict, test_only: bool) -> str:
    """The config text: header comments, then ``data: {class_path, init_args}`` with every
    value JSON-quoted (valid YAML)."""
    q = json.dumps
    lines = [
        f"# anomalib {class_path.rsplit('.', 1)[-1]} datamodule for this export (anomalib >= 2.0).",
        "# Paths are relative to this file's folder; run anomalib from there:",
        "#   cd <this folder> && anomalib train --model Padim --config datamodule.yaml",
        "# or paste the data: block into your own config (then make root absolute).",
    ]
    if test_only:
        lines += [
            "# TEST-ONLY export: it has no good (normal) images, so anomalib cannot train on it",
            "# (the train split is empty). Use it to test a model trained on other data:",
            "#   anomalib test --model Padim --config datamodule.yaml --ckpt_path MODEL.ckpt",
        ]
    lines += ["data:", f"  class_path: {class_path}", "  init_args:"]
    for key, value in init_args.items():
        text = f"[{', '.join(q(v) for v in value)}]" if isinstance(value, list) else q(value)
        lines.append(f"    {key}: {text}")
    return "\n".join(lines) + "\n"
