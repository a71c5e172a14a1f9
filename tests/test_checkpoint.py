"""Atomic, code-free checkpoints."""

import os

import pytest
import torch

from ganscape.errors import CheckpointError
from ganscape.store.checkpoint import (checkpoint_name, list_checkpoints, load_checkpoint, prune_checkpoints,
                                          save_checkpoint)


def optimizer_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_preserves_tensors_types_and_integer_keys(tmp_path):
    model, opt = optimizer_state()
    state = {"step": 7, "model": model.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state(),
             "none": None, "pair": (1, 2.5), "name": "x"}
    path = save_checkpoint(tmp_path / checkpoint_name(7), state)
    back = load_checkpoint(path)
    assert back["step"] == 7 and back["none"] is None and back["pair"] == (1, 2.5) and back["name"] == "x"
    assert torch.equal(back["rng"], state["rng"])
    for key, value in model.state_dict().items():
        assert torch.equal(back["model"][key], value)
    # Optimizer states are keyed by integer parameter ids; they must stay integers to be loaded.
    assert set(back["opt"]["state"]) == {0, 1}
    fresh_model, fresh_opt = optimizer_state()
    fresh_opt.load_state_dict(back["opt"])
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert fresh_opt.param_groups[0]["betas"] == (0.5, 0.9)


def test_stale_temporary_file_from_a_killed_write_is_ignored(tmp_path):
    save_checkpoint(tmp_path / checkpoint_name(10), {"step": 10, "w": torch.ones(3)})
    # A write killed half-way leaves a truncated hidden temporary file, never a torn checkpoint.
    (tmp_path / f".{checkpoint_name(20)}.12345.tmp").write_bytes(b"\x00\x01partial")
    assert [step for step, _ in list_checkpoints(tmp_path)] == [10]
    assert load_checkpoint(list_checkpoints(tmp_path)[-1][1])["step"] == 10


def test_failed_write_leaves_previous_checkpoints_and_no_temporary(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / checkpoint_name(10), {"step": 10})

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / checkpoint_name(20), {"step": 20, "w": torch.ones(3)})
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_name(10)]


def test_corrupt_checkpoint_is_refused_with_its_path(tmp_path):
    path = save_checkpoint(tmp_path / checkpoint_name(1), {"w": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match=f"{path}.*corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / checkpoint_name(1)
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a ganscape checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_prune_keeps_newest(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path / checkpoint_name(step), {"step": step})
    prune_checkpoints(tmp_path, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
