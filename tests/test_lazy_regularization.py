"""Lazy regularization (``penalty.lazy_interval``, StyleGAN2's practice) against values computed by hand.

With interval k, r1 and r2 act only on the D updates whose run-wide index is a multiple of k, weighted
k times; the other penalties act on every update. Expected gradients are autograd on the formulas
written out here (R1 = 1/2 E||dD/dx||^2, the non-saturating loss as softplus terms, l2 as the mean of
||W||^2 / 2), not on ganscape's penalty functions.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.functional import softplus

from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import ConfigError
from ganscape.objectives.objective import Objective
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics
from ganscape.training.divergence import LossMonitor
from ganscape.training.loop import train
from ganscape.training.state import build_state
from ganscape.training.step import train_step
from run_states import final_state

DIM, WEIGHT, L2_WEIGHT = 3, 0.7, 0.05


class SmoothD(nn.Module):
    """A tiny tanh MLP: its input gradient varies with x and with every parameter."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 5), nn.Tanh(), nn.Linear(5, 1))

    def forward(self, x, labels=None):
        return self.net(x).squeeze(1)


@pytest.fixture
def setup(float64):
    torch.manual_seed(0)
    return SmoothD(), torch.randn(8, DIM) + 1, torch.randn(8, DIM) - 1


def grads(D, scalar):
    """d scalar / d D's parameters, flattened (zeros where it does not depend on one: R1 on the last bias)."""
    params = list(D.parameters())
    return torch.cat([g.flatten() for g in torch.autograd.grad(scalar, params, allow_unused=True,
                                                               materialize_grads=True)])


def hand_ns_loss(D, real, fake):
    return softplus(-D(real)).mean() + softplus(D(fake)).mean()


def hand_zero_centred(D, x):
    """1/2 E||dD/dx||^2 at x, written out."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return 0.5 * g.square().sum(dim=1).mean()


def hand_l2(D):
    return torch.stack([0.5 * m.weight.square().sum() for m in D.net if isinstance(m, nn.Linear)]).mean()


def total_grad(objective, D, real, fake, d_update):
    return grads(D, objective.d_totals(D, real, fake, None, None, d_update=d_update).total)


@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_lazy_penalty_acts_on_every_kth_update_with_k_times_its_weight(setup, penalty):
    """Hand values: on updates 0, 3, 6 (k = 3) grad(ns) + k w grad(R) + w_l2 grad(l2), else grad(ns) +
    w_l2 grad(l2): l2 is not lazy and acts on every update. R is taken at the reals (r1) or fakes (r2)."""
    D, real, fake = setup
    k = 3
    objective = Objective.of("ns", {penalty: WEIGHT, "l2": L2_WEIGHT}, lazy_interval=k)
    at = real if penalty == "r1" else fake
    plain = grads(D, hand_ns_loss(D, real, fake) + L2_WEIGHT * hand_l2(D))
    regularized = plain + k * WEIGHT * grads(D, hand_zero_centred(D, at))
    for d_update in range(8):
        d = objective.d_totals(D, real, fake, None, None, d_update=d_update)
        expected = regularized if d_update % k == 0 else plain
        torch.testing.assert_close(grads(D, d.total), expected, rtol=1e-12, atol=1e-14)
        assert set(d.terms) == ({penalty, "l2"} if d_update % k == 0 else {"l2"})
    dense = plain + WEIGHT * grads(D, hand_zero_centred(D, at))  # no index: the dense objective
    torch.testing.assert_close(total_grad(objective, D, real, fake, None), dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [2, 5])
def test_k_lazy_updates_sum_to_k_dense_ones(setup, k):
    """Exact in float64 at a frozen D: the total gradient summed over any k consecutive updates (here
    indices 7..7+k-1, so the regularizing one is not the first) is k times the dense objective's."""
    D, real, fake = setup
    lazy = Objective.of("ns", {"r1": WEIGHT}, lazy_interval=k)
    summed = sum(total_grad(lazy, D, real, fake, d_update) for d_update in range(7, 7 + k))
    dense = Objective.of("ns", {"r1": WEIGHT})
    torch.testing.assert_close(summed, k * total_grad(dense, D, real, fake, 0), rtol=1e-12, atol=1e-14)
    assert not torch.allclose(total_grad(lazy, D, real, fake, 8), total_grad(dense, D, real, fake, 8))


def test_interval_one_and_zero():
    """1 is the dense objective at every index; 0 is refused with what is valid, from the config and from code."""
    assert Objective.of("ns", {"r1": 1.0}).acting("d_loss", 3) == Objective.of("ns", {"r1": 1.0}).of_kind("d_loss")
    with pytest.raises(ConfigError, match=r"penalty.lazy_interval must be >= 1, got 0"):
        load_config(None, ["penalty.lazy_interval=0"])
    with pytest.raises(ConfigError, match=r"lazy_interval must be >= 1 .*got 0"):
        Objective.of("ns", {"r1": 1.0}, lazy_interval=0)
    assert Objective.from_config(load_config(None, ["penalty.lazy_interval=4"])).lazy_interval == 4


class IndexSpy:
    """An objective that records the D-update index and the terms of every ``d_totals`` call."""

    def __init__(self, objective):
        self.objective, self.calls = objective, []

    def d_totals(self, *args, d_update=None, **kwargs):
        totals = self.objective.d_totals(*args, d_update=d_update, **kwargs)
        self.calls.append((d_update, totals.terms))
        return totals

    def __getattr__(self, name):
        return getattr(self.objective, name)


def ring_step_setup(overrides):
    cfg = load_config(None, ["train.batch_size=16", "g.width=8", "d.width=8", "g.depth=1", "d.depth=1",
                             "penalty=r1:1", *overrides])
    data = build_dataset(cfg)
    return cfg, data, build_state(cfg, data, torch.device("cpu")), IndexSpy(Objective.from_config(cfg))


def test_the_step_passes_the_run_wide_d_update_index_to_every_part():
    """Index = step * n_disc + i (hand-listed) for every micro-batch and shard of update i, also after a
    resume (the step count set to 7): n_disc 3, 2 micro-batches x 2 shards = 4 calls per update."""
    cfg, data, state, spy = ring_step_setup(["train.n_disc=3", "train.accumulate=2", "train.shards=2",
                                             "train.batch_size=32", "penalty.lazy_interval=2"])
    for _ in range(2):
        train_step(state, data, spy, cfg)
    state.step = 7
    train_step(state, data, spy, cfg)
    expected = [index for index in [0, 1, 2, 3, 4, 5, 21, 22, 23] for _ in range(4)]
    assert [index for index, _ in spy.calls] == expected
    assert [("r1" in terms) for _, terms in spy.calls[::4]] == [index % 2 == 0 for index in expected[::4]]


def test_logged_lazy_value_is_the_last_computed_one():
    """n_disc 3, k 2: step 0 computes R1 at updates 0 and 2 and logs update 2's; step 1 computes it only at
    update 4 (not at its last, 5) and logs update 4's. With k 4 and n_disc 1, steps 1..3 return no R1."""
    cfg, data, state, spy = ring_step_setup(["train.n_disc=3", "penalty.lazy_interval=2"])
    logged = [train_step(state, data, spy, cfg)["penalty/r1"] for _ in range(2)]
    assert torch.equal(logged[0], spy.calls[2][1]["r1"]) and torch.equal(logged[1], spy.calls[4][1]["r1"])
    assert not torch.equal(logged[0], spy.calls[0][1]["r1"])
    cfg, data, state, spy = ring_step_setup(["penalty.lazy_interval=4"])
    assert ["penalty/r1" in train_step(state, data, spy, cfg) for _ in range(5)] == [True, False, False, False, True]


def test_loss_monitor_keeps_a_skipped_value_and_takes_a_late_one():
    """A name a step does not return keeps its last recorded value; one first returned later is read from then."""
    monitor = LossMonitor()
    monitor.record(1, {"d_loss": torch.tensor(1.0)})  # a resumed run whose first step skipped R1
    monitor.record(2, {"d_loss": torch.tensor(2.0), "penalty/r1": torch.tensor(0.5)})
    monitor.record(3, {"d_loss": torch.tensor(3.0)})
    assert monitor.read(None, None) == {"d_loss": 3.0, "penalty/r1": 0.5}


def run(tmp_path, name, overrides, **kwargs):
    cfg = load_config(None, [f"run.root={tmp_path}", f"run.name={name}", "train.steps=6", "train.batch_size=32",
                             "g.width=16", "d.width=16", "g.depth=1", "d.depth=1", "eval.samples=100",
                             "log.every=1", "log.samples_every=0", "checkpoint.every=1", "log.tensorboard=false",
                             "penalty=r1:1", *overrides])
    folder = RunDir.create(cfg) if not kwargs.get("resume") else kwargs.pop("folder")
    train(cfg, folder, progress=False, **kwargs)
    return folder


def test_a_lazy_run_draws_what_the_dense_run_draws_and_resumes_exactly(tmp_path):
    """Ring8, 6 steps: the lazy run's random streams end where the dense run's do (R1 draws nothing), its
    networks differ; its log has a finite R1 in every row (step 2 repeats step 1's, whose value equals the
    dense run's: same D, same batch); stopped after step 1 (whose successor skips R1) and resumed, it ends
    bit-identical to the straight lazy run, so the index survives the resume."""
    dense_dir = run(tmp_path, "dense", [])
    dense = final_state(dense_dir)
    lazy_dir = run(tmp_path, "lazy", ["penalty.lazy_interval=2"])
    lazy = final_state(lazy_dir)
    for stream in ("data", "latent", "noise"):
        assert torch.equal(dense["rng"][stream], lazy["rng"][stream]), stream
    assert not torch.equal(dense["D"]["net.0.weight"], lazy["D"]["net.0.weight"])
    rows = [row for row in read_metrics(lazy_dir) if "d_loss" in row]
    dense_rows = [row for row in read_metrics(dense_dir) if "d_loss" in row]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert all(row["penalty/r1"] == row["penalty/r1"] for row in rows)  # finite, never NaN
    assert rows[1]["penalty/r1"] == rows[0]["penalty/r1"] == dense_rows[0]["penalty/r1"]
    assert rows[2]["penalty/r1"] != rows[1]["penalty/r1"]
    halves = run(tmp_path, "halves", ["penalty.lazy_interval=2"], until=1)
    run(tmp_path, "halves", ["penalty.lazy_interval=2"], resume=True, folder=halves)
    resumed = final_state(halves)
    for key in lazy["D"]:
        assert torch.equal(resumed["D"][key], lazy["D"][key]), key
