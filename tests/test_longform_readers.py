"""ActivityNet Captions and LF-VILA / QuerYD paragraph JSONL as hvl records (issue 38, item 4).

The fixtures are written in each corpus' released format (ActivityNet's ``val_1.json`` object keyed by
``v_<youtube id>``, with its leading-space sentences and ends past the duration; LF-VILA's ``{clip_id, text}``
lines with a string or a list of sentences). Malformed input gives one error naming the file, the field and the
fix; a missing video is left out and said, never the end of the run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hvl.core.data.longform import activitynet_records, paragraph_records, read_activitynet, read_paragraph_jsonl
from hvl.core.data.records import DatasetSpec, load_videos
from hvl.core.data.schema import load_manifest, write_manifest
from hvl.core.errors import HVLInputError

# ActivityNet Captions as released (val_1.json): sentences keep their leading space, ends may pass the duration
ANET = {
    "v_uqiMw7tQ1Cc": {
        "duration": 55.15,
        "timestamps": [[0.28, 55.15], [13.79, 54.32]],
        "sentences": ["A weight lifting tutorial is given.",
                      "  The coach helps the guy in red with the proper body placement and lifting technique."],
    },
    "v_bXdq2zI1Ms0": {
        "duration": 73.1,
        "timestamps": [[0, 10.23], [10.6, 39.84], [38.01, 73.1], [40, 50], [50.2, 60], [61, 74.9]],
        "sentences": ["Three men are standing on a mat.", " The man in front begins to do karate on the mat.",
                      " He gets down on the ground and flips around.", " He kicks.", " He jumps up and spins.",
                      " He bows to the audience at the end of the routine."],
    },
}
JSONL = [
    {"clip_id": "video-0rGAbLE2a8", "text": "a man in a kitchen prepares a pasta dish step by step"},
    {"clip_id": "video-1qWJtL9Kz0",
     "text": ["A woman walks in.", "She sits.", "She opens a laptop.", "She types.", "The camera pans to a window."]},
]


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _touch_videos(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"\0")   # the readers only find files; decoding is checked before a run


def test_activitynet_reads_times_sentences_and_the_merged_paragraph(tmp_path):
    path = _write(tmp_path / "val_1.json", ANET)
    recs = {r.video_id: r for r in activitynet_records(path)}
    lift = recs["v_uqiMw7tQ1Cc"]
    assert lift.duration == 55.15 and [(c.start, c.end) for c in lift.clips] == [(0.28, 55.15), (13.79, 54.32)]
    assert lift.clips[1].texts == ["The coach helps the guy in red with the proper body placement and lifting "
                                   "technique."]
    assert lift.texts == ["A weight lifting tutorial is given. The coach helps the guy in red with the proper body "
                          "placement and lifting technique."]
    karate = recs["v_bXdq2zI1Ms0"]
    # 6 sentences of 7, 11, 9, 2, 5, 11 words: pairs 18 20 11 7 16 -> "He kicks." + "He jumps up and spins."
    # then 7 11 9 7 11: pairs 18 20 16 18 -> "He gets down ..." + "He kicks. He jumps up and spins."
    assert karate.meta["sentences"] == [
        "Three men are standing on a mat.", "The man in front begins to do karate on the mat.",
        "He gets down on the ground and flips around. He kicks. He jumps up and spins.",
        "He bows to the audience at the end of the routine."]
    assert karate.texts == [" ".join(karate.meta["sentences"])]
    assert karate.clips[-1].end == 73.1                    # 74.9 past the 73.1 s video: clamped to it
    assert len(karate.clips) == 6
    # the records are hvl manifest rows
    write_manifest(tmp_path / "anet.jsonl", list(recs.values()))
    assert [r.video_id for r in load_manifest(tmp_path / "anet.jsonl").videos] == list(ANET)


def test_activitynet_sentence_with_no_time_inside_the_video_stays_in_the_paragraph_only(tmp_path):
    entry = {"v_x": {"duration": 10.0, "timestamps": [[0, 4], [10.0, 12.0]], "sentences": ["one.", "two."]}}
    with pytest.warns(UserWarning, match="1 sentence.*paragraph only"):
        rec = activitynet_records(_write(tmp_path / "a.json", entry))[0]
    assert [c.texts[0] for c in rec.clips] == ["one."] and rec.texts == ["one. two."]


def test_activitynet_finds_videos_with_or_without_the_v_prefix_and_leaves_out_the_missing(tmp_path):
    path = _write(tmp_path / "val_1.json", ANET | {"v_missing0000": ANET["v_uqiMw7tQ1Cc"]})
    _touch_videos(tmp_path / "videos", "uqiMw7tQ1Cc.mp4", "v_bXdq2zI1Ms0.mkv")
    with pytest.warns(UserWarning, match="1 of 3 videos are not in .*left out, e.g. v_missing0000"):
        got = read_activitynet(path)
    assert [(r.video_id, p.name) for r, p in got] == [("v_uqiMw7tQ1Cc", "uqiMw7tQ1Cc.mp4"),
                                                      ("v_bXdq2zI1Ms0", "v_bXdq2zI1Ms0.mkv")]
    assert all(Path(r.path).is_absolute() and Path(r.path) == p.resolve() for r, p in got)
    # through a config's dataset, no domain needed; options.videos relative to the annotation file
    (tmp_path / "videos").rename(tmp_path / "clips")
    with pytest.warns(UserWarning):
        got = load_videos(DatasetSpec(reader="activitynet", path=str(path), options={"videos": "clips"}), None)
    assert len(got) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(HVLInputError, match="none of its 3 videos is in .*download them or fix dataset.options.videos"):
        read_activitynet(path, videos=tmp_path / "empty")
    with pytest.raises(HVLInputError, match="videos folder .*nowhere does not exist.*dataset.options.videos"):
        read_activitynet(path, videos="nowhere")
    with pytest.raises(HVLInputError, match="dataset.options \\['video'\\].*takes \\['videos', 'max_sentences'"):
        load_videos(DatasetSpec(reader="activitynet", path=str(path), options={"video": "clips"}), None)


@pytest.mark.parametrize(("data", "field", "fix"), [
    ([{"duration": 1}], "one JSON object", "right file"),
    ({"v_a": {"duration": 5, "sentences": ["x"]}}, "field 'timestamps' is missing", "restore the released file"),
    ({"v_a": {"duration": "5s", "timestamps": [[0, 1]], "sentences": ["x"]}}, "field 'duration'", "seconds"),
    ({"v_a": {"duration": 5, "timestamps": [[0, 1]], "sentences": ["x", "y"]}}, "field 'timestamps' must list one",
     "fix the entry"),
    ({"v_a": {"duration": 5, "timestamps": [[3, 1]], "sentences": ["x"]}}, "field 'timestamps\\[0\\]'",
     "fix the entry"),
    ({"v_a": {"duration": 5, "timestamps": [[0, "1"]], "sentences": ["x"]}}, "field 'timestamps\\[0\\]'",
     "fix the entry"),
    ({"v_a": {"duration": 5, "timestamps": [[0, 1]], "sentences": ["  "]}}, "field 'sentences'", "non-empty"),
    ({"v_a": [0, 1]}, "expected an object", "fix the entry"),
    ({"../../etc/v_a": ANET["v_uqiMw7tQ1Cc"]}, "field 'video_id'", "not a plain file name"),
])
def test_malformed_activitynet_is_one_clear_error(tmp_path, data, field, fix):
    path = _write(tmp_path / "val_2.json", data)
    with pytest.raises(HVLInputError) as e:
        activitynet_records(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and re.search(field, msg) and re.search(fix, msg), msg


def test_activitynet_invalid_json_and_missing_file(tmp_path):
    (tmp_path / "train.json").write_text('{"v_a": {"duration": 5,')
    with pytest.raises(HVLInputError, match="train.json: not valid JSON .*line 1.*restore the released file"):
        activitynet_records(tmp_path / "train.json")
    with pytest.raises(HVLInputError, match="val_1.json: ActivityNet Captions file not found"):
        activitynet_records(tmp_path / "val_1.json")


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_paragraph_jsonl_reads_a_string_or_a_list_merged_to_four(tmp_path):
    path = _write_jsonl(tmp_path / "queryd_test.jsonl", JSONL)
    recs = paragraph_records(path)
    assert recs[0].texts == [JSONL[0]["text"]] and recs[0].meta["sentences"] == [JSONL[0]["text"]]
    # 5 sentences of 3, 2, 4, 2, 6 words: pairs 5 6 6 8 -> "A woman walks in." + "She sits."
    assert recs[1].meta["sentences"] == ["A woman walks in. She sits.", "She opens a laptop.", "She types.",
                                         "The camera pans to a window."]
    assert recs[1].texts == [" ".join(JSONL[1]["text"])]
    assert not recs[1].clips   # no times in this format: retrieval only, no moments
    _touch_videos(tmp_path / "videos", "video-0rGAbLE2a8.mp4")
    (tmp_path / "videos" / "video-1qWJtL9Kz0").mkdir()  # a folder of frames
    got = load_videos(DatasetSpec(reader="paragraphs", path=str(path)), None)
    assert [p.name for _, p in got] == ["video-0rGAbLE2a8.mp4", "video-1qWJtL9Kz0"]
    assert [r.video_id for r, _ in read_paragraph_jsonl(path, limit=1)] == ["video-0rGAbLE2a8"]


@pytest.mark.parametrize(("line", "field", "fix"), [
    ('{"clip_id": "a", "text": "x"', "not valid JSON", "one object"),
    ({"clip_id": "a"}, "field 'clip_id' and field 'text' are required", '"text": "<paragraph>"'),
    ({"clip_id": 7, "text": "x"}, "field 'clip_id'", "must be a string"),
    ({"clip_id": "a", "text": 3}, "field 'text'", "non-empty string or a non-empty list"),
    ({"clip_id": "a", "text": ["x", ""]}, "field 'text'", "non-empty strings"),
    ({"clip_id": "a", "text": []}, "field 'text'", "non-empty list"),
    ({"clip_id": "../a", "text": "x"}, "field 'clip_id'", "not a plain file name"),
])
def test_malformed_paragraph_jsonl_names_the_line_field_and_fix(tmp_path, line, field, fix):
    path = _write_jsonl(tmp_path / "didemo.jsonl", [JSONL[0], line])
    with pytest.raises(HVLInputError) as e:
        paragraph_records(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}, line 2: ") and field in msg and fix in msg, msg


def test_paragraph_jsonl_repeated_clip_id_and_empty_file(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [JSONL[0], "", JSONL[0]])
    with pytest.raises(HVLInputError, match="line 3: field 'clip_id': 'video-0rGAbLE2a8' repeats line 1"):
        paragraph_records(path)
    with pytest.raises(HVLInputError, match="no paragraphs"):
        paragraph_records(_write_jsonl(tmp_path / "e.jsonl", [""]))
