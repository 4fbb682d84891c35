"""Model registry: lookups, aliases, the cache folder, checkpoint resolution, `zsas models list/path`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from zsas_gui.cli import main as cli_main
from zsas_gui.core.errors import CheckpointError, ModelNotFoundError, ZsasError
from zsas_gui.core.models import registry
from zsas_gui.core.models.registry import ModelSpec


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty model cache selected through ZSAS_MODELS_DIR."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registry dicts copied, so a test may register specs without leaking them."""
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    return registry


def tiny_spec(data: bytes, name: str = "tiny-sam", **kw) -> ModelSpec:
    fields = {"name": name, "kind": "sam", "arch": "vit_b", "file_name": f"{name}.pth",
              "url": f"https://example.invalid/{name}.pth", "size_bytes": len(data),
              "checksum": hashlib.sha256(data).hexdigest(), "checksum_algo": "sha256", "image_size": 1024,
              "licence": "test", "description": "test entry"}
    fields.update(kw)
    return ModelSpec(**fields)


def fake_install(cache: Path, name: str) -> Path:
    """A sparse file of the registered size under the registered name (no real disk use)."""
    spec = registry.get_spec(name)
    path = cache / spec.file_name
    with open(path, "wb") as fh:
        fh.truncate(spec.size_bytes)
    return path


# --- the data -----------------------------------------------------------------------------------

def test_builtin_entries_are_complete_and_consistent():
    specs = registry.list_specs()
    assert len({s.file_name for s in specs}) == len(specs), "cache file names must be unique"
    specs = specs[:6]       # the SAM 2.1 and HQ-SAM entries: test_sam2_and_hq_entries
    assert [s.name for s in specs] == ["ViT-L-14-336-quickgelu", "ViT-B-16-quickgelu", "vit_h", "vit_l", "vit_b",
                                       "mobile_sam"]
    for s in specs:
        assert s.url.startswith("https://"), s
        assert s.url.endswith(s.file_name) or s.url.endswith("open_clip_model.safetensors"), s
        assert s.size_bytes and s.size_bytes > 40_000_000, s
        assert s.checksum_algo == "sha256" and len(s.checksum) == 64, s
        int(s.checksum, 16)
        assert s.licence and s.description and s.source, s
    clip = {s.name: s for s in registry.list_specs("clip")}
    assert all(s.arch.endswith("-quickgelu") and s.pretrained_tag == "openai" for s in clip.values())
    assert all(s.file_name.endswith(".safetensors") for s in clip.values()), "CLIP weights: no pickles"
    assert clip["ViT-L-14-336-quickgelu"].image_size == 518 and clip["ViT-L-14-336-quickgelu"].default
    assert clip["ViT-B-16-quickgelu"].image_size % 16 == 0
    sam = [s for s in registry.list_specs("sam")[:4] if s.name != "mobile_sam"]
    assert [s.file_name for s in sam] == ["sam_vit_h_4b8939.pth", "sam_vit_l_0b3195.pth", "sam_vit_b_01ec64.pth"]
    assert all(s.url.startswith("https://dl.fbaipublicfiles.com/segment_anything/") for s in sam)
    assert [s.size_text for s in sam] == ["2.56 GB", "1.25 GB", "375 MB"]
    mobile = registry.get_spec("vit_t", "sam")
    assert mobile.name == "mobile_sam" and mobile.size_text == "41 MB" and "/ChaoningZhang/MobileSAM/" in mobile.url


def test_sam2_and_hq_entries():
    more = [s for s in registry.list_specs("sam")][4:]
    assert [s.name for s in more] == ["sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus",
                                      "sam2.1_hiera_large", "sam_hq_vit_b", "sam_hq_vit_l", "sam_hq_vit_h",
                                      "sam_hq_vit_tiny"]
    for s in more:
        assert s.url.startswith("https://") and s.url.endswith("/" + s.file_name), s
        assert s.licence == "Apache-2.0" and s.source and s.image_size == 1024, s
        assert s.checksum_algo == "sha256" and len(s.checksum) == 64 and s.size_bytes, s
        int(s.checksum, 16)
    sam2, hq = more[:4], more[4:]
    assert all(s.url.startswith("https://dl.fbaipublicfiles.com/segment_anything_2/092824/") for s in sam2)
    assert [s.size_text for s in sam2] == ["156 MB", "184 MB", "324 MB", "898 MB"]
    # one pinned revision of lkeab/hq-sam holds all four HQ-SAM files
    rev = "a3a77cd0a2e5e50eaa76faccf61b964732d9b35f"
    assert all(s.url.startswith(f"https://huggingface.co/lkeab/hq-sam/resolve/{rev}/") for s in hq)
    assert [s.size_text for s in hq] == ["379 MB", "1.25 GB", "2.57 GB", "43 MB"]
    assert registry.get_spec("sam2_tiny", "sam").name == "sam2.1_hiera_tiny"
    assert registry.get_spec("sam2.1-hiera-base-plus", "sam").name == "sam2.1_hiera_base_plus"
    assert registry.get_spec("sam-hq-vit-b", "sam").name == "sam_hq_vit_b"
    assert registry.get_spec("light_hq_sam", "sam").name == "sam_hq_vit_tiny"


def test_spec_rejects_inconsistent_fields():
    with pytest.raises(ValueError, match="kind"):
        tiny_spec(b"x", kind="dino")
    with pytest.raises(ValueError, match="together"):
        tiny_spec(b"x", checksum_algo=None)
    with pytest.raises(ValueError, match="checksum_algo"):
        tiny_spec(b"x", checksum_algo="crc32")
    with pytest.raises(ValueError, match="bare file name"):
        tiny_spec(b"x", file_name="sub/x.pth")


def test_defaults_and_kinds():
    assert registry.default_name("clip") == "ViT-L-14-336-quickgelu"
    assert registry.default_name("sam") == "vit_h"
    assert {s.kind for s in registry.list_specs("sam")} == {"sam"}
    with pytest.raises(ValueError, match="kind"):
        registry.list_specs("dino")
    with pytest.raises(ValueError, match="kind"):
        registry.default_name("dino")


@pytest.mark.parametrize("alias, name", [
    ("ViT-L-14-336", "ViT-L-14-336-quickgelu"),
    ("vit-l-14-336-QUICKGELU", "ViT-L-14-336-quickgelu"),
    ("ViT-L-14-336/openai", "ViT-L-14-336-quickgelu"),
    ("ViT-B-16", "ViT-B-16-quickgelu"),
    ("sam_vit_h", "vit_h"),
    ("VIT_L", "vit_l"),
    ("sam_vit_b_01ec64.pth", "vit_b"),
    (" vit_b ", "vit_b"),
])
def test_aliases_resolve_to_the_same_spec(alias, name):
    assert registry.get_spec(alias) is registry.get_spec(name)


def test_unknown_name_lists_known_names():
    with pytest.raises(ModelNotFoundError) as info:
        registry.get_spec("vit_giant")
    assert isinstance(info.value, ZsasError)
    msg = str(info.value)
    assert "'vit_giant'" in msg
    for name in ("ViT-L-14-336-quickgelu", "ViT-B-16-quickgelu", "vit_h", "vit_l", "vit_b"):
        assert name in msg


def test_kind_mismatch_is_an_error_naming_both_kinds():
    with pytest.raises(ModelNotFoundError, match="'vit_h' is a SAM model, but a CLIP model"):
        registry.get_spec("vit_h", kind="clip")


def test_register_spec_refuses_duplicates(scratch_registry):
    spec = tiny_spec(b"abc")
    registry.register_spec(spec, aliases=("tiny",))
    assert registry.get_spec("TINY") is spec
    assert registry.get_spec("tiny-sam.pth") is spec
    with pytest.raises(ValueError, match="already registered"):
        registry.register_spec(tiny_spec(b"abc", name="other", file_name="o.pth"), aliases=("vit_h",))
    with pytest.raises(ValueError, match="already the default"):
        registry.register_spec(tiny_spec(b"abc", name="other2", file_name="o2.pth", default=True))


# --- the cache folder -----------------------------------------------------------------------------

def test_models_dir_default_and_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.MODELS_DIR_ENV, raising=False)
    assert registry.models_dir() == platformdirs.user_cache_path("zsas-gui") / "models"
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(tmp_path / "m"))
    assert registry.models_dir() == tmp_path / "m"
    monkeypatch.setenv(registry.MODELS_DIR_ENV, "~/zsas-models")
    assert registry.models_dir() == Path.home() / "zsas-models"


# --- resolution ------------------------------------------------------------------------------------

def test_resolve_none_gives_the_default_from_the_cache(cache):
    fake_install(cache, "vit_h")
    fake_install(cache, "ViT-L-14-336-quickgelu")
    assert registry.resolve_checkpoint(None, "sam") == cache / "sam_vit_h_4b8939.pth"
    assert registry.resolve_checkpoint(None, "clip") == cache / "clip_vit_l_14_336_openai.safetensors"
    assert registry.resolve_checkpoint("sam_vit_h", "sam") == cache / "sam_vit_h_4b8939.pth"
    assert registry.resolve_model("sam_vit_h", "sam") == (cache / "sam_vit_h_4b8939.pth", registry.get_spec("vit_h"))


def test_resolve_explicit_paths_win(cache, tmp_path):
    own = tmp_path / "my_sam.pth"
    own.write_bytes(b"weights")
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    assert registry.resolve_checkpoint(str(own), "sam") == own
    assert registry.resolve_checkpoint(own, "sam") == own
    assert registry.resolve_checkpoint(str(folder), "clip") == folder
    assert registry.resolve_model(str(own), "sam") == (own, None)    # a path carries no registry entry


def test_resolve_bare_name_ignores_same_named_entry_in_working_folder(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vit_b").mkdir()
    fake_install(cache, "vit_b")
    assert registry.resolve_checkpoint("vit_b", "sam") == cache / "sam_vit_b_01ec64.pth"
    assert registry.resolve_checkpoint("./vit_b", "sam") == Path("./vit_b")
    # a bare name that is no registry name but exists locally is a path
    (tmp_path / "mine").mkdir()
    assert registry.resolve_checkpoint("mine", "sam") == Path("mine")


def test_missing_registry_model_message_says_what_where_and_how(cache):
    (cache / "sam_vit_l_0b3195.pth.part").write_bytes(b"x" * 1000)
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve_checkpoint("sam_vit_l", "sam")
    msg = str(info.value)
    assert "sam_vit_l_0b3195.pth" in msg and "'vit_l'" in msg
    assert str(cache / "sam_vit_l_0b3195.pth") in msg            # every place looked
    assert "from $ZSAS_MODELS_DIR" in msg
    assert "partial download" in msg
    assert "zsas models download vit_l" in msg                   # how to get it
    assert "--sam /path/to/sam_vit_l_0b3195.pth" in msg
    assert "ZSAS_MODELS_DIR" in msg


def test_cached_file_of_the_wrong_size_is_reported_not_returned(cache, scratch_registry):
    data = b"tiny weights"
    registry.register_spec(tiny_spec(data))
    (cache / "tiny-sam.pth").write_bytes(data[:-2])
    with pytest.raises(CheckpointError, match="incomplete copy.*zsas models download tiny-sam"):
        registry.resolve_checkpoint("tiny-sam", "sam")
    (cache / "tiny-sam.pth").write_bytes(data)
    assert registry.resolve_checkpoint("tiny-sam", "sam") == cache / "tiny-sam.pth"


def test_missing_default_clip_names_the_clip_flag(cache):
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve_checkpoint(None, "clip")
    msg = str(info.value)
    assert "clip_vit_l_14_336_openai.safetensors" in msg
    assert "zsas models download ViT-L-14-336-quickgelu" in msg and "--clip " in msg


def test_missing_path_like_argument_names_that_path(cache, tmp_path):
    missing = tmp_path / "nowhere" / "sam.pth"
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve_checkpoint(str(missing), "sam")
    assert str(missing) in str(info.value) and "--sam" in str(info.value)


def test_unknown_bare_name_lists_known_models_of_that_kind(cache):
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve_checkpoint("vit_giant", "sam")
    msg = str(info.value)
    assert "'vit_giant'" in msg and "vit_h (default), vit_l, vit_b" in msg and "ViT-B-16" not in msg


def test_resolve_wrong_kind_and_bad_kind(cache):
    with pytest.raises(ModelNotFoundError, match="is a CLIP model"):
        registry.resolve_checkpoint("ViT-B-16", "sam")
    with pytest.raises(ValueError, match="kind"):
        registry.resolve_checkpoint("vit_h", "dino")
    with pytest.raises(ModelNotFoundError, match="empty"):
        registry.resolve_checkpoint("  ", "sam")


# --- CLI ---------------------------------------------------------------------------------------------

def test_cli_models_list(cache, capsys):
    (cache / "sam_vit_b_01ec64.pth").write_bytes(b"short")          # wrong size
    (cache / "sam_vit_l_0b3195.pth.part").write_bytes(b"x" * 1000)
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["NAME"].split() == ["NAME", "KIND", "SIZE", "STATUS", "PATH"]
    assert "missing" in lines["vit_h"] and str(cache / "sam_vit_h_4b8939.pth") in lines["vit_h"]
    assert "wrong size" in lines["vit_b"]
    assert "partial 0%" in lines["vit_l"]
    assert "1.71 GB" in lines["ViT-L-14-336-quickgelu"] and "clip" in lines["ViT-L-14-336-quickgelu"]
    assert f"Model folder: {cache}" in out


def test_cli_models_list_installed(cache, scratch_registry, capsys):
    data = b"tiny weights"
    registry.register_spec(tiny_spec(data))
    (cache / "tiny-sam.pth").write_bytes(data)
    assert cli_main(["models", "list", "--kind", "sam"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("tiny-sam") and "installed" in line for line in out.splitlines())
    assert "ViT-L" not in out


def test_cli_models_path(cache, capsys):
    assert cli_main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(cache)
    assert cli_main(["models", "path", "vit_b", "--expected"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "sam_vit_b_01ec64.pth")
    assert cli_main(["models", "path", "vit_b"]) == 1            # not installed: one clear message
    err = capsys.readouterr().err
    assert err.startswith("zsas: error: SAM model 'vit_b' is not installed") and "Traceback" not in err
    fake_install(cache, "vit_b")
    assert cli_main(["models", "path", "sam_vit_b"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "sam_vit_b_01ec64.pth")
    assert cli_main(["models", "path", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_cli_models_without_action_prints_help(capsys):
    assert cli_main(["models"]) == 2
    out = capsys.readouterr().out
    assert "download" in out and "make-test-models" in out


def test_cli_make_test_models_prints_both_paths(tmp_path, monkeypatch, capsys):
    import types

    calls = []
    fake = types.ModuleType("zsas_gui.core.models.testmodels")

    def make_test_models(folder):
        calls.append(Path(folder))
        return Path(folder) / "tiny-clip", Path(folder) / "tiny-sam"

    fake.make_test_models = make_test_models
    monkeypatch.setitem(sys.modules, "zsas_gui.core.models.testmodels", fake)
    assert cli_main(["models", "make-test-models", str(tmp_path / "t")]) == 0
    assert calls == [tmp_path / "t"]
    assert capsys.readouterr().out.split() == [str(tmp_path / "t" / "tiny-clip"), str(tmp_path / "t" / "tiny-sam")]


def test_cli_and_registry_do_not_import_torch():
    code = ("import sys; import zsas_gui.cli as c; c.build_parser(); "
            "import zsas_gui.core.models.download, zsas_gui.core.models.device; "
            "bad = [m for m in ('torch', 'PySide6', 'cv2') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                         timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
