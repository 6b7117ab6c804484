"""The approximate index `hvl index` keeps is chosen by measurement: every candidate is built on the
index's own frames, the fastest reaching the recall target within the memory budget wins, ann.json
says why, nothing reaching it is refused with what would work, and added videos are either added
to the stored index or, when recall on them drops (drift), trigger a rebuild. Small synthetic data
(20k x 32 frames) so that each choice takes seconds."""
import json

import faiss
import numpy as np
import pytest
from hvl.core.errors import HVLInputError
from hvl.core.search import ann
from hvl.core.search.ann import (
    TARGET_RECALL,
    Truth,
    build_ann,
    eligible,
    parse_memory,
    rank_key,
    refresh_ann,
    tuning_queries,
)
from hvl.core.search.query import load_index, search
from test_search import write_index

pytestmark = pytest.mark.slow

DIM, FRAMES = 32, 10


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n_videos, seed=0, topics_seed=0):
    """Videos around 20 topics (fixed by ``topics_seed``), frames near their video."""
    topics = unit(np.random.default_rng(topics_seed).normal(size=(20, DIM)))
    rng = np.random.default_rng(seed)
    centres = unit(topics[rng.integers(0, 20, n_videos)] + 0.5 * unit(rng.normal(size=(n_videos, DIM))))
    return unit(np.repeat(centres, FRAMES, 0) + 0.3 * unit(rng.normal(size=(n_videos * FRAMES, DIM))))


def isotropic(n_videos, seed=0):
    """Frames with little shared structure: the worst case for IVF lists."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n_videos, DIM)))
    return unit(np.repeat(centres, FRAMES, 0) + 1.5 * unit(rng.normal(size=(n_videos * FRAMES, DIM))))


def videos_of(emb, prefix="v"):
    return [(f"{prefix}{i:05d}", f"g{i % 3}", emb[i * FRAMES:(i + 1) * FRAMES]) for i in range(len(emb) // FRAMES)]


@pytest.fixture(scope="module")
def fake_ckpt(tmp_path_factory):
    p = tmp_path_factory.mktemp("ck") / "model.ckpt"
    p.write_bytes(b"only hashed")
    return p


@pytest.fixture(scope="module")
def chosen():
    emb = clustered(2000)
    row_video = np.repeat(np.arange(2000), FRAMES)
    index, meta = build_ann(emb, "auto", row_video=row_video)
    return emb, row_video, index, meta


def test_auto_measures_every_family_and_keeps_the_fastest_reaching_the_target(chosen):
    emb, _, index, meta = chosen
    records = meta["candidates"]
    assert {r["kind"] for r in records} == {"ivf", "ivfpq", "hnsw", "fastscan", "two_stage"}  # 20k rows: HNSW too
    assert any("SQ8" in r["factory"] for r in records) and any(",PQ" in r["factory"] for r in records)
    for r in records:
        assert {"build_seconds", "index_bytes", "param", "value", "recall_at_10", "pool_value", "video_recall_at_10",
                "held_out_video_recall_at_10", "p50_ms", "p95_ms", "meets_target", "within_memory"} <= set(r)
        held = r["held_out_video_recall_at_10"]  # another draw of queries of every family, at the kept breadth
        assert set(held) == {"perturbed", "topic", "all"} and r["held_out_queries"] == 200
        assert r["meets_target"] == (r["recall_at_10"] >= TARGET_RECALL and r["video_recall_at_10"] >= TARGET_RECALL
                                     and min(held.values()) >= TARGET_RECALL)
    ok = [r for r in records if eligible(r)]
    best = min(ok, key=rank_key)
    assert meta["factory"] == best["factory"] and meta["p50_ms"] == best["p50_ms"]
    assert f"{len(ok)} candidates" in meta["reason"] and str(best["p50_ms"]) in meta["reason"]
    assert meta["rows"] == len(emb) and meta["memory_budget_bytes"] == ann.ANN_MEMORY_FLOOR  # "auto" on 20k x 32
    assert index.ntotal == (2000 if meta["kind"] == "two_stage" else len(emb))
    assert meta["index_bytes"] == faiss.serialize_index(index).nbytes


def test_the_chosen_index_meets_the_target_on_a_held_out_sample(chosen):
    emb, row_video, index, meta = chosen
    from hvl.core.search.ann_measure import query_families

    queries, families = query_families(emb, row_video, np.random.default_rng(123))  # perturbed frames, topic queries
    held_out = Truth(emb, queries, row_video, meta["pool"], families)
    if meta.get("refined"):  # recall after exact rescoring of what it proposes, taken as search() takes it
        from hvl.core.search.candidates import propose_videos

        frame, video = held_out.coverage(propose_videos(index, meta, emb, row_video, held_out.tq))
        # tuned to reach the target with 95 % confidence (ann_measure.surely) and checked on other queries of each
        # family: new queries reach it too
        assert frame.mean() >= TARGET_RECALL - 0.01
        assert min(held_out.by_family(video).values()) >= TARGET_RECALL - 0.02  # 100 a family: noise ~0.01
        return
    ann.set_breadth(index, meta["param"], meta["value"])
    assert held_out.frame_recall(index) >= TARGET_RECALL - 0.02  # 200 new queries: sampling noise ~0.01
    ann.set_breadth(index, meta["param"], meta["pool_value"])
    assert held_out.video_recall(index, meta["param"]) >= TARGET_RECALL - 0.02


def test_refuses_when_nothing_reaches_the_target_and_says_what_would():
    emb = isotropic(1500)
    # IVF-PQ with 4-byte codes cannot reach 0.95 on unclustered frames: the fix is exact search
    with pytest.raises(HVLInputError, match=r"no approximate index reaches recall@10 >= 0.95") as e:
        build_ann(emb, "ivfpq")
    assert "IVF" in str(e.value) and "--ann none" in str(e.value)
    # a budget only PQ fits: the candidates skipped for memory are named, with the budget that measures them
    with pytest.raises(HVLInputError, match="--ann-memory") as e:
        build_ann(emb, "ivf", memory="300KiB")
    msg = str(e.value)
    assert "> --ann-memory 0.00 GiB" in msg and "--ann none" in msg
    need = msg.split("Use --ann-memory ")[1].split("MiB")[0]
    _, meta = build_ann(emb, "ivf", memory=f"{need}MiB")  # what the message asks for is enough
    assert meta["recall_at_10"] >= TARGET_RECALL and meta["index_bytes"] <= parse_memory(f"{need}MiB")


def test_parse_memory(tmp_path, capsys):
    from hvl.core.cli import main

    (tmp_path / "videos").mkdir()
    assert main(["index", str(tmp_path / "videos"), "--ckpt", "x.ckpt", "--out", str(tmp_path / "i"),
                 "--ann-memory", "lots"]) == 2
    assert "--ann-memory 'lots' is not a size" in capsys.readouterr().err
    assert parse_memory("2GiB") == 2 * 2**30 and parse_memory("512MiB") == 512 * 2**20 and parse_memory("1.5G") == 1.5 * 2**30
    assert parse_memory("1000") == 1000
    with pytest.raises(HVLInputError, match="--ann-memory 'lots' is not a size"):
        parse_memory("lots")


def test_ann_json_records_every_candidate_and_why(tmp_path, fake_ckpt, monkeypatch):
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)  # auto builds one at this small size
    emb = clustered(1500, seed=3)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=500)
    meta = refresh_ann(root)
    stored = json.loads((root / "ann" / "ann.json").read_text())
    assert stored["factory"] == meta["factory"] and stored["shards"] == ["s00000", "s00500", "s01000"]
    assert stored["rows"] == len(emb) and stored["reason"].startswith("lowest measured p50")
    assert [c["factory"] for c in stored["candidates"]] == [c["factory"] for c in meta["candidates"]]
    assert len(stored["candidates"]) == 10 and all("recall_at_10" in c for c in stored["candidates"])
    idx = load_index(root)
    assert idx.ann is not None and meta["factory"] in search(idx, emb[0], k=5)["method"]
    assert refresh_ann(root)["factory"] == meta["factory"]  # up to date: nothing rebuilt
    small = write_index(tmp_path / "small", videos_of(emb[:5000]), fake_ckpt, DIM)
    assert refresh_ann(small) is None and not (small / "ann").exists()  # below ANN_MIN_ROWS: exact, as before
    assert refresh_ann(small, kind="none") is None and not (small / "ann").exists()


def add_shard(root, tmp_path, emb, prefix, ckpt):
    extra = write_index(tmp_path / f"extra_{prefix}", videos_of(emb, prefix), ckpt, DIM, shard_videos=10**6)
    for f in (extra / "shards").iterdir():
        f.rename(root / "shards" / f"{prefix}_{f.name}")


def test_adds_videos_like_the_old_ones_and_rebuilds_when_recall_on_new_ones_drops(tmp_path, fake_ckpt, monkeypatch):
    from hvl.core.search import ann

    # one candidate: which of the IVF family wins is a timing, and SQ8's recall on the added sample sits at the
    # target itself (0.95), so a loaded machine that picked it, or IVF256, made this test flaky
    real = ann.candidate_factories
    monkeypatch.setattr(ann, "candidate_factories", lambda *a, **k: (
        [s for s in real(*a, **k)[0] if s.endswith(",SQfp16") and not s.startswith("HNSW")][-1:], {}))
    root = write_index(tmp_path / "idx", videos_of(clustered(1500)), fake_ckpt, DIM, shard_videos=750)
    first = refresh_ann(root, kind="ivf")
    assert "updates" not in first

    add_shard(root, tmp_path, clustered(300, seed=5), "x", fake_ckpt)  # same topics: the IVF lists still fit
    added = refresh_ann(root, kind="ivf")
    update = added["updates"][-1]
    assert update["action"] == "added" and update["added_rows"] == 3000 and "rebuilt_because" not in added
    assert update["recall_at_10_new_sample"] >= TARGET_RECALL and update["video_recall_at_10_new_sample"] >= TARGET_RECALL
    assert added["factory"] == first["factory"] and added["build_seconds"] == first["build_seconds"]  # not rebuilt
    idx = load_index(root)
    assert idx.ann is not None and idx.ann.ntotal == 18_000 == len(idx.emb)

    add_shard(root, tmp_path, isotropic(300, seed=6), "y", fake_ckpt)  # unlike anything the lists were trained on
    rebuilt = refresh_ann(root, kind="ivf")
    why = rebuilt["rebuilt_because"]
    assert why["action"] == "rebuilt" and why["added_rows"] == 3000
    assert min(why["recall_at_10_new_sample"], why["video_recall_at_10_new_sample"]) < TARGET_RECALL
    assert "updates" not in rebuilt and rebuilt["rows"] == 21_000 and rebuilt["recall_at_10"] >= TARGET_RECALL
    idx = load_index(root)
    assert idx.ann is not None and idx.ann.ntotal == 21_000


@pytest.mark.parametrize("kind", ["fastscan", "two_stage"])
def test_refined_indexes_answer_as_exact_search_does(tmp_path, fake_ckpt, monkeypatch, kind):
    """Fast-scan PQ and the two-stage index propose videos; their frames are rescored exactly, so the answers are
    exact search's wherever the proposal holds the true videos (>= the target share, measured on new queries)."""
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    emb = clustered(1500, seed=4)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=500)
    meta = refresh_ann(root, kind=kind)
    assert meta["kind"] == kind and meta["refined"]
    assert meta["param"] in (("videos",) if kind == "two_stage" else ("pool", "nprobe"))
    assert meta["video_recall_at_10"] >= TARGET_RECALL and meta["recall_at_10"] >= TARGET_RECALL
    idx, exact = load_index(root), load_index(root, use_ann=False)
    assert idx.ann is not None and idx.ann.ntotal == (1500 if kind == "two_stage" else len(emb))
    queries = tuning_queries(emb, np.random.default_rng(7))[:60]
    hits = []
    for q in queries:
        got, want = search(idx, q, k=10), search(exact, q, k=10)
        assert "exact rescoring" in got["method"]
        ids = {r["video_id"]: r["score"] for r in want["results"]}
        for r in got["results"]:  # whatever is returned is scored exactly
            if r["video_id"] in ids:
                assert r["score"] == pytest.approx(ids[r["video_id"]], abs=1e-6)
        hits.append(len(set(ids) & {r["video_id"] for r in got["results"]}) / 10)
    assert np.mean(hits) >= TARGET_RECALL - 0.02


def test_search_many_answers_as_search_does(tmp_path, fake_ckpt, monkeypatch):
    from hvl.core.search.query import search_many

    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    emb = clustered(1200, seed=8)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=400)
    refresh_ann(root, kind="fastscan")
    queries = tuning_queries(emb, np.random.default_rng(9))[:20]
    for exact in (False, True):
        idx = load_index(root, use_ann=not exact)
        many = search_many(idx, queries, k=5, exact=exact)
        one = [search(idx, q, k=5, exact=exact) for q in queries]
        assert [[r["video_id"] for r in m["results"]] for m in many] == [[r["video_id"] for r in o["results"]] for o in one]
        # scores are printed rounded to 6 decimals: a batched and a single matmul differ by float noise, which can
        # put two equal scores on either side of a rounding boundary (0.769985 vs 0.769984), one unit apart, and
        # that unit is 1.0000000000287557e-06 in binary; the tolerance covers one unit of rounding plus the noise
        assert [m["results"][0]["score"] for m in many] == pytest.approx([o["results"][0]["score"] for o in one], abs=2e-6)


def test_frames_stay_on_disk(tmp_path, fake_ckpt):
    """read_index memory-maps the fp16 shards: rows are read when scored, equal to the shards' values."""
    from hvl.core.search.store import FrameRows, read_index

    emb = clustered(300, seed=2)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=70)
    idx = read_index(root)
    assert isinstance(idx.emb, FrameRows) and len(idx.emb.parts) == 5
    assert all(isinstance(p, np.memmap) for p in idx.emb.parts)
    ref = emb.astype(np.float16).astype(np.float32)
    rows = np.array([0, 699, 700, 701, 2999, 5, 1400])
    np.testing.assert_array_equal(idx.emb[rows], ref[rows])
    np.testing.assert_array_equal(idx.emb[10:20], ref[10:20])
    np.testing.assert_allclose(idx.emb @ emb[3], ref @ emb[3], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(idx.video_rows(np.array([2, 0])), np.r_[np.arange(20, 30), np.arange(0, 10)])


def test_scoring_rows_in_place_equals_gathering_them(tmp_path, fake_ckpt, monkeypatch):
    """FrameRows.score (runs of rows decoded in place, a block at a time) gives what gathering the rows and
    multiplying gives, to float32's last bit (BLAS sums the last rows of a call in another order, so a row at the
    end of a block may differ by one ulp): whole videos across shard borders, a run longer than a block, scattered
    rows, one query or several."""
    from hvl.core.search.store import FrameRows, read_index, score_rows

    emb = clustered(300, seed=4)
    idx = read_index(write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=70))
    assert isinstance(idx.emb, FrameRows) and len(idx.emb.parts) == 5
    monkeypatch.setattr(FrameRows, "SCORE_BLOCK", 64)  # runs longer than a block, blocks that end inside a run
    q = emb[[3, 1500, 2900]].T.copy()
    whole = idx.video_rows(np.array([1, 68, 69, 70, 71, 140, 299]))  # 69 | 70 and 139 | 140: shard borders
    long_run = np.arange(650, 1020)  # one run of 370 rows over a border
    scattered = np.sort(np.random.default_rng(0).choice(len(emb), 700, replace=False))
    for rows in (whole, long_run, scattered, np.r_[long_run, scattered[scattered > 1020]], np.array([5]), np.array([], int)):
        for qq in (q[:, 0], q):
            got = score_rows(idx.emb, rows, qq)
            assert got.dtype == np.float32 and got.shape == (len(rows),) + qq.shape[1:]
            np.testing.assert_allclose(got, idx.emb[rows] @ qq, rtol=2.4e-7, atol=6e-8)


def test_fp16_rows_are_read_exactly():
    """as_float32 (FAISS's fp16 decoder) equals numpy's cast on every fp16 value, infinities and NaN included."""
    from hvl.core.search.store import as_float32

    every = np.resize(np.arange(65536, dtype=np.uint16).view(np.float16), (256, 256))
    got, want = as_float32(every), every.astype(np.float32)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here
    np.testing.assert_array_equal(as_float32(np.ascontiguousarray(every[::3, :48])), every[::3, :48].astype(np.float32))


def test_a_split_index_answers_as_one_index_and_is_saved_as_its_parts(tmp_path, fake_ckpt, monkeypatch):
    """A fast-scan index split into row ranges (a thread each) finds the same rows as the unsplit one; saved, it is
    one file per part listed in ann.json, and a later single-part build removes them."""
    from hvl.core.search.ann_measure import split_add
    from hvl.core.search.ann_specs import index_parts, parts_for

    assert parts_for(10**6, cores=2) == 2 and parts_for(1000, cores=8) == 1 and parts_for(10**8, cores=64) == 8
    assert 1 <= parts_for(10**6) <= 8  # this machine's cores
    emb = clustered(1500, seed=3)
    trained = faiss.index_factory(DIM, "PQ16x4fs", faiss.METRIC_INNER_PRODUCT)
    trained.train(emb)
    one, three = split_add(faiss.clone_index(trained), emb, 1), split_add(faiss.clone_index(trained), emb, 3)
    assert len(index_parts(three)) == 3 and three.ntotal == one.ntotal == len(emb)
    queries = tuning_queries(emb, np.random.default_rng(1))[:30]
    (s1, i1), (s3, i3) = one.search(queries, 50), three.search(queries, 50)
    np.testing.assert_allclose(s3, s1, rtol=1e-5, atol=1e-5)
    assert np.mean([len(set(a) & set(b)) / 50 for a, b in zip(i1, i3)]) > 0.98  # only ties may swap

    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    monkeypatch.setattr(ann, "parts_for", lambda rows, cores=None: 3)
    import hvl.core.search.ann_measure as measure

    monkeypatch.setattr(measure, "parts_for", lambda rows, cores=None: 3)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=500)
    meta = refresh_ann(root, kind="fastscan")
    assert meta["parts"] == 3 and len(meta["files"]) == 3
    assert sorted(p.name for p in (root / "ann").glob("*.faiss")) == sorted(meta["files"])
    idx, exact = load_index(root), load_index(root, use_ann=False)
    assert len(index_parts(idx.ann)) == 3 and idx.ann.ntotal == len(emb)
    for q in queries[:10]:
        got, want = search(idx, q, k=5), search(exact, q, k=5)
        assert got["results"][0]["video_id"] == want["results"][0]["video_id"]
    monkeypatch.setattr(measure, "parts_for", lambda rows, cores=None: 1)
    (root / "ann" / "ann.json").unlink()
    meta = refresh_ann(root, kind="fastscan")
    assert meta["files"] == ["ann.faiss"] and [p.name for p in (root / "ann").glob("*.faiss")] == ["ann.faiss"]


@pytest.mark.parametrize("name", ["../outside.faiss", "/tmp/outside.faiss", "sub/x.faiss", ".hidden.faiss", "x.npy"])
def test_ann_json_cannot_name_a_file_outside_its_folder(tmp_path, fake_ckpt, monkeypatch, name):
    """ann.json travels with a shared index: a file it names is read only as a plain .faiss name inside ann/;
    anything else means no approximate index (exact search), never a read elsewhere."""
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    emb = clustered(1200, seed=5)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=600)
    refresh_ann(root, kind="fastscan")
    (tmp_path / "outside.faiss").write_bytes((root / "ann" / "ann.faiss").read_bytes())
    meta_path = root / "ann" / "ann.json"
    meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | {"files": [name]}))
    reads = []
    monkeypatch.setattr(faiss, "read_index", lambda path, *a: reads.append(path))
    idx = load_index(root)
    assert idx.ann is None and reads == []
    assert search(idx, emb[0], k=3)["method"] == "exact"


def test_a_breadth_is_credited_with_a_one_sided_95_percent_lower_bound_of_its_recall():
    from hvl.core.search.ann_measure import surely
    from scipy import stats

    recalls = np.random.default_rng(0).choice([0.8, 0.9, 1.0], size=200, p=[0.1, 0.2, 0.7])
    assert surely(recalls) == pytest.approx(recalls.mean() - stats.norm.ppf(0.95) * stats.sem(recalls), abs=1e-4)
    assert surely(np.ones(200)) == 1.0 and surely(np.array([0.5])) == 0.5


def test_a_corrupt_approximate_index_is_one_clear_error(tmp_path, fake_ckpt, monkeypatch):
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    emb = clustered(1200, seed=6)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=600)
    refresh_ann(root, kind="fastscan")
    (root / "ann" / "ann.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(HVLInputError, match=r"ann\.faiss: unreadable approximate index.*re-run `hvl index`"):
        load_index(root)


# ------------------------------------------------------------------ long videos: the best videos, not the best frames
def long_videos(lengths, seed=0, spread=0.25):
    """Videos of the given lengths, each around its own centre, its frames closer to it than to other videos'
    (as 512-d frames at ``spread`` 0.5: benchmarks/search_scale.py): the best frames of the index are a few long
    videos' frames. Returns frames, row_video, centres."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(lengths), DIM)))
    row_video = np.repeat(np.arange(len(lengths)), lengths)
    return unit(centres[row_video] + spread * unit(rng.normal(size=(len(row_video), DIM)))), row_video, centres


def write_long(root, emb, row_video, ckpt, shard_videos=20):
    starts = np.flatnonzero(np.r_[True, row_video[1:] != row_video[:-1]])
    parts = np.split(emb, starts[1:])
    return write_index(root, [(f"r{i:04d}", f"g{i % 3}", p) for i, p in enumerate(parts)], ckpt, DIM, shard_videos)


def text_like_queries(centres, n, seed):
    """As a text query for what a video shows: near a video's centre, far from each of its frames."""
    rng = np.random.default_rng(seed)
    return unit(centres[rng.integers(0, len(centres), n)] + unit(rng.normal(size=(n, DIM))))


def test_the_reference_is_every_videos_best_frame(tmp_path, fake_ckpt):
    """exact_videos (the truth every recall is measured against) equals the ranking written out here with numpy
    over every frame: frames on disk (fp16), videos of 1 to 1,500 frames (longer than a span of the scan), more
    queries than one batch, for the three rankings."""
    from hvl.core.search.ann_measure import QUERY_BATCH, exact_videos
    from hvl.core.search.store import read_index

    lengths = [300] * 30 + [7, 1, 1500, 12] + [300] * 6
    emb, row_video, centres = long_videos(lengths, seed=1)
    idx = read_index(write_long(tmp_path / "idx", emb, row_video, fake_ckpt, shard_videos=7))
    frames = emb.astype(np.float16).astype(np.float32)  # what the shards hold
    queries = np.concatenate([text_like_queries(centres, 100, 2), tuning_queries(frames, np.random.default_rng(3), 50)])
    assert len(queries) > QUERY_BATCH
    for agg in ("max", "topk-mean", "count"):
        got, keys = exact_videos(idx.emb, idx.row_video, queries, k=10, agg=agg, topk=3, pool=500, span_rows=1000)
        for q, g, kk in zip(queries, got, keys):
            s = frames @ q
            pooled = np.zeros(len(s), bool)
            pooled[np.argsort(-s, kind="stable")[:500]] = True
            per_video = {}
            for v in range(len(lengths)):
                sv = np.sort(s[row_video == v])[::-1]
                key = {"max": sv[0], "topk-mean": sv[:3].mean(), "count": pooled[row_video == v].sum()}[agg]
                per_video[v] = (-key, -sv[0], v)
            want = sorted(per_video, key=per_video.get)[:10]
            assert g.tolist() == want, agg
            np.testing.assert_allclose(kk, [-per_video[v][0] for v in want], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def long_index(tmp_path_factory, fake_ckpt):
    """60 recordings of 300 frames, the approximate index chosen as `hvl index` chooses it."""
    emb, row_video, centres = long_videos([300] * 60, seed=4)
    root = write_long(tmp_path_factory.mktemp("long") / "idx", emb, row_video, fake_ckpt)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ann, "ANN_MIN_ROWS", 10_000)  # auto builds one at this small size
        meta = refresh_ann(root)
    return root, meta, text_like_queries(centres, 100, 5)


@pytest.mark.parametrize("agg", ["max", "topk-mean", "count"])
def test_search_finds_the_best_videos_when_each_holds_hundreds_of_frames(long_index, agg):
    """The approximate search returns the videos a full scan ranks first (recall@10 >= 0.95), with their exact
    scores and moments: a pool of the best frames would hold one or two of these recordings."""
    from hvl.core.search.ann_measure import exact_videos

    root, meta, queries = long_index
    idx, exact = load_index(root), load_index(root, use_ann=False)
    assert idx.ann is not None and "exact rescoring" in search(idx, queries[0], k=10, agg=agg)["method"]
    want, _ = exact_videos(idx.emb, idx.row_video, queries, k=10, agg=agg)
    hits = []
    for q, w in zip(queries, want):
        got = search(idx, q, k=10, agg=agg)["results"]
        truth = {r["video_id"]: r for r in search(exact, q, k=10, agg=agg)["results"]}
        assert list(truth) == [idx.videos[v]["video_id"] for v in w]  # exact search is the full scan
        hits.append(len(set(truth) & {r["video_id"] for r in got}) / 10)
        for r in got:  # whatever is returned is scored whole: exact best frame and moments (a count also depends
            if r["video_id"] in truth:  # on which other videos' frames were scored: the pool is the index's)
                key = "best_score" if agg == "count" else "score"
                assert r[key] == pytest.approx(truth[r["video_id"]][key], abs=2e-6)
                moments = truth[r["video_id"]]["moments"]
                assert [m["t"] for m in r["moments"]] == [m["t"] for m in moments]
                assert [m["score"] for m in r["moments"]] == pytest.approx([m["score"] for m in moments], abs=2e-6)
    assert np.mean(hits) >= 0.95, (meta["factory"], meta.get("pool_value"), np.mean(hits))


def test_the_chooser_widens_a_breadth_that_holds_only_on_its_tuning_queries():
    """A breadth tuned on one kind of query is checked on held-out queries of every family (perturbed frames,
    topic queries) against the full scan, and widened until they reach the target too: the recall recorded is
    the held-out one, which a search process then gets."""
    from hvl.core.search.ann_measure import Truth, measure_refined, query_families, topic_queries

    emb, row_video, _ = long_videos([300] * 60, seed=4)
    rng = np.random.default_rng(1)
    one_topic = Truth(emb, np.repeat(topic_queries(emb, row_video, rng, 1), 200, 0), row_video, 1000)
    held_queries, families = query_families(emb, row_video, rng)
    held = Truth(emb, held_queries, row_video, 1000, families)
    _, plain = measure_refined("IVF256,PQ16x4fs", emb, one_topic)
    _, rec = measure_refined("IVF256,PQ16x4fs", emb, one_topic, held=held)
    assert plain["video_recall_at_10"] >= TARGET_RECALL and plain["meets_target"]  # on its own queries: fine
    assert rec["widened_from"] == plain["pool_value"] < rec["pool_value"]
    assert set(rec["held_out_at_tuned"]) == {"perturbed", "topic", "all"}
    assert min(rec["held_out_at_tuned"].values()) < TARGET_RECALL  # what search would have got at that breadth
    assert min(rec["held_out_video_recall_at_10"].values()) >= TARGET_RECALL and rec["meets_target"]


def test_qdrant_gathers_videos_when_each_holds_hundreds_of_frames(tmp_path, monkeypatch):
    """The vector database's frame pool fills up with a few long videos too: it is searched again without the videos
    already found until enough are in, and reaches the full scan's top 10 (one pool alone does not)."""
    from hvl.core.search.ann_measure import exact_videos
    from hvl.core.search.backends import open_backend, qdrant

    emb, row_video, centres = long_videos([300] * 60, seed=4)
    videos = [{"video_id": f"r{i:04d}", "group": f"g{i % 3}", "key": "", "path": "",
               "t": [float(t) for t in range(300)]} for i in range(60)]
    queries = text_like_queries(centres, 40, 5)
    want, _ = exact_videos(emb, row_video, queries, 10)
    with open_backend(tmp_path, {"format": "hvl-frame-index", "version": 2, "dim": DIM, "backend": "qdrant"},
                      create=True) as be:
        be.add(videos, emb)

        def recall(**kw):
            hits = [be.search(q, k=10, moments=3, pool=300, **kw) for q in queries]
            for q, hs in zip(queries, hits):  # moments exact: each returned video's best frames
                for h in hs:
                    v = int(h.video_id[1:])
                    s = emb[row_video == v] @ q
                    assert [t for t, _ in h.moments] == np.argsort(-s, kind="stable")[:3].tolist()
            return np.mean([len({int(h.video_id[1:]) for h in hs} & set(w.tolist())) / 10 for hs, w in zip(hits, want)])

        assert recall() >= 0.95
        monkeypatch.setattr(qdrant, "GATHER_ROUNDS", 1)  # one pool of the 300 best frames: one or two videos
        assert recall() < 0.5, recall()


def test_topk_mean_rescores_the_pooled_videos_of_short_unclustered_videos(tmp_path, fake_ckpt, monkeypatch):
    """Frames of one video barely alike: a video's one or two pooled frames say little about its best three, so
    topk-mean rescores every pooled video of a short-video pool (20 of them, ranked by their pooled frames, held
    about half of the true top 10)."""
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10_000)
    emb = isotropic(1500, seed=4)
    root = write_index(tmp_path / "idx", videos_of(emb), fake_ckpt, DIM, shard_videos=500)
    refresh_ann(root, kind="fastscan")
    idx, exact = load_index(root), load_index(root, use_ann=False)
    queries = tuning_queries(emb, np.random.default_rng(7))[:60]
    for agg in ("max", "topk-mean"):
        hits = [len({r["video_id"] for r in search(idx, q, k=10, agg=agg)["results"]}
                    & {r["video_id"] for r in search(exact, q, k=10, agg=agg)["results"]}) / 10 for q in queries]
        assert np.mean(hits) >= 0.9, (agg, np.mean(hits))
