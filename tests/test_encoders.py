"""Encoders: the packaged text model with mean pooling and caching; HF vision models from a config."""
import pytest
import torch
from hvl.core.models.encoders import HFVisionEncoder, SmallCNN, TextEncoder, VideoEncoder, build_frame_encoder


@pytest.fixture(scope="module")
def frozen():
    return TextEncoder(freeze=True)


def test_packaged_minilm_loads_offline_and_is_semantic(frozen):
    e = torch.nn.functional.normalize(frozen(["the surgeon clips the cystic duct", "clips are put on the duct",
                                               "the weather is nice today"]), dim=-1)
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_mean_pooling_ignores_padding(frozen):
    alone = frozen._encode(["a short one"])
    batched = frozen._encode(["a short one", "a much longer sentence that forces padding of the first"])[0]
    torch.testing.assert_close(alone[0], batched, rtol=1e-4, atol=1e-5)


def test_frozen_cache_returns_same_vectors_without_recomputing(frozen):
    calls = []
    h = frozen.model.register_forward_hook(lambda *a: calls.append(1))
    frozen.clear_cache()
    first = frozen(["alpha", "beta", "alpha"])
    again = frozen(["beta", "alpha"])
    h.remove()
    assert len(calls) == 1  # one batch for the two unique strings, none for the repeat
    torch.testing.assert_close(again, first[[1, 0]])
    torch.testing.assert_close(first[0], frozen._encode(["alpha"])[0])
    assert not any(p.requires_grad for p in frozen.model.parameters())
    frozen.train()
    assert not frozen.model.training  # frozen encoder stays in eval mode (no dropout)


def test_trainable_text_encoder_gets_gradients():
    enc = TextEncoder(freeze=False)
    enc(["some narration"]).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.model.parameters())


def test_missing_text_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        TextEncoder(path=str(tmp_path / "nope"))


def test_hf_vision_encoder_from_config_and_video_encoder():
    cfg = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
           "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    enc = build_frame_encoder("hf", config=cfg)
    assert isinstance(enc, HFVisionEncoder) and enc(torch.randn(3, 3, 32, 32)).shape == (3, 32)
    video = VideoEncoder(frame_encoder={"name": "hf", "config": cfg}, temporal="transformer", temporal_heads=2)
    x = torch.randn(2, 5, 3, 32, 32)
    assert video.frame_features(x).shape == (2, 5, 32) and video(x).shape == (2, 32)
    with pytest.raises(ValueError, match="unknown"):
        build_frame_encoder("resnet9000")


def test_small_cnn_shapes():
    assert SmallCNN((8, 16)).dim == 16
    assert SmallCNN((8, 16), convs_per_stage=2)(torch.randn(4, 3, 32, 32)).shape == (4, 16)


def test_model_threads_are_chosen_by_the_measured_pace_of_zero_shot(monkeypatch):
    """Both thread counts are timed on a few chunks and the one with the shorter time per chunk is kept: fewer
    threads for a model that only steals the decoding workers' cores, all of them for a model the workers wait on;
    the choice is measured again later, and afterwards the caller's count is restored."""
    import torch
    from hvl.core.evaluation.zeroshot import CpuThreads

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    before = torch.get_num_threads()
    torch.set_num_threads(4)

    def run(th, pace, chunks):  # pace: thread count -> (loader wait, model time) of a chunk run with it
        seen = []
        for i in range(chunks):
            n = torch.get_num_threads()
            seen.append(th.step(*((3.0, 0.1) if i == 0 else pace[n])))
        return seen

    try:
        small = {4: (0.03, 0.05), 2: (0.05, 0.02)}          # 0.08 s a chunk with 4 threads, 0.07 with 2
        with CpuThreads("cpu", num_workers=2, probe=3, every=20) as th:
            seen = run(th, small, 12)
            assert seen[:3] == [4, 4, 4] and seen[3:6] == [2, 2, 2]   # the probes: full count, then the shared one
            assert seen[6:] == [2] * 6 and th.chosen == 2               # the shorter chunk wins
            large = {4: (0.0, 0.5), 2: (0.0, 0.9)}          # the workers wait on the model
            seen = run(th, large, 28)
            assert th.chosen == 4 and seen[-1] == 4 and torch.get_num_threads() == 4  # re-measured after 20 chunks
        assert torch.get_num_threads() == 4
        with CpuThreads("cpu", num_workers=0) as th:     # no workers: nothing to share
            assert th.step(1.0, 0.0) == 4 and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
