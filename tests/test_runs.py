"""The runs layer: the run directory's file names, the lifecycle (start, resume, evaluate) and the Python API."""

import json
import subprocess
import sys

import pytest
import torch

import ganscape
from ganscape import runs
from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError
from ganscape.jsonio import json_value
from ganscape.store.checkpoint import load_checkpoint
from ganscape.store.rundir import RunDir, eval_result_path, read_metrics, step_in_name
from ganscape.study.spec import parse_spec


def test_every_file_name_of_a_run_directory_comes_from_its_layout(tmp_path):
    """The names, written out by hand: eight-digit steps, raw and truncation suffixes, the sweep's prefix."""
    run = RunDir(tmp_path / "r")
    assert run.checkpoint_file(7) == tmp_path / "r" / "checkpoints" / "step_00000007.safetensors"
    assert run.sample_picture(40) == tmp_path / "r" / "samples" / "step_00000040.png"
    assert run.eval_result(5) == tmp_path / "r" / "eval" / "step_00000005.json"
    assert run.eval_result(5, raw=True, truncation=0.5).name == "step_00000005_raw_truncation_0.5.json"
    assert run.truncation_sweep_result(12).name == "truncation_sweep_step_00000012.json"
    assert run.spectrum_picture(3) == tmp_path / "r" / "dynamics" / "spectrum_step_00000003.png"
    assert eval_result_path(tmp_path / "model", 6) == tmp_path / "model" / "eval" / "step_00000006.json"
    assert [step_in_name(n) for n in ("step_00000040_raw.json", "step_00000123.png", "best.json")] == [40, 123, None]


def _tensors(path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint by its place in the state (the config, which names the run, left out)."""
    flat = {}

    def walk(value, key):
        if isinstance(value, torch.Tensor):
            flat[key] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}")

    walk({k: v for k, v in load_checkpoint(path).items() if k != "config"}, "")
    return flat


def test_the_python_api_trains_resumes_and_evaluates_as_the_command_does(tiny, tmp_path, capsys):
    """The independent values are those of the ``ganscape`` command on the same job: ganscape.train to step 20,
    ganscape.resume to 40 and ganscape.evaluate give the same weights, log and evaluation as
    'ganscape train --until 20', 'ganscape resume' and 'ganscape eval'."""
    assert main(["train", *tiny, "run.name=cli", "--until", "20"]) == 0
    cli_dir = tmp_path / "runs" / "cli"
    assert main(["resume", str(cli_dir)]) == 0
    assert main(["eval", str(cli_dir)]) == 0
    capsys.readouterr()

    starts = []
    first = ganscape.train(None, [*tiny, "run.name=api"], until=20, progress=False, on_start=starts.append)
    assert first.summary["step"] == 20 and first.run.path == tmp_path / "runs" / "api"
    again = ganscape.resume(first.run.path, progress=False, on_start=starts.append)
    assert [(s.step, s.finished) for s in starts] == [(0, False), (20, False)]
    assert again.summary["step"] == 40 and again.summary["results"] and capsys.readouterr().out == ""

    ours = _tensors(again.run.checkpoint_file(40))
    theirs = _tensors(cli_dir / "checkpoints" / "step_00000040.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    timing = ("steps_per_s",)
    assert ([{k: v for k, v in r.items() if k not in timing} for r in read_metrics(again.run)]
            == [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(RunDir(cli_dir))])

    shown = []
    result = ganscape.evaluate(again.run.path, on_values=lambda *args: shown.append(args))
    written = json.loads((cli_dir / "eval" / "step_00000040.json").read_text())
    assert result.path == again.run.eval_result(40) and result.kept is None
    assert {k: json_value(v) for k, v in result.values.items()} == written["values"]
    assert shown == [(40, "ema", 500, result.values)]
    assert {k: v for k, v in result.protocol.items() if k != "seconds"} == \
        {k: v for k, v in written["protocol"].items() if k != "seconds"}


def test_an_evaluation_under_another_protocol_keeps_the_first(tiny, tmp_path):
    """Under the run's protocol (500 samples) the result replaces the one training wrote in step_N.json; one of
    200 samples goes beside it, and the reason names both sample counts."""
    run = runs.start(load_config(None, tiny), progress=False).run
    first = runs.evaluate(run.path)
    second = runs.evaluate(run.path, samples=200)
    assert first.path == run.eval_result(40) and second.path != first.path and second.kept == first.path
    assert first.kept is None and "samples 200 here, 500 in the file" in second.kept_reason
    assert json.loads(first.path.read_text())["protocol"]["num_samples"] == 500


def test_start_records_the_resolved_shards_without_changing_the_given_config(tiny):
    """One process and train.shards=0 (one shard per process): the run records 1; the caller's config keeps 0."""
    cfg = load_config(None, [*tiny, "train.shards=0", "train.steps=10"])
    result = runs.start(cfg, progress=False)
    assert cfg.train.shards == 0 and result.cfg.train.shards == 1
    assert result.run.read_config().train.shards == 1


def test_a_run_that_fails_before_its_first_step_leaves_nothing(tiny, tmp_path, monkeypatch):
    """A data set that cannot be built: the run directory that start made is removed again."""
    from ganscape.errors import DataError
    from ganscape.training import loop

    def missing(cfg):
        raise DataError("no data here")

    monkeypatch.setattr(loop, "build_dataset", missing)
    with pytest.raises(DataError):
        runs.start(load_config(None, tiny), progress=False)
    assert not (tmp_path / "runs" / "tiny").exists()


def test_resume_refuses_what_would_change_the_run_as_text_and_as_typed_settings(tiny):
    run = runs.start(load_config(None, [*tiny, "train.steps=10"]), progress=False).run
    for overrides, settings in ((["loss=hinge"], None), ((), {"loss": "hinge"})):
        with pytest.raises(ConfigError, match="cannot change 'loss' when resuming"):
            runs.resume(run.path, overrides, settings=settings)
    done = runs.resume(run.path, settings={"train.steps": 20}, progress=False)
    assert done.summary["step"] == 20 and run.read_config().train.steps == 20


def test_a_trial_config_keeps_the_types_of_its_values():
    """1e-05 written as text ('1e-05') is a string to YAML; handed over typed, it stays the float 1e-05."""
    spec = parse_spec({"base": "ring8", "objective": "js_to_target",
                       "space": {"lr": {"log_uniform": [1e-6, 1e-3], "keys": ["g_opt.lr", "d_opt.lr"]}}}, "spec")
    cfg = spec.trial_config({}, {"lr": 1e-05}, seed=3, placement={"log.tensorboard": False})
    assert cfg.g_opt.lr == cfg.d_opt.lr == 1e-05 and cfg.train.seed == 3 and cfg.log.tensorboard is False


def test_importing_ganscape_stays_light():
    """The Python API is reached lazily: importing the package loads no torch."""
    code = "import sys, ganscape; assert 'torch' not in sys.modules; assert callable(ganscape.train)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
