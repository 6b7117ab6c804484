"""A killed `hvl predict` resumes: the real command in its own process, killed with SIGKILL once its first video is
finished, leaves nothing a rerun would trust that is not finished, and the rerun skips the finished video and ends
with the files of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from index_helpers import colour_video, tiny_checkpoint

VIDEOS = 3  # at the kill: one finished, the others cut off mid-way or not started
ARGS = ("--prompts", "surgical:demo", "--level", "clip", "--fps", "10", "--no-progress", "--num-workers", "0",
        "--format", "csv", "--format", "cholec80")


def _command(videos: Path, ckpt: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "hvl.core.cli", "predict", str(videos), "--ckpt", str(ckpt), "--out", str(out),
            *ARGS]


def _files(out: Path) -> dict[str, bytes]:
    """Every file a rerun or a user reads (the run summary aside), by path under ``out``."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "predict.json" and not p.name.endswith(".tmp")}


def _killed_after_first_video(videos: Path, ckpt: Path, out: Path, log: Path) -> list[Path]:
    """Starts the run, SIGKILLs it as soon as one ``timeline.json`` exists; the timelines there at the kill. The
    poll has no deadline of its own but the run's: a slow machine only makes the wait longer."""
    with open(log, "w") as err:
        proc = subprocess.Popen(_command(videos, ckpt, out), stdout=err, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            deadline = time.monotonic() + 900
            while not list(out.glob("*/timeline.json")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"hvl predict ended (or hung) before its first video:\n"
                                         f"{log.read_text()[-3000:]}")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return sorted(out.glob("*/timeline.json"))


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    from hvl.core.cli import main
    from hvl.core.inference.write import read_timeline

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    whole = tmp_path / "whole"
    seconds = 40.0  # 400 frames a video at --fps 10: the two after the first take longer than the 20 ms poll
    for attempt in range(3):
        videos = tmp_path / f"videos{attempt}"
        for i in range(VIDEOS):
            colour_video(videos / f"clip{i}.mp4", i, seconds=seconds + i)
        killed = tmp_path / f"killed{attempt}"
        finished = _killed_after_first_video(videos, ckpt, killed, tmp_path / f"run{attempt}.log")
        if len(finished) < VIDEOS:
            break
        seconds *= 3  # the whole run ended before the kill landed: longer videos, never a tighter clock
    else:
        pytest.fail("hvl predict finished every video before a SIGKILL sent at its first finished video, 3 times")

    assert main(["predict", str(videos), "--ckpt", str(ckpt), "--out", str(whole), *ARGS]) == 0
    expected = _files(whole)
    assert len([k for k in expected if k.endswith("timeline.json")]) == VIDEOS

    # what a rerun trusts is a timeline.json (written last, renamed into place): each one there is whole and final
    for path in finished:
        read_timeline(path)
        assert path.read_bytes() == expected[str(path.relative_to(killed))]
    # a video cut off mid-way has no timeline.json, so its other files (if any) are rewritten; a temporary file is
    # never read under its final name
    cut = {p.parent for p in killed.glob("*/*") if p.is_file()} - {p.parent for p in finished}
    assert all(not (d / "timeline.json").exists() for d in cut)
    assert not (killed / "predict.json").exists()  # the summary is written when every video is done

    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished}
    assert main(["predict", str(videos), "--ckpt", str(ckpt), "--out", str(killed), *ARGS]) == 0
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == before  # not written again
    summary = json.loads((killed / "predict.json").read_text())
    status = {r["folder"]: r["status"] for r in summary["per_video"]}
    assert {p.parent.name for p in finished} == {f for f, s in status.items() if s == "finished"}
    assert sorted(status.values()).count("predicted") == VIDEOS - len(finished)
    assert _files(killed) == expected
