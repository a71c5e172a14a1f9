"""The ``cli`` package: every command is listed, the commands only parse and print, and the helpers they share."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ganscape.cli import build_parser
from ganscape.cli.common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, finish
from ganscape.errors import ConfigError
from ganscape.training.sample_files import sample_labels

COMMANDS = ["train", "resume", "branch", "eval", "config", "data", "export", "import", "sample", "interpolate", "fid",
            "study", "campaign", "dynamics", "plot", "claims"]
CLI = Path(__file__).resolve().parents[1] / "src" / "ganscape" / "cli"
# The lifecycle and the storage belong to runs/ and store/: a command that imports these does their work itself.
LIFECYCLE_MODULES = ("ganscape.training.loop", "ganscape.training.distributed", "ganscape.metrics.evaluate",
                     "ganscape.store", "ganscape.training.snapshots")


def test_help_lists_every_command_and_python_m_ganscape_runs_it():
    """The hand-written list of commands against the parser's, and against ``python -m ganscape --help``."""
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert list(subparsers.choices) == COMMANDS
    result = subprocess.run([sys.executable, "-m", "ganscape", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line[:4] == "    " and line[4:5].isalpha()]
    assert [name for name in listed if name in COMMANDS] == COMMANDS


def _imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    return modules


def test_commands_leave_the_lifecycle_to_the_runs_layer():
    """No module of cli/ imports the training loop, the distributed start, evaluation stamping or the storage
    floor (module- and function-level imports): those are reached through ganscape.runs."""
    offending = [f"{path.name}: {module}" for path in sorted(CLI.glob("*.py")) for module in _imported_modules(path)
                 if module.startswith(LIFECYCLE_MODULES)]
    assert offending == []
    assert len(list(CLI.glob("*.py"))) >= 8  # the package is where this test looks for it


def test_finish_exit_codes_and_what_it_says(capsys):
    """Hand-made summaries: done (0), stopped by Ctrl-C (130, says how to resume), output closed before the end
    (141, on stderr only), and stopped early by --until (0, says how to continue)."""
    base = {"step": 10, "steps": 10, "wall_time_s": 1.0, "results": {}, "stopped": False}
    assert finish(base, "runs/x") == 0
    assert "trained to step 10 of 10 in 1.0 s" in capsys.readouterr().out
    assert finish(base | {"step": 4, "stopped": True}, "runs/x") == EXIT_INTERRUPTED
    assert "stopped at step 4 on request; continue with: ganscape resume runs/x" in capsys.readouterr().out
    assert finish(base | {"step": 4, "output_closed": True}, "runs/x") == EXIT_BROKEN_PIPE
    out, err = capsys.readouterr()
    assert out == "" and "stopped at step 4 with a checkpoint; continue with: ganscape resume runs/x" in err
    assert finish(base | {"step": 6}, "runs/x") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "continue with: ganscape resume runs/x"


def _model(num_classes: int):
    names = ("cat", "dog", "owl")[:num_classes]
    return SimpleNamespace(spec=SimpleNamespace(num_classes=num_classes),
                           class_labels=lambda chosen: torch.tensor([names.index(c) for c in chosen]))


def test_sample_labels_by_hand():
    """Classes drawn by ``ganscape sample``, written out by hand: --per-class K gives K of each class in order,
    --classes cycles over the named classes, and without either every class in turn."""
    n, labels = sample_labels(_model(3), 64, None, 2, picture=True)
    assert n == 6 and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert sample_labels(_model(3), 5, "owl,cat", None, picture=False)[1].tolist() == [2, 0, 2, 0, 2]
    assert sample_labels(_model(3), 4, None, None, picture=False)[1].tolist() == [0, 1, 2, 0]
    assert sample_labels(_model(0), 4, None, None, picture=True) == (4, None)
    with pytest.raises(ConfigError, match="not both"):
        sample_labels(_model(3), 4, "cat", 2, picture=True)
    with pytest.raises(ConfigError, match="--per-class needs a class-conditional generator"):
        sample_labels(_model(0), 4, None, 2, picture=True)
