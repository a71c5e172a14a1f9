"""Branching a run: a new run from a checkpoint of another, with changed settings and its lineage recorded."""

import hashlib

import pytest
import torch

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError
from ganscape.runs.branching import branch_run
from ganscape.store.checkpoint import checkpoint_name, load_checkpoint, read_checkpoint_config
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics
from run_states import assert_same_state, final_state


@pytest.fixture
def small(tmp_path):
    """Overrides for a parent run of a few steps with a checkpoint at each (well under a second)."""
    return [f"run.root={tmp_path / 'runs'}", "run.name=parent", "train.steps=6", "train.batch_size=64",
            "g.width=32", "d.width=32", "eval.samples=256", "log.every=1", "log.samples_every=0",
            "checkpoint.every=1", "checkpoint.keep=10", "log.tensorboard=false"]


def parent_run(overrides) -> RunDir:
    cfg = load_config(None, overrides)
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    return run


def checkpoint(run: RunDir, step: int) -> dict:
    return load_checkpoint(run.checkpoints / checkpoint_name(step))


def digests(run: RunDir) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.path.rglob("*") if p.is_file()}


def test_a_branch_without_changes_continues_exactly_as_its_parent(small, tmp_path):
    """Branched at step 3, stopped at 5 and resumed: the branch ends bit-identical to the parent's step 6,
    and its log up to step 3 is the parent's."""
    parent = parent_run(small)
    branch = branch_run(parent.path, tmp_path / "branch", [], step=3)
    assert branch.step == 3 and branch.changes == []
    train(branch.cfg, branch.run, resume=True, until=5, progress=False)
    resumed = RunDir.open(branch.run.path)
    train(resumed.read_config(), resumed, resume=True, progress=False)  # config.yaml passes the checkpoint check
    assert_same_state(checkpoint(parent, 6), final_state(resumed))
    history = [row for row in read_metrics(parent) if row["step"] <= 3]
    assert [row for row in read_metrics(resumed) if row["step"] <= 3] == history and history


def test_a_branch_with_a_new_learning_rate_applies_it_to_the_same_gradients(small, tmp_path):
    """Adam's update is -lr * m_hat / (sqrt(v_hat) + eps): from the same state, data and latents, D's first
    update in a branch with 3x the lr is 3x the parent's update, to float32 rounding of the weights."""
    parent = parent_run(small)
    before = digests(parent)
    branch = branch_run(parent.path, tmp_path / "branch", ["d_opt.lr=0.009", "train.steps=3"], step=2)
    assert [key for key, _, _ in branch.changes] == ["d_opt.lr", "train.steps"]
    train(branch.cfg, branch.run, resume=True, progress=False)
    start, parent_next, branch_next = checkpoint(parent, 2), checkpoint(parent, 3), checkpoint(branch.run, 3)
    assert [g["lr"] for g in parent_next["opt_d"]["param_groups"]] == [0.003]
    assert [g["lr"] for g in branch_next["opt_d"]["param_groups"]] == [0.009]
    assert [g["lr"] for g in branch_next["opt_g"]["param_groups"]] == [0.003]
    unit = 2.0 ** -24  # float32 unit roundoff
    for key, weights in start["D"].items():
        parent_step, branch_step = parent_next["D"][key] - weights, branch_next["D"][key] - weights
        assert parent_step.abs().max() > 0
        bound = unit * (4 * (weights.abs() + parent_next["D"][key].abs() + branch_next["D"][key].abs())
                        + 16 * parent_step.abs() * 3)
        assert ((branch_step - 3 * parent_step).abs() <= bound).all(), key
    assert digests(parent) == before  # the parent is only read


@pytest.mark.parametrize("change", ["g.width=64", "d.depth=3", "data.name=grid25", "latent.dim=8",
                                    "d_opt.name=rmsprop", "train.seed=1"])
def test_a_branch_refuses_settings_the_checkpoint_was_made_for(small, tmp_path, change):
    parent = parent_run(small + ["train.steps=2"])
    with pytest.raises(ConfigError) as refused:
        branch_run(parent.path, tmp_path / "branch", [change, "train.steps=4"])
    message = str(refused.value)
    assert f"cannot change {change.partition('=')[0]} in a branch" in message
    assert "Keys that may change in a branch:" in message and "d_opt.lr" in message and "penalty.*" in message
    assert not (tmp_path / "branch").exists()


def test_the_branch_command_records_its_lineage(small, tmp_path, capsys):
    parent = parent_run(small)
    new = tmp_path / "branch"
    assert main(["branch", str(parent.path), "--step", "4", "penalty=r1:0.5", "train.steps=7", "--out", str(new)]) == 0
    assert f"branched from {parent.path} at step 4" in capsys.readouterr().out
    cfg = load_config(new / "config.yaml", written=True)
    assert (cfg.run.parent, cfg.run.parent_step) == (str(parent.path.resolve()), 4)
    assert [(term.name, term.weight) for term in cfg.penalty.use] == [("r1", 0.5)]
    assert read_checkpoint_config(new / "checkpoints" / checkpoint_name(7))["run"]["parent_step"] == 4
    assert load_checkpoint(new / "checkpoints" / checkpoint_name(7))["step"] == 7


def test_an_ema_begun_in_a_branch_starts_at_the_generators_weights(small, tmp_path):
    parent = parent_run(small + ["train.steps=2", "train.ema=0"])
    assert checkpoint(parent, 2)["G_ema"] is None
    branch = branch_run(parent.path, tmp_path / "branch", ["train.ema=0.9", "train.steps=3"])
    state = checkpoint(branch.run, 2)
    branch.run.release()
    assert state["G_ema"].keys() == state["G"].keys()
    assert all(torch.equal(state["G_ema"][key], state["G"][key]) for key in state["G"])
