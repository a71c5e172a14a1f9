"""Studies: specs, the Sobol points, the expected best of k trials, and the report's tables.

The workers (kill -9 on the embedded storage and on PostgreSQL) and the report in a browser are in
tests/faults/test_study_workers.py.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import yaml
from scipy.stats import qmc

from ganscape.cli import main
from ganscape.config import RunConfig, load_config, to_dict
from ganscape.errors import ConfigError
from ganscape.study.budget import expected_best, expected_best_curve
from ganscape.study.engine import create, grid_points, load_studies, sobol_points
from ganscape.study.report import summary_rows
from ganscape.study.spec import BUILTIN_SPACES, STUDIES, load_spec, parse_spec

EVERY_KIND = {
    "name": "every_kind",
    "description": "one parameter of each kind",
    "base": "ring8_grid",
    "overrides": ["train.steps=20"],
    "groups": {"loss": ["ns", "hinge"], "penalty": ["none", "r1:0.5"]},
    "space": ["narrow", {
        "lr": {"log_uniform": [1e-5, 1e-2], "keys": ["g_opt.lr", "d_opt.lr"]},
        "g_opt.beta2": {"uniform": [0.9, 0.999]},
        "train.n_disc": {"int": [1, 5]},
        "d.width": {"categorical": [32, 64]},
        "sngan": {"settings": {"A": {"g_opt.beta1": 0.5, "train.n_disc": 5}, "B": {"g_opt.beta1": 0.0}}},
    }],
    "trials": 4,
    "seeds": 2,
    "sampler": {"name": "sobol", "seed": 3},
    "objective": {"metric": "js_to_target", "direction": "minimize", "reduce": "best"},
    "pruning": False,
}


def test_a_spec_with_every_kind_of_parameter_round_trips_through_yaml():
    spec = parse_spec(EVERY_KIND, "spec")
    again = parse_spec(yaml.safe_load(yaml.safe_dump(spec.source, sort_keys=False)), "spec")
    assert again == spec
    kinds = {p.name: p.kind for p in spec.params}
    assert kinds == {"lr": "log_uniform", "beta1": "categorical", "beta2": "uniform", "train.n_disc": "int",
                     "g_opt.beta2": "uniform", "d.width": "categorical", "sngan": "settings", "lambda": "log_uniform",
                     "lambda_l2": "log_uniform"}  # narrow's lr and n_disc replaced by ours
    assert spec.objective.metric == "eval/js_to_target" and spec.trials == 4 and spec.seeds == 2
    assert [g for g in spec.group_names()] == [{"loss": "ns", "penalty": "none"}, {"loss": "ns", "penalty": "r1:0.5"},
                                               {"loss": "hinge", "penalty": "none"},
                                               {"loss": "hinge", "penalty": "r1:0.5"}]
    params = {"lr": 1e-3, "beta1": 0.5, "beta2": 0.9, "train.n_disc": 2, "g_opt.beta2": 0.95, "d.width": 64,
              "sngan": "A"}  # no lambda: the groups use neither wgan_gp, dragan nor l2
    cfg = spec.trial_config({"loss": "hinge", "penalty": "r1:0.5"}, params, seed=7)
    assert (cfg.loss, cfg.penalty.use[0].name, cfg.penalty.use[0].weight) == ("hinge", "r1", 0.5)
    assert cfg.g_opt.lr == cfg.d_opt.lr == 1e-3 and cfg.g_opt.beta2 == 0.95 and cfg.d.width == 64
    assert cfg.train.n_disc == 5 and cfg.g_opt.beta1 == 0.5  # the settings come after the single parameters
    assert cfg.train.seed == 7 and cfg.train.steps == 20


@pytest.mark.filterwarnings("ignore::ganscape.errors.ConfigWarning")  # the Landscape studies ill-advised pairs too
def test_every_built_in_study_and_space_loads():
    names = sorted(p.stem for p in STUDIES.glob("*.yaml"))
    assert "ring8_landscape" in names and "landscape_cifar10_sndcgan_wide" in names
    for name in names:
        spec = load_spec(name)
        for group in spec.group_names():
            example = {p.name: next(iter(p.args)) for p in spec.params_for(group)}
            spec.trial_config(group, example, 0)
    literature = parse_spec({"base": "ring8_grid", "space": "literature", "sampler": "grid",
                             "objective": "js_to_target"}, "spec")
    assert literature.trials == 6 and [p["setting"] for p in grid_points(literature, {})] == list("ABCDEF")
    assert set(BUILTIN_SPACES) == {"wide", "narrow", "literature"}


@pytest.mark.parametrize("change, message", [
    ({"sampler": {"name": "sobolev"}}, "sampler: give {name: NAME, seed: N} with NAME one of random, sobol, tpe, gp"),
    ({"trails": 3}, "unknown study key 'trails'. Did you mean 'trials'?"),
    ({"base": "ring9_grid"}, "ring9_grid"),
    ({"overrides": ["train.stepz=3"]}, "unknown config key 'train.stepz'. Did you mean 'train.steps'?"),
    ({"overrides": ["train.steps"]}, "overrides are key=value strings"),
    ({"space": {"lr": {"log_uniform": [0, 1e-2], "keys": "g_opt.lr"}}}, "is not a valid log_uniform range (log_uniform needs 0 < low)"),
    ({"space": {"g_opt.lr": {"uniform": [1e-2, 1e-3]}}}, "[0.01, 0.001] is not a valid uniform range"),
    ({"space": {"train.n_disc": {"int": [1, 2.5]}}}, "is not a valid int range"),
    ({"space": {"g_opt.lr": {"gaussian": [0, 1]}}}, "needs exactly one of log_uniform, uniform, int, categorical, "
                                                    "settings"),
    ({"space": {"g_opt.lr": {"categorical": []}}}, "categorical takes a non-empty list"),
    ({"space": {"x": {"settings": {"A": {"g_opt.lrr": 1}}}}}, "unknown config key 'g_opt.lrr'"),
    ({"space": "wider"}, "unknown built-in space 'wider'; built in: wide, narrow, literature"),
    ({"space": {"loss": {"categorical": ["ns"]}}}, "loss is both a group and a searched parameter"),
    ({"space": {"train.seed": {"int": [0, 9]}}}, "train.seed is set by the study itself"),
    ({"groups": {"loss": []}}, "groups maps config keys to non-empty lists"),
    ({"trials": 0}, "trials must be a whole number from 1, got 0"),
    ({"seeds": True}, "seeds must be a whole number from 1"),
    ({"sampler": "grid"}, "the grid sampler needs categorical (or settings) parameters only"),
    ({"objective": {"metric": "sharpness"}}, "give direction: minimize or maximize (sharpness has no known direction)"),
    ({"objective": {"metric": "fid", "reduce": "mean"}}, "objective reduce: 'mean' is none of best, last"),
    ({"objective": {"metric": "fid", "every": 3}},
     "objective takes metric, direction, reduce, failed and worst, not every"),
    ({"pruning": "yes"}, "pruning is true or false"),
])
def test_malformed_specs_are_refused_with_what_is_wrong(change, message):
    data = {k: v for k, v in EVERY_KIND.items()} | change
    with pytest.raises(ConfigError) as err:
        parse_spec(data, "my_study.yaml")
    assert message in str(err.value) and str(err.value).startswith("my_study.yaml")


def test_a_missing_spec_names_where_it_looked_and_the_built_in_ones(capsys):
    assert main(["study", "create", "ring8_landscap", "--out", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "study spec 'ring8_landscap' not found" in err and "Did you mean 'ring8_landscape'?" in err


def test_a_study_whose_group_makes_an_invalid_config_is_refused_before_anything_runs(tmp_path):
    spec = parse_spec(EVERY_KIND | {"groups": {"loss": ["ns", "nope"]}}, "spec")
    with pytest.raises(ConfigError, match="group loss=nope: invalid config:\n  loss: unknown choice 'nope'"):
        create(spec, tmp_path / "study")
    assert not (tmp_path / "study").exists()


# ---------------------------------------------------------------- the Sobol points


@pytest.mark.filterwarnings("ignore:The balance properties")  # scipy, for counts other than powers of 2
def test_sobol_points_are_scipys_scrambled_sobol_sequence_mapped_onto_the_space():
    """Independent value: scipy's scrambled Sobol sequence for the same seed and dimension, mapped here by
    hand (log-uniform as low * (high / low) ** u, the choices by equal shares), in the parameters' name order."""
    spec = parse_spec(EVERY_KIND, "spec")
    group = {"loss": "ns", "penalty": "none"}
    points = sobol_points(spec, group, 0, 8) + sobol_points(spec, group, 8, 5)  # a top-up continues the sequence
    units = qmc.Sobol(7, scramble=True, seed=3).random(13)
    names = ["beta1", "beta2", "d.width", "g_opt.beta2", "lr", "sngan", "train.n_disc"]
    for point, u in zip(points, units):
        expected = dict(zip(names, u))
        assert point["beta1"] == 0.5  # one choice
        assert point["beta2"] == pytest.approx(expected["beta2"] * 0.999, rel=1e-14)
        assert point["d.width"] == (32 if expected["d.width"] < 0.5 else 64)
        assert point["g_opt.beta2"] == pytest.approx(0.9 + expected["g_opt.beta2"] * 0.099, rel=1e-14)
        assert point["lr"] == pytest.approx(1e-5 * 1000 ** expected["lr"], rel=1e-12)
        assert point["sngan"] == ("A" if expected["sngan"] < 0.5 else "B")
        assert point["train.n_disc"] == 1 + int(expected["train.n_disc"] * 5)


def test_sobol_trials_are_queued_with_the_same_points_in_every_group(tmp_path):
    spec = parse_spec(EVERY_KIND, "spec")
    create(spec, tmp_path / "study")
    _, studies = load_studies(_folder(tmp_path / "study"))
    expected = sobol_points(spec, {}, 0, 4)  # every group has the same parameters
    for group, study in studies:
        assert sobol_points(spec, group, 0, 4) == expected
        queued = [t.system_attrs["fixed_params"] for t in study.get_trials()]
        assert queued == expected, group
        assert [t.user_attrs["group"] for t in study.get_trials()] == [group] * 4


def test_the_grid_sampler_queues_every_combination_in_every_group(tmp_path):
    spec = parse_spec({"base": "ring8_grid", "groups": {"loss": ["ns", "wgan"]}, "sampler": "grid",
                       "objective": "modes_covered",
                       "space": {"d.norm": {"categorical": ["none", "spectral"]},
                                 "penalty": {"categorical": ["none", "r1:0.1", "wgan_gp:1"]}}}, "spec")
    assert spec.trials == 6
    create(spec, tmp_path / "study")
    for _, study in load_studies(_folder(tmp_path / "study"))[1]:
        combos = {(t.system_attrs["fixed_params"]["d.norm"], t.system_attrs["fixed_params"]["penalty"])
                  for t in study.get_trials()}
        assert combos == set(itertools.product(["none", "spectral"], ["none", "r1:0.1", "wgan_gp:1"]))


def _folder(path):
    from ganscape.study.engine import StudyDir

    return StudyDir(path)


# ---------------------------------------------------------------- the expected best of k trials


@pytest.mark.parametrize("minimize", [True, False])
def test_expected_best_equals_brute_force_enumeration(minimize):
    """Independent value: the mean of the best over every one of the n^k ordered draws with replacement."""
    scores = [3.0, 1.5, 7.25, 1.5, 4.0]  # a tie included
    best = min if minimize else max
    for k in range(1, 5):
        draws = list(itertools.product(scores, repeat=k))
        brute = sum(best(d) for d in draws) / len(draws)
        assert expected_best(scores, k, minimize) == pytest.approx(brute, rel=1e-13, abs=0)


def test_expected_best_follows_the_order_statistics_formula():
    """P(best of k = x_(i)) = ((n - i + 1)^k - (n - i)^k) / n^k over scores sorted from best, summed by hand."""
    scores = [0.9, 0.2, 0.5, 0.7]  # sorted: 0.2, 0.5, 0.7, 0.9
    n, k = 4, 3
    by_hand = (0.2 * (4 ** 3 - 3 ** 3) + 0.5 * (3 ** 3 - 2 ** 3) + 0.7 * (2 ** 3 - 1) + 0.9 * 1) / 4 ** 3
    assert expected_best(scores, k) == pytest.approx(by_hand, rel=1e-15)
    assert expected_best(scores, 1) == pytest.approx(np.mean(scores), rel=1e-15)
    assert expected_best(scores, 10_000) == pytest.approx(0.2, rel=1e-12)  # no overflow for large k
    curve = expected_best_curve(scores, [1, 2, 3], bootstrap=200)
    assert curve["mean"] == [expected_best(scores, k) for k in (1, 2, 3)]
    assert all(lo <= m <= hi for lo, m, hi in zip(curve["low"], curve["mean"], curve["high"]))
    assert expected_best_curve([0.3] * 5, [1, 4])["low"] == [0.3, 0.3]  # no spread, no band


# ---------------------------------------------------------------- running


def test_more_trials_continue_each_groups_sequence_of_points(tmp_path):
    from ganscape.study.queue import top_up

    spec = parse_spec(EVERY_KIND | {"trials": 2}, "spec")
    create(spec, tmp_path / "study")
    _, studies = load_studies(_folder(tmp_path / "study"))
    assert top_up(studies, spec, 5) == 3 * 4 and top_up(studies, spec, 5) == 0
    for group, study in studies:
        assert [t.system_attrs["fixed_params"] for t in study.get_trials()] == sobol_points(spec, group, 0, 5)
    # A trial lost and queued again keeps its point; the next top-up goes on with point 5, not 6.
    from ganscape.study.leases import claim, requeue

    group, study = studies[0]
    lost = claim(study)
    assert requeue(study, lost, "its worker stopped (killed or lost)")
    assert top_up(studies, spec, 6) == 4
    fixed = [t.system_attrs["fixed_params"] for t in study.get_trials()]
    assert fixed[5] == fixed[0] and fixed[6] == sobol_points(spec, group, 5, 1)[0]


def test_an_evaluation_callback_that_says_stop_ends_the_run_with_a_checkpoint(tiny):
    """What a study's pruning relies on: train stops after the evaluation at which on_evaluation returns True."""
    from ganscape.training.loop import train
    from ganscape.runs import RunDir

    seen = []
    cfg = load_config(None, tiny)
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False, on_evaluation=lambda step, results: seen.append(step) or step >= 20)
    assert seen == [20] and summary["stopped"] and summary["step"] == 20
    assert run.latest_checkpoint()[0] == 20


def test_a_pruned_trial_stops_its_run_and_is_recorded_as_pruned(tmp_path, monkeypatch):
    """A pruner that prunes at once: the worker records the trial as PRUNED and trains nothing further."""
    import optuna

    from ganscape.study import engine

    spec = parse_spec(EVERY_KIND | {"groups": {}, "trials": 1, "seeds": 2, "pruning": True,
                                    "overrides": ["train.steps=40", "eval.every=20", "eval.samples=200",
                                                  "log.samples_every=0", "checkpoint.every=20"]}, "spec")
    folder = create(spec, tmp_path / "study")
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    assert engine.worker(folder, log=lambda message: None) == 0
    [(_, study)] = load_studies(folder)[1]
    [trial] = study.get_trials()
    assert trial.state.name == "PRUNED" and trial.intermediate_values == {20: trial.intermediate_values[20]}
    runs = sorted(p.name for p in (tmp_path / "study" / "runs" / "all").iterdir())
    assert runs == ["trial-0000-seed-0"]  # the second seed never started


def test_study_run_trains_on_workers_and_writes_the_report(tmp_path, capsys):
    spec = tmp_path / "mini.yaml"
    spec.write_text(yaml.safe_dump({
        "base": "ring8_grid", "overrides": ["train.steps=30", "eval.every=15", "eval.samples=200",
                                           "log.samples_every=0", "checkpoint.every=15"],
        "groups": {"loss": ["ns", "hinge"]}, "space": "wide", "trials": 1, "seeds": 1,
        "sampler": {"name": "random", "seed": 1}, "objective": "js_to_target"}))
    assert main(["study", "create", str(spec), "--out", str(tmp_path / "mini")]) == 0
    assert main(["study", "run", str(tmp_path / "mini"), "--workers", "2", "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "queued 2 more trial(s)" in out and "4 trial(s) complete, 0 pruned, 0 failed, 0 waiting" in out
    progress = re.findall(r"^trials done: (\d+)/(\d+), about (\d+) (s|min|h) left$", out, flags=re.MULTILINE)
    assert [(done, total) for done, total, _, _ in progress] == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]
    assert progress[-1][2] == "0"  # nothing left once the last trial is done
    assert (tmp_path / "mini" / "report" / "index.html").stat().st_size > 20_000
    assert len(list((tmp_path / "mini" / "runs").glob("loss=*/trial-*-seed-0/checkpoints/*.safetensors"))) >= 4
    logs = sorted(p.name for p in (tmp_path / "mini" / "logs").iterdir())
    assert logs == ["worker-0.log", "worker-1.log"]


def test_a_broken_study_folder_or_storage_is_refused_clearly(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.yaml").write_text("spec: [")
    assert main(["study", "status", str(tmp_path / "broken")]) == 2
    assert "study.yaml cannot be read (" in capsys.readouterr().err
    assert main(["study", "run", str(tmp_path / "nothing")]) == 2
    assert "is not a study folder (no study.yaml)" in capsys.readouterr().err
    assert main(["study", "create", "ring8_landscape", "--out", str(tmp_path / "s"),
                 "--storage", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    assert "cannot open the study storage postgresql+psycopg2://postgres@127.0.0.1:1/none" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    spec = parse_spec(EVERY_KIND, "spec")
    create(spec, tmp_path / "twice")
    with pytest.raises(ConfigError, match="already holds a study; run it with 'ganscape study run"):
        create(spec, tmp_path / "twice")


def test_a_retry_waits_while_the_given_up_worker_still_holds_the_run(tmp_path):
    """A worker given up for a late heartbeat may still train the run: its retry waits for the run's lock
    instead of failing with "in use", then resumes what it left."""
    import threading
    import time

    from ganscape.study.engine import wait_until_free
    from ganscape.runs import RunDir

    (tmp_path / "run").mkdir()
    holder = RunDir(tmp_path / "run")
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    tic = time.perf_counter()
    wait_until_free(RunDir(tmp_path / "run"), poll_s=0.05)
    assert time.perf_counter() - tic >= 0.45
    wait_until_free(RunDir(tmp_path / "absent"))  # a run not started yet: nothing to wait for


# ---------------------------------------------------------------- a study's runs as runs


TINY_STUDY = {"name": "tiny", "base": "ring8_grid", "groups": {"loss": ["ns", "hinge"]}, "space": "wide", "trials": 2,
              "seeds": 1, "sampler": {"name": "sobol", "seed": 0}, "objective": "js_to_target",
              "overrides": ["train.steps=60", "eval.every=30", "eval.samples=300", "log.every=30",
                            "log.samples_every=0", "checkpoint.every=30", "train.ema=0"]}


def _shown_config(capsys, args: list[str]) -> dict:
    """The config that 'ganscape config show' prints (its parameter count is a YAML comment)."""
    assert main(["config", "show", *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_a_trials_run_directory_is_a_preset_for_train_and_config_show(tiny, tmp_path, monkeypatch, capsys):
    """A path holding '=' (runs/loss=ns/trial-...) is the preset, not an override; as a preset a run directory
    gives its config.yaml without run.* (a new run, named as usual, in the default root)."""
    monkeypatch.chdir(tmp_path)
    trial = tmp_path / "study" / "runs" / "loss=ns" / "trial-0000-seed-0"
    overrides = [o for o in tiny if not o.startswith("run.")] + [f"run.root={trial.parent}", f"run.name={trial.name}"]
    assert main(["train", *overrides]) == 0
    capsys.readouterr()
    trained = yaml.safe_load((trial / "config.yaml").read_text())
    checkpoints = sorted(p.name for p in (trial / "checkpoints").iterdir())
    defaults = to_dict(RunConfig())
    assert _shown_config(capsys, [str(trial)]) == trained | {"run": defaults}
    assert _shown_config(capsys, [str(trial), "train.steps=7"])["train"] == trained["train"] | {"steps": 7}
    assert main(["train", str(trial), "train.steps=20"]) == 0
    [new] = list((tmp_path / "runs").iterdir())
    assert new.name.startswith(f"{trained['data']['name']}-{trained['loss']}-")  # the usual name
    again = yaml.safe_load((new / "config.yaml").read_text())
    assert again == trained | {"train": trained["train"] | {"steps": 20}, "run": defaults}
    assert sorted(p.name for p in (trial / "checkpoints").iterdir()) == checkpoints  # the trial is untouched
    assert main(["config", "show", str(trial.parent)]) == 2
    assert "loss=ns is a folder without a config.yaml" in capsys.readouterr().err


def test_study_best_writes_the_best_trials_config_as_a_preset(tmp_path, capsys):
    """The best trial is found independently from the Optuna studies (the lowest value over the groups, or in
    one group); the preset resolves to that trial's config.yaml, run.* aside."""
    from ganscape.study import engine

    folder = create(parse_spec(TINY_STUDY, "spec"), tmp_path / "study")
    out = tmp_path / "best.yaml"
    assert main(["study", "best", str(folder.path), "--out", str(out)]) == 2
    assert "no trial of any group has finished with a finite eval/js_to_target yet" in capsys.readouterr().err
    assert engine.worker(folder, log=lambda message: None) == 4
    trials = {group["loss"]: study.get_trials() for group, study in load_studies(folder)[1]}
    for group in (None, "hinge"):
        candidates = [(t.value, loss, t) for loss, ts in trials.items() for t in ts if group in (None, loss)]
        value, loss, expected = min(candidates, key=lambda c: c[0])
        assert main(["study", "best", str(folder.path), "--out", str(out)]
                    + ([] if group is None else ["--group", f"loss={group}"])) == 0
        printed = capsys.readouterr().out
        assert f"best trial: loss={loss}, trial {expected.number}, eval/js_to_target {value:.6g}" in printed
        assert ("best of 2 group(s)" in printed) == (group is None)
        trained = yaml.safe_load((folder.runs / expected.user_attrs["run_dirs"][0] / "config.yaml").read_text())
        assert _shown_config(capsys, [str(out)]) == trained | {"run": to_dict(RunConfig())}
    assert main(["study", "best", str(folder.path), "--group", "loss=wgan", "--out", str(out)]) == 2
    assert "has no group 'loss=wgan'; its groups: loss=ns; loss=hinge." in capsys.readouterr().err


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_study_status_shows_a_dead_workers_trial_as_dead(tmp_path, capsys):
    """Three running trials: one whose worker's pid is gone on this machine, one silent beyond the grace
    period on another machine, and one with a live worker (this process) that beat just now."""
    import os
    import socket
    import time

    from ganscape.study.leases import GRACE_S, claim

    folder = create(parse_spec(TINY_STUDY, "spec"), tmp_path / "study")
    [(_, ns), (_, hinge)] = load_studies(folder)[1]
    here = socket.gethostname()
    for study, worker, beat in ((ns, {"host": here, "pid": _dead_pid()}, time.time()),
                                (ns, {"host": "elsewhere", "pid": 1}, time.time() - GRACE_S - 60),
                                (hinge, {"host": here, "pid": os.getpid()}, time.time())):
        trial = claim(study)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("heartbeat", beat)
    assert main(["study", "status", str(folder.path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(": 1 running, 1 waiting, 2 dead")
    assert f"  dead: loss=ns, trial 0, on {here} pid " in out and "is gone); the next worker queues it again" in out
    assert "  dead: loss=ns, trial 1, on elsewhere pid 1 (no heartbeat for 18" in out
    beat = re.search(rf"  running: loss=hinge, trial 0, on {re.escape(here)} pid {os.getpid()}, heartbeat (\d+) s ago",
                     out)
    assert beat and int(beat.group(1)) <= 5  # it beat just before the command (a busy machine may take seconds)


def test_a_trials_compute_counts_the_time_of_its_killed_attempt(tmp_path):
    """A trial's first attempt dies (its worker's pid is gone) after beating for 7.5 s; its retry trains the run.
    Independent value: the killed attempt's last heartbeat minus its start, plus the retry's recorded wall
    times, read from the storage; the budget curves' compute (the summary's mean) is that sum."""
    from ganscape.study import engine
    from ganscape.study.leases import claim
    from ganscape.study.report import failed_score, gather, groups_of

    spec = parse_spec(TINY_STUDY | {"groups": {}, "trials": 1}, "spec")
    folder = create(spec, tmp_path / "study")
    [(_, study)] = load_studies(folder)[1]
    attempt = claim(study)
    started = attempt.datetime_start
    attempt.set_user_attr("worker", {"host": engine.socket.gethostname(), "pid": _dead_pid()})
    attempt.set_user_attr("heartbeat", started.timestamp() + 7.5)
    assert engine.worker(folder, log=lambda message: None) == 1
    killed, retry = study.get_trials()
    assert killed.state.name == "FAIL" and retry.user_attrs["retry_of"] == killed.number
    expected = (killed.user_attrs["heartbeat"] - killed.datetime_start.timestamp()) + sum(retry.user_attrs["wall_s"])
    assert expected > 7.5
    _, rows, _ = gather(folder)
    assert [r["compute_s"] for r in rows] == [pytest.approx(7.5, abs=1e-6), pytest.approx(expected, rel=1e-12)]
    [row] = summary_rows(spec, groups_of(rows, spec), failed_score(spec, rows))
    assert row["mean_compute_s"] == pytest.approx(expected, rel=1e-12)


def test_a_claim_takes_each_queued_trial_once_and_makes_no_trial(tmp_path):
    """Two queued trials, three claims: trials 0 and 1, then None; the study still holds exactly the two
    (``study.ask()`` on an empty queue would have made a third). A claim is a heartbeat, and writes the reason
    its trial fails should its worker vanish."""
    import time

    from ganscape.study.leases import claim

    folder = create(parse_spec(TINY_STUDY | {"groups": {}}, "spec"), tmp_path / "study")
    [(_, study)] = load_studies(folder)[1]
    before = time.time()
    first, second, third = claim(study), claim(study), claim(study)
    assert (first.number, second.number, third) == (0, 1, None)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "RUNNING"]
    assert first.user_attrs["failure"] == "its worker stopped (killed or lost)"
    assert before <= first.user_attrs["heartbeat"] <= time.time()


def test_a_lost_trial_is_failed_and_queued_again_once_and_its_worker_tells_nothing(tmp_path):
    """A trial whose worker went silent is found by two workers (two handles on the storage): one fails it
    and queues one retry with its parameters, group and run prefix; the other, and the late worker itself
    (finishing, or giving it back), change nothing. The retry completes once, with its value and no failure."""
    import time

    from ganscape.study.engine import suggest
    from ganscape.study.leases import GRACE_S, claim, fail_and_queue_again, fail_stale_trials, finish, requeue

    spec = parse_spec(TINY_STUDY | {"groups": {}, "trials": 1}, "spec")
    folder = create(spec, tmp_path / "study")
    [(_, study)] = load_studies(folder)[1]
    [(_, elsewhere)] = load_studies(folder)[1]
    late = claim(study)
    params = suggest(late, spec)
    late.set_user_attr("run_prefix", "all/trial-0000")
    late.set_user_attr("heartbeat", time.time() - GRACE_S - 1)
    assert fail_stale_trials(study) == [0]
    assert not fail_and_queue_again(elsewhere, 0) and fail_stale_trials(elsewhere) == []
    assert not finish(study, late, 0.5) and not requeue(study, late, "its worker was interrupted (Ctrl-C)")
    lost, retry = elsewhere.get_trials()
    assert (lost.state.name, lost.values, lost.params) == ("FAIL", None, params)
    assert lost.user_attrs["failure"] == "its worker stopped (killed or lost)"
    assert retry.state.name == "WAITING" and retry.system_attrs["fixed_params"] == params
    assert retry.user_attrs == {"group": {}, "group_label": "all", "run_prefix": "all/trial-0000", "retry_of": 0}
    again = claim(elsewhere)
    assert again.number == 1 and finish(elsewhere, again, 0.25) and not finish(study, again, 0.75)
    done = study.get_trials()[1]
    assert (done.state.name, done.value, done.user_attrs["failure"]) == ("COMPLETE", 0.25, None)


def test_the_study_engine_uses_only_optunas_public_api():
    """A cheap guard: no private attribute of an Optuna object (its study, trial or storage) and no Trial
    built by hand (``study.ask()`` makes them) in the engine's modules."""
    from pathlib import Path

    from ganscape.study import engine, leases

    for module in (engine, leases):
        source = Path(module.__file__).read_text()
        for private in ("._storage", "._trial_id", "._thread_local", "._study_id", "optuna.Trial(",
                        "trial.Trial("):
            assert private not in source, (module.__name__, private)
        assert not re.search(r"\b(optuna|study|studies|trial|frozen|failed|lost)\._[a-z]", source), module.__name__


def test_the_installed_optuna_is_within_the_bounds_pyproject_names():
    """pyproject.toml bounds Optuna's version above and below by the versions the study engine is tested on;
    the Optuna running these tests must lie inside (packaging reads the specifier)."""
    from importlib.metadata import version
    from pathlib import Path

    from packaging.specifiers import SpecifierSet

    [bounds] = re.findall(r'"optuna([<>=!~][^"]*)"', (Path(__file__).parents[1] / "pyproject.toml").read_text())
    specifier = SpecifierSet(bounds)
    assert {s.operator for s in specifier} == {">=", "<"} and version("optuna") in specifier


def test_study_status_and_report_describe_themselves(capsys):
    for action, words in (("status", "shows as dead"), ("report", "every attempt of a trial counted")):
        with pytest.raises(SystemExit):
            main(["study", action, "--help"])
        assert words in " ".join(capsys.readouterr().out.split())
