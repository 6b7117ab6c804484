"""Multi-device `hvl index`: videos dealt to ranks by duration, so that uneven lengths do not leave ranks waiting."""
import os
import subprocess
import sys

import pytest
from hvl.core.search.index import deal_by_duration
from hvl.core.search.store import committed_shards, read_index, read_shard_meta
from index_helpers import colour_video, tiny_checkpoint

pytestmark = pytest.mark.distributed


def test_longest_first_to_the_least_loaded():
    durations = [10800.0] + [20.0] * 540 + [600.0] * 9  # a 3-hour operation beside 20-second clips
    for world in (2, 4, 8):
        deal = deal_by_duration(durations, world)
        assert sorted(i for r in deal for i in r) == list(range(len(durations)))  # each video exactly once
        loads = [sum(durations[i] for i in r) for r in deal]
        assert max(loads) - min(loads) <= max(durations) or max(loads) <= 1.1 * sum(loads) / world
        assert deal == deal_by_duration(durations, world)  # every rank computes the same deal
    assert deal_by_duration([5.0, 1.0], 1) == [[0, 1]]


def test_two_gloo_ranks_embed_about_the_same_number_of_frames(tmp_path):
    videos = tmp_path / "videos"
    colour_video(videos / "or" / "long_operation.mp4", 0, seconds=24.0)
    for i in range(12):
        colour_video(videos / "clips" / f"c{i:02d}.mp4", i + 1, seconds=2.0)
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    cmd = [sys.executable, "-m", "hvl.core.cli", "index", str(videos), "--ckpt", str(ckpt), "--out", str(tmp_path / "idx"),
           "--fps", "1", "--devices", "2", "--accelerator", "cpu", "--num-workers", "0", "--no-progress"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    frames = {0: 0, 1: 0}
    for name in committed_shards(tmp_path / "idx"):
        rank = int(name.split("-r")[1].split("-")[0])
        frames[rank] += sum(len(m["t"]) for m in read_shard_meta(tmp_path / "idx", name))
    mean = sum(frames.values()) / 2
    assert sum(frames.values()) == 24 + 12 * 2 and all(abs(f - mean) <= 0.1 * mean for f in frames.values()), frames
    idx = read_index(tmp_path / "idx")
    assert sorted(v["video_id"] for v in idx.videos) == sorted(["long_operation"] + [f"c{i:02d}" for i in range(12)])
