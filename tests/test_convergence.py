"""The convergence measures logged with ``log.convergence`` (training/convergence.py): hand values, and no
effect on training."""

import math
from types import SimpleNamespace

import torch
from torch import nn

from ganscape.config import load_config
from ganscape.runs import RunDir
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.store.rundir import read_metrics
from ganscape.training.convergence import ConvergenceProbe
from ganscape.training.loop import train
from run_states import assert_same_state, final_state


class Linear(nn.Module):
    """D(x) = w . x + b: its input gradient is w at every x."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, labels=None):
        return x @ self.w + self.b


class HalfSquare(nn.Module):
    """D(x) = 1/2 ||x||^2 (times a parameter 1): its input gradient is x itself; with batch norm and dropout
    beside it, whose state must survive the probe."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.norm = nn.BatchNorm1d(2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x, labels=None):
        self.drop(self.norm(x))  # changes the running statistics and draws from torch's random state
        return 0.5 * self.scale * x.square().sum(dim=1)


def state_of(G, D, step=0):
    return SimpleNamespace(G=G, D=D, step=step, channels_last=False)


def test_g_move_is_the_distance_moved_per_update():
    """G's 2 x 3 + 3 = 9 parameters moved by 0.4 each over 4 updates: ||v|| / 4 = 0.4 * 3 / 4 = 0.3."""
    G = nn.Linear(2, 3)
    state = state_of(G, Linear([1.0, 0.0]), step=10)
    probe = ConvergenceProbe(torch.zeros(4, 2), None, state)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.4)
    state.step = 14
    assert math.isclose(probe.logged(state)["convergence/g_move"], 0.3, rel_tol=1e-6)
    # The next row measures from this one: no further move, no further distance.
    state.step = 20
    assert probe.logged(state)["convergence/g_move"] == 0.0


def test_g_move_is_absent_without_updates():
    """A row at the step the probe started from has no updates to divide by: no g_move."""
    state = state_of(nn.Linear(2, 1), Linear([1.0, 0.0]), step=5)
    assert "convergence/g_move" not in ConvergenceProbe(torch.zeros(3, 2), None, state).logged(state)


def test_d_grad_real_of_a_linear_d_is_its_weight_norm():
    """A linear D's input gradient is w at every point: d_grad_real = ||(3, -4)|| = 5."""
    state = state_of(nn.Linear(2, 1), Linear([3.0, -4.0]))
    probe = ConvergenceProbe(torch.randn(16, 2), None, state)
    assert math.isclose(probe.logged(state)["convergence/d_grad_real"], 5.0, rel_tol=1e-6)


def test_d_grad_real_is_a_root_mean_square_and_leaves_d_as_it_was():
    """D = 1/2 ||x||^2 has gradient x: at (3, 4) and (0, 0), sqrt((25 + 0) / 2) = 3.5355 (the mean of the norms
    would be 2.5). D's batch-norm statistics and torch's global random state are as before."""
    D = HalfSquare()
    state = state_of(nn.Linear(2, 1), D)
    probe = ConvergenceProbe(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), None, state)
    random_state = torch.get_rng_state()
    value = probe.logged(state)["convergence/d_grad_real"]
    assert math.isclose(value, math.sqrt(12.5), rel_tol=1e-6)
    assert torch.equal(D.norm.running_mean, torch.zeros(2)) and int(D.norm.num_batches_tracked) == 0
    assert torch.equal(torch.get_rng_state(), random_state)
    assert D.scale.grad is None  # no parameter gradient accumulated


def run(overrides, name, **kwargs):
    cfg = load_config(None, overrides + [f"run.name={name}"])
    directory = RunDir.create(cfg)
    train(cfg, directory, progress=False, **kwargs)
    return directory


def test_logging_convergence_changes_nothing_in_training_and_measures_the_checkpoints(tiny):
    """With the key on, the run's checkpoints are bit-identical to the run's without it, and its log differs
    only by the convergence columns; the row at step 40 reports ||G_40 - G_30|| / 10 from the checkpoints
    of steps 30 and 40."""
    plain = run(tiny, "plain")
    measured = run(tiny + ["log.convergence=true"], "measured")
    assert_same_state(final_state(plain), final_state(measured))
    rows = [r for r in read_metrics(measured) if "d_loss" in r]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert all(r["convergence/d_grad_real"] > 0 and r["convergence/g_move"] > 0 for r in rows)
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("convergence/") and k != "steps_per_s"}
                          for r in rows]
    assert strip(read_metrics(plain)) == strip(read_metrics(measured))
    checkpoints = dict(list_checkpoints(measured.checkpoints))
    before, after = (load_checkpoint(checkpoints[s])["G"] for s in (30, 40))
    distance = math.sqrt(sum(float((after[k] - before[k]).double().square().sum()) for k in after))
    assert math.isclose(rows[-1]["convergence/g_move"], distance / 10, rel_tol=1e-6)


def test_a_resumed_run_logs_the_convergence_of_a_straight_one(tiny):
    """Resumed from a log step (20), the first row after it measures from the checkpoint's parameters, exactly
    as the run never stopped measures from its row at step 20."""
    tiny = tiny + ["log.convergence=true"]
    straight = run(tiny, "straight")
    halves = run(tiny, "halves", until=20)
    train(halves.read_config(), halves, resume=True, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]
    assert strip(read_metrics(straight)) == strip(read_metrics(halves))
