"""A shared index folder cannot make hvl write, delete or read outside it (issue 34, items 1 and 2).

Every attack is reproduced with real symbolic links in ``tmp_path`` pointing at a stand-in for the user's home
(``Outside``: files with known bytes and an old mtime, and names nobody has created), real FAISS files and the
real commands (`hvl index`'s ``build_index``, ``hvl search``, ``hvl serve``'s app through the test client), then
the stand-in is compared byte for byte and mtime for mtime.

Temporary names: hvl's were fixed or PID-based (``ann/.ann.faiss.tmp``, ``.index.json.<pid>.tmp``, ...); they are
now :func:`tempfile.mkstemp` names (``O_CREAT | O_EXCL | O_NOFOLLOW``). The whole PID range cannot be planted, so
the tests plant the old fixed names, this process's PID and its neighbours, and, with tempfile's name generator
replaced by a known sequence (:func:`known_names`), exactly the names mkstemp will try; an audit hook records every
file hvl opens for writing and shows each was opened without following a link.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import types
import uuid
from pathlib import Path
from typing import Self

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.search.index import build_index
from hvl.core.search.store import read_index
from index_helpers import colour_video, tiny_checkpoint, video_tree
from serve_helpers import LOCAL

KNOWN = ("hvlknwn0", "hvlknwn1", "hvlknwn2")  # the first names mkstemp tries under known_names
PIDS = range(max(2, os.getpid() - 64), os.getpid() + 65)  # the runs are in this process: its PID, and neighbours
TOKEN = "feedface"  # the shard names' random part, fixed so that their temporary names can be planted


# ------------------------------------------------------------------ the user's files, and links to them
class Outside:
    """A stand-in for the user's home: files whose bytes and mtime must never change, and names that must never
    be created. ``target()`` deals them out to planted links in turn."""

    OLD = 1_000_000_000  # an mtime no write leaves behind

    def __init__(self, root: Path, ignore: tuple[str, ...] = ()):
        self.root, self.ignore = root, ignore
        root.mkdir(parents=True)
        (root / ".bashrc").write_text("export PATH=/usr/bin:/bin\n")
        (root / "notes.txt").write_text("my notes\n")
        for f in root.iterdir():
            os.utime(f, (self.OLD, self.OLD))
        self.dealt = 0
        self.freeze()

    def freeze(self) -> None:
        """What must stay as it is from now on."""
        self.before = self.snapshot()

    def target(self) -> Path:
        self.dealt += 1
        return self.root / (".bashrc", "notes.txt", f"created-by-hvl-{self.dealt}")[self.dealt % 3]

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        out = {}
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if Path(folder, d).relative_to(self.root).parts[0] not in self.ignore]
            for name in files:
                p = Path(folder) / name
                out[str(p.relative_to(self.root))] = (p.read_bytes(), p.lstat().st_mtime_ns)
        return out

    def assert_unchanged(self) -> None:
        now = self.snapshot()
        assert sorted(now) == sorted(self.before), "files were created outside the index folder"
        for name, (data, mtime) in self.before.items():
            assert now[name][0] == data, f"{name} was overwritten through a link"
            assert now[name][1] == mtime, f"{name} was written through a link"


@contextlib.contextmanager
def refused(match: str, *unchanged: Outside):
    """The block ends in one HVLInputError matching ``match``; ``unchanged`` are checked first, whatever the block
    did (on code without the check, the test then reports what the attack changed)."""
    with pytest.raises(HVLInputError, match=match):
        try:
            yield
        finally:
            for o in unchanged:
                o.assert_unchanged()


def temp_names(name: str) -> list[str]:
    """Every name hvl gave, or gives, a temporary file for ``name``: fixed, PID-based (this process and its
    neighbours), and the names mkstemp tries first under :func:`known_names`."""
    return ([f".{name}.tmp", f"{name}.tmp"] + [f".{name}.{pid}.tmp" for pid in PIDS]
            + [f".{name}.{k}.tmp" for k in KNOWN])


def plant(folder: Path, names: list[str], outside: Outside) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for n in names:
        link = folder / n
        if not os.path.lexists(link):
            link.symlink_to(outside.target())
            links.append(link)
    return links


@pytest.fixture
def known_names(monkeypatch):
    """tempfile's random names replaced by a known sequence (then random ones again): the links planted at exactly
    those names must be skipped (``O_EXCL`` refuses an existing name, a link included), never followed."""
    monkeypatch.setattr(tempfile, "_get_candidate_names",
                        lambda: itertools.chain(KNOWN, tempfile._RandomNameSequence()))
    return KNOWN


@pytest.fixture
def fixed_token(monkeypatch):
    import hvl.core.search.index as index_module

    monkeypatch.setattr(index_module, "uuid", types.SimpleNamespace(uuid4=lambda: uuid.UUID(TOKEN * 4)))
    return TOKEN


# ------------------------------------------------------------------ every file opened for writing
_RECORDING: list[tuple[str, str, int]] | None = None
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit(event: str, args: tuple) -> None:
    if _RECORDING is None or event not in ("open", "os.mkdir", "os.rename", "os.remove", "shutil.rmtree"):
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        flags = args[2] if event == "open" and len(args) > 2 and isinstance(args[2], int) else 0
        _RECORDING.append((event, os.fsdecode(path), flags))


class Writes:
    """The files opened for writing, renamed and deleted under ``folder`` while the block runs (an audit hook:
    Python's own ``open``/``os.open``; hvl writes FAISS through Python, so nothing it writes escapes it)."""

    installed = False

    def __init__(self, folder: Path):
        self.folder = str(folder)
        self.events: list[tuple[str, str, int]] = []

    def __enter__(self) -> Self:
        global _RECORDING
        if not Writes.installed:
            sys.addaudithook(_audit)  # cannot be removed: inert while _RECORDING is None
            Writes.installed = True
        _RECORDING = self.events
        return self

    def __exit__(self, *exc) -> None:
        global _RECORDING
        _RECORDING = None
        self.events = [e for e in self.events if e[1].startswith(self.folder + os.sep)]

    def opened_for_writing(self) -> list[tuple[str, int]]:
        return [(p, f) for e, p, f in self.events if e == "open" and f & WRITE_FLAGS]

    def temporary_folders(self) -> set[str]:
        """Folders made in the block by mkdtemp (``mkdir`` of a new ``.<name>.<random>.tmp``: it fails on any
        existing name, a link included, so nothing can be planted inside)."""
        return {p for e, p, _ in self.events if e == "os.mkdir" and p.endswith(".tmp")}

    def assert_no_link_followed(self, temporary_only: bool = False) -> None:
        """Every file opened for writing (``temporary_only``: every temporary one) was opened so that a link at its
        name is refused: a new name with ``O_CREAT | O_EXCL`` (mkstemp), or an append or lock file with
        ``O_NOFOLLOW``."""
        writes = [(p, f) for p, f in self.opened_for_writing()
                  if not temporary_only or p.endswith(".tmp") or ".part" in os.path.basename(p)]
        assert writes, "nothing was written: the test ran nothing"
        fresh = self.temporary_folders()
        for path, flags in writes:
            if os.path.dirname(path) in fresh:  # a frame folder being filled: made by this run, then renamed
                continue
            assert flags & os.O_NOFOLLOW, f"{path} opened for writing following links (flags {flags:#o})"
            assert flags & (os.O_EXCL | os.O_APPEND), f"{path} opened to overwrite (flags {flags:#o})"
            assert not flags & os.O_TRUNC, path


# ------------------------------------------------------------------ small inputs, built once
@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder_src")
    videos = video_tree(root / "videos", games=1, per_game=3)
    ckpt = tiny_checkpoint(root / "tiny.ckpt")
    built = root / "built"
    build_index(videos, ckpt, built, ann="flat", num_workers=0, progress=False, accelerator="cpu")
    assert (built / "ann" / "ann.faiss").is_file()
    return types.SimpleNamespace(root=root, videos=videos, ckpt=ckpt, built=built)


def index_copy(src, tmp_path: Path, new_video: bool = True) -> tuple[Path, Path]:
    """A copy of the built index and, with ``new_video``, of its videos with one more (so that a run writes)."""
    index = Path(shutil.copytree(src.built, tmp_path / "index"))
    if not new_video:
        return index, src.videos
    videos = Path(shutil.copytree(src.videos, tmp_path / "videos"))
    colour_video(videos / "game0" / "new.mp4", 5)
    header = json.loads((index / "index.json").read_text())
    (index / "index.json").write_text(json.dumps(header | {"videos_root": str(videos.resolve())}))
    return index, videos


def run_index(videos: Path, ckpt: Path, out: Path, **kw) -> dict:
    return build_index(videos, ckpt, out, **({"ann": "flat", "num_workers": 0, "progress": False,
                                              "accelerator": "cpu"} | kw))


def serve(index: Path, *extra: str) -> TestClient:
    """`hvl serve --index INDEX` (its query set and thumbnail cache at their defaults, in the index folder)."""
    import argparse

    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    return TestClient(build(p.parse_args(["--index", str(index), *extra])), base_url=LOCAL)


def thumbnail_name(key: str, t: float) -> str:
    """The cache's file name for a moment (as :class:`hvl.core.search.serve.media.ThumbnailCache` names it)."""
    return f"{hashlib.sha1(f'{key}|{t:.3f}'.encode()).hexdigest()[:24]}.jpg"


# ------------------------------------------------------------------ item 1: planted temporary files
def test_hvl_index_writes_no_faiss_bytes_through_a_planted_temporary_name(src, tmp_path, known_names, fixed_token):
    outside = Outside(tmp_path / "home")
    out = tmp_path / "shared"
    plant(out / "ann", temp_names("ann.faiss") + temp_names("ann.json"), outside)
    plant(out / "shards", [n for s in range(3) for ext in ("npy", "jsonl")
                           for n in temp_names(f"{TOKEN}-r0-{s:05d}.{ext}")], outside)
    plant(out, temp_names("index.json"), outside)
    with Writes(out) as w:
        try:
            run_index(src.videos, src.ckpt, out)
        finally:  # first, whatever the run did
            outside.assert_unchanged()
    w.assert_no_link_followed()
    import faiss

    assert faiss.read_index(str(out / "ann" / "ann.faiss")).ntotal == len(read_index(out).emb)
    tried = {p for p, _ in w.opened_for_writing()}
    for k in KNOWN:  # mkstemp tried exactly the planted names first, and skipped them
        assert str(out / "ann" / f".ann.faiss.{k}.tmp") in tried and str(out / f".index.json.{k}.tmp") in tried


def test_a_version_1_header_is_rewritten_without_following_a_planted_link(src, tmp_path, known_names):
    outside = Outside(tmp_path / "home")
    index, videos = index_copy(src, tmp_path)
    header = json.loads((index / "index.json").read_text())
    header |= {"version": 1, "note": "export EVIL=1  # attacker-chosen text"}
    (index / "index.json").write_text(json.dumps(header))
    plant(index, temp_names("index.json"), outside)
    with Writes(index) as w:
        run_index(videos, src.ckpt, index)
    outside.assert_unchanged()
    w.assert_no_link_followed()
    assert json.loads((index / "index.json").read_text())["version"] == 2
    assert not (index / "index.json").is_symlink()


def test_a_judgement_and_a_thumbnail_write_nothing_through_planted_temporary_names(src, tmp_path, known_names):
    """One judgement saved on the page, one ``GET /api/thumbnail`` (any web page can send it with an <img>)."""
    outside = Outside(tmp_path / "home")
    index, _ = index_copy(src, tmp_path, new_video=False)
    idx = read_index(index)
    v = idx.videos[0]
    t = float(idx.row_time[v["start"]])
    plant(index, temp_names("queries.yaml") + temp_names("queries.judgements.json"), outside)
    plant(index / "thumbnails", temp_names(thumbnail_name(v["key"], t)), outside)
    with Writes(index) as w:
        c = serve(index)
        r = c.post("/api/judgements", json={"query": "a red square", "video_id": v["video_id"], "relevant": True})
        assert r.status_code == 200, r.text
        thumb = c.get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"  # a JPEG
    outside.assert_unchanged()
    w.assert_no_link_followed()
    assert "a red square" in (index / "queries.yaml").read_text()


def test_a_thumbnail_planted_as_a_link_is_neither_served_nor_written_through(src, tmp_path):
    outside = Outside(tmp_path / "home")
    index, _ = index_copy(src, tmp_path, new_video=False)
    idx = read_index(index)
    v = idx.videos[0]
    t = float(idx.row_time[v["start"]])
    (index / "thumbnails").mkdir()
    (index / "thumbnails" / thumbnail_name(v["key"], t)).symlink_to(outside.root / "notes.txt")
    r = serve(index).get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
    assert r.status_code == 200 and b"my notes" not in r.content and r.content[:3] == b"\xff\xd8\xff"
    outside.assert_unchanged()


def test_a_planted_queries_lock_is_refused_and_creates_nothing(src, tmp_path):
    outside = Outside(tmp_path / "home")
    index, _ = index_copy(src, tmp_path, new_video=False)
    (index / "queries.lock").symlink_to(outside.root / "created-by-hvl-lock")
    with refused(r"queries\.lock: is a symbolic link", outside):
        c = serve(index)
        c.post("/api/judgements", json={"query": "a red square", "video_id": "v000", "relevant": True})


def test_a_planted_skipped_list_is_refused_before_anything_is_appended(src, tmp_path):
    outside = Outside(tmp_path / "home")
    index, videos = index_copy(src, tmp_path)
    (videos / "game0" / "broken.mp4").write_bytes(b"not a video")
    (index / "skipped.jsonl").symlink_to(outside.root / ".bashrc")
    with refused(r"skipped\.jsonl: is a symbolic link", outside):
        run_index(videos, src.ckpt, index, on_bad_video="skip")


def _write_video(d: Path) -> None:
    from hvl.core.data.video import write_video

    write_video(d / "clip.mp4", np.zeros((4, 16, 16, 3), np.uint8), 4)


def _reencode(d: Path) -> None:
    from hvl.core.data.prepare.reencode import reencode_h264

    reencode_h264(colour_video(d.parent / "source.mp4", 1), d / "clip.mp4", size=16, gop=4)


def _frames(d: Path) -> None:
    from hvl.core.data.prepare.reencode import extract_frames

    extract_frames(colour_video(d.parent / "source.mp4", 1), d / "clip", fps=2.0)


def _checkpoint(d: Path) -> None:
    from hvl.core.models.checkpoint import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, d / "last.ckpt")


def _manifest(d: Path) -> None:
    from hvl.core.data.schema import VideoRecord, write_manifest

    write_manifest(d / "train.jsonl", [VideoRecord(video_id="a", path="a.mp4", duration=1.0, texts=["x"])])


def _demo(d: Path) -> None:
    from hvl.domains.gameplay import demo

    demo.generate(d, seed=1, n_train=2, n_val=0, n_test=1, size=32, seconds=5.0, progress=False)


@pytest.mark.parametrize("write, name", [(_write_video, "clip.mp4"), (_reencode, "clip.mp4"), (_frames, "clip"),
                                         (_checkpoint, "last.ckpt"), (_manifest, "train.jsonl"),
                                         (_demo, "queries.yaml")])
def test_every_other_writer_skips_links_at_its_temporary_names(tmp_path, known_names, write, name):
    """The other writers that went through a temporary name (PyAV's ``x.part.mp4``, frame folders' ``x.part``,
    checkpoints' ``.x.<pid>.tmp``, manifests' ``x.jsonl.tmp``, the demo's ``.queries.yaml.tmp``)."""
    outside = Outside(tmp_path / "home")
    d = tmp_path / "out"
    stem, suffix = os.path.splitext(name)
    plant(d, temp_names(name) + [f"{stem}.part{suffix}", f"{name}.part"], outside)
    with Writes(d) as w:
        write(d)
    outside.assert_unchanged()
    w.assert_no_link_followed(temporary_only=True)  # the demo writes its other files into a new folder directly
    assert (d / name).exists() and not (d / name).is_symlink()


def test_temporary_names_are_unpredictable(tmp_path):
    """Not the fixed or PID-based names of before: every write of the same file draws a new random name."""
    from hvl.core.io import atomic_write_bytes

    with Writes(tmp_path) as w:
        for i in range(40):
            atomic_write_bytes(tmp_path / "index.json", b"{}")
    names = [Path(p).name for p, _ in w.opened_for_writing()]
    assert len(names) == 40 and len(set(names)) == 40
    middles = {n[len(".index.json."):-len(".tmp")] for n in names}
    assert str(os.getpid()) not in middles and all(len(m) >= 8 for m in middles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]  # nothing left behind


# ------------------------------------------------------------------ item 2: subfolders that are links
def _faiss_file(path: Path) -> Path:
    import faiss

    ix = faiss.IndexFlatIP(4)
    ix.add(np.eye(4, dtype=np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(ix, str(path))
    return path


@pytest.mark.parametrize("sub", ["shards", "ann"])
def test_a_linked_index_subfolder_is_refused_by_index_search_and_serve(src, tmp_path, capsys, sub):
    """``shards -> /elsewhere``: `hvl index` deleted unrelated .npy files there and wrote its shards; ``ann ->
    /elsewhere2``: it deleted every .faiss ann.json does not list and wrote its index there."""
    index, videos = index_copy(src, tmp_path)
    elsewhere = Outside(tmp_path / "elsewhere")
    shutil.move(index / sub, elsewhere.root / sub)
    np.save(elsewhere.root / sub / "unrelated.npy", np.ones(3))
    _faiss_file(elsewhere.root / sub / "unrelated.faiss")
    (elsewhere.root / sub / ".unrelated.tmp").write_text("keep")
    for f in (elsewhere.root / sub).iterdir():
        os.utime(f, (Outside.OLD, Outside.OLD))
    elsewhere.freeze()
    (index / sub).symlink_to(elsewhere.root / sub)
    with refused(rf"{sub}: is a symbolic link", elsewhere):
        run_index(videos, src.ckpt, index)
    capsys.readouterr()
    assert main(["search", "a red square", "--index", str(index)]) == 2
    assert f"{index / sub}: is a symbolic link" in capsys.readouterr().err
    with refused(rf"{sub}: is a symbolic link", elsewhere):
        serve(index)


def test_shards_linked_to_the_folder_above_deletes_nothing_there(src, tmp_path):
    index, videos = index_copy(src, tmp_path)
    beside = Outside(tmp_path / "beside", ignore=("index",))  # the folder the index sits in
    index = Path(shutil.move(index, beside.root / "index"))
    np.save(beside.root / "results.npy", np.arange(5))
    (beside.root / ".draft.tmp").write_text("mine")
    beside.freeze()
    shutil.rmtree(index / "shards")
    (index / "shards").symlink_to("..")
    with refused(r"shards: is a symbolic link", beside):
        run_index(videos, src.ckpt, index)


def test_a_linked_thumbnail_folder_is_refused_but_cache_on_the_command_line_is_the_users(src, tmp_path):
    index, _ = index_copy(src, tmp_path, new_video=False)
    idx = read_index(index)
    v = idx.videos[0]
    t = float(idx.row_time[v["start"]])
    elsewhere = Outside(tmp_path / "elsewhere")
    (index / "thumbnails").symlink_to(elsewhere.root)
    with refused(r"thumbnails: is a symbolic link", elsewhere):
        serve(index).get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
    mine = tmp_path / "my_cache_link"
    mine.symlink_to(tmp_path / "home_cache", target_is_directory=True)
    (tmp_path / "home_cache").mkdir()
    r = serve(index, "--cache", str(mine)).get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
    assert r.status_code == 200 and (tmp_path / "home_cache" / thumbnail_name(v["key"], t)).is_file()


def test_a_rebuild_deletes_only_the_ann_files_hvl_names(tmp_path):
    """Not every ``*.faiss`` ann.json does not list: only ``ann.faiss`` and ``<build>.<i>.faiss`` of earlier builds
    and killed builds' temporary files, plain names in ann/, links removed as links."""
    import faiss
    from hvl.core.search.ann import save_ann

    root = tmp_path / "index"
    ann = root / "ann"
    mine = _faiss_file(ann / "my-experiment.faiss")             # not a name hvl writes: kept
    old_part = _faiss_file(ann / "0badc0de.1.faiss")           # an earlier split build's part: deleted
    killed = ann / ".ann.faiss.abc123xy.tmp"                   # a killed build's temporary file: deleted
    killed.write_bytes(b"half")
    outside = Outside(tmp_path / "home")
    real = _faiss_file(outside.root / "kept.faiss")
    os.utime(real, (Outside.OLD, Outside.OLD))
    outside.freeze()
    (ann / "deadbeef.0.faiss").symlink_to(real)                 # a planted part of an "earlier build": the link goes
    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype=np.float32))
    written = save_ann(root, index, {"kind": "flat", "rows": 4}, ["s0"])
    assert written["files"] == ["ann.faiss"]
    assert sorted(p.name for p in ann.iterdir()) == ["ann.faiss", "ann.json", "my-experiment.faiss"]
    assert mine.is_file() and not old_part.exists() and not killed.exists()
    outside.assert_unchanged()
    shard_link = root / "shards"
    shard_link.mkdir()
    (shard_link / ".x.npy.123.tmp").symlink_to(outside.root / ".bashrc")
    (shard_link / "orphan-r0-00000.npy").symlink_to(outside.root / "notes.txt")
    from hvl.core.search.store import remove_orphans

    assert sorted(remove_orphans(root)) == [".x.npy.123.tmp", "orphan-r0-00000.npy"]
    assert not list(shard_link.iterdir())
    outside.assert_unchanged()


def test_a_linked_qdrant_folder_is_refused_even_by_a_read_only_search(src, tmp_path, capsys):
    pytest.importorskip("qdrant_edge")
    out = tmp_path / "qindex"
    assert main(["index", str(src.videos), "--ckpt", str(src.ckpt), "--out", str(out), "--backend", "qdrant",
                 "--num-workers", "0", "--no-progress"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(out / "qdrant", elsewhere / "qdrant")
    for folder, dirs, files in os.walk(elsewhere):
        for n in dirs + files:
            os.utime(Path(folder) / n, (Outside.OLD, Outside.OLD), follow_symlinks=False)

    def state() -> dict[str, tuple[bytes, int]]:
        return {str(p): (p.read_bytes() if p.is_file() else b"", p.lstat().st_mtime_ns) for p in elsewhere.rglob("*")}

    before = state()
    (out / "qdrant").symlink_to(elsewhere / "qdrant")
    capsys.readouterr()
    rc = main(["search", "a red square", "--index", str(out)])
    assert state() == before, "the Qdrant files at the link's target were rewritten"
    assert rc == 2 and f"{out / 'qdrant'}: is a symbolic link" in capsys.readouterr().err
    (out / "qdrant").unlink()
    shutil.move(elsewhere / "qdrant", out / "qdrant")  # a real folder again, with a link inside it
    inner = next(p for p in (out / "qdrant").iterdir() if p.is_dir())
    shutil.move(inner, elsewhere / inner.name)
    inner.symlink_to(elsewhere / inner.name)
    assert main(["search", "a red square", "--index", str(out)]) == 2
    assert "is a symbolic link inside the Qdrant shard" in capsys.readouterr().err


def test_search_eval_refuses_a_linked_index_subfolder(tmp_path):
    """`hvl search-eval` indexes into ``<config's index>/<checkpoint>_<level>_<fps>fps``: hvl's folder, not a
    link; and its shards/ is confined like any index's."""
    import yaml
    from hvl.core.models.checkpoint import fingerprint
    from hvl.core.search.evaluate import SearchEvalConfig, evaluate

    videos = video_tree(tmp_path / "videos", games=1, per_game=2)
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    (tmp_path / "q.yaml").write_text(yaml.safe_dump({"queries": [{"id": "q", "type": "simple", "text": "red",
                                                                  "relevant": ["v000"]}]}))
    cfg = SearchEvalConfig.model_validate({"domain": "gameplay", "queries": str(tmp_path / "q.yaml"),
                                           "dataset": {"reader": "gamephysics", "path": str(videos)},
                                           "index": str(tmp_path / "evals"), "fps": 1.0, "num_workers": 0})
    elsewhere = Outside(tmp_path / "elsewhere")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / f"{fingerprint(ckpt)[:12]}_clip_1fps").symlink_to(elsewhere.root)
    with refused(r"1fps: is a symbolic link", elsewhere):
        evaluate(cfg, ckpt, progress=False)


# ------------------------------------------------------------------ done when: every temporary name, every command
def test_links_at_every_temporary_name_change_nothing_outside_through_index_search_and_serve(
        src, tmp_path, capsys, known_names, fixed_token):
    """Links planted for every temporary file name hvl writes into an index folder (the old fixed and PID-based
    ones, and the ones mkstemp will try), then `hvl index`, `hvl search` and `hvl serve` (page, search, judgements,
    thumbnails): nothing outside the folder changes, and every file written was opened without following links."""
    outside = Outside(tmp_path / "home")
    out = tmp_path / "shared"
    root_files = ["index.json", "queries.yaml", "queries.judgements.json", "backend.json"]
    plant(out, [n for f in root_files for n in temp_names(f)], outside)
    plant(out / "ann", temp_names("ann.faiss") + temp_names("ann.json"), outside)
    plant(out / "shards", [n for s in range(3) for ext in ("npy", "jsonl")
                           for n in temp_names(f"{TOKEN}-r0-{s:05d}.{ext}")], outside)
    with Writes(out) as w:
        try:
            run_index(src.videos, src.ckpt, out, shard_rows=3)
        finally:  # first, whatever the run did
            outside.assert_unchanged()
    w.assert_no_link_followed()

    capsys.readouterr()
    with Writes(out) as w:
        assert main(["search", "a red square", "--index", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]
    assert not w.opened_for_writing()  # a search writes nothing in the folder
    outside.assert_unchanged()

    idx = read_index(out)
    moments = [(v, float(idx.row_time[v["start"] + i])) for v in idx.videos for i in range(v["n"])]
    plant(out / "thumbnails", [n for v, t in moments for n in temp_names(thumbnail_name(v["key"], t))], outside)
    with Writes(out) as w:
        c = serve(out)
        assert c.get("/").status_code == 200
        found = c.post("/api/search", json={"query": "a red square", "k": 3})
        assert found.status_code == 200, found.text
        for i, r in enumerate(found.json()["results"]):
            j = c.post("/api/judgements", json={"query": "a red square", "video_id": r["video_id"],
                                                 "relevant": i == 0})
            assert j.status_code == 200, j.text
        for v, t in moments:
            thumb = c.get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
            assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    outside.assert_unchanged()
    w.assert_no_link_followed()
    assert len(list((out / "thumbnails").glob("*.jpg"))) == len(moments)
    assert json.loads((out / "queries.judgements.json").read_text())["queries"][0]["text"] == "a red square"
