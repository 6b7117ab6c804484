"""The helpers several parts of hvl share, each in one place: model specs (`<kind>:<path>`, hvl.core.models.spec),
`.npy` files and sha256 (hvl.core.io), and JSON files read with one clear error (hvl.core.io.read_json) wherever
hvl reads one it did not just write."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hvl.core.errors import HVLInputError
from hvl.core.io import file_sha256, read_npy, write_npy
from hvl.core.models.spec import ModelSource, ModelSpec, parse_model_spec


@pytest.mark.parametrize(("spec", "want"), [
    ("surgvlp:/models/HecVL.pth", ModelSpec("surgvlp", "/models/HecVL.pth")),
    ("/models/clip-vit-base-patch32", ModelSpec("hf", "/models/clip-vit-base-patch32")),
    ("C:\\models\\clip", ModelSpec("hf", "C:\\models\\clip")),  # a drive letter, not a kind
    ("relative/dir", ModelSpec("hf", "relative/dir")),
])
def test_one_reading_of_a_model_spec(spec, want):
    assert parse_model_spec(spec) == want


def test_an_existing_path_with_a_colon_is_a_path(tmp_path):
    odd = tmp_path / "clip:v2"
    odd.mkdir()
    assert parse_model_spec(odd) == ModelSpec("hf", str(odd))
    assert ModelSource(model="surgvlp:/m.pth").name == "surgvlp:/m.pth" and ModelSource().name is None


def test_the_three_readers_of_a_spec_agree(tmp_path):
    """backbones (which loader), checkpoint.fingerprint (which file) and the index (is the model still there) all
    read a spec the same way: the file a `surgvlp:` spec names is what is fingerprinted."""
    from hvl.core.models.checkpoint import fingerprint

    weights = tmp_path / "HecVL.pth"
    weights.write_bytes(b"weights")
    assert fingerprint(f"surgvlp:{weights}") == fingerprint(weights) == hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(HVLInputError, match="unknown backbone kind 'nosuch'"):
        from hvl.core.models.backbones import load_backbone

        load_backbone(f"nosuch:{weights}")


def test_file_sha256_and_npy_files(tmp_path):
    blob = tmp_path / "b.bin"
    blob.write_bytes(bytes(range(256)) * 5000)  # more than one 1 MiB block
    assert file_sha256(blob) == hashlib.sha256(blob.read_bytes()).hexdigest()
    arr = np.arange(12, dtype=np.float16).reshape(3, 4)
    write_npy(tmp_path / "a.npy", arr)
    assert np.array_equal(read_npy(tmp_path / "a.npy"), arr) and read_npy(tmp_path / "a.npy", mmap=True)[2, 3] == 11
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # written atomically, nothing left
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):  # a planted pickle is never unpickled
        read_npy(tmp_path / "obj.npy")


# ---- JSON files hvl reads: one error naming the file, what it should hold and the fix ------------------------

def test_an_index_header_that_is_not_an_object_is_one_clear_error(tmp_path):
    from hvl.core.search.store import read_header

    (tmp_path / "index.json").write_text("[]")  # was: AttributeError 'list' object has no attribute 'get'
    with pytest.raises(HVLInputError, match=r"index\.json: expected an hvl index header as an object.*rebuild"):
        read_header(tmp_path)
    (tmp_path / "index.json").write_text("{oops")
    with pytest.raises(HVLInputError, match=r"index\.json, line 1: not valid JSON.*rebuild the index"):
        read_header(tmp_path)


def test_a_damaged_backend_record_is_one_clear_error(tmp_path):
    from hvl.core.search.backends.mirror import STATE, _state

    (tmp_path / STATE).write_text('{"shards": ')  # was: json.JSONDecodeError out of `hvl index`
    with pytest.raises(HVLInputError, match=r"backend\.json, line 1: not valid JSON.*delete it"):
        _state(tmp_path)


def test_a_damaged_preprocessor_config_is_one_clear_error(tmp_path):
    from hvl.core.models.hf_backbones import _preprocess, _read_config

    (tmp_path / "preprocessor_config.json").write_text("{\"size\": ")  # was: json.JSONDecodeError from --model
    with pytest.raises(HVLInputError, match=r"preprocessor_config\.json, line 1: not valid JSON.*hub snapshot"):
        _preprocess(tmp_path)
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(HVLInputError, match=r"config\.json: not UTF-8 text"):
        _read_config(tmp_path)


def test_a_damaged_frames_json_and_predictions_file_are_one_clear_error(tmp_path):
    from hvl.core.data.video import _folder_fps
    from hvl.core.search.serve.review import load_review

    (tmp_path / "frames.json").write_text("[25]")
    with pytest.raises(HVLInputError, match=r"frames\.json: expected a JSON object with a numeric 'fps'"):
        _folder_fps(tmp_path)
    (tmp_path / "frames.json").write_text('{"fps": 12.5}')
    assert _folder_fps(tmp_path) == 12.5
    with pytest.raises(HVLInputError, match=r"predictions\.json: not found; re-run `hvl zeroshot \.\.\. --predictions"):
        load_review(tmp_path / "no_predictions")
    (tmp_path / "zs").mkdir()
    (tmp_path / "zs" / "predictions.json").write_text('{"format": ')  # was: "not valid JSON" without the fix
    with pytest.raises(HVLInputError, match=r"predictions\.json, line 1: not valid JSON.*re-run `hvl zeroshot"):
        load_review(tmp_path / "zs")
