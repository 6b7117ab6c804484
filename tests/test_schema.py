"""Manifest and prompt-file errors name the file, the line and the field."""
import json

import pytest
from hvl.core.data.schema import VideoRecord, load_manifest, load_prompt_file, write_manifest
from hvl.core.errors import HVLInputError
from pydantic import ValidationError

GOOD = {"video_id": "v1", "path": "videos/v1.mp4", "texts": ["an abstract"], "duration": 10.0,
        "phases": [{"start": 0, "end": 5, "text": "first", "label": "A"}, {"start": 5, "end": 10, "text": "b"}],
        "clips": [{"start": 0, "end": 4, "texts": ["asr", "whisper"]}]}


def _manifest(tmp_path, *rows):
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def test_roundtrip(tmp_path):
    m = load_manifest(_manifest(tmp_path, GOOD))
    rec = m.videos[0]
    assert rec.clips[0].texts == ["asr", "whisper"] and rec.label_at(4.9) == "A" and rec.label_at(5.0) is None
    out = write_manifest(tmp_path / "copy.jsonl", m.videos)
    assert load_manifest(out).videos == m.videos
    assert m.resolve(rec) == (tmp_path / "videos/v1.mp4").resolve()


@pytest.mark.parametrize("row, line, field", [
    ("{not json", 2, "not valid JSON"),
    ({**GOOD, "video_id": "v2", "path": None}, 2, "field 'path'"),
    ({k: v for k, v in GOOD.items() if k != "path"} | {"video_id": "v2"}, 2, "field 'path'"),
    ({**GOOD, "video_id": "v2", "phases": [{"start": 3, "end": 2, "text": "x"}]}, 2, "field 'phases[0]'"),
    ({**GOOD, "video_id": "v2", "clips": [{"start": 0, "end": 1, "texts": [""]}]}, 2, "field 'clips[0].texts'"),
    ({**GOOD, "video_id": "v2", "clips": [{"start": 0, "end": 11, "texts": ["x"]}]}, 2, "beyond the video's duration"),
    ({**GOOD, "video_id": "v2", "phases": [{"start": "soon", "end": 2}]}, 2, "field 'phases[0].start'"),
    ({**GOOD, "video_id": "v2", "colour": "red"}, 2, "field 'colour'"),
    ({**GOOD}, 2, "field 'video_id': 'v1' repeats line 1"),
])
def test_manifest_errors_name_file_line_and_field(tmp_path, row, line, field):
    p = _manifest(tmp_path, GOOD, row)
    with pytest.raises(HVLInputError) as e:
        load_manifest(p)
    msg = str(e.value)
    assert str(p) in msg and f"line {line}" in msg and field in msg


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(HVLInputError, match="manifest not found"):
        load_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(HVLInputError, match="no videos"):
        load_manifest(tmp_path / "empty.jsonl")


def test_path_escape_refused(tmp_path):
    m = load_manifest(_manifest(tmp_path, {**GOOD, "path": "../../etc/passwd"}))
    with pytest.raises(HVLInputError, match="outside the dataset root"):
        m.resolve(m.videos[0])
    assert m.resolve(m.videos[0], allow_outside=True).name == "passwd"


def _prompts(tmp_path, text):
    p = tmp_path / "prompts.yaml"
    p.write_text(text)
    return p


def test_prompt_file_templates_and_ensembles(tmp_path):
    pf = load_prompt_file(_prompts(tmp_path, """
templates: ["a photo of {}", "surgery: {}"]
classes:
  - {name: A, prompts: ["explicit a"]}
  - {name: B, text: "bee", templates: ["only {}"]}
"""))
    assert pf.names == ["A", "B"]
    assert pf.texts_for(pf.classes[0]) == ["explicit a", "a photo of A", "surgery: A"]
    assert pf.texts_for(pf.classes[1]) == ["only bee"]


@pytest.mark.parametrize("text, field", [
    ("classes: []", "field 'classes'"),
    ("templates: ['no slot']\nclasses: [{name: A}]", "field 'templates"),
    ("classes: [{name: A, prompts: [x]}, {name: A, prompts: [y]}]", "duplicate classes ['A']"),
    ("classes: [{name: A, prompts: [x], colour: red}]", "field 'classes[0].colour'"),
    ("classes: [{name: A}]", "class 'A' has no prompts"),
    ("clases: [{name: A, prompts: [x]}]", "field 'clases'"),
    ("- just a list", "a prompt file is a mapping"),
    ("classes: [{name: A, prompts: [x]}", "not valid YAML"),
])
def test_prompt_file_errors_name_file_and_field(tmp_path, text, field):
    p = _prompts(tmp_path, text)
    with pytest.raises(HVLInputError) as e:
        load_prompt_file(p)
    assert str(p) in str(e.value) and field in str(e.value)


def test_shipped_prompt_files_are_valid():
    from hvl.domains.surgical import AUTOLAPARO_PHASES, CHOLEC80_PHASES, PROMPTS_DIR

    files = sorted(PROMPTS_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"cholec80", "cholec80_templated", "autolaparo"}
    for f in files:  # each dataset's prompt file names exactly its phases, in its label order
        want = AUTOLAPARO_PHASES if f.stem in ("autolaparo", "demo_hysterectomy") else CHOLEC80_PHASES
        assert load_prompt_file(f).names == want, f


def test_video_record_is_strict():
    with pytest.raises(ValidationError):
        VideoRecord(video_id="", path="x")
