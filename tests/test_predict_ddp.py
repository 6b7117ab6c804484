"""`hvl predict --devices 2`: videos dealt to two gloo ranks by duration; the files are those of one process."""
import json
import os
import subprocess
import sys

import pytest
from hvl.core.inference.run import deal_by_duration
from index_helpers import colour_video, tiny_checkpoint

pytestmark = pytest.mark.distributed


def test_the_deal_is_the_one_hvl_index_uses():
    from hvl.core.search.index import deal_by_duration as index_deal

    durations = [3600.0, 20.0, 20.0, 600.0, 5.0, 1800.0, 20.0]
    for world in (1, 2, 3):
        assert deal_by_duration(durations, world) == index_deal(durations, world)


def test_two_gloo_ranks_write_the_files_of_one_process(tmp_path):
    videos = tmp_path / "videos"
    colour_video(videos / "long.mp4", 0, seconds=12.0)
    for i in range(5):
        colour_video(videos / f"c{i}.mp4", i + 1, seconds=2.0 + i % 2)
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    outs = {}
    for devices in (1, 2):
        out = tmp_path / f"out{devices}"
        cmd = [sys.executable, "-m", "hvl.core.cli", "predict", str(videos), "--ckpt", str(ckpt), "--prompts",
               "surgical:demo", "--level", "clip", "--out", str(out), "--format", "csv", "--format", "cholec80",
               "--devices", str(devices), "--accelerator", "cpu", "--num-workers", "0", "--no-progress"]
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        outs[devices] = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                         if p.is_file() and p.name != "predict.json"}
        summary = json.loads((out / "predict.json").read_text())
        assert summary["predicted"] == 6 and summary["failed"] == 0
        ranks = {r["rank"] for r in summary["per_video"]}
        assert ranks == set(range(devices))
    assert outs[1] == outs[2] and len(outs[1]) == 6 * 3
    # the 12 s operation alone on one rank, the five clips on the other
    two = json.loads((tmp_path / "out2" / "predict.json").read_text())["per_video"]
    by_rank = {r["video_id"]: r["rank"] for r in two}
    assert {by_rank[f"c{i}"] for i in range(5)} == {1 - by_rank["long"]}


def test_a_rank_dealt_no_video_does_not_hang_the_others(tmp_path):
    video = colour_video(tmp_path / "only.mp4", 0, seconds=2.0)
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    cmd = [sys.executable, "-m", "hvl.core.cli", "predict", str(video), "--ckpt", str(ckpt), "--prompts",
           "surgical:demo", "--level", "clip", "--out", str(tmp_path / "out"), "--devices", "2", "--accelerator", "cpu",
           "--num-workers", "0", "--no-progress"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads((tmp_path / "out" / "predict.json").read_text())["per_video"]
    assert [(r["video_id"], r["status"]) for r in rows] == [("only", "predicted")]
