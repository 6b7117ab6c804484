"""The Label Studio and FiftyOne timeline formats (hvl.core.inference.formats.label_studio / .fiftyone): what the
writers put in the files, the way back from a Label Studio export to timelines and to a manifest hvl's own loader
reads, and the errors a bad export gets. The round trip through a real Label Studio server:
tests/test_label_studio.py."""
from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hvl.core.cli import main
from hvl.core.data.schema import load_manifest
from hvl.core.errors import HVLInputError
from hvl.core.inference.formats import fiftyone as fiftyone_format
from hvl.core.inference.formats import label_studio as ls
from hvl.core.inference.formats import writer
from hvl.core.inference.timeline import label_at
from timeline_helpers import CLASSES, make_timeline, spans


def as_export(tasks: list[dict], path: Path) -> Path:
    """Tasks as Label Studio exports them: each with an id (and the annotations it was given)."""
    path.write_text(json.dumps([{"id": i + 1, "annotations": [], **t} for i, t in enumerate(tasks)]))
    return path


# ---- Label Studio: the task and the config ---------------------------------------------------------------------

def test_the_labeling_config_names_every_class_and_links_the_timeline_to_the_video():
    view = ET.fromstring(ls.labeling_config(CLASSES))
    video, timeline = view.find("Video"), view.find("TimelineLabels")
    assert video.get("name") == timeline.get("toName") == "video" and video.get("value") == "$video"
    assert video.get("frameRate") == "$fps" and timeline.get("name") == ls.FROM_NAME
    assert [lab.get("value") for lab in timeline.findall("Label")] == CLASSES  # & and " survive the XML


def test_the_task_holds_the_segments_as_inclusive_one_based_frame_ranges(tmp_path):
    tl = make_timeline()
    path = writer("label-studio")(tl, tmp_path)
    assert path == tmp_path / "label-studio.json" and [p.name for p in tmp_path.iterdir()] == [path.name]
    (task,) = json.loads(path.read_text())
    assert task["data"]["video"] == "/videos/case01.mp4" and task["data"]["fps"] == 25.0
    (prediction,) = task["predictions"]
    regions = prediction["result"]
    assert [(r["value"]["ranges"], r["value"]["timelinelabels"]) for r in regions] == [
        ([{"start": 1, "end": 75}], [CLASSES[0]]), ([{"start": 76, "end": 175}], [CLASSES[1]]),
        ([{"start": 176, "end": 250}], [CLASSES[2]])]
    assert {(r["type"], r["from_name"], r["to_name"]) for r in regions} == {("timelinelabels", "phase", "video")}
    assert [r["score"] for r in regions] == pytest.approx([s.confidence for s in tl.segments])
    assert prediction["model_version"] == "surgvlp"


def test_a_video_whose_last_frame_is_partly_in_it_ends_on_that_frame():
    (first, last) = (r["value"]["ranges"][0] for r in ls.task(make_timeline(duration=10.02))["predictions"][0]
                     ["result"][::2])
    assert first == {"start": 1, "end": 75} and last == {"start": 176, "end": 251}  # frame 251 shows at 10.0 s


# ---- Label Studio: back to timelines -----------------------------------------------------------------------------

def test_the_written_task_read_back_is_the_same_timeline(tmp_path):
    tl = make_timeline()
    export = as_export(json.loads(ls.write(tl, tmp_path).read_text()), tmp_path / "export.json")
    (back,), problems = ls.read_export(export)
    assert problems == []
    assert (back.video_id, back.path, back.duration, back.classes) == (tl.video_id, tl.path, tl.duration, tl.classes)
    assert spans(back.segments) == spans(tl.segments)
    assert [s.confidence for s in back.segments] == pytest.approx([s.confidence for s in tl.segments])


@pytest.mark.parametrize("video_fps", [29.97, 30000 / 1001, 12.5, None])
def test_every_sampled_time_keeps_its_label_at_any_frame_rate(tmp_path, video_fps):
    """A boundary at a sampled time that is no whole frame (29.97 fps) moves to the frame shown at that time: the
    labels of the sampled times do not change."""
    tl = make_timeline(labels=(0, 1, 1, 2, 0, 0, 2, 2, 1, 0), fps=2.0, video_fps=video_fps, duration=5.01)
    (back,), _ = ls.read_export(as_export([ls.task(tl)], tmp_path / "export.json"))
    assert [label_at(back.segments, t) for t in tl.t] == [CLASSES[y] for y in tl.smoothed]
    assert back.segments[-1].end == tl.duration and back.segments[0].start == 0


def _annotation(ranges_labels, **kw) -> dict:
    return {"result": [{"from_name": "phase", "to_name": "video", "type": "timelinelabels",
                        "value": {"ranges": [{"start": a, "end": b}], "timelinelabels": [label]}}
                       for a, b, label in ranges_labels], **kw}


def test_the_latest_submitted_annotation_wins_over_predictions_and_skipped_ones(tmp_path):
    task = ls.task(make_timeline())
    task["annotations"] = [
        _annotation([(1, 100, CLASSES[0]), (101, 175, CLASSES[1]), (176, 250, CLASSES[2])], id=7,
                    updated_at="2026-12-01T10:00:00Z"),
        _annotation([(1, 125, CLASSES[0]), (126, 250, CLASSES[2])], id=8, updated_at="2026-12-02T10:00:00Z"),
        _annotation([(1, 250, CLASSES[1])], id=9, updated_at="2026-12-03T10:00:00Z", was_cancelled=True),
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 1, **task}]))
    (back,), _ = ls.read_export(export)
    assert spans(back.segments) == [(0.0, 5.0, CLASSES[0]), (5.0, 10.0, CLASSES[2])]
    assert all(s.confidence is None for s in back.segments) and back.settings["source"] == "label-studio annotation"


def test_the_export_becomes_a_manifest_the_loader_reads_with_the_same_labels_per_second(tmp_path):
    """The loop's last step: annotators moved the Preparation → Dissection boundary from 3 s to 4 s; the manifest
    hvl zeroshot / hvl adapt read labels every second as the corrected timeline does."""
    tl = make_timeline()
    task = ls.task(tl)
    task["annotations"] = [_annotation([(1, 100, CLASSES[0]), (101, 175, CLASSES[1]), (176, 250, CLASSES[2])])]
    second = make_timeline(labels=(2, 2, 1, 1, 0))
    second = second.model_copy(update={"video_id": "case02", "path": "/videos/case02.mp4"})
    export = as_export([task, ls.task(second)], tmp_path / "export.json")
    manifest, problems = ls.export_to_manifest(export, tmp_path / "labels" / "corrected.jsonl")
    assert problems == []
    recs = {r.video_id: r for r in load_manifest(manifest).videos}
    expected = {"case01": [0, 0, 0, 0, 1, 1, 1, 2, 2, 2], "case02": [2, 2, 1, 1, 0]}
    for vid, labels in expected.items():
        assert [recs[vid].label_at(float(s)) for s in range(len(labels))] == [CLASSES[y] for y in labels]
        assert recs[vid].duration == len(labels) and recs[vid].path == f"/videos/{vid}.mp4"


def test_each_bad_task_is_named_and_the_others_are_still_read(tmp_path):
    good = ls.task(make_timeline())
    overlapping = {**good, "annotations": [_annotation([(1, 100, CLASSES[0]), (90, 250, CLASSES[1])])]}
    no_rate = {"data": {"video": "/v/x.mp4"}, "predictions": good["predictions"]}
    two_labels = {**good, "annotations": [{"result": [{"value": {"ranges": [{"start": 1, "end": 9}],
                                                                  "timelinelabels": ["a", "b"]}}]}]}
    unlabelled = {"data": good["data"], "predictions": [17]}  # the plain export lists predictions by id
    bad_frames = {**good, "annotations": [_annotation([(0, 10, CLASSES[0])])]}
    export = as_export([overlapping, good, no_rate, two_labels, unlabelled, bad_frames], tmp_path / "e.json")
    timelines, problems = ls.read_export(export)
    assert len(timelines) == 1 and spans(timelines[0].segments) == spans(make_timeline().segments)
    assert len(problems) == 5 and all(p.startswith(f"{export}: task ") for p in problems)
    task1, task3, task4, task5, task6 = problems
    assert "task 1:" in task1 and "overlap" in task1 and "frames 1-100" in task1
    assert "task 3:" in task3 and "data.fps" in task3
    assert "task 4:" in task4 and "exactly one label" in task4
    assert "task 5:" in task5 and "predictions are exported as ids only" in task5
    assert "task 6:" in task6 and "ranges[0]" in task6 and "1 <= start <= end" in task6


@pytest.mark.parametrize("content, message", [
    ('{"id": 1}', r"expected a Label Studio JSON export \(a list of tasks\) as an array"),
    ("[1, 2", "not valid JSON"),
])
def test_a_file_that_is_no_export_is_one_error_naming_it(tmp_path, content, message):
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(HVLInputError, match=message) as e:
        ls.read_export(path)
    assert str(path) in str(e.value)


def test_an_export_with_no_readable_task_writes_no_manifest(tmp_path):
    export = as_export([{"data": {"video": "/v/x.mp4"}}], tmp_path / "e.json")
    with pytest.raises(HVLInputError, match="no task could be read") as e:
        ls.export_to_manifest(export, tmp_path / "m.jsonl")
    assert "data.fps" in str(e.value) and not (tmp_path / "m.jsonl").exists()


# ---- FiftyOne --------------------------------------------------------------------------------------------------

def test_the_fiftyone_file_is_the_documented_temporal_detection_format(tmp_path):
    """FiftyOne's FiftyOneTemporalDetectionDataset labels file: ``classes`` and, per video key, detections with a
    ``label`` among them and a ``support`` of [first, last] frames counted from 1; they tile the video's frames."""
    tl = make_timeline(duration=10.02)
    path = writer("fiftyone")(tl, tmp_path)
    assert path == tmp_path / "fiftyone.json" and [p.name for p in tmp_path.iterdir()] == [path.name]
    doc = json.loads(path.read_text())
    assert doc["classes"] == CLASSES and list(doc["labels"]) == ["case01"]
    assert doc["data"] == {"case01": "/videos/case01.mp4"}
    dets = doc["labels"]["case01"]
    assert [(d["label"], d["support"]) for d in dets] == [(CLASSES[0], [1, 75]), (CLASSES[1], [76, 175]),
                                                          (CLASSES[2], [176, 251])]
    assert [d["confidence"] for d in dets] == pytest.approx([s.confidence for s in tl.segments])
    assert all(isinstance(f, int) for d in dets for f in d["support"])


def test_the_fiftyone_file_reads_back_to_the_same_timeline(tmp_path):
    tl = make_timeline(labels=(2, 0, 0, 1, 1, 2), fps=2.0, video_fps=30.0, duration=3.0)
    (back,) = fiftyone_format.read(fiftyone_format.write(tl, tmp_path))
    assert spans(back.segments) == spans(tl.segments) and back.path == tl.path and back.duration == tl.duration
    assert [s.confidence for s in back.segments] == pytest.approx([s.confidence for s in tl.segments])


def test_a_fiftyone_file_hvl_did_not_write_is_one_error_naming_it(tmp_path):
    path = tmp_path / "fiftyone.json"
    path.write_text(json.dumps({"classes": ["a"], "labels": {"v": [{"label": "a", "support": [1, 10]}]}}))
    with pytest.raises(HVLInputError, match="fields 'hvl' and 'labels' must be objects") as e:
        fiftyone_format.read(path)
    assert str(path) in str(e.value)
    path.write_text(json.dumps({"classes": ["a"], "hvl": {"fps": 25, "frames": 10, "duration": 0.4},
                                "labels": {"v": [{"label": "a"}]}}))
    with pytest.raises(HVLInputError, match="not the temporal detections hvl writes.*support"):
        fiftyone_format.read(path)


# FiftyOne itself (about 1 GB with its database and its app) is not installed by .ci/run: its importer runs here
# when HVL_FIFTYONE_PYTHON names a Python that has it (docs/predict_formats.md says how it was checked)
FIFTYONE_PYTHON = os.environ.get("HVL_FIFTYONE_PYTHON")
IMPORT_WITH_FIFTYONE = """
import json, sys
import fiftyone.utils.data as foud

labels_path = sys.argv[1]
doc = json.load(open(labels_path))
importer = foud.FiftyOneTemporalDetectionDatasetImporter(data_path=doc["data"], labels_path=labels_path)
out = []
with importer:
    for video, _, label, _ in importer:
        out.append([video, [[d.label, list(d.support), d.confidence] for d in label.detections]])
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(not FIFTYONE_PYTHON, reason="FiftyOne's own importer: set HVL_FIFTYONE_PYTHON to a Python that "
                                                "has `pip install fiftyone` (not installed by .ci/run: ~1 GB)")
def test_fiftyones_own_importer_reads_the_file_as_hvls_timeline(tmp_path):
    tl = make_timeline(duration=10.02)
    path = writer("fiftyone")(tl, tmp_path)
    run = subprocess.run([FIFTYONE_PYTHON, "-c", IMPORT_WITH_FIFTYONE, str(path)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "HOME": str(tmp_path), "FIFTYONE_DO_NOT_TRACK": "true"})
    assert run.returncode == 0, run.stderr[-3000:]
    (video, detections), = json.loads(run.stdout.strip().splitlines()[-1])
    assert video == "/videos/case01.mp4"
    assert [(label, support) for label, support, _ in detections] == [
        (CLASSES[0], [1, 75]), (CLASSES[1], [76, 175]), (CLASSES[2], [176, 251])]
    assert [c for _, _, c in detections] == pytest.approx([s.confidence for s in tl.segments])


# ---- `hvl label-studio` ----------------------------------------------------------------------------------------

def test_hvl_label_studio_config_offers_the_prompt_files_classes(tmp_path, capsys):
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.registry import resolve_prompt_file

    assert main(["label-studio", "config", "--prompts", "surgical:cholec80", "--out", str(tmp_path / "c.xml")]) == 0
    names = [c.name for c in load_prompt_file(resolve_prompt_file("surgical:cholec80")).classes]
    written = ET.fromstring((tmp_path / "c.xml").read_text())
    assert [lab.get("value") for lab in written.iter("Label")] == names and len(names) == 7
    assert written.find("Video").get("frameRate") == "$fps" and f"wrote {tmp_path / 'c.xml'}" in capsys.readouterr().out


def test_hvl_label_studio_manifest_writes_the_readable_tasks_and_names_the_others(tmp_path, capsys):
    export = as_export([ls.task(make_timeline()), {"data": {"video": "/v/x.mp4"}}], tmp_path / "export.json")
    out = tmp_path / "labels.jsonl"
    assert main(["label-studio", "manifest", str(export), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 task(s)" in err and f"{export}: task 2: 'data.fps'" in err and "Traceback" not in err
    (rec,) = load_manifest(out).videos
    assert rec.video_id == "case01" and [p.label for p in rec.phases] == CLASSES
    assert main(["label-studio", "manifest", str(export), "--out", str(out), "--frame-rate", "25"]) == 2
    assert "no annotation and no prediction" in capsys.readouterr().err


# ---- written by `hvl predict` ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_hvl_predict_writes_both_formats_and_they_read_back_to_its_timeline(tmp_path):
    """A real `hvl predict --format label-studio --format fiftyone` on an unlabelled 25 fps clip (tiny untrained
    model): each file read back labels every sampled time as timeline.json does."""
    from hvl.core.inference.write import read_timeline
    from index_helpers import colour_video, tiny_checkpoint

    colour_video(tmp_path / "videos" / "clip.mp4", 0, seconds=4.0)
    args = ["predict", str(tmp_path / "videos"), "--ckpt", str(tiny_checkpoint(tmp_path / "tiny.ckpt")),
            "--prompts", "surgical:demo", "--level", "clip", "--fps", "2", "--out", str(tmp_path / "out"),
            "--format", "label-studio", "--format", "fiftyone", "--no-progress", "--num-workers", "0"]
    assert main(args) == 0
    folder = tmp_path / "out" / "clip"
    tl = read_timeline(folder / "timeline.json")
    (from_ls,), problems = ls.read_export(as_export(json.loads((folder / "label-studio.json").read_text()),
                                                    tmp_path / "export.json"))
    (from_fo,) = fiftyone_format.read(folder / "fiftyone.json")
    expected = [tl.classes[k] for k in tl.smoothed]
    assert problems == [] and len(expected) == 8
    for back in (from_ls, from_fo):
        assert [label_at(back.segments, t) for t in tl.t] == expected
        assert back.duration == tl.duration and back.video_fps == tl.video_fps and back.path == tl.path
