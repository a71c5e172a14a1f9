import importlib.util
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """The script benchmarks/<name>.py as a module (benchmarks/ is not a package), for the tests of its parts."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny(tmp_path):
    """Overrides for a training run that takes well under a second."""
    return [f"run.root={tmp_path / 'runs'}", "run.name=tiny", "train.steps=40", "train.batch_size=64",
            "g.width=32", "d.width=32", "g.depth=2", "d.depth=2", "eval.samples=500", "eval.every=20",
            "log.every=10", "log.samples_every=20", "checkpoint.every=10", "log.tensorboard=false"]


@pytest.fixture
def float64():
    """Float64 as the default dtype for the test (formula checks to 1e-12), restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
