"""`hvl index` on a folder downloaded with yt-dlp: the id is the video id, the .info.json says what it is."""
import json

from fastapi.testclient import TestClient
from hvl.core.search.index import build_index
from hvl.core.search.store import read_index
from hvl.core.search.videos import scan_videos
from index_helpers import colour_video, tiny_checkpoint
from serve_helpers import LOCAL


def ytdlp_folder(root):
    colour_video(root / "GTA V car physics fail compilation [dQw4w9WgXcQ].mp4", 0)
    (root / "GTA V car physics fail compilation [dQw4w9WgXcQ].info.json").write_text(json.dumps({
        "id": "dQw4w9WgXcQ", "title": "GTA V car physics fail compilation", "uploader": "QA Team",
        "upload_date": "20261105", "description": "Cars.\n\nSubscribe!", "duration": 2.0,
        "chapters": [{"start_time": 0.0, "end_time": 1.0, "title": "first"}]}))
    colour_video(root / "Bug [2] [a1-b_2].mkv", 1)  # brackets in the title; no .info.json
    colour_video(root / "Broken info [xyz789].mp4", 2)
    (root / "Broken info [xyz789].info.json").write_text(json.dumps({"chapters": [{"start_time": -3}]}))
    colour_video(root / "plain_clip.mp4", 3)
    return root


def test_a_ytdlp_folder_indexes_with_ids_and_metadata(tmp_path, capsys):
    videos = ytdlp_folder(tmp_path / "dl")
    entries = {e.video_id: e for e in scan_videos(videos)}
    assert set(entries) == {"dQw4w9WgXcQ", "a1-b_2", "xyz789", "plain_clip"}
    assert entries["dQw4w9WgXcQ"].meta == {"title": "GTA V car physics fail compilation", "uploader": "QA Team",
                                           "upload_date": "20261105"}
    assert entries["a1-b_2"].meta == {"title": "Bug [2]"} and entries["plain_clip"].meta == {}
    assert entries["xyz789"].meta == {"title": "Broken info"}
    assert "chapters[0].start_time" in capsys.readouterr().err  # the bad file is named, the video still indexes

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    build_index(videos, ckpt, tmp_path / "idx", num_workers=0, progress=False, accelerator="cpu")
    idx = read_index(tmp_path / "idx")
    by_id = {v["video_id"]: v for v in idx.videos}
    assert by_id["dQw4w9WgXcQ"]["meta"]["uploader"] == "QA Team" and by_id["plain_clip"]["meta"] == {}

    import argparse

    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    c = TestClient(build(p.parse_args(["--index", str(tmp_path / "idx"), "--queries", str(tmp_path / "q.yaml")])),
                   base_url=LOCAL)
    res = c.post("/api/search", json={"query": "a car", "k": 4}).json()["results"]
    hit = next(r for r in res if r["video_id"] == "dQw4w9WgXcQ")
    assert hit["meta"] == {"title": "GTA V car physics fail compilation", "uploader": "QA Team",
                           "upload_date": "20261105"}
    assert c.get("/api/video/dQw4w9WgXcQ").status_code == 200
