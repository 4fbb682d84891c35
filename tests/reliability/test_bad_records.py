"""Project records and project files: any bytes on disk give a record, a fresh record plus a
problem naming the file, or a clear RecordError; never another exception, never a hang.
(Single bad fields, corrupt/newer records and the move-aside rule are in tests/state.)"""

from __future__ import annotations

import copy
import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability_helpers import png_header_only

from zsas_gui.core.errors import RecordError, ZsasError
from zsas_gui.core.io.imageio import save_mask
from zsas_gui.state.demo import make_synthetic_folder
from zsas_gui.state.project import Project
from zsas_gui.state.record import AnnotationRecord

REL = "test/scratch/000.png"
PROPERTY = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)


def _saved_project(root):
    truth = make_synthetic_folder(root, n_per_class=1, n_good=1)
    proj = Project.open(root)
    rec = proj.load(REL)
    rec.mask, rec.status = truth[REL], "accepted"
    proj.save(rec)
    return proj, root / ".zsas" / "records" / f"{REL}.json"


@pytest.fixture
def saved(tmp_path):
    return _saved_project(tmp_path / "parts")


def _good_record_dict(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("data", [
    b"",
    b"null",
    b"[1, 2, 3]",
    b"\xff\xfe\x00garbage",                                  # not UTF-8
    b"[" * 100_000 + b"]" * 100_000,                         # nesting: RecursionError in json
    b'{"schema_version": 1, "image_score": ' + b"9" * 5000 + b"}",   # int beyond the digit limit
    b'{"schema_version": NaN}',
], ids=["empty", "null", "array", "not-utf8", "deep", "huge-int", "nan"])
def test_unreadable_record_bytes_are_problems(saved, data):
    proj, path = saved
    path.write_bytes(data)
    reopened = Project.open(proj.root)
    assert len(reopened.problems) == 1 and str(path) in reopened.problems[0]
    rec = reopened.load(REL)
    assert rec.status == "unreviewed" and rec.mask is None
    assert path.read_bytes() == data                        # kept for the user to inspect


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True, None, [1]])
def test_wrong_schema_version_is_named(saved, version):
    proj, path = saved
    d = _good_record_dict(path)
    d["schema_version"] = version
    path.write_text(json.dumps(d))
    reopened = Project.open(proj.root)
    assert any("schema_version" in p and str(path) in p for p in reopened.problems)


@pytest.mark.parametrize("value", [
    {"points": [[1e400, 2]], "labels": [1]},                 # inf (json reads 1e400 as inf)
    {"points": [[float("nan"), 2]], "labels": [1]},
    {"points": [[1, 2]], "labels": [10 ** 30]},
    {"points": [[1, 2]], "labels": [True]},
    {"points": [[1, 2]], "labels": [1], "scores": [1e300]},
    {"points": [[1, 2, 3]], "labels": [1]},
    {"points": "[[1, 2]]", "labels": [1]},
])
def test_prompts_that_would_crash_later_are_refused(saved, value):
    _, path = saved
    d = _good_record_dict(path)
    d["prompts"] = value
    with pytest.raises(RecordError, match="field 'prompts'"):
        AnnotationRecord.from_dict(d, str(path))


@pytest.mark.parametrize("field, value", [
    ("text_prompts", {"object_name": 5}),
    ("text_prompts", {"normal_states": "good {}"}),
    ("params", {"k_pos": 2.5}),
    ("params", {"k_pos": True}),
    ("params", {"ring_1024": 1e400}),
    ("params", {"per_component": "yes"}),
    ("params", {"gate": "off"}),
    ("image_score", 10 ** 400),
    ("provenance", {"models": {"clip": math.inf}}),          # a file may say Infinity; saving it would fail
])
def test_wrong_json_types_are_refused_with_the_field(saved, field, value):
    _, path = saved
    d = _good_record_dict(path)
    d[field] = {**d[field], **value} if isinstance(value, dict) else value
    with pytest.raises(RecordError, match=f"field '{field}"):
        AnnotationRecord.from_dict(d, str(path))


def test_mask_of_the_wrong_size_is_a_problem(saved):
    proj, path = saved
    mask_file = _good_record_dict(path)["mask_file"]
    mask_path = proj.store.mask_path(REL, mask_file)
    save_mask(mask_path, np.ones((10, 10), bool))
    reopened = Project.open(proj.root)
    rec = reopened.load(REL)
    assert rec.mask is None and rec.status == "unreviewed"
    assert any("10x10" in p and "48" in p for p in reopened.problems)


@pytest.mark.parametrize("kind", ["empty", "bomb", "folder", "text"])
def test_unreadable_mask_file_is_a_problem(saved, kind):
    proj, path = saved
    mask_path = proj.store.mask_path(REL, _good_record_dict(path)["mask_file"])
    mask_path.unlink()
    if kind == "folder":
        mask_path.mkdir()
    else:
        mask_path.write_bytes({"empty": b"", "bomb": png_header_only(20000, 10000),
                               "text": b"not a png"}[kind])
    reopened = Project.open(proj.root)
    assert reopened.load(REL).mask is None
    assert any(mask_path.name in p for p in reopened.problems)


def test_record_for_another_image_is_a_problem(saved):
    proj, path = saved
    d = _good_record_dict(path)
    d["image"] = "test/hole/000.png"
    path.write_text(json.dumps(d))
    reopened = Project.open(proj.root)
    assert any("does not match" in p for p in reopened.problems)


@pytest.mark.parametrize("data", [b"", b"[" * 100_000, b'{"schema_version": 0}', b"[]",
                                  b'{"schema_version": 1, "exclude": "ground_truth"}'])
def test_bad_project_file_is_a_clear_error_and_kept(saved, data):
    proj, _ = saved
    pf = proj.root / ".zsas" / "project.json"
    pf.write_bytes(data)
    with pytest.raises(RecordError, match="project.json"):
        Project.open(proj.root)
    assert pf.read_bytes() == data


# --------------------------------------------------------------------------- properties

@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "parts"
    proj, path = _saved_project(root)
    return proj.root, path, path.read_bytes()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
#: Values that sit on the edges of what each field accepts.
EDGES = st.sampled_from([None, True, False, 0, -1, 1, 2, 3, 10 ** 30, 10 ** 400, 0.5, 1.5, -0.0,
                         math.nan, math.inf, -math.inf, 1e300, "", " ", "x", "{}", "a {} b", "../x",
                         "1", [], {}, [1], [0, 1], [[1, 2]], [[1e400, 2]], [None], ["{}"], [[1, 2, 3]]])
VALUES = EDGES | JSON


def _paths(obj, prefix=()):
    """Every key/index path inside a JSON value (the value itself first)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_json(draw, base: dict) -> dict:
    """``base`` with 1-3 values anywhere in it replaced by edge values or deleted."""
    d = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(d) if p]
        path = draw(st.sampled_from(paths))
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(VALUES))   # EDGES holds shared lists
    return d


def full_record_dict() -> dict:
    rec = AnnotationRecord(rel=REL, status="edited", defect_class="scratch", image_score=0.5,
                           provenance={"mask_source": "edited"}, created="2026-01-02T03:04:05+00:00",
                           image_hash="a" * 64, image_size=(48, 64), image_bytes=10)
    d = rec.to_dict("000.png.0123456789abcdef.png")
    d["prompts"] = {"points": [[1.5, 2.0], [3, 4]], "labels": [1, 0], "scores": [0.9, None]}
    d["text_prompts"]["normal_states"] = d["text_prompts"]["normal_states"][:2]
    d["text_prompts"]["templates"] = d["text_prompts"]["templates"][:2]
    return d


@st.composite
def mutated_bytes(draw, good: bytes):
    """Bytes near a valid record: truncated, bytes replaced, values replaced, or random."""
    data = bytearray(good)
    how = draw(st.sampled_from(["truncate", "replace", "values", "values", "random"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if how == "replace":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "values":
        return json.dumps(draw(mutated_json(json.loads(good)))).encode()
    return draw(st.binary(max_size=300))


def _assert_valid(rec: AnnotationRecord) -> None:
    """A record the reader accepted must be usable: valid, JSON-serialisable, round-tripping."""
    rec.check()
    d = rec.to_dict(None)
    back = AnnotationRecord.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back.to_dict(None) == d


@PROPERTY
@given(data=st.data())
def test_any_bytes_as_a_record_file_never_crash(fuzz_project, data):
    root, path, good = fuzz_project
    payload = data.draw(mutated_bytes(good))
    path.write_bytes(payload)
    try:
        proj = Project.open(root)
        rec = proj.load(REL)
    finally:
        path.write_bytes(good)
    if proj.problems:
        # each problem names the record file or the mask file it points at
        assert all(str(root / ".zsas") in p for p in proj.problems)
        assert rec.status == "unreviewed" and rec.mask is None
    else:
        _assert_valid(rec)


@PROPERTY
@given(d=mutated_json(full_record_dict()))
def test_any_json_as_a_record_gives_a_record_error_or_a_valid_record(d):
    try:
        rec = AnnotationRecord.from_dict(d, "r.json")
    except RecordError as exc:
        assert str(exc).startswith("r.json: ")
        return
    _assert_valid(rec)
    assert math.isfinite(rec.image_score) if rec.image_score is not None else True


@PROPERTY
@given(data=st.data())
def test_any_bytes_as_the_project_file_never_crash(fuzz_project, data):
    root = fuzz_project[0]
    pf = root / ".zsas" / "project.json"
    good = pf.read_bytes()
    pf.write_bytes(data.draw(mutated_bytes(good)))
    try:
        Project.open(root)
    except ZsasError as exc:
        assert "project.json" in str(exc)
    finally:
        pf.write_bytes(good)


def test_a_copied_project_with_every_kind_of_damage_opens(tmp_path):
    """Many broken records at once: the project opens, lists each problem once, and the intact
    records still load."""
    proj, path = _saved_project(tmp_path / "parts")
    good = path.read_bytes()
    records = proj.root / ".zsas" / "records" / "test"
    damage = {"scratch/a.png.json": b"", "scratch/b.png.json": b"[" * 50_000,
              "hole/c.png.json": b"\x00\x01", "hole/d.png.json": good.replace(b'"accepted"', b'"done"')}
    for rel, data in damage.items():
        (records / rel).parent.mkdir(parents=True, exist_ok=True)
        (records / rel).write_bytes(data)
    for name in ("a", "b", "c", "d"):
        folder = "scratch" if name in "ab" else "hole"
        shutil.copy(proj.root / REL, proj.root / f"test/{folder}/{name}.png")
    reopened = Project.open(proj.root)
    assert len(reopened.problems) == len(damage)
    assert reopened.load(REL).status == "accepted"
    with Image.open(proj.root / REL) as im:
        assert reopened.load(REL).mask.shape == im.size[::-1]
