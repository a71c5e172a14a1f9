"""Truncated latents in evaluation, and the truncation sweep (BigGAN's fidelity/variety trade-off)."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import ConfigError
from ganscape.metrics.evaluate import Evaluator
from ganscape.metrics.modes import mode_statistics
from ganscape.metrics.truncation import parse_thresholds, truncation_figure, truncation_sweep
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.runs import load_run_generator


@pytest.fixture
def run(tiny):
    cfg = load_config(None, tiny + ["eval.samples=600"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    return run


class Recording(torch.nn.Module):
    """Wraps G and keeps every latent batch it is given."""

    def __init__(self, G):
        super().__init__()
        self.G, self.inputs = G, []

    def forward(self, z, labels=None):
        self.inputs.append(z.detach().clone())
        return self.G(z, labels)


def test_each_point_of_a_sweep_scores_samples_of_latents_within_its_threshold(run):
    """Independent value: mode_statistics of G applied to the very latents the sweep drew, each of which
    lies in [-t, t]; the untruncated point equals a plain evaluation."""
    cfg = run.read_config([])
    G, _, _, _ = load_run_generator(run, None, ema=True, device="cpu")
    data = build_dataset(cfg)
    evaluator = Evaluator.from_config(cfg, data, seed=5, device="cpu")
    plain = evaluator(G)
    recording = Recording(G)
    rows = truncation_sweep(evaluator, recording, [0.3, 1.5])
    assert [r["truncation"] for r in rows] == [None, 0.3, 1.5] and evaluator.truncation is None
    assert rows[0]["values"] == plain
    per_point = len(recording.inputs) // 3
    for index, row in enumerate(rows):
        z = torch.cat(recording.inputs[index * per_point:(index + 1) * per_point])
        assert len(z) == 600
        if row["truncation"] is not None:
            assert z.abs().max() <= row["truncation"]
            assert z.abs().max() > 0.9 * row["truncation"]  # truncated, not shrunk
        with torch.no_grad():
            expected = mode_statistics(G(z), data.centers, data.std)
        assert row["values"] == pytest.approx(expected, rel=1e-12)


def test_eval_truncation_and_sweep_write_their_files(run, capsys):
    assert main(["eval", str(run), "--truncation", "0.5"]) == 0
    result = json.loads(run.eval_result(40).with_name("step_00000040_truncation_0.5.json").read_text())
    assert result["protocol"]["truncation"] == 0.5
    assert "truncation" not in json.loads(run.eval_result(40).read_text())["protocol"]  # training's own: untouched
    assert main(["eval", str(run), "--truncation-sweep", "1,0.25,2"]) == 0
    out = capsys.readouterr().out
    assert "truncation  modes_covered" in out and "\n      none " in out
    sweep = json.loads((run.eval / "truncation_sweep_step_00000040.json").read_text())
    assert [r["truncation"] for r in sweep["rows"]] == [None, 2.0, 1.0, 0.25]
    assert "truncation" not in sweep["protocol"] and sweep["protocol"]["num_samples"] == 600
    picture = run.eval / "truncation_sweep_step_00000040.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000


@pytest.mark.parametrize("text, message", [
    ("0.5,abc", "comma-separated thresholds"),
    ("0,1", "must be finite and > 0"),
    ("-1", "must be finite and > 0"),
    ("inf", "must be finite and > 0"),
    ("", "must be finite and > 0"),
])
def test_malformed_thresholds_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_thresholds(text)


def test_uniform_latents_have_nothing_to_truncate(tiny, capsys):
    cfg = load_config(None, tiny + ["latent.dist=uniform", "train.steps=10", "eval.every=10"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    assert main(["eval", str(run), "--truncation-sweep", "0.5,1"]) == 2
    assert "latents are uniform, so there is nothing to sweep" in capsys.readouterr().err
    assert main(["eval", str(run), "--truncation", "0.5"]) == 2
    assert "latents are uniform, so there is nothing to truncate" in capsys.readouterr().err


def test_the_sweep_picture_ticks_counts_at_whole_numbers_and_keeps_its_title_inside():
    """Modes covered (8, then 7) is ticked at whole numbers only, where matplotlib would put ticks at 7.2, 7.4,
    ...; the share of high-quality samples keeps its fractional ticks. A title wider than the figure is
    wrapped inside it: no text touches its left and right edges."""
    rows = [{"truncation": None, "values": {"modes_covered": 8, "high_quality_pct": 80.5}},
            {"truncation": 1.0, "values": {"modes_covered": 7, "high_quality_pct": 81.0}}]
    fig = truncation_figure(rows, "a rather long title " * 15)
    fig.canvas.draw()
    modes, quality = fig.axes
    assert all(tick == round(tick) for tick in modes.get_yticks())
    assert any(tick != round(tick) for tick in quality.get_yticks())
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    assert (rgb[:, :2] == 255).all() and (rgb[:, -2:] == 255).all()
