"""The pose stream as a model input: keypoints loaded beside the frames a sample reads (matched by time at the pose
stream's own fps), the pose encoder, per-frame fusion, per-stream losses, late fusion, and pose-only / fused
recipes trained by `hvl fit` and scored by `hvl retrieval`."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_index_video
from hvl.core.data.dataset import HierarchicalDataset, collate
from hvl.core.data.keypoints import KeypointTrack, TrackCache, keypoint_reader
from hvl.core.data.levels import Item, LevelConfig
from hvl.core.data.schema import ClipSegment, PoseSource, VideoRecord, load_manifest, write_manifest
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.retrieval import fuse_scores
from hvl.core.models.module import HierarchicalVLM
from hvl.core.models.pose import PoseEncoder, Streams
from hvl.domains.sign.pose_formats import PoseSequence, write_openpose_folder
from hvl.domains.sign.pose_layouts import OPENPOSE_137

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "sign"
SIGN = keypoint_reader("sign")
VIDEO_FPS, POSE_FPS = 10.0, 5.0
SMALL = {"frame_encoder": {"widths": [8, 16]}}


def counting_pose(n: int, fps: float) -> PoseSequence:
    """Neck at (50, 50), shoulders 20 px apart, the right hand's index tip ``frame`` px right of its wrist: after
    normalisation that tip's x is ``frame / 20`` in the keypoint features."""
    pts = np.full((n, 137, 2), np.nan, np.float32)
    conf = np.zeros((n, 137), np.float32)
    for k, xy in {1: (50, 50), 2: (40, 50), 5: (60, 50), 4: (30, 70), 7: (70, 70)}.items():   # neck, shoulders, wrists
        pts[:, k], conf[:, k] = xy, 0.9
    pts[:, 116], conf[:, 116] = (30, 70), 0.9                                                 # right wrist (hand)
    pts[:, 116 + 8, 0], pts[:, 116 + 8, 1], conf[:, 116 + 8] = 30 + np.arange(n), 70, 0.9     # right index tip
    return PoseSequence(pts, conf, fps, OPENPOSE_137, size=(100, 100))


TIP = 8 + 21 + 8   # the right index tip among the 50 feature points (8 body, 21 left hand, then the right hand)


@pytest.fixture
def posed(tmp_path):
    """Two 5 s index videos at 10 fps, the first with OpenPose JSON at 5 fps, the second without poses."""
    for vid in ("a", "b"):
        write_index_video(tmp_path / f"{vid}.mp4", n=50, fps=VIDEO_FPS)
    write_openpose_folder(tmp_path / "poses" / "a", "a", counting_pose(25, POSE_FPS))
    clip = [ClipSegment(start=1.0, end=4.0, texts=["hello"])]
    rows = [VideoRecord(video_id="a", path="a.mp4", texts=["a"], clips=clip,
                        pose=PoseSource(path="poses/a", fps=POSE_FPS)),
            VideoRecord(video_id="b", path="b.mp4", texts=["b"], clips=clip)]
    return load_manifest(write_manifest(tmp_path / "m.jsonl", rows))


def test_samples_carry_the_keypoints_shown_at_their_frames_times(posed):
    ds = HierarchicalDataset(posed, {"clip": LevelConfig(frames=6, batch_size=2)}, image_size=16, keypoints=SIGN)
    a, b = ds[(Item("clip", 0, 0), 0)], ds[(Item("clip", 1, 0), 0)]
    video = ds._video(posed.videos[0])
    frames = video.indices(1.0, 4.0, num=6)
    expected = [np.floor(video.time_of(i) * POSE_FPS + 1e-6) for i in frames]   # the pose frame shown then
    assert a["keypoints"].shape == (6, 100) and a["keypoint_mask"].shape == (6, 50)
    assert a["keypoints"].view(6, 50, 2)[:, TIP, 0].tolist() == pytest.approx([e / 20 for e in expected])
    assert a["keypoint_mask"][:, TIP].all() and not a["keypoint_mask"][:, 10].any()   # left hand never seen
    assert not b["keypoint_mask"].any() and not b["keypoints"].any()                   # no poses: all masked
    batch = collate([a, b])["clip"]
    assert batch["keypoints"].shape == (2, 6, 100) and batch["keypoint_mask"].shape == (2, 6, 50)


def test_track_frames_outside_the_pose_stream_are_masked():
    track = KeypointTrack(np.ones((4, 3, 2), np.float32), np.ones((4, 3), bool), fps=2.0, start=1.0)
    values, mask = track.at_times([0.5, 1.0, 2.9, 3.0])
    assert mask.all(1).tolist() == [False, True, True, False] and not values[[0, 3]].any()


def test_a_reader_whose_tracks_do_not_match_its_declared_size_is_refused(posed):
    bad = type(SIGN)(points=49, channels=2, load=SIGN.load)
    with pytest.raises(HVLInputError, match="'a'.*\\(49, 2\\)"):
        TrackCache(bad, posed.root).frames(posed.videos[0], [1.0], VIDEO_FPS)


def test_pose_encoder_ignores_masked_points_and_sees_which_are_masked():
    torch.manual_seed(0)
    enc = PoseEncoder(points=5, channels=2, dim=16, layers=1, heads=2).eval()
    x, mask = torch.randn(2, 4, 10), torch.rand(2, 4, 5) > 0.3
    noise = torch.randn(2, 4, 5, 2) * (~mask)[..., None]
    with torch.no_grad():
        out = enc(x, mask)
        assert torch.allclose(out, enc(x + noise.flatten(2), mask), atol=1e-6)   # a masked point's value: no effect
        assert not torch.allclose(out, enc(x, torch.ones_like(mask)), atol=1e-3)   # its being masked: an effect
    with pytest.raises(ValueError, match="model.pose.points"):
        enc(torch.randn(1, 4, 12), torch.ones(1, 4, 6, dtype=torch.bool))


def model(**pose) -> HierarchicalVLM:
    torch.manual_seed(0)
    return HierarchicalVLM(video_encoder=SMALL, embed_dim=16, levels=["clip", "video"], warmup_steps=1,
                           pose=pose or None)


def test_rgb_pose_and_fused_are_configs_of_one_module():
    rgb, pose, fused = model(), model(streams="pose", dim=32, layers=1), model(streams="fused", dim=32, layers=1)
    names = {k: {n.split(".")[1] for n in m.state_dict() if n.startswith("video.")} for k, m in
             (("rgb", rgb), ("pose", pose), ("fused", fused))}
    assert "pose" not in names["rgb"] and names["pose"] == {"pose"} and names["fused"] == {"pose", "rgb", "fusion"}
    assert rgb.keypoint_reader is None and pose.keypoint_reader is SIGN
    assert pose.video.dim == fused.video.dim == 32 and pose.preprocess is None
    assert rgb.hparams.pose is None and fused.hparams.pose["streams"] == "fused"   # plain values: weights_only loads


@pytest.mark.parametrize("bad, match", [({"streams": "pose", "stream_loss": 1.0}, "stream_loss"),
                                        ({"dim": 30, "heads": 4}, "multiple of heads"),
                                        ({"points": 49}, "points 49 .* 50")])
def test_bad_pose_settings_are_one_clear_error(bad, match):
    with pytest.raises(HVLInputError, match=match):
        _ = model(**bad).keypoint_reader


def batch(b: int = 4, t: int = 3, with_keypoints: bool = True) -> dict:
    g = torch.Generator().manual_seed(1)
    out = {"frames": torch.rand(b, t, 3, 16, 16, generator=g), "texts": [[f"w{i}", f"the sign w{i}"] for i in range(b)],
           "text_mask": torch.ones(b, 2, dtype=torch.bool)}
    if with_keypoints:
        out |= {"keypoints": torch.randn(b, t, 100, generator=g), "keypoint_mask": torch.ones(b, t, 50, dtype=torch.bool)}
    return out


def test_stream_losses_train_both_streams_of_a_fused_model():
    plain, seds = model(streams="fused", dim=32, layers=1), model(streams="fused", dim=32, layers=1, stream_loss=1.0)
    for m in (plain, seds):
        m._step({"clip": batch()}, "train").backward()
    assert torch.equal(plain.video.fusion.rgb.weight, seds.video.fusion.rgb.weight)   # same start
    # only the fused output reaches the loss of `plain`; `seds` also trains the pose and RGB projections directly
    g_plain, g_seds = plain.video.fusion.pose.weight.grad, seds.video.fusion.pose.weight.grad
    assert g_plain is not None and g_seds is not None and not torch.allclose(g_plain, g_seds)


def test_a_pose_model_given_frames_only_says_what_is_missing():
    with pytest.raises(HVLInputError, match="keypoints"):
        model(streams="pose")._step({"clip": batch(with_keypoints=False)}, "train")
    fused = model(streams="fused", dim=32, layers=1)
    with pytest.raises(ValueError, match="frames as well"):
        fused.video(Streams(None, torch.zeros(1, 2, 100), torch.ones(1, 2, 50, dtype=torch.bool)))


def test_late_fusion_standardises_each_models_scores():
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    z = fuse_scores([a])
    assert z.mean().abs() < 1e-6 and z.std() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(fuse_scores([a, b]), fuse_scores([100 * a + 3, b / 50]), atol=1e-5)   # scale-free
    assert torch.allclose(fuse_scores([a, b], [1.0, 0.0]), z, atol=1e-6)
    with pytest.raises(ValueError):
        fuse_scores([a, torch.randn(5, 6)])


@pytest.mark.slow
def test_fit_trains_the_pose_and_fused_recipes_and_retrieval_reports_each(tmp_path, monkeypatch):
    from hvl.core.cli import main
    from hvl.domains.sign.demo import generate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    generate("data/demo_sign", seed=0, per_sentence={"train": 1, "val": 1, "test": 1}, n_val=2, n_test=4, size=24,
             progress=False)
    for recipe, folder, streams in (("pose", "sign_pose", "pose"), ("fused", "sign_fused", "fused")):
        assert main(["fit", "--config", str(RECIPES / f"{recipe}.yaml"), "--trainer.max_steps", "2",
                     "--trainer.max_epochs", "1", "--data.init_args.steps_per_epoch", "2",
                     "--data.init_args.num_workers", "0", "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false"]) == 0
        ckpt = tmp_path / "checkpoints" / folder / "last.ckpt"
        assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["pose"]["streams"] == streams
        assert main(["retrieval", "--config", str(RECIPES / "demo_retrieval.yaml"), "--ckpt", str(ckpt),
                     "--json", f"{recipe}.json", "--no-progress", "--no-mlflow"]) == 0
        m = json.loads((tmp_path / f"{recipe}.json").read_text())
        assert m["streams"] == streams and m["n_videos"] == 4 and 0 <= m["t2v_r1"] <= 100


@pytest.fixture(scope="module")
def sign_archive(tmp_path_factory):
    """Three demo sign videos with their poses beside them (How2Sign-style JSON and .pose), and an untrained fused
    checkpoint saved as `hvl fit` saves one."""
    from hvl.domains.sign.demo import generate

    root = tmp_path_factory.mktemp("archive")
    generate(root / "demo", seed=0, per_sentence={"train": 0, "val": 0, "test": 1}, n_val=2, n_test=3, size=24,
             progress=False)
    m = model(streams="fused", dim=32, layers=1)
    ckpt = root / "fused.ckpt"
    torch.save({"state_dict": {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")},
                "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": 32}}, ckpt)
    return root, ckpt


@pytest.mark.slow
def test_index_search_and_serve_a_sign_archive_with_poses(sign_archive, tmp_path, capsys):
    """The index stores each frame's fused embedding (its pixels and the keypoints found beside its video), and
    `hvl search` / `hvl serve` search it with the pose-aware model."""
    from fastapi.testclient import TestClient
    from hvl.core.cli import main
    from hvl.core.cli.serve import add_arguments, build
    from hvl.core.models.checkpoint import load_model
    from hvl.core.search.index import VideoFrames, build_index
    from hvl.core.search.query import load_index
    from hvl.core.search.videos import scan_videos
    from hvl.domains.sign.pose_normalise import video_keypoints
    from serve_helpers import LOCAL

    root, ckpt = sign_archive
    videos, out = root / "demo" / "videos", tmp_path / "index"
    result = build_index(videos, ckpt, out, fps=2.0, num_workers=0, progress=False, accelerator="cpu")
    assert result["indexed"] == 3 and result["skipped"] == 0
    idx = load_index(out)
    net, _ = load_model(ckpt)
    net.eval()
    first = scan_videos(videos)[0]
    row = next(v for v in idx.videos if v["key"] == first.key)
    rows = slice(row["start"], row["start"] + row["n"])
    times = idx.row_time[rows]
    chunk = next(iter(VideoFrames([first], 2.0, _preprocess(), 64, keypoints=SIGN)))
    assert chunk["keypoint_mask"].any(1).float().mean() > 0.8   # the signer is found (but for the demo's dropouts)
    track = video_keypoints(Path(first.path), 10.0)
    assert torch.equal(chunk["keypoints"], torch.from_numpy(track.at_times(times)[0].reshape(len(times), -1)))
    with torch.no_grad():
        fused = torch.nn.functional.normalize(net.embed_frames(chunk["frames"], "clip", chunk["keypoints"],
                                                               chunk["keypoint_mask"]), dim=-1)
        blind = torch.nn.functional.normalize(net.embed_frames(chunk["frames"], "clip"), dim=-1)
    stored = torch.from_numpy(np.asarray(idx.emb[rows], np.float32))
    assert torch.allclose(stored, fused, atol=3e-3) and not torch.allclose(stored, blind, atol=3e-2)
    idx.close()

    sentence = load_manifest(root / "demo" / "test.jsonl").videos[0].texts[0]
    capsys.readouterr()
    assert main(["search", sentence, "--index", str(out), "--json", "-"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found["results"]) == 3

    p = argparse.ArgumentParser()
    add_arguments(p)
    app = build(p.parse_args(["--index", str(out), "--queries", str(tmp_path / "queries.yaml"),
                              "--cache", str(tmp_path / "thumbs")]))
    client = TestClient(app, base_url=LOCAL)
    r = client.post("/api/search", json={"query": sentence, "k": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3


def _preprocess():
    from hvl.core.data.transforms import Preprocess

    return Preprocess.square(32)
