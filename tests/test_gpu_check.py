"""benchmarks/gpu_check.py at toy sizes on the CPU: every part of the GPU check runs, so the script cannot rot
while no GPU is at hand. The numbers mean nothing here; what is checked is that each part measured what it says."""

from __future__ import annotations

import json
import math

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def gpu_check():
    return load_benchmark("gpu_check")


def test_the_tiny_check_runs_every_part_and_writes_json_and_markdown(gpu_check, tmp_path, capsys):
    """Independent values: 3 architectures x (the plain step + 3 variants), and the compiled variant for the ResNet
    only at toy sizes: 13 timed steps; the FID of two
    different random generators is finite and positive, and TF32 changes nothing on a CPU (relative deviation 0);
    the torchrun process exits 0 after its 2 steps; the short training logs an FID."""
    assert gpu_check.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = results["steps"]
    assert len(steps) == 13 and {row["arch"] for row in steps} == {"resnet_cifar", "sndcgan", "biggan128"}
    assert all(row["g_steps_per_s"] > 0 and math.isfinite(row["x_plain"]) for row in steps)
    assert [row["step"] for row in steps[:5]] == ["plain PyTorch (fp32)", "ganscape fp32", "ganscape tf32",
                                                  "ganscape bf16", "ganscape bf16 + compile"]
    fid = results["fid"]
    assert fid["fp32"]["fid"] > 0 and fid["tf32_relative_deviation"] == 0.0 and fid["samples"] == 16
    assert results["torchrun"]["returncode"] == 0 and results["torchrun"]["steps"] == 2
    assert results["torchrun"]["command"].startswith("torchrun --standalone --nproc_per_node 1 -m ganscape train")
    assert results["training"]["steps"] == 2 and results["training"]["fid"] > 0
    page = (tmp_path / "gpu_check.md").read_text()
    assert "## Training steps" in page and "goal 50" in page and "## torchrun" in page and "## Short training" in page


def test_an_unknown_part_is_refused_with_the_valid_ones(gpu_check, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--parts", "steps,speed"])
    assert "unknown part(s) speed; valid: steps, fid, torchrun, training" in capsys.readouterr().err
