"""The training loop: determinism, exact resume, divergence handling, run directory contents."""

import json

import pytest
import torch

from ganscape.config import load_config
from ganscape.errors import CheckpointError, DivergenceError
from ganscape.objectives import losses
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics
from run_states import assert_same_state, final_state


def run_once(overrides, name, **kwargs):
    cfg = load_config(None, overrides + [f"run.name={name}"])
    run = RunDir.create(cfg)
    return cfg, run, train(cfg, run, progress=False, **kwargs)


@pytest.mark.parametrize("extra", [[], ["train.n_disc=2", "g_opt.name=rmsprop", "d_opt.name=rmsprop",
                                        "latent.dist=uniform", "loss=hinge"]])
def test_resume_is_bit_identical_to_a_straight_run(tiny, extra):
    _, straight, _ = run_once(tiny + extra, "straight")
    _, halves, summary = run_once(tiny + extra, "halves", until=20)
    assert summary["step"] == 20 and [s for s, _ in list_checkpoints(halves.checkpoints)][-1] == 20
    cfg = halves.read_config()
    train(cfg, halves, resume=True, progress=False)
    assert_same_state(final_state(straight), final_state(halves))
    # The resumed run's log reads as if it had never stopped.
    strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]
    assert strip(read_metrics(straight)) == strip(read_metrics(halves))


def test_same_seed_same_run_other_seed_other_run(tiny):
    _, a, _ = run_once(tiny + ["train.steps=10"], "a")
    _, b, _ = run_once(tiny + ["train.steps=10"], "b")
    _, c, _ = run_once(tiny + ["train.steps=10", "train.seed=1"], "c")
    assert_same_state(final_state(a), final_state(b))
    assert not torch.equal(final_state(a)["G"]["net.0.weight"], final_state(c)["G"]["net.0.weight"])


def test_run_directory_contents(tiny):
    cfg, run, summary = run_once(tiny + ["log.tensorboard=true"], "contents")
    assert load_config(run.config_path) == cfg
    rows = read_metrics(run)
    assert [r["step"] for r in rows if "d_loss" in r] == [10, 20, 30, 40]
    evals = [r for r in rows if "eval/modes_covered" in r]
    assert [r["step"] for r in evals] == [20, 40]
    assert {"eval/high_quality_pct", "eval/kl_to_uniform", "eval_raw/modes_covered"} <= evals[0].keys()
    assert sorted(p.name for p in run.samples.glob("*.png")) == ["step_00000020.png", "step_00000040.png"]
    assert list(run.events.glob("events.out.tfevents.*"))
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [20, 30, 40]  # checkpoint.keep = 3
    assert summary["results"]["eval/num_modes"] == 8


def test_divergence_stops_with_diagnosis_and_keeps_last_good_checkpoint(tiny, monkeypatch):
    real_loss = losses.LOSSES["ns"]
    calls = {"n": 0}

    def d_loss_that_blows_up(real_logits, fake_logits):
        calls["n"] += 1
        value = real_loss.d_loss(real_logits, fake_logits)
        return value * float("nan") if calls["n"] > 25 else value

    monkeypatch.setitem(losses.LOSSES, "ns", losses.Loss("ns", d_loss_that_blows_up, real_loss.g_loss, ""))
    cfg = load_config(None, tiny + ["run.name=nan"])
    run = RunDir.create(cfg)
    good = None
    with pytest.raises(DivergenceError, match=r"diverged at step 26: d_loss = nan.*step_00000020"):
        train(cfg, run, progress=False)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [10, 20]
    good = load_checkpoint(run.latest_checkpoint()[1])
    assert all(torch.isfinite(t).all() for t in good["D"].values())


def test_exploding_learning_rate_is_caught(tiny):
    cfg = load_config(None, tiny + ["run.name=boom", "g_opt.lr=1e30", "d_opt.lr=1e30", "g_opt.name=rmsprop",
                                    "d_opt.name=rmsprop"])
    run = RunDir.create(cfg)
    with pytest.raises(DivergenceError, match=r"diverged at step \d+: .*(nan|inf)"):
        train(cfg, run, progress=False)
    for _, path in list_checkpoints(run.checkpoints):
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["G"].values())


def test_new_run_refuses_to_overwrite_checkpoints(tiny):
    run_once(tiny + ["train.steps=10"], "taken")
    with pytest.raises(CheckpointError, match="already holds checkpoints.*ganscape resume"):
        run_once(tiny + ["train.steps=10"], "taken")


def test_resume_with_mismatched_config_is_refused(tiny):
    cfg, run, _ = run_once(tiny + ["train.steps=10"], "mismatch")
    other = load_config(None, tiny + ["run.name=mismatch", "train.steps=20", "g.width=16"])
    with pytest.raises(CheckpointError, match="does not match the run's config"):
        train(other, run, resume=True, progress=False)


def test_metrics_file_is_strict_json(tiny):
    _, run, _ = run_once(tiny + ["train.steps=20"], "json")
    for line in run.metrics_path.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
