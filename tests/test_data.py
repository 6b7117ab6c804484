"""The level-schedule sampler: schedule, DDP sharding, determinism; collation of mixed-level batches."""
import torch
from hvl.core.data.datamodule import Item, LevelConfig, LevelScheduleSampler, collate


def _items(n_clip=40, n_phase=12, n_video=6):
    return {"clip": [Item("clip", i // 4, i % 4) for i in range(n_clip)],
            "phase": [Item("phase", i // 2, i % 2) for i in range(n_phase)],
            "video": [Item("video", i, 0) for i in range(n_video)]}


LEVELS = {"clip": LevelConfig(frames=4, batch_size=4, every=1),
          "phase": LevelConfig(frames=8, batch_size=3, every=3),
          "video": LevelConfig(frames=16, batch_size=2, every=5)}


def _levels_per_step(batches):
    return [sorted({k[0].level for k in b}) for b in batches]


def test_schedule_trains_each_level_at_its_interval():
    s = LevelScheduleSampler(_items(), LEVELS, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 10  # 40 clips / 4
    steps = _levels_per_step(batches)
    for i, lv in enumerate(steps):
        assert lv == sorted({"clip"} | ({"phase"} if i % 3 == 0 else set()) | ({"video"} if i % 5 == 0 else set()))
    for b in batches:
        sizes = {lv: sum(k[0].level == lv for k in b) for lv in ("clip", "phase", "video")}
        assert sizes["clip"] == 4 and sizes["phase"] in (0, 3) and sizes["video"] in (0, 2)
    # the schedule continues across epochs (global step), it does not restart
    s.set_epoch(1)
    assert _levels_per_step(list(s))[:3] == [["clip", "video"], ["clip"], ["clip", "phase"]]  # global steps 10, 11, 12
    # every clip is seen exactly once per epoch
    s.set_epoch(0)
    seen = [k[0] for b in s for k in b if k[0].level == "clip"]
    assert sorted(seen, key=lambda i: (i.video, i.segment)) == _items()["clip"]


def test_seeded_and_reshuffled_per_epoch():
    a, b = LevelScheduleSampler(_items(), LEVELS, seed=3), LevelScheduleSampler(_items(), LEVELS, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)


def test_ranks_get_disjoint_equal_shards_of_the_same_global_batch():
    shards = [list(LevelScheduleSampler(_items(), LEVELS, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5
    for b0, b1 in zip(*shards):
        assert _levels_per_step([b0]) == _levels_per_step([b1])
        for lv in ("clip", "phase", "video"):
            k0 = [k for k in b0 if k[0].level == lv]
            k1 = [k for k in b1 if k[0].level == lv]
            assert len(k0) == len(k1)  # same batch shape on every rank, as gathered negatives need
            assert not {k[0] for k in k0} & {k[0] for k in k1}
    single = list(LevelScheduleSampler(_items(), {**LEVELS, "clip": LevelConfig(batch_size=8)}, seed=0))
    union = [sorted(k[0].segment + 10 * k[0].video for k in b0 + b1 if k[0].level == "clip")
             for b0, b1 in zip(*shards)]
    assert union == [sorted(k[0].segment + 10 * k[0].video for k in b if k[0].level == "clip") for b in single]


def test_batch_is_clipped_to_available_samples_and_rejects_singletons():
    s = LevelScheduleSampler(_items(n_video=3), LEVELS, seed=0, world_size=1)
    assert s.batch["video"] == 2
    import pytest
    from hvl.core.errors import HVLInputError
    with pytest.raises(HVLInputError, match=">= 2 in all and >= 1 per device"):
        LevelScheduleSampler(_items(n_video=3), LEVELS, world_size=4)
    with pytest.raises(HVLInputError, match="level 'video' has 1 sample"):
        LevelScheduleSampler(_items(n_video=1), LEVELS, world_size=1)


def test_two_samples_on_two_devices_make_one_global_batch():
    """A 2-video validation set on 2 devices: one sample per rank, both videos in the (gathered) batch."""
    shards = [list(LevelScheduleSampler(_items(n_video=2), LEVELS, shuffle=False, rank=r, world_size=2))
              for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) >= 1
    for b0, b1 in zip(*shards):
        v0 = [k[0] for k in b0 if k[0].level == "video"]
        v1 = [k[0] for k in b1 if k[0].level == "video"]
        if v0 or v1:
            assert len(v0) == len(v1) == 1 and {v0[0].video, v1[0].video} == {0, 1}


def test_collate_groups_levels_and_pads_texts():
    f = lambda t: torch.zeros(t, 3, 8, 8)  # noqa: E731
    batch = collate([
        {"level": "clip", "frames": f(4), "texts": ["a", "b"]},
        {"level": "clip", "frames": f(4), "texts": ["c"]},
        {"level": "phase", "frames": f(8), "parent": "p", "children": ["x", "y", "z"]},
        {"level": "phase", "frames": f(8), "parent": "q", "children": ["w"]},
    ])
    assert set(batch) == {"clip", "phase"}
    assert batch["clip"]["frames"].shape == (2, 4, 3, 8, 8)
    assert batch["clip"]["texts"] == [["a", "b"], ["c", ""]]
    assert batch["clip"]["text_mask"].tolist() == [[True, True], [True, False]]
    assert batch["phase"]["children"][1] == ["w", "", ""] and batch["phase"]["child_mask"].sum().item() == 4


def test_level_dataloader_yields_one_level(tmp_path):
    from hvl.core.data.datamodule import HVLDataModule
    from hvl.domains.surgical.demo import generate

    out = generate(tmp_path / "d", n_train=2, n_val=0, n_test=0, progress=False)
    dm = HVLDataModule(out["manifests"]["train"], num_workers=0,
                       schedule={"clip": {"frames": 2, "batch_size": 4}, "phase": {"frames": 3, "batch_size": 4, "every": 2}})
    dm.setup("fit")
    batches = list(dm.level_dataloader("phase"))
    assert batches and all(set(b) == {"phase"} for b in batches)
    b = batches[0]["phase"]
    assert b["frames"].shape[:3] == (4, 3, 3) and len(b["parent"]) == 4
    assert b["frames"].dtype == torch.uint8 and b["affine"].shape == (4, 3, 2)  # normalised on the device
    assert b["child_mask"][:, 0].all()  # every phase has at least one narration under it


def test_per_video_keeps_a_videos_samples_in_one_batch():
    # 10 videos x 4 clips, batches of 4, per_video 2: each batch = 2 pairs, each pair from one video
    levels = {"clip": LevelConfig(batch_size=4, per_video=2)}
    s = LevelScheduleSampler({"clip": _items()["clip"]}, levels, seed=0)
    batches = list(s)
    for b in batches:
        videos = sorted(k[0].video for k in b)
        assert videos[0] == videos[1] and videos[2] == videos[3], videos
    seen = sorted((k[0] for b in batches for k in b), key=lambda i: (i.video, i.segment))
    assert seen == _items()["clip"]  # still every sample once per epoch
    plain = list(LevelScheduleSampler({"clip": _items()["clip"]}, {"clip": LevelConfig(batch_size=4)}, seed=0))
    assert sum(len({k[0].video for k in b}) == 4 for b in plain) > sum(len({k[0].video for k in b}) == 4 for b in batches)
