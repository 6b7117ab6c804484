"""Checkpoints: atomic writes, safe loading."""
import pytest
import torch
from hvl.core.errors import HVLInputError
from hvl.core.models.checkpoint import AtomicCheckpointIO, load_model, read_checkpoint


def test_atomic_write_keeps_previous_checkpoint_when_interrupted(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, target)
    real_save = torch.save

    def dies_halfway(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert read_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, bad)
    with pytest.raises(HVLInputError, match="not a loadable checkpoint"):
        read_checkpoint(bad)


def test_model_class_outside_hvl_is_refused(tmp_path):
    p = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hvl": {"class_path": "os.system"}}, p)
    with pytest.raises(HVLInputError, match="outside hvl"):
        load_model(p)


def test_missing_and_truncated_checkpoints(tmp_path):
    with pytest.raises(HVLInputError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "none.ckpt")
    (tmp_path / "trunc.ckpt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(HVLInputError, match="trunc.ckpt: not a loadable checkpoint"):
        read_checkpoint(tmp_path / "trunc.ckpt")
