"""The ganscape command, end to end."""

import subprocess
import sys


from ganscape.cli import main
from ganscape.config import Experiment, all_keys, flatten, resolve, to_dict
from ganscape.store.checkpoint import list_checkpoints


def test_train_through_the_command_line(tiny, tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganscape", "train", *tiny], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "tiny"
    assert f"run directory: {run_dir}" in result.stdout
    assert "modes covered:" in result.stdout and "high-quality samples:" in result.stdout
    assert (run_dir / "config.yaml").is_file() and (run_dir / "samples" / "step_00000040.png").is_file()
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == 40


def test_train_until_then_resume_and_extend(tiny, tmp_path, capsys):
    assert main(["train", *tiny, "--until", "20"]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == 20
    assert main(["resume", str(run_dir)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == 40
    assert main(["resume", str(run_dir)]) == 0
    assert "already at step 40" in capsys.readouterr().out
    assert main(["resume", str(run_dir), "train.steps=50"]) == 0
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == 50
    assert "steps: 50" in (run_dir / "config.yaml").read_text()


def test_resume_refuses_changes_that_alter_the_run(tiny, tmp_path, capsys):
    assert main(["train", *tiny, "--until", "10"]) == 0
    assert main(["resume", str(tmp_path / "runs" / "tiny"), "loss=hinge"]) == 2
    assert "cannot change 'loss' when resuming" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a ganscape run directory" in capsys.readouterr().err


def test_config_errors_are_one_line_not_a_traceback(capsys):
    assert main(["train", "loss=hinj"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'hinge'" in err and "Traceback" not in err


def test_config_show_prints_resolved_config_and_parameter_counts(capsys):
    assert main(["config", "show", "loss=wgan", "g.width=64", "g.depth=2", "latent.dim=8"]) == 0
    out = capsys.readouterr().out
    assert "loss: wgan" in out
    # G: 8*64+64 + 64*64+64 + 64*2+2 = 4,866 parameters.
    assert "# parameters: G 4,866" in out


def test_config_keys_shows_each_keys_type_default_and_description(capsys):
    """Every key, in a column layout, with a description; each printed default, given back as an override,
    leaves the default config (``Experiment()``) as it is, and the type is that of the default value."""
    assert main(["config", "keys"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    starts = [header.index(name) for name in ("KEY", "TYPE", "DEFAULT", "DESCRIPTION")] + [None]
    rows = [[line[a:b].strip() for a, b in zip(starts, starts[1:])] for line in lines]
    assert [key for key, *_ in rows] == all_keys()
    defaults = flatten(to_dict(Experiment()))
    for key, type_shown, default, description in rows:
        assert description, f"{key} has no description"
        # an architecture's own settings (g.settings.*) are defaults once it is chosen; the description names it
        chosen = [] if key in defaults else [f"{key.split('.')[0]}.arch={description.split(':')[0].split(',')[0]}"]
        expected = resolve({}, chosen)
        value = flatten(to_dict(expected))[key]
        assert type_shown.startswith("list[") if isinstance(value, list) else type_shown == type(value).__name__
        assert resolve({}, [*chosen, f"{key}={default}"]) == expected, f"{key}: printed default {default!r}"


def test_config_keys_under_a_prefix(capsys):
    assert main(["config", "keys", "g_opt"]) == 0
    keys = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert keys == [key for key in all_keys() if key.startswith("g_opt.")] and len(keys) == 6
    assert main(["config", "keys", "trian"]) == 2
    assert "no config key starts with 'trian'; the sections are augment, checkpoint, collapse, d," in capsys.readouterr().err


def test_divergence_exit_code_and_message(tiny, capsys):
    code = main(["train", *tiny, "g_opt.lr=1e30", "d_opt.lr=1e30", "g_opt.name=rmsprop", "d_opt.name=rmsprop"])
    assert code == 3
    assert "training diverged at step" in capsys.readouterr().err


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_resume_finishes(tiny, tmp_path):
    import signal
    import time

    overrides = tiny + ["train.steps=100000", "checkpoint.every=100000", "eval.every=100000",
                        "log.samples_every=100000"]
    proc = subprocess.Popen([sys.executable, "-m", "ganscape", "train", *overrides], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "runs" / "tiny" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # not 0: 'train && eval' must not carry on after an interruption
    assert "stopping after this step" in err
    steps = [s for s, _ in list_checkpoints(tmp_path / "runs" / "tiny" / "checkpoints")]
    assert len(steps) == 1 and 20 <= steps[0] < 100000
    assert f"trained to step {steps[0]} of 100000" in out
    assert f"stopped at step {steps[0]} on request; continue with: ganscape resume {tmp_path / 'runs' / 'tiny'}" in out
    # Resume with a nearer goal to finish quickly.
    assert main(["resume", str(tmp_path / "runs" / "tiny"), f"train.steps={steps[0] + 10}"]) == 0
    assert [s for s, _ in list_checkpoints(tmp_path / "runs" / "tiny" / "checkpoints")][-1] == steps[0] + 10
