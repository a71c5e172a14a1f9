"""Budgets in discriminator updates (``train.unit: d``) and the work counters of a run's log and summary."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import ganscape
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import ConfigError
from ganscape.objectives.objective import Objective
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics
from ganscape.training import work
from ganscape.training.state import build_state
from ganscape.training.step import train_step
from ganscape.training.work import in_g_updates
from run_states import assert_same_state, final_state


def adam_steps(opt_state: dict) -> set[int]:
    """The update counts Adam keeps per parameter (its ``step`` slot): how often the optimizer stepped."""
    return {int(torch.as_tensor(slots["step"])) for slots in opt_state["state"].values()}


def trained(overrides: list[str], name: str, **options):
    return ganscape.train(load_config(None, overrides + [f"run.name={name}", "train.threads=1"]),
                          progress=False, **options)


@pytest.mark.parametrize("n_disc", [1, 5])
def test_d_budget_gives_n_disc_1_and_5_the_same_d_updates(tiny, n_disc):
    """Independent value: Adam's own per-parameter ``step`` counts in the final checkpoint, which say how often each
    optimizer stepped. With ``train.steps=40 train.unit=d`` D's optimizer steps 40 times for n_disc 1 and 5, and
    G's 40 / n_disc times; the summary and the last log row say the same."""
    result = trained(tiny + ["train.unit=d", f"train.n_disc={n_disc}"], f"ndisc{n_disc}")
    state = final_state(result.run)
    assert adam_steps(state["opt_d"]) == {40}
    assert adam_steps(state["opt_g"]) == {40 // n_disc}
    summary = result.summary
    assert (summary["d_updates"], summary["g_updates"], summary["step"]) == (40, 40 // n_disc, 40 // n_disc)
    assert summary["gflops"] > 0  # counted, through the default R1 penalty's double backward
    last = [row for row in read_metrics(result.run) if "work/d_updates" in row][-1]
    assert (last["step"], last["work/g_updates"], last["work/d_updates"]) == (40 // n_disc, 40 // n_disc, 40)


def test_in_g_updates_rounds_up_to_whole_steps():
    """Independent values: the step counts worked out by hand as ceil(D updates / n_disc) for n_disc 3."""
    cfg = load_config(None, ["train.unit=d", "train.n_disc=3", "train.steps=10", "train.ema_start=5", "log.every=9",
                             "log.samples_every=0", "eval.every=8", "checkpoint.every=7"])
    converted = in_g_updates(cfg)
    assert converted.train.unit == "g" and converted.train.n_disc == 3
    assert (converted.train.steps, converted.train.ema_start) == (4, 2)
    assert (converted.log.every, converted.log.samples_every, converted.eval.every, converted.checkpoint.every) == \
        (3, 0, 3, 3)
    assert (cfg.train.unit, cfg.train.steps, cfg.log.every) == ("d", 10, 9)  # the config itself is not changed
    assert in_g_updates(converted) == converted
    same_numbers = load_config(None, ["train.n_disc=3", "train.steps=10", "log.every=9"])
    assert in_g_updates(same_numbers) is same_numbers


def test_config_keeps_the_d_budget_and_resume_reaches_the_same_end(tiny):
    """Independent values: the numbers written on the command line (config.yaml and every checkpoint keep them),
    and 40 D updates / n_disc 5 = 8 steps as the end of the run, however it is split. A resumed run at its end
    is finished and trains no further."""
    overrides = tiny + ["train.unit=d", "train.n_disc=5"]
    result = trained(overrides, "split", until=4)
    assert result.summary["step"] == 4 and result.summary["steps"] == 8
    cfg = RunDir.open(result.run.path).read_config()  # also checks config.yaml against the checkpoint's config
    assert (cfg.train.unit, cfg.train.steps, cfg.log.every, cfg.checkpoint.every) == ("d", 40, 10, 10)
    resumed = ganscape.resume(result.run.path, progress=False)
    assert (resumed.summary["step"], resumed.summary["d_updates"]) == (8, 40)
    straight = trained(overrides, "straight")
    assert_same_state(final_state(straight.run), final_state(resumed.run))
    started = []
    again = ganscape.resume(result.run.path, progress=False, on_start=started.append)
    assert started[0].finished and started[0].last_step == 8 and again.summary["step"] == 8


def test_logged_gflops_equal_an_independent_flop_count(tiny):
    """Independent value: torch's own FlopCounterMode (with its module tracking, as shipped) around one training
    step of a fresh state of the same config, run here. The run's log says step x that count at each log step.
    Without a gradient penalty, which the stock counter's module tracking cannot follow (autograd.grad)."""
    overrides = tiny + ["penalty=none", "train.n_disc=2", "train.steps=6", "log.every=3"]
    result = trained(overrides, "flops")
    cfg = load_config(None, overrides)
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        train_step(state, data, Objective.from_config(cfg), cfg)
    step_gflops = counter.get_total_flops() / 1e9
    assert step_gflops > 0
    logged = {row["step"]: row["work/gflops"] for row in read_metrics(result.run) if "work/gflops" in row}
    assert logged == {3: pytest.approx(3 * step_gflops, rel=1e-12), 6: pytest.approx(6 * step_gflops, rel=1e-12)}
    assert result.summary["gflops"] == pytest.approx(6 * step_gflops, rel=1e-12)


def test_counting_flops_leaves_training_bit_identical(tiny, monkeypatch):
    """Independent value: the same run with the counter replaced by a plain call of the step (nothing counted).
    Networks, optimizer states and random streams must be bit for bit the same."""
    counted = trained(tiny + ["train.steps=10"], "counted")
    monkeypatch.setattr(work, "with_flops", lambda step: (step(), None))
    plain = trained(tiny + ["train.steps=10"], "plain")
    assert counted.summary["gflops"] > 0 and plain.summary["gflops"] is None
    assert not any("work/gflops" in row for row in read_metrics(plain.run))
    assert_same_state(final_state(counted.run), final_state(plain.run))


def test_unknown_unit_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"train\.unit: unknown choice 'x'\. .*Valid: d, g\."):
        load_config(None, ["train.unit=x"])
