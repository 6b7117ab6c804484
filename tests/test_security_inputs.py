"""Issue 34, items 5-7: a malformed shared file is one clear error or a skipped piece of metadata, never a traceback;
one video's problem is reported for that video while the others are still prepared and indexed. Each test feeds
the input as the review wrote it (real FAISS files, real yt-dlp folders, real checkpoints)."""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import shutil
import struct
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.search.index import build_index
from hvl.core.search.query import load_index
from hvl.core.search.store import committed_shards, indexed_keys, read_header, read_index
from index_helpers import colour_video, tiny_checkpoint, video_tree

DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError long before this depth


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Four videos, a tiny checkpoint and the index of one; tests change copies of the index."""
    root = tmp_path_factory.mktemp("inputs")
    videos = video_tree(root / "videos", games=2, per_game=2)
    ckpt = tiny_checkpoint(root / "tiny.ckpt")
    build_index(videos, ckpt, root / "index", num_workers=0, progress=False, accelerator="cpu")
    return root, videos, ckpt


def index_copy(small, tmp_path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(small[0] / "index", out)
    return out


def serve(index: Path, tmp_path: Path):
    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    return build(p.parse_args(["--index", str(index), "--queries", str(tmp_path / "q.yaml"),
                               "--cache", str(tmp_path / "th")]))


def write_hnsw(index: Path, **meta) -> Path:
    """A real approximate index of the index's frames, as `hvl index --ann hnsw` leaves it: ann/ann.faiss (an
    HNSW graph written by FAISS) and ann/ann.json naming the shards it covers."""
    idx = read_index(index)
    emb = np.ascontiguousarray(np.asarray(idx.emb, np.float32))
    hnsw = faiss.index_factory(emb.shape[1], "HNSW8", faiss.METRIC_INNER_PRODUCT)
    hnsw.add(emb)
    (index / "ann").mkdir(exist_ok=True)
    faiss.write_index(hnsw, str(index / "ann" / "ann.faiss"))
    record = {"kind": "hnsw", "factory": "HNSW8", "rows": len(emb), "dim": emb.shape[1],
              "shards": committed_shards(index), "files": ["ann.faiss"], "param": "efSearch", "value": 16,
              "recall_at_10": 1.0}
    (index / "ann" / "ann.json").write_text(json.dumps(record | meta))
    return index / "ann" / "ann.faiss"


# ------------------------------------------------------------------ item 5: ann/ann.json, ann.faiss
GOOD_ANN = {"kind": "hnsw", "factory": "HNSW8", "param": "efSearch", "value": 16}
MALFORMED_ANN = {
    "not JSON": ("{'kind': 'hnsw',", r"ann\.json, line 1: not valid JSON"),
    "a list": ("[1, 2, 3]", r"ann\.json: expected the approximate index's record as an object"),
    "deep nesting": (DEEP, r"ann\.json: nested too deeply"),
    "a bogus param": (GOOD_ANN | {"param": "__class__"}, r"field 'param'"),
    "a huge value": (GOOD_ANN | {"value": 10**30}, r"field 'value'.*more than an index of"),
    "a value that is text": (GOOD_ANN | {"value": "16"}, r"field 'value'"),
    "shards that are not a list": (GOOD_ANN | {"shards": 7}, r"field 'shards'"),
    "rows that is null": (GOOD_ANN | {"rows": None}, r"field 'rows'"),
    "a param without a value": ({k: v for k, v in GOOD_ANN.items() if k != "value"}, r"comes with a 'value'"),
    "an integer of 5000 digits": ('{"kind": "hnsw", "value": ' + "9" * 5000 + "}", r"ann\.json: not readable as JSON"),
}


@pytest.mark.parametrize("case", list(MALFORMED_ANN))
def test_a_malformed_ann_json_is_one_error_naming_it_and_the_fix(small, tmp_path, case):
    index = index_copy(small, tmp_path)
    write_hnsw(index)
    assert load_index(index).ann is not None  # the well-formed record loads
    content, expect = MALFORMED_ANN[case]
    if isinstance(content, dict):
        record = json.loads((index / "ann" / "ann.json").read_text())
        content = json.dumps({k: v for k, v in (record | content).items() if k in content or k not in GOOD_ANN})
    (index / "ann" / "ann.json").write_text(content)
    with pytest.raises(HVLInputError, match=rf"(?s){expect}.*delete .*ann and re-run `hvl index`") as e:
        load_index(index)
    assert str(index / "ann") in str(e.value)


def test_hvl_search_and_serve_start_with_one_error_on_a_malformed_ann_json(small, tmp_path, capsys):
    index = index_copy(small, tmp_path)
    write_hnsw(index)
    (index / "ann" / "ann.json").write_text(DEEP)
    assert main(["search", "a red square", "--index", str(index), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"{index / 'ann' / 'ann.json'}: nested too deeply" in err and "re-run `hvl index`" in err
    assert "Traceback" not in err
    with pytest.raises(HVLInputError, match=r"ann\.json: nested too deeply"):
        serve(index, tmp_path)
    # a well-formed record of other shards is stale, not malformed: searched exactly, as before
    (index / "ann" / "ann.json").write_text('{"kind": "hnsw", "factory": "HNSW8", "rows": 1, "shards": []}')
    assert main(["search", "a red square", "--index", str(index), "--json"]) == 0
    assert "is stale" in capsys.readouterr().err


@contextlib.contextmanager
def address_space(extra: int = 4 << 30):
    """Allocations past the process's size plus ``extra`` fail (std::bad_alloc) instead of being granted on a
    machine that overcommits memory, whatever its size: the claim below is then refused the same way anywhere."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard),
                                            hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# HNSW's file starts with the index header (fourcc 4, d 4, ntotal 8, two dummies 8 + 8, is_trained 1, metric 4):
# at byte 37 the graph's first vector (assign_probas, doubles) gives its length
LENGTH_AT = 37


@pytest.mark.parametrize("length, raised", [((1 << 35) - 1, "MemoryError: std::bad_alloc"),  # under FAISS's limit
                                            (1 << 40, "read_HNSW"), (1 << 63, "read_HNSW")])  # its check fails
def test_an_ann_faiss_claiming_a_huge_vector_is_one_error(small, tmp_path, length, raised):
    index = index_copy(small, tmp_path)
    path = write_hnsw(index)
    raw = bytearray(path.read_bytes())
    assert raw[:3] == b"IHN" and struct.unpack_from("<Q", raw, LENGTH_AT)[0] < 100  # the real field, patched below
    struct.pack_into("<Q", raw, LENGTH_AT, length)
    path.write_bytes(bytes(raw))
    with address_space(), pytest.raises(HVLInputError, match=r"ann\.faiss: unreadable approximate index .*"
                                                              r"re-run `hvl index`") as e:
        load_index(index)
    assert raised in str(e.value)


# ------------------------------------------------------------------ item 5: queries.judgements.json
def judged(**q) -> dict:
    return {"id": "a-red-square-1a2b3c", "type": "simple", "text": "a red square", "bug": None,
            "relevant": ["v000"], "not_relevant": []} | q


MALFORMED_JUDGEMENTS = {  # what each raised before: the entry and field the error now names
    "an entry without text (KeyError)": ({"queries": [{"id": "q1"}]}, r"queries\[0\]\.text"),
    "text that is a number (AttributeError)": ({"queries": [judged(text=5)]}, r"queries\[0\]\.text"),
    "an id that is a list (TypeError)": ({"queries": [judged(), judged(id=["x"])]}, r"queries\[1\]\.id"),
    "an entry that is a list of strings (ValueError)": ({"queries": [["ab", "cd"]]}, r"queries\[0\]"),
    "relevant that is a number (TypeError on the next verdict)": ({"queries": [judged(relevant=7)]},
                                                                  r"queries\[0\]\.relevant"),
    "a type a query set cannot hold": ({"queries": [judged(type="Not A Type!")]}, r"queries\[0\]\.type"),
    "queries that is not a list": ({"queries": {"id": "q1"}}, r"field 'queries'"),
    "deep nesting (RecursionError)": (None, r"nested too deeply"),
    "a list at the top": ([judged()], r"expected a judgements file"),
}


@pytest.mark.parametrize("case", list(MALFORMED_JUDGEMENTS))
def test_malformed_judgements_are_one_error_naming_the_file_entry_and_field(tmp_path, case):
    from hvl.core.search.serve.queryset import QuerySetStore

    content, expect = MALFORMED_JUDGEMENTS[case]
    path = tmp_path / "queries.judgements.json"
    path.write_text(DEEP if content is None else json.dumps({"format": "hvl-judgements", "version": 1} | content
                                                            if isinstance(content, dict) else content))
    with pytest.raises(HVLInputError, match=rf"(?s)queries\.judgements\.json.*{expect}.*restore it or delete it"):
        QuerySetStore(tmp_path / "queries.yaml").judge("a red square", "simple", "v001", True)


def test_serve_starts_with_one_error_on_malformed_judgements(small, tmp_path):
    (tmp_path / "q.judgements.json").write_text(json.dumps({"queries": [judged(text={"a": 1})]}))
    with pytest.raises(HVLInputError, match=r"q\.judgements\.json: invalid entry\n  field 'queries\[0\]\.text'"):
        serve(small[0] / "index", tmp_path)
    (tmp_path / "q.judgements.json").write_text(json.dumps({"queries": [judged()]}))
    assert serve(small[0] / "index", tmp_path) is not None  # a well-formed file is read as before


# ------------------------------------------------------------------ item 5: a yt-dlp .info.json nested too deeply
def deep_info(vid: str) -> str:
    """yt-dlp's info object whose ``tags`` nest 100,000 lists deep: json.loads raises RecursionError."""
    return json.dumps({"id": vid, "title": "Deep"})[:-1] + ', "tags": ' + DEEP + "}"


def test_a_deeply_nested_info_json_costs_only_its_metadata_in_hvl_prepare(tmp_path, capsys):
    from test_prepare_ytdlp import IDS, ytdlp_folder

    raw = tmp_path / "ytdl"
    raw.mkdir()
    ytdlp_folder(raw, n=3)
    [info] = raw.glob(f"*[[]{IDS[1]}].info.json")
    info.write_text(deep_info(IDS[1]))
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--split-ratios", "1,0,0"]) == 0
    assert "unreadable_metadata" in capsys.readouterr().out  # the table's warnings
    report = json.loads((out / "report.json").read_text())
    [problem] = report["problems"]["first"]
    assert problem["kind"] == "unreadable_metadata" and problem["where"] == str(info)
    assert "nested too deeply" in problem["message"]
    recs = {r["video_id"]: r for r in map(json.loads, (out / "train.jsonl").read_text().splitlines())}
    assert sorted(recs) == sorted(IDS[:3])  # every video prepared, the one without its title and chapters
    assert "title" not in recs[IDS[1]]["meta"] and not recs[IDS[1]].get("phases")
    assert recs[IDS[0]]["meta"]["title"] and recs[IDS[0]]["phases"]


def test_a_deeply_nested_info_json_costs_only_its_metadata_in_hvl_index(small, tmp_path, capsys):
    folder = tmp_path / "dl"
    colour_video(folder / "Physics bug [aaaaaaaaaaa].mp4", 0)
    colour_video(folder / "Deep info [bbbbbbbbbbb].mp4", 1)
    (folder / "Deep info [bbbbbbbbbbb].info.json").write_text(deep_info("bbbbbbbbbbb"))
    assert main(["index", str(folder), "--ckpt", str(small[2]), "--out", str(tmp_path / "idx"), "--no-progress",
                 "--num-workers", "0", "--accelerator", "cpu"]) == 0
    assert f"{folder / 'Deep info [bbbbbbbbbbb].info.json'}: nested too deeply" in capsys.readouterr().err
    by_id = {v["video_id"]: v for v in read_index(tmp_path / "idx").videos}
    assert sorted(by_id) == ["aaaaaaaaaaa", "bbbbbbbbbbb"] and by_id["bbbbbbbbbbb"]["meta"] == {"title": "Deep info"}


# ------------------------------------------------------------------ item 5: absurd sizes in a checkpoint
@pytest.mark.parametrize("field, value", [
    ("embed_dim", 10**9), ("embed_dim", 1e9), ("head_hidden", 10**9),
    ("video_encoder.frame_encoder.widths[1]", 10**6), ("video_encoder.temporal_heads", 2**40),
    ("video_encoder.frame_encoder.config.hidden_size", 10**9)])
def test_a_checkpoint_with_an_absurd_size_is_one_error_naming_the_field(small, tmp_path, field, value):
    from hvl.core.models.checkpoint import load_model

    ck = torch.load(small[2], weights_only=True)
    hp = ck["hyper_parameters"]
    if field == "video_encoder.frame_encoder.config.hidden_size":  # a transformers model built with random weights
        hp["video_encoder"]["frame_encoder"] = {"name": "hf", "config": {"model_type": "vit", "hidden_size": value}}
    elif field.startswith("video_encoder.frame_encoder.widths"):
        hp["video_encoder"]["frame_encoder"]["widths"][1] = value
    elif field.startswith("video_encoder."):
        hp["video_encoder"][field.split(".")[1]] = value
    else:
        hp[field] = value
    bad = tmp_path / "shared.ckpt"
    torch.save(ck, bad)
    with pytest.raises(HVLInputError, match=rf"shared\.ckpt: field '[\w.]*{re.escape(field)}' is .*re-train"):
        load_model(bad)
    ck["hyper_parameters"] = torch.load(small[2], weights_only=True)["hyper_parameters"] | {"embed_dim": 64}
    torch.save(ck, bad)  # a size within bounds that the stored weights do not have: one error too
    with pytest.raises(HVLInputError, match=r"shared\.ckpt: its weights do not fit .*size mismatch"):
        load_model(bad)


# ------------------------------------------------------------------ item 6: one video's problem is that video's
LATE = "and that is how the cystic duct and the artery are clipped and cut before the gallbladder comes"


def talk(raw: Path, vid: str, seconds: float = 93.0, vtt: str | None = None, overrun: float = 0.02) -> Path:
    """A yt-dlp download: ``Talk [<id>].mp4`` and its auto-captions, whose last sentence is spoken until 0.3 s
    before the end and whose last cue ends 20 ms after the video (93.02 s on 93.0 s), as YouTube's do."""
    from test_prepare_ytdlp import display_lines, write_mp4, youtube_vtt

    late = LATE.split()
    words = [(round(seconds - 0.3 * (len(late) - i), 3), w) for i, w in enumerate(late)]
    write_mp4(raw / f"Talk {vid} [{vid}].mp4", seconds)
    (raw / f"Talk {vid} [{vid}].en.vtt").write_text(vtt if vtt is not None else
                                                    youtube_vtt(display_lines(words), end=seconds + overrun))
    return raw / f"Talk {vid} [{vid}].mp4"


def manifest_ids(out: Path) -> dict[str, dict]:
    return {r["video_id"]: r for s in ("train", "val", "test") if (out / f"{s}.jsonl").is_file()
            for r in map(json.loads, (out / f"{s}.jsonl").read_text().splitlines())}


def test_a_caption_ending_20ms_after_the_video_is_clamped_and_counted(tmp_path, capsys):
    raw = tmp_path / "ytdl"
    raw.mkdir()
    talk(raw, "late0000001")
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--split-ratios", "1,0,0"]) == 0
    assert "clamped_cue_ends" in capsys.readouterr().out  # the table's "dropped / repaired" line
    [rec] = manifest_ids(out).values()
    assert rec["duration"] == 93.0 and rec["clips"][-1]["end"] == 93.0
    assert rec["clips"][-1]["texts"][0] == LATE  # the last sentence kept whole, its end at the last frame
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["clamped_cue_ends"] >= 1 and report["problems"]["count"] == 0


def test_one_broken_video_is_reported_and_the_others_are_prepared(tmp_path, capsys):
    raw = tmp_path / "ytdl"
    raw.mkdir()
    broken = talk(raw, "aaaaaaaaaaa", vtt="not a WebVTT file\n")  # first in order: it used to stop the run there
    for vid in ("bbbbbbbbbbb", "ccccccccccc"):
        talk(raw, vid, seconds=30.0)
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--split-ratios", "1,0,0"]) == 2
    captured = capsys.readouterr()
    assert "left out of the manifests: aaaaaaaaaaa" in captured.err and "unreadable_input" in captured.err
    assert f"{broken.with_suffix('.en.vtt')}, line 1" in captured.err  # the file and the line
    assert "left out because of a problem: aaaaaaaaaaa" in captured.out  # the summary table says so too
    assert sorted(manifest_ids(out)) == ["bbbbbbbbbbb", "ccccccccccc"]
    report = json.loads((out / "report.json").read_text())
    assert report["layout"]["videos_left_out"] == ["aaaaaaaaaaa"] and report["layout"]["videos_kept"] == 2
    # the strict option stops before anything is written, as --on-bad-video error does in hvl index
    strict = tmp_path / "strict"
    assert main(["prepare", str(raw), "--out", str(strict), "--no-progress", "--on-bad-video", "error"]) == 2
    assert "nothing was written" in capsys.readouterr().err and not list(strict.glob("*.jsonl"))
    # fixed, the video joins the others on the next run; theirs come from the cache
    talk(raw, "aaaaaaaaaaa")
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--split-ratios", "1,0,0"]) == 0
    assert "rebuilt 1 video(s), 2 from cache" in capsys.readouterr().out
    assert sorted(manifest_ids(out)) == ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]


def test_one_broken_video_is_reported_and_the_others_are_indexed(small, tmp_path, capsys):
    videos = video_tree(tmp_path / "videos", games=1, per_game=3)
    (videos / "game0" / "a_broken.mp4").write_bytes(b"not a video at all" * 20)  # first in order
    out = tmp_path / "idx"
    argv = ["index", str(videos), "--ckpt", str(small[2]), "--out", str(out), "--no-progress", "--num-workers", "0",
            "--accelerator", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(r"1 video\(s\) not indexed; the other 3 are in .*\n  .*a_broken\.mp4: .*cannot decode", err)
    assert indexed_keys(out) == {"game0/v000.mp4", "game0/v001.mp4", "game0/v002.mp4"}
    assert json.loads((out / "skipped.jsonl").read_text().splitlines()[0])["key"] == "game0/a_broken.mp4"
    assert main(argv + ["--on-bad-video", "error"]) == 2  # strict: stops at it (the others are already in)
    assert "--on-bad-video skip" in capsys.readouterr().err


# ------------------------------------------------------------------ item 7: another folder, an id of '..'
def test_indexing_another_folder_into_an_index_is_refused_unless_asked(small, tmp_path, capsys):
    index = index_copy(small, tmp_path)
    before = indexed_keys(index), read_header(index)["videos_root"]
    other = video_tree(tmp_path / "other", games=1, per_game=2)
    argv = ["index", str(other), "--ckpt", str(small[2]), "--out", str(index), "--no-progress", "--num-workers", "0",
            "--accelerator", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"field 'videos_root' is {small[1].resolve()}, but this run indexes {other.resolve()}" in err
    assert "a new --out" in err and "--replace-videos-root" in err
    assert (indexed_keys(index), read_header(index)["videos_root"]) == before  # nothing pruned, nothing changed
    assert main(argv + ["--replace-videos-root"]) == 0
    assert read_header(index)["videos_root"] == str(other.resolve())
    assert indexed_keys(index) == {"game0/v000.mp4", "game0/v001.mp4"}
    assert main(argv) == 0  # the folder it now indexes: as before


@pytest.mark.parametrize("name", ["Clip [..].mp4", "Clip [.].mp4", "...mp4"])
def test_a_video_id_of_dot_dot_is_refused_for_that_file_in_hvl_index(small, tmp_path, capsys, name):
    folder = tmp_path / "dl"
    colour_video(folder / "Good [goodgoodgoo].mp4", 0)
    colour_video(folder / name, 1)
    out = tmp_path / "idx"
    assert main(["index", str(folder), "--ckpt", str(small[2]), "--out", str(out), "--no-progress",
                 "--num-workers", "0", "--accelerator", "cpu"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(folder / name))}: the id '\.\.?' names a folder", err)
    assert [v["video_id"] for v in read_index(out).videos] == ["goodgoodgoo"]


def test_a_video_id_of_dot_dot_is_refused_for_that_file_in_hvl_prepare(tmp_path, capsys):
    raw = tmp_path / "ytdl"
    raw.mkdir()
    talk(raw, "goodgoodgoo", seconds=30.0, overrun=0.0)
    from test_prepare_ytdlp import write_mp4

    write_mp4(raw / "Escape [..].mp4", 30.0)
    shutil.copy(raw / "Talk goodgoodgoo [goodgoodgoo].en.vtt", raw / "Escape [..].en.vtt")
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--split-ratios", "1,0,0",
                 "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert "unusable_video_id" in err and "the id '..' names a folder" in err and "Escape [..]" in err
    assert sorted(manifest_ids(out)) == ["goodgoodgoo"]
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["goodgoodgoo"] and not list(out.glob("*.jpg"))
