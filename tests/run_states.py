"""Comparing the states of two runs (a module beside conftest.py, importable from any test folder)."""

from __future__ import annotations

import torch

from ganscape.store.checkpoint import load_checkpoint


def final_state(run) -> dict:
    return load_checkpoint(run.latest_checkpoint()[1])


def assert_same_state(a: dict, b: dict) -> None:
    """Bit-identical networks, EMA, optimizer states and random streams (those a checkpoint holds)."""
    assert a["step"] == b["step"]
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    for opt in ("opt_g", "opt_d"):
        for pid, slots in a[opt]["state"].items():
            for slot, value in slots.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[opt]["state"][pid][slot])), \
                    f"{opt}.{pid}.{slot} differs"
    for stream in ("data", "latent", "noise", "torch"):
        assert torch.equal(a["rng"][stream], b["rng"][stream]), f"random stream {stream} differs"
