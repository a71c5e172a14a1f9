"""benchmarks/paper_budgets.py: the FLOPs it counts against a count by hand, and its table for every experiment."""

from __future__ import annotations

import pytest
from conftest import load_benchmark
from torch import nn

from ganscape.config import load_config
from ganscape.nets import ModelSpec, build_discriminator, build_generator


@pytest.fixture(scope="module")
def budgets():
    return load_benchmark("paper_budgets")


def _linear_flops(net: nn.Module) -> int:
    """2 x inputs x outputs per sample for every linear layer: a matrix product's multiply-adds, counted twice."""
    return sum(2 * m.in_features * m.out_features for m in net.modules() if isinstance(m, nn.Linear))


def test_forward_flops_of_mlps_equal_the_hand_count(budgets):
    """Independent value: the ring's MLPs are linear layers only, so each forward pass costs the sum of 2 x in x out
    over their linear layers (read from the built networks, not counted by torch)."""
    cfg = load_config("ring8_grid")
    spec = ModelSpec((2,), 0, (), cfg.latent.dim, cfg.latent.dist)
    g, d = budgets.forward_flops(cfg, (2,), 0)
    assert g == _linear_flops(build_generator(cfg.g, spec)) and d == _linear_flops(build_discriminator(cfg.d, spec))


def test_a_step_counts_n_disc_d_updates_and_one_g_update_per_sample(budgets):
    """Independent value: with G forward 10 and D forward 1 per sample, n_disc 2, batch 4, accumulate 2: per sample
    2 x (10 + 6) + 30 + 3 = 65, times 8 samples = 520."""
    cfg = load_config("ring8_grid", ["train.n_disc=2", "train.batch_size=4", "train.accumulate=2"])
    assert budgets.step_flops(cfg, 10.0, 1.0) == 520.0


def test_a_run_takes_its_flops_or_its_steps_whichever_is_longer(budgets):
    """Independent value: a preset's run at 1e30 FLOP/s is bound by steps: train.steps / 50 seconds; a study's
    runs are its groups x trials x seeds."""
    cost = budgets.budget("ring8_grid", (2,), 0, 50.0, 1e30)
    assert cost["runs"] == 1 and cost["seconds"] == pytest.approx(load_config("ring8_grid").train.steps / 50.0)
    study = budgets.budget("study:mescheder_regularizers_ring8", (2,), 0, 50.0, 1e30)
    assert study["runs"] == 5 * 3


def test_every_experiment_of_the_guide_is_counted(budgets):
    """Every preset and study docs/reproduce.md names still loads, and costs more than nothing."""
    for _, _, name, shape, classes in budgets.EXPERIMENTS:
        cost = budgets.budget(name, shape, classes, 50.0, 1e14)
        assert cost["runs"] >= 1 and cost["flops"] > 0 and cost["seconds"] > 0, name
