"""AnnotationRecord: JSON round trip and strict validation naming the file and the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from zsas_gui.core.errors import RecordError
from zsas_gui.core.types import MethodParams, Prompts, TextPrompts
from zsas_gui.state.record import (
    SCHEMA_VERSION,
    AnnotationRecord,
    NewerSchemaError,
    default_defect_class,
    now_iso,
)


def full_record() -> AnnotationRecord:
    return AnnotationRecord(
        rel="test/crack/001.png", status="edited", defect_class="crack",
        mask=np.eye(4, dtype=bool),
        prompts=Prompts(np.array([[1.5, 2.0], [3.0, 1.0]]), np.array([1, 0]), np.array([0.9, np.nan])),
        params=MethodParams(tau=0.3, k_pos=2), text_prompts=TextPrompts(object_name="tile"),
        image_score=0.75, provenance={"mask_source": "edited", "models": {"clip": "c", "sam": "s"}},
        created=now_iso(), updated=now_iso(), image_hash="a" * 64, image_size=(4, 4), image_bytes=99)


def test_round_trip_keeps_every_field():
    rec = full_record()
    d = rec.to_dict(mask_file="001.png.0123456789abcdef.png")
    assert d["schema_version"] == SCHEMA_VERSION and d["mask_file"].endswith(".png")
    back = AnnotationRecord.from_dict(copy.deepcopy(d), "x.json")
    for name in ("rel", "status", "defect_class", "params", "text_prompts", "image_score", "provenance",
                 "created", "updated", "image_hash", "image_size", "image_bytes"):
        assert getattr(back, name) == getattr(rec, name), name
    assert np.array_equal(back.prompts.points, rec.prompts.points)
    assert np.array_equal(back.prompts.labels, rec.prompts.labels)
    assert np.isnan(back.prompts.scores[1]) and back.prompts.scores[0] == pytest.approx(0.9)
    assert back.mask is None          # pixels live in the mask PNG, not the JSON


@pytest.mark.parametrize("field, value", [
    ("status", "done"),
    ("defect_class", ""),
    ("image", "../outside.png"),
    ("image", "/abs/path.png"),
    ("image_size", [10]),
    ("image_sha256", "xyz"),
    ("mask_file", "../../etc/passwd"),
    ("params", {"tau": 7.0}),
    ("text_prompts", {"object_name": " "}),
    ("prompts", {"points": [[1, 2]], "labels": [5]}),
    ("image_score", "high"),
    ("created", "yesterday"),
    ("provenance", {"mask_source": "magic"}),
    ("schema_version", "1"),
])
def test_bad_field_is_named_with_the_file(field, value):
    d = full_record().to_dict(None)
    d[field] = value
    with pytest.raises(RecordError) as err:
        AnnotationRecord.from_dict(d, "/p/.zsas/records/a.png.json")
    msg = str(err.value)
    assert msg.startswith("/p/.zsas/records/a.png.json: ")
    assert field.split(".")[0] in msg


@pytest.mark.parametrize("missing", ["image", "status", "params", "provenance"])
def test_missing_field_is_named(missing):
    d = full_record().to_dict(None)
    del d[missing]
    with pytest.raises(RecordError, match=f"field '{missing}': missing"):
        AnnotationRecord.from_dict(d, "f.json")


def test_newer_schema_is_a_distinct_error():
    d = full_record().to_dict(None)
    d["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(NewerSchemaError, match="newer zsas-gui"):
        AnnotationRecord.from_dict(d, "f.json")


def test_not_an_object():
    with pytest.raises(RecordError, match="not a JSON object"):
        AnnotationRecord.from_dict([1, 2], "f.json")


@pytest.mark.parametrize("rel, cls", [("test/crack/0.png", "crack"), ("a.png", "defect"),
                                      ("train/good/0.png", "defect"), ("x/y z/0.png", "y z")])
def test_default_class_is_parent_folder(rel, cls):
    assert default_defect_class(rel) == cls
    assert AnnotationRecord.fresh(rel).defect_class == cls
    assert AnnotationRecord.fresh(rel).status == "unreviewed"
