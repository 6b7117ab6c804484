"""The benchmark scripts keep running: each prints one JSON object with the keys the README reports."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run_bench(script: str, *args: str, timeout: int) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # stdout is exactly one JSON object


def test_gpu_train_tiny_runs_on_cpu():
    out = run_bench("gpu_train.py", "--tiny", "--steps", "2", timeout=60)
    assert out["benchmark"] == "gpu_train" and out["config"]["tiny"]
    assert {"cpu_count", "torch", "device"} <= set(out["machine"])
    for key in ("samples_per_s", "images_per_s", "step_time_ms", "flops_per_step_per_device", "mfu", "ddp"):
        assert key in out, key
    assert out["samples_per_s"] > 0 and out["flops_per_step_per_device"] > 0 and out["mfu"] > 0


def test_data_quick_reports_ratios(tmp_path):
    args = ["--quick", "--work", str(tmp_path), "--sets", "demo"]
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        args.append("--no-ffmpeg")
    out = run_bench("data.py", *args, timeout=400)  # generous: CI machines are shared
    demo = out["sets"]["demo"]
    assert demo["pipelines"]["hvl"]["samples_per_s"] > 0 and demo["pipelines"]["raw_decord"]["samples_per_s"] > 0
    assert demo["ratio_hvl_vs_raw_decord"] > 0
    assert "ratio_hvl_vs_ffmpeg" in demo
    if out["ffmpeg_baseline"] == "measured":
        assert demo["ratio_hvl_vs_ffmpeg"] > 0
    else:
        assert demo["ratio_hvl_vs_ffmpeg"] is None


def test_search_quick_measures_every_candidate_on_every_shape():
    out = run_bench("search.py", "--quick", timeout=300)  # ~60 s alone; generous: CI machines are shared
    assert out["benchmark"] == "search" and out["quick"] and set(out["shapes"]) == {"clustered", "per_video", "isotropic"}
    assert len(out["machine"]["load_average"]) == 3
    for name, shape in out["shapes"].items():
        assert shape["data"]["rows"] == 10_000 and shape["data"]["shape"] == name
        for base in ("exact_flat", "exact_search"):
            assert 0 < shape[base]["p50_ms"] <= shape[base]["p95_ms"], (name, base)
        measured = [c for c in shape["candidates"] if "tuned" in c]
        kinds = {c["tuned"]["kind"] for c in measured}
        assert kinds == {"ivf", "ivfpq", "hnsw", "fastscan", "two_stage"}, (name, kinds)  # 10k rows: nothing skipped
        assert any("SQ8" in c["factory"] for c in measured) and len({c["factory"] for c in measured}) == len(measured)
        for c in measured:
            t, fs, vs = c["tuned"], c["frame_search"], c["video_search"]
            assert t["build_seconds"] > 0 and t["index_bytes"] > 0 and t["build_peak_rss_delta_mib"] >= 0
            assert t["param"] in ("nprobe", "efSearch", "pool", "videos") and 1 <= t["value"] <= t["pool_value"]
            for rec in (t["recall_at_10"], t["video_recall_at_10"], fs["recall_at_10"], vs["video_recall_at_10_vs_exact"]):
                assert 0.0 <= rec <= 1.0
            assert 0 < fs["p50_ms"] <= fs["p95_ms"] and 0 < vs["p50_ms"] <= vs["p95_ms"]
            assert vs["recall_queries"] == shape["data"]["queries"] == 30  # every query against the full scan
            assert isinstance(shape["meets_target"][c["factory"]], bool)
        ok = [c for c in measured if c["tuned"]["meets_target"] and c["tuned"]["within_memory"]]
        if ok:  # the one hvl index keeps: the fastest measured among those reaching the target
            assert shape["chosen"] == min(ok, key=lambda c: (c["tuned"]["p50_ms"], c["tuned"]["index_bytes"]))["factory"]
        else:
            assert shape["chosen"] is None


def test_search_scale_quick_searches_from_disk_in_its_own_process(tmp_path):
    out = run_bench("search_scale.py", "--quick", "--hard-shapes", "isotropic", "--work", str(tmp_path), timeout=400)
    assert out["benchmark"] == "search_scale"
    # the long-video shape: 100 videos of 200 frames, whose best frames are a few videos'
    assert [(r["shape"], r["frames_per_video"]) for r in out["runs"]] == [("clustered", 10), ("isotropic", 10),
                                                                         ("per_video", 200)]
    for r in out["runs"]:
        s = r["search"]
        assert r["rows"] == 20_000 and 0 < s["p50_ms"] <= s["p95_ms"] and s["queries"] == 100
        # against the full scan; the chosen index reached 0.95 on its tuning and held-out queries
        assert 0.9 <= s["video_recall_at_10"] <= 1.0
        assert min(r["ann"]["held_out_video_recall_at_10"].values()) >= 0.95
        assert s["rss_anon_mib"] > 0 and s["search_many_qps"] > 0 and s["one_at_a_time_qps"] > 0
        assert "exact rescoring" in s["method"] and r["ann"]["factory"] in s["method"]
    for r in out["runs"][1:]:  # the shapes measured against a fast-scan pass
        assert r["search"]["bound"]["p50_ms"] > 0 and r["search"]["p50_over_bound"] > 0


def test_rescore_quick_times_both_ways_on_the_same_rows(tmp_path):
    out = run_bench("rescore.py", "--quick", "--work", str(tmp_path), timeout=300)  # ~6 s
    assert out["benchmark"] == "rescore" and out["config"]["baseline"] == "gather"
    assert [(r["frames_per_video"], r["videos"]) for r in out["shapes"]] == [(600, 20), (3600, 20), (10, 20)]
    for r in out["shapes"]:
        assert r["gather_ms"] > 0 and r["in_place_ms"] > 0 and r["speedup"] > 0
        assert r["max_abs_diff"] <= 1e-6  # the same scores, to float32's last bit
    assert not any(tmp_path.rglob("*.npy"))  # its shards are removed


def test_reference_pool_quick_bounds_the_rank_of_the_10th_videos_best_frame(tmp_path):
    """The pre-issue-35 reference (videos of a frame pool) against the full scan: for `max` on 10-frame videos
    the 10th video's best frame is within the first 9 x 10 + 1 frames, so a 1,000-frame pool agrees exactly."""
    out = run_bench("reference_pool.py", "--quick", "--shapes", "per_video", "--work", str(tmp_path), timeout=300)
    r = out["shapes"]["per_video"]
    assert r["max_frames"] == 10 and r["bound_rank_max"] == 91
    assert 1 <= r["aggs"]["max"]["tenth_best_frame_rank"]["max"] <= 91
    for agg in ("max", "count"):
        assert r["aggs"][agg]["pool=1000"] == {"agreement": 1.0, "queries_equal": 1.0, "worst_query": 1.0}
    assert 0 <= r["aggs"]["topk-mean"]["pool=1000"]["agreement"] <= 1.0


def test_decoders_quick_reports_ratios(tmp_path):
    out = run_bench("decoders.py", "--quick", "--repeats", "1", "--work", str(tmp_path), timeout=300)
    b = out["backends"]
    assert b["decord"]["segments_frames_per_s"] > 0 and b["pyav"]["sequential_frames_per_s"] > 0
    assert set(b["ratio_pyav_vs_decord"]) == {"segments_frames_per_s", "sequential_frames_per_s"}
    runs = out["long_video"]["runs"]
    # 6 s at 1 fps: every pattern keeps the same 6 frames, and says how its memory went
    assert {r["frames"] for r in runs.values()} == {6}
    assert all(r["rss_mb"]["peak"] >= r["rss_mb"]["start"] > 0 for r in runs.values())
    assert out["long_video"]["ratio_hvl_decord_vs_sequential"] > 0


def test_serve_load_quick_reports_latency_and_no_errors(tmp_path):
    out = run_bench("serve_load.py", "--quick", "--work", str(tmp_path), timeout=300)
    assert out["benchmark"] == "serve_load" and out["config"]["clients"] == 2 and out["config"]["queries"] == 20
    for run in ("in_process", "http_1_client", "http_concurrent"):
        assert 0 < out[run]["p50_ms"] <= out[run]["p95_ms"], run
    assert out["http_concurrent"]["requests"] == 20 and out["http_concurrent"]["errors"] == 0
    assert out["no_request_failed"] is True and out["ratios"]["http_1_client_p50_vs_in_process"] > 0


def test_feature_cache_quick_trains_the_same_from_cached_features(tmp_path):
    out = run_bench("feature_cache.py", "--quick", "--work", str(tmp_path), timeout=300)
    assert out["decoding"]["steps"] == out["cache_reused"]["steps"] == 4
    assert out["same_final_loss_within"] < 1e-2   # the same model and batches: only float16 storage differs
    assert out["ratio_steps_per_s_cached_vs_decoding"] > 0


def test_hierarchy_quick_reports_every_scheme_above_chance(tmp_path):
    out = run_bench("hierarchy.py", "--quick", "--work", str(tmp_path), timeout=400)  # ~100 s on 2 shared cores
    assert out["benchmark"] == "hierarchy" and out["quick"] and out["config"]["seeds"] == [0, 1]
    assert out["config"]["preset"]["name"] == "default" and out["config"]["steps_per_fit"] == 40
    schemes = out["schemes"]
    assert list(schemes) == ["clip", "clip+phase", "clip+phase+video", "clip+phase+video+smooth"]
    assert {lv: s["levels"] for lv, s in schemes.items()}["clip+phase"] == ["clip", "phase"]
    for name, s in schemes.items():
        assert set(s["spaces"]) == set(s["levels"]), name  # one entry per embedding space the model has
        assert s["fit_wall_s"]["mean"] > 0 and len(s["fit_wall_s"]["per_seed"]) == 2
        for space in s["spaces"].values():
            for m in ("accuracy", "f1_macro", "jaccard"):
                assert 0 <= space[m]["mean"] <= 1 and space[m]["std"] >= 0 and len(space[m]["per_seed"]) == 2
                ci = space["vs_clip_only"][m]
                assert ci["lo"] <= ci["delta"] <= ci["hi"]
        assert s["spaces"][s["primary_space"]]["accuracy"]["mean"] > out["chance"], (name, s["spaces"])
    clip_only = schemes["clip"]["spaces"]["clip"]["vs_clip_only"]
    assert all(v == {"delta": 0.0, "lo": 0.0, "hi": 0.0} for v in clip_only.values())  # paired with itself
    # the smoothed row re-evaluates the same fits: same wall time, different predictions
    assert schemes["clip+phase+video+smooth"]["fit_wall_s"] == schemes["clip+phase+video"]["fit_wall_s"]
    assert schemes["clip+phase+video+smooth"]["smoothed"] and not schemes["clip+phase+video"]["smoothed"]
    for s in schemes.values():  # the transfer test sets: the same metrics for every space
        for v in s["spaces"].values():
            assert 0 <= v["centre_b"]["accuracy"]["mean"] <= 1 and 0 <= v["hysterectomy"]["jaccard"]["mean"] <= 1
            ci = v["hysterectomy"]["vs_clip_only"]["accuracy"]
            assert ci["lo"] <= ci["delta"] <= ci["hi"]
    assert schemes["clip"]["spaces"]["clip"]["hysterectomy"]["vs_clip_only"]["f1_macro"]["delta"] == 0.0
    # the other procedure is scored with its own prompt file (AutoLaparo's seven phase names)
    assert out["prompts_per_test_set"]["hysterectomy"] == "surgical:demo_hysterectomy"
    assert out["n_test_videos"] == {"test": 2, "centre_b": 2, "hysterectomy": 2}
    assert all(0 < m < 1 for m in out["majority_per_test_set"].values())


def test_hierarchy_preset_set_ablates_one_property_on_its_own_data(tmp_path, monkeypatch):
    from hvl.core.data.schema import load_manifest
    from hvl.domains.surgical.presets import PRESETS, DemoPreset

    monkeypatch.syspath_prepend(str(BENCH))
    import hierarchy

    assert hierarchy.parse_preset_set(["narration_rate=1.0", "lookalike={}", "name=dense"]) == {
        "narration_rate": 1.0, "lookalike": {}, "name": "dense"}
    dense = PRESETS["realistic"].model_copy(update={"narration_rate": 1.0})
    a, _ = hierarchy.make_data(tmp_path, "realistic", True, 0, test_only=True)
    b, _ = hierarchy.make_data(tmp_path, dense, True, 0, test_only=True)
    assert a.name == "data_realistic_quick_0" and b.name.startswith("data_realistic-") and a != b
    assert DemoPreset.model_validate_json((b / "preset.json").read_text()) == dense
    clips = [sum(len(v.clips) for v in load_manifest(d / "test.jsonl").videos) for d in (a, b)]
    assert clips[1] > 1.3 * clips[0]  # every clip window narrated vs ~60 % of them
    h, _ = hierarchy.make_data(tmp_path, "realistic", True, 2, test_only=True, procedure="hysterectomy")
    assert h.name == "data_realistic_hysterectomy_quick_2"


def test_zeroshot_quick_compares_end_to_end_with_both_stages(tmp_path):
    out = run_bench("zeroshot.py", "--quick", "--work", str(tmp_path), timeout=300)
    frames = {out[k]["frames"] for k in ("decode_only", "model_only", "end_to_end")}
    assert len(frames) == 1 and frames.pop() > 0   # the three runs classify the same frames
    assert out["slower_stage"] in ("decode", "model")
    slower = min(out["decode_only"]["frames_per_s"], out["model_only"]["frames_per_s"])
    assert out["ratio_end_to_end_vs_slower_stage"] == round(out["end_to_end"]["frames_per_s"] / slower, 3)
    assert 0 < out["shared_cpu_bound_frames_per_s"] < slower


def test_index_memory_quick_reports_peak_memory_against_loading_the_model(tmp_path):
    out = run_bench("index_memory.py", "--quick", "--work", str(tmp_path), timeout=300)
    base, idx = out["baseline_load_model_only"], out["hvl_index"]
    assert out["frames_indexed"] > 0 and out["embedding_dim"] == 64
    for run in (base, idx):
        assert 0 < run["peak_pss_tree_mib"] <= run["peak_rss_summed_tree_mib"] + 1 and run["peak_rss_main_mib"] > 0
    assert idx["peak_rss_main_mib"] > base["peak_rss_main_mib"] * 0.5 and out["ratio_tree_pss_vs_baseline"] > 0


def test_ladder_quick_scores_every_rung_in_each_space_paired_with_zeroshot(tmp_path):
    out = run_bench("ladder.py", "--quick", "--work", str(tmp_path), timeout=400)  # ~40 s on 2 shared cores
    assert out["benchmark"] == "ladder" and out["quick"] and out["config"]["seeds"] == [0]
    assert out["config"]["preset"] == "realistic" and not out["fits"][0]["reused"]
    rungs = out["config"]["rungs"]
    assert rungs[0] == "zero-shot" and rungs[-1] == "temporal head" and len(rungs) == 11
    assert set(out["sets"]) == {"test", "hysterectomy"}
    assert out["sets"]["hysterectomy"]["prompts"] == "surgical:demo_hysterectomy"
    for name, s in out["sets"].items():
        rows = s["rows"]
        assert [(r["level"], r["rung"]) for r in rows] == [(lv, r) for lv in ("clip", "phase") for r in rungs], name
        for r in rows:
            for m in ("accuracy", "f1_macro", "jaccard"):
                assert 0 <= r[m]["mean"] <= 1 and r[m]["n"] == 1
                ci = r["vs_zeroshot"][m]
                assert ci["lo"] <= ci["delta"] <= ci["hi"]
            assert ("phase_vs_clip" in r) == (r["level"] == "phase")
        zero = [r for r in rows if r["rung"] == "zero-shot"]
        assert all(v == {"delta": 0.0, "lo": 0.0, "hi": 0.0} for r in zero for v in r["vs_zeroshot"].values())
        probe = next(r for r in rows if r["level"] == "phase" and r["rung"] == "linear probe, 100% of videos")
        assert probe["accuracy"]["mean"] > s["chance"], name  # labels teach even a 40-step model


def test_temporal_quick_measures_every_method_at_every_length():
    out = run_bench("temporal.py", "--quick", timeout=300)  # seconds of work; imports on a busy machine are slow
    assert out["benchmark"] == "temporal" and out["quick"] and out["config"]["lengths"] == [16, 64]
    assert len(out["machine"]["load_average"]) == 3
    assert set(out["methods"]) == set(out["growth"]) == {"mean", "full", "windowed", "windowed_dense_mask"}
    for method, rows in out["methods"].items():
        assert set(rows) == {"16", "64"}, method
        for row in rows.values():
            for mode in ("inference", "train"):
                assert row[mode]["ms"] > 0 and (row[mode]["peak_mib"] is None or row[mode]["peak_mib"] >= 0)
        assert set(out["growth"][method]) == {"inference_time", "inference_memory", "train_time", "train_memory"}
        assert out["growth"][method]["train_time"]["fit"] is not None  # times are always > 0


def test_sign_pose_quick_scores_every_stream_with_paired_cis_noise_and_cost(tmp_path):
    out = run_bench("sign_pose.py", "--quick", "--work", str(tmp_path), timeout=400)  # ~60 s alone, ~90 s generating
    assert out["benchmark"] == "sign_pose" and out["quick"] and out["config"]["seeds"] == [0]
    assert set(out["streams"]) == {"rgb", "pose", "fused", "late"} and "vs_rgb" not in out["streams"]["rgb"]
    for name, s in out["streams"].items():
        assert s["best_space"] in ("clip", "video")
        for space in s["spaces"].values():
            assert all(0 <= space[m]["mean"] <= 100 for m in ("t2v_r1", "t2v_r5", "v2t_r1", "v2t_r5"))
            assert 1 <= space["t2v_medr"]["mean"] <= out["config"]["test_sentences"]
        for k, ci in s.get("vs_rgb", {}).items():
            assert ci["lo"] <= ci["mean"] <= ci["hi"], (name, k)
    assert set(out["robustness"]["rows"]) == {"0", "4"}
    assert set(out["cost"]) == {"rgb", "pose", "fused"}
    assert all(c["train_s"]["mean"] > 0 and c["score_ms_per_video"]["mean"] > 0 for c in out["cost"].values())


def test_predict_memory_quick_measures_both_lengths(tmp_path):
    out = run_bench("predict_memory.py", "--quick", "--work", str(tmp_path), timeout=600)
    assert out["benchmark"] == "predict_memory" and out["quick"] and out["config"]["lengths_min"] == [1, 6]
    assert [r["frames"] for r in out["runs"]] == [60, 360]
    assert all(r["peak_rss_main_mib"] > 0 for r in out["runs"]) and out["ratio_peak_rss_long_vs_short"]["window_None"] > 0


def test_onnx_cpu_quick_times_onnxruntime_and_torch_on_the_same_inputs(tmp_path):
    out = run_bench("onnx_cpu.py", "--quick", "--work", str(tmp_path), timeout=600)  # two exports; shared machines
    assert out["benchmark"] == "onnx_cpu" and out["quick"] and "onnxruntime" in out["machine"]
    assert set(out["models"]) == {"demo", "clip_b32"}
    for name, m in out["models"].items():
        assert m["export_parity_max_abs_diff"] <= 1e-4, name
        for call in ("frames", "texts"):
            r = m[call]
            assert 0 < r["torch"]["p50_ms"] <= r["torch"]["p95_ms"] and 0 < r["onnxruntime"]["p50_ms"], (name, call)
            assert r["ratio_torch_over_onnxruntime"] > 0 and r["max_abs_diff"] <= 1e-4, (name, call)


def test_long_video_level_quick_reports_ratios_against_the_64_frame_level(tmp_path):
    out = run_bench("long_video_level.py", "--quick", "--work", str(tmp_path), timeout=500)  # ~2 min at load 20
    assert out["benchmark"] == "long_video_level" and out["quick"]
    base, longer = out["settings"]
    assert (base["frames"], base["temporal"]) == (64, "mean") and longer["frames"] > 64
    assert base["ratio_steps_per_s"] == 1.0 and longer["steps_per_s"] > 0 and longer["ratio_max_rss"] > 0


def test_online_quick_reports_latency_and_the_cost_of_causality(tmp_path):
    out = run_bench("online.py", "--quick", "--work", str(tmp_path), timeout=600)  # a fit and two predictions
    assert out["benchmark"] == "online" and out["quick"] and out["config"]["preset"] == "realistic"
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] and lat["frames"] > 0
    for mode in ("offline", "online"):
        for metric in ("accuracy", "f1_macro"):
            assert 0.0 <= out["accuracy"][mode][metric]["mean"] <= 1.0, (mode, metric)
    cost = out["accuracy"]["cost"]["accuracy"]["mean"]
    assert cost == out["accuracy"]["offline"]["accuracy"]["mean"] - out["accuracy"]["online"]["accuracy"]["mean"]
    assert 0.0 <= out["agreement"]["mean"] <= 1.0 and len(out["per_seed"]) == 1


def test_long_form_quick_scores_every_encoder_and_loss_with_paired_cis(tmp_path):
    out = run_bench("long_form.py", "--quick", "--work", str(tmp_path), timeout=900)  # 6 tiny fits on long videos
    assert out["benchmark"] == "long_form" and out["quick"] and out["config"]["seeds"] == [0]
    assert set(out["settings"]) == {f"{e}/{lo}" for e in ("mean", "full", "windowed") for lo in ("off", "on")}
    for name, s in out["settings"].items():
        for key in ("p2v_r1", "moment_r1_iou0.5", "phase_acc"):
            assert 0 <= s["score"][key]["mean"] <= 100 and s["score"][key]["n_videos"] == 3, (name, key)
            d = s["vs_baseline"][key]
            assert d["lo"] <= d["mean"] <= d["hi"]
    assert out["settings"]["mean/off"]["vs_baseline"]["p2v_r1"]["mean"] == 0.0
