"""The image list of a --ray job (folders, list files, URI prefixes) and --ray without Ray.
No Ray runtime needed here."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from ray_helpers import make_images

from zsas_gui.cli import main
from zsas_gui.core.engine.segment_job import collect_inputs
from zsas_gui.core.errors import ImageReadError, ZsasError
from zsas_gui.scale.inputs import list_inputs, read_image
from zsas_gui.scale.runtime import parse_actors


def test_local_folders_are_named_as_the_local_command_names_them(tmp_path):
    make_images(tmp_path / "a" / "sub", 2)
    make_images(tmp_path / "b", 1)
    for paths in ([tmp_path / "a"], [tmp_path / "a", tmp_path / "b"]):
        assert list_inputs(paths) == [(str(s), r) for s, r in collect_inputs(paths)]


def test_list_file_lines_relative_absolute_and_comments(tmp_path):
    imgs = make_images(tmp_path / "data" / "x", 2) + make_images(tmp_path / "data" / "y", 1)
    listing = tmp_path / "data" / "todo.txt"
    listing.write_text(f"# the images of the night shift\nx/{imgs[0].name}\n\n{imgs[1]}\n{imgs[2]}\n")
    assert list_inputs([listing]) == [(str(tmp_path / "data" / "x" / imgs[0].name), "x/img000"),
                                      (str(imgs[1]), "x/img001"), (str(imgs[2]), "y/img000")]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ZsasError, match="empty.txt: the list file names no image"):
        list_inputs([tmp_path / "empty.txt"])


def test_uri_prefix_is_listed_and_read_through_pyarrow(tmp_path):
    pytest.importorskip("pyarrow")
    imgs = make_images(tmp_path / "bucket" / "line1", 2)
    (tmp_path / "bucket" / "line1" / "notes.md").write_text("not an image")
    (tmp_path / "bucket" / "line1" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    items = list_inputs([f"file://{tmp_path / 'bucket'}"])
    assert [rel for _, rel in items] == ["line1/bad", "line1/img000", "line1/img001"]
    assert items[1][0] == f"file://{imgs[0]}"
    assert np.array_equal(read_image(items[1][0]), read_image(str(imgs[0])))
    with pytest.raises(ImageReadError, match=r"^file://.*bad.png: "):
        read_image(items[0][0])
    with pytest.raises(ZsasError, match="no such file or prefix"):
        list_inputs([f"file://{tmp_path / 'nothing-here'}"])


def test_actor_counts():
    assert parse_actors(None) is None
    assert parse_actors("3") == (3, 3) and parse_actors("1,4") == (1, 4)
    for bad in ("0", "4,1", "x", "1,2,3"):
        with pytest.raises(ZsasError, match="--actors"):
            parse_actors(bad)


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    make_images(tmp_path / "in", 1)
    for cmd in (["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out")], ["label", str(tmp_path / "in")]):
        assert main([*cmd, "--ray"]) == 1
        assert 'pip install "zsas-gui[ray]"' in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--actors", "2"]) == 1
    assert "add --ray" in capsys.readouterr().err
