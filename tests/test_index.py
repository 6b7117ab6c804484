"""`hvl index`: documented on-disk format, incremental runs, and a real `kill -9` mid-way then resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hvl.core.errors import HVLInputError
from hvl.core.models import checkpoint as ckpt_mod
from hvl.core.search.index import build_index, scan_videos
from hvl.core.search.query import load_index
from hvl.core.search.store import (
    VERSION,
    committed_shards,
    ensure_header,
    indexed_keys,
    read_header,
    read_shard_embeddings,
    read_shard_meta,
)
from index_helpers import colour_video, tiny_checkpoint, video_tree


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture
def fast_load(monkeypatch, ckpt):
    """Load the (read-only) model once per test instead of once per build_index call."""
    cache = {}
    real = ckpt_mod.load_model

    def cached(path, map_location="cpu", trust_remote_code=False):
        if str(path) not in cache:
            cache[str(path)] = real(path, map_location, trust_remote_code)
        return cache[str(path)]

    monkeypatch.setattr(ckpt_mod, "load_model", cached)


def rows_by_frame(index_dir: Path) -> dict[tuple[str, float], np.ndarray]:
    """(video key, timestamp) -> embedding, read straight from the shards; fails on a duplicate frame."""
    out = {}
    for name in committed_shards(index_dir):
        emb = read_shard_embeddings(index_dir, name)
        for v in read_shard_meta(index_dir, name):
            for j, t in enumerate(v["t"]):
                key = (v["key"], t)
                assert key not in out, f"duplicate frame {key}"
                out[key] = emb[v["row"] + j]
    return out


def test_format_and_incremental_rerun_adds_only_new_videos(tmp_path, ckpt, fast_load):
    videos = video_tree(tmp_path / "videos", games=2, per_game=2)
    out = tmp_path / "index"
    first = build_index(videos, ckpt, out, fps=5, num_workers=0, shard_rows=15, progress=False)
    assert (first["indexed"], first["already_indexed"]) == (4, 0)
    h = read_header(out)
    assert h["format"] == "hvl-frame-index" and h["level"] == "clip" and h["dim"] == 32 and h["fps"] == 5.0
    before = rows_by_frame(out)
    assert len(before) == 4 * 10  # 2 s at 5 fps
    for name in committed_shards(out):
        e = np.load(out / "shards" / f"{name}.npy", allow_pickle=False)
        assert e.dtype == np.float16 and e.shape[1] == 32
        assert np.allclose(np.linalg.norm(e.astype(np.float32), axis=1), 1.0, atol=2e-3)

    colour_video(videos / "game2" / "v200.mp4", 5)
    colour_video(videos / "game0" / "v009.mp4", 4)
    second = build_index(videos, ckpt, out, fps=5, num_workers=0, shard_rows=15, progress=False)
    assert (second["indexed"], second["already_indexed"]) == (2, 4)
    after = rows_by_frame(out)
    assert len(after) == 6 * 10
    assert all(np.array_equal(after[k], v) for k, v in before.items())  # old shards untouched
    third = build_index(videos, ckpt, out, fps=5, num_workers=0, progress=False)
    assert third["indexed"] == 0 and len(rows_by_frame(out)) == 60

    idx = load_index(out)
    assert len(idx.videos) == 6 and len(idx.emb) == 60
    assert sorted(v["group"] for v in idx.videos) == ["game0"] * 3 + ["game1"] * 2 + ["game2"]


@pytest.mark.slow
def test_kill_9_mid_index_then_resume_has_no_duplicates_and_same_embeddings(tmp_path, ckpt, fast_load):
    n = 24
    videos = video_tree(tmp_path / "videos", games=4, per_game=n // 4)
    out = tmp_path / "index"
    cmd = [sys.executable, "-m", "hvl.core.cli", "index", str(videos), "--ckpt", str(ckpt), "--out", str(out),
           "--fps", "5", "--num-workers", "0", "--shard-rows", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(committed_shards(out)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(indexed_keys(out))
    assert 3 <= done < n, f"the kill must land mid-way (indexed {done} of {n})"

    # what a kill between the two renames, or mid-write, leaves behind: ignored, then removed
    shards = out / "shards"
    np.save(shards / "orphan-r0-00000.npy", np.ones((10, 32), np.float16))
    (shards / ".x.npy.123.tmp").write_bytes(b"half a shard")
    assert len(load_index(out).videos) == done

    res = build_index(videos, ckpt, out, fps=5, num_workers=0, shard_rows=7, progress=False)
    assert res["already_indexed"] == done and res["indexed"] == n - done
    assert not (shards / "orphan-r0-00000.npy").exists() and not list(shards.glob(".*.tmp"))

    clean = tmp_path / "clean"
    build_index(videos, ckpt, clean, fps=5, num_workers=0, progress=False)
    resumed, reference = rows_by_frame(out), rows_by_frame(clean)
    assert set(resumed) == set(reference) and len(resumed) == n * 10
    for k, v in reference.items():
        np.testing.assert_allclose(resumed[k].astype(np.float32), v.astype(np.float32), atol=2e-3)


def test_index_refuses_to_mix_settings(tmp_path):
    want = {"format": "hvl-frame-index", "version": VERSION, "checkpoint_sha256": "a", "level": "clip", "dim": 32,
            "fps": 1.0, "image_size": 32}
    ensure_header(tmp_path, want)
    assert ensure_header(tmp_path, dict(want)) == want
    with pytest.raises(HVLInputError, match=r"index.json: field 'fps' is 1.0 but this run has 2.0"):
        ensure_header(tmp_path, want | {"fps": 2.0})
    with pytest.raises(HVLInputError, match=r"field 'checkpoint_sha256'"):
        ensure_header(tmp_path, want | {"checkpoint_sha256": "b"})


def test_bad_video_stops_or_is_skipped_and_listed(tmp_path, ckpt, fast_load):
    videos = video_tree(tmp_path / "videos", games=1, per_game=3)
    (videos / "game0" / "v001.mp4").write_bytes(b"not a video at all" * 20)
    with pytest.raises(HVLInputError, match=r"(?s)v001.mp4: cannot decode video.*--on-bad-video skip"):
        build_index(videos, ckpt, tmp_path / "a", fps=5, num_workers=0, progress=False, on_bad_video="error")
    res = build_index(videos, ckpt, tmp_path / "b", fps=5, num_workers=1, progress=False)  # skip: the default
    assert (res["indexed"], res["skipped"]) == (2, 1)
    assert indexed_keys(tmp_path / "b") == {"game0/v000.mp4", "game0/v002.mp4"}
    [line] = (tmp_path / "b" / "skipped.jsonl").read_text().splitlines()
    assert json.loads(line)["key"] == "game0/v001.mp4"


def test_scan_layout_errors(tmp_path):
    with pytest.raises(HVLInputError, match="video folder not found"):
        scan_videos(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HVLInputError, match="no videos"):
        scan_videos(tmp_path / "empty")
    for g in ("a", "b"):
        (tmp_path / "dup" / g).mkdir(parents=True)
        (tmp_path / "dup" / g / "same.mp4").write_bytes(b"x")
    with pytest.raises(HVLInputError, match=r"video id 'same' is also used by .*a/same.mp4"):
        scan_videos(tmp_path / "dup")
