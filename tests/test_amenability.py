"""Truncation amenability (BigGAN, Section 3.1): the saturation of samples and the verdict over a truncation
sweep, on hand-built images and sweeps; the sweep records saturation, and ``ganscape eval --truncation-sweep``
writes and prints the verdict."""

from __future__ import annotations

import json

import pytest
import torch

import ganscape.runs
from ganscape.cli import main
from ganscape.config import DataConfig, load_config
from ganscape.data import DATASETS
from ganscape.errors import ConfigError
from ganscape.metrics.amenability import AmenabilityRule, amenability, saturated_share
from ganscape.metrics.evaluate import Evaluator, seeded_latents
from ganscape.metrics.truncation import truncation_sweep
from ganscape.runs import RunDir, TruncationSweep
from ganscape.training.loop import train


def sweep(quality: list, saturation: list, key: str = "precision", thresholds=(1.0, 0.25)) -> list[dict]:
    """Rows of a sweep as ``truncation_sweep`` gives them: untruncated first, then each threshold."""
    return [{"truncation": t, "values": {key: q, "recall": 0.5}, "saturation": s}
            for t, q, s in zip([None, *thresholds], quality, saturation)]


def test_saturated_share_counts_pixel_values_beyond_099_over_all_batches():
    """By hand: batch 1 holds 0.995, -1 (saturated), 0.99 (exactly the level: not), 0.5; batch 2 holds 12 values
    of which -0.999 and 1 are saturated: 4 of 16 = 0.25 (the mean of the batches' shares would be 0.33)."""
    first = torch.tensor([0.995, -1.0, 0.99, 0.5]).view(1, 1, 2, 2)
    second = torch.tensor([-0.999, 1.0] + [0.0] * 10).view(3, 1, 2, 2)
    assert saturated_share([first, second]) == 0.25


@pytest.mark.parametrize("batch", [torch.zeros(5, 2), torch.zeros(0, 1, 2, 2)])
def test_saturation_is_measured_on_images_only(batch):
    with pytest.raises(ValueError, match="image"):
        saturated_share([batch])


def test_a_model_whose_fidelity_rises_and_saturation_holds_is_amenable():
    """Precision 0.6 -> 0.65 -> 0.7 (rises), saturated share 0.10 -> 0.11 -> 0.12 (+2 points <= 5)."""
    result = amenability(sweep([0.6, 0.65, 0.7], [0.10, 0.11, 0.12]))
    assert result["amenable"] is True and result["reason"].startswith("amenable: precision holds")
    assert [c["quality_holds"] for c in result["checks"]] == [True, True]
    assert [c["saturation_rise"] for c in result["checks"]] == pytest.approx([0.01, 0.02], abs=1e-12)
    assert "+2 points at 0.25" in result["reason"]
    assert result["protocol"] == {"quality": "precision", "tolerance": 0.05, "saturation_bound": 0.05,
                                  "strong": 0.5, "saturation_level": 0.99, "thresholds": [1.0, 0.25],
                                  "definition": result["protocol"]["definition"]}


@pytest.mark.parametrize("strongest, amenable", [(0.571, True), (0.569, False)])
def test_fidelity_may_fall_by_the_tolerance_share_of_its_untruncated_value(strongest, amenable):
    """Tolerance 5% of precision 0.6 is 0.03: 0.571 holds, 0.569 does not (an absolute 0.05 would pass both);
    saturation is unchanged, so fidelity decides alone."""
    result = amenability(sweep([0.6, 0.62, strongest], [0.1, 0.1, 0.1]))
    assert result["amenable"] is amenable
    if not amenable:
        assert result["reason"] == "not amenable: precision falls from 0.6 untruncated to 0.569 at 0.25 (more than " \
                                   "5% worse)"


def test_with_no_tolerance_an_unchanged_fidelity_still_holds():
    """Precision 0.6 at every threshold: no worse, so it holds even with tolerance 0."""
    assert amenability(sweep([0.6, 0.6, 0.6], [0.1, 0.1, 0.1]), AmenabilityRule(tolerance=0.0))["amenable"] is True


@pytest.mark.parametrize("fids, amenable", [([20.0, 19.0, 18.0], True), ([20.0, 19.0, 21.5], False)])
def test_a_lower_is_better_value_holds_when_it_does_not_rise_past_the_tolerance(fids, amenable):
    """FID, named in the rule: lower is better; 21.5 is 7.5% worse than 20 (tolerance 5%: up to 21)."""
    result = amenability(sweep(fids, [0.1, 0.1, 0.1], key="fid"), AmenabilityRule(quality="fid"))
    assert result["amenable"] is amenable and result["protocol"]["quality"] == "fid"


@pytest.mark.parametrize("strongest, amenable", [(0.1875, True), (0.1876, False)])
def test_saturation_may_rise_by_the_bound_and_no_more(strongest, amenable):
    """Fidelity rises; the saturated share rises from 0.125 by exactly the bound 0.0625 (kept) or just past it."""
    result = amenability(sweep([0.6, 0.65, 0.7], [0.125, 0.15, strongest]), AmenabilityRule(saturation_bound=0.0625))
    assert result["amenable"] is amenable
    assert [c["saturation_ok"] for c in result["checks"]] == [True, amenable]
    if not amenable:
        assert result["reason"].startswith("not amenable: largest rise of saturated pixels +6.26 points at 0.25 "
                                           "(12.50% -> 18.76%")


def test_saturation_is_judged_against_the_untruncated_samples_not_a_fixed_level():
    """Digits are mostly background at -1: 70% saturated untruncated, 72% truncated is a rise of 2 points,
    amenable; the same model whose truncated samples reach 80% (+10 points) is not."""
    assert amenability(sweep([0.6, 0.6, 0.6], [0.70, 0.71, 0.72]))["amenable"] is True
    saturated = amenability(sweep([0.6, 0.6, 0.6], [0.70, 0.71, 0.80]))
    assert saturated["amenable"] is False and "+10 points at 0.25 (70.00% -> 80.00%" in saturated["reason"]


def test_a_sweep_that_stops_above_the_strong_threshold_is_undetermined():
    rows = sweep([0.6, 0.65, 0.7], [0.1, 0.1, 0.1], thresholds=(2.0, 1.0))
    result = amenability(rows)
    assert result["amenable"] is None and "lowest threshold is 1; amenability needs one at or below 0.5" in \
        result["reason"]
    assert amenability(rows, AmenabilityRule(strong=1.0))["amenable"] is True


def test_without_a_fidelity_value_only_a_saturation_failure_decides():
    """FID alone is not judged by default (it scores variety, which truncation removes): undetermined while the
    saturation holds, not amenable once it rises 20 points."""
    holding = amenability(sweep([20.0, 25.0, 30.0], [0.1, 0.1, 0.1], key="fid"))
    assert holding["amenable"] is None and holding["reason"].startswith("undetermined: the sweep has no fidelity")
    assert holding["protocol"]["quality"] is None and holding["checks"][0]["quality_holds"] is None
    assert amenability(sweep([20.0, 25.0, 30.0], [0.1, 0.1, 0.3], key="fid"))["amenable"] is False


def test_precision_is_preferred_then_the_inception_score():
    rows = [{"truncation": t, "values": {"is_mean": i, "precision": p}, "saturation": None}
            for t, i, p in [(None, 5.0, 0.6), (0.5, 4.0, 0.7)]]
    assert amenability(rows)["amenable"] is True  # precision rises; IS, 20% lower, is not judged
    without_precision = [row | {"values": {"is_mean": row["values"]["is_mean"]}} for row in rows]
    result = amenability(without_precision)
    assert result["amenable"] is False and result["protocol"]["quality"] == "is_mean"


def test_points_that_are_not_images_leave_saturation_out():
    result = amenability(sweep([80.0, 85.0, 90.0], [None, None, None], key="high_quality_pct"))
    assert result["amenable"] is True and result["reason"].endswith("saturation not measured (the samples are not "
                                                                    "images)")
    assert [c["saturation_ok"] for c in result["checks"]] == [None, None]


def test_a_value_that_is_not_finite_does_not_hold():
    assert amenability(sweep([0.6, 0.65, float("nan")], [0.1, 0.1, 0.1]))["amenable"] is False


@pytest.mark.parametrize("settings, message", [
    ({"quality": "is_std"}, "ranks generators; 'is_std' does not"),
    ({"tolerance": -0.1}, "tolerance must be a finite share >= 0"),
    ({"saturation_bound": 1.5}, "saturation_bound is a share of pixel values in \\[0, 1\\]"),
    ({"strong": 0.0}, "strong threshold must be finite and > 0"),
])
def test_bad_rules_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        AmenabilityRule(**settings)


def test_a_named_value_the_sweep_lacks_is_refused():
    with pytest.raises(ConfigError, match="judges 'is_mean', which this sweep does not compute; it has precision"):
        amenability(sweep([0.6, 0.7, 0.8], [0.1, 0.1, 0.1]), AmenabilityRule(quality="is_mean"))


class FirstLatentAsImage(torch.nn.Module):
    """A generator whose 2x2 image repeats its first latent coordinate: its pixel is saturated when |z_0| > 0.99."""

    def forward(self, z, labels=None):
        return z[:, :1, None, None].expand(-1, 1, 2, 2)


def test_the_sweep_records_the_saturation_of_each_thresholds_samples():
    """Independent value: the share of the evaluator's latents (same seed, each threshold's truncation) whose
    first coordinate exceeds 0.99 in size; 0 at threshold 0.5, where no latent can."""
    digits = DataConfig(name="digits")
    evaluator = Evaluator([], DATASETS["digits"](digits), digits, latent_dim=4, num_samples=300, seed=3)
    rows = truncation_sweep(evaluator, FirstLatentAsImage(), [2.0, 0.5])
    for row in rows:
        z = seeded_latents(300, 4, "normal", 3, "cpu", row["truncation"])
        assert row["saturation"] == (z[:, 0].abs() > 0.99).double().mean().item()
    assert rows[0]["saturation"] > 0.25 and rows[2]["saturation"] == 0.0


def test_eval_truncation_sweep_writes_and_prints_the_verdict(tiny, capsys):
    """A 2-D run: its fidelity value is the share of high-quality samples; the verdict written and printed is the
    one the rule gives on the rows by hand (every truncated share at least 95% of the untruncated one)."""
    cfg = load_config(None, tiny + ["eval.samples=400"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    capsys.readouterr()
    assert main(["eval", str(run), "--truncation-sweep", "0.4,1.5"]) == 0
    out = capsys.readouterr().out
    written = json.loads((run.eval / "truncation_sweep_step_00000040.json").read_text())
    shares = [row["values"]["high_quality_pct"] for row in written["rows"]]
    judged = written["amenability"]
    assert judged["amenable"] is all(share >= 0.95 * shares[0] for share in shares[1:])
    assert judged["protocol"]["quality"] == "high_quality_pct" and judged["protocol"]["thresholds"] == [1.5, 0.4]
    assert all(row["saturation"] is None for row in written["rows"]) and "saturation" not in out.splitlines()[0]
    assert judged["reason"] + "\n" in out


def test_the_sweep_report_shows_each_thresholds_saturation_and_the_verdict(monkeypatch, capsys, tmp_path):
    """The table of ``ganscape eval --truncation-sweep`` on a hand-built sweep of images: a saturation column
    (12.5% untruncated, 40% at 0.25) and the verdict's reason (+27.5 points, past the bound)."""
    rows = sweep([0.6, 0.65, 0.7], [0.125, 0.13, 0.4])
    judged = amenability(rows)

    def hand_built(run_dir, thresholds, overrides, **options):
        return TruncationSweep(tmp_path, 40, "ema", 100, rows, {}, tmp_path / "sweep.json", tmp_path / "sweep.png",
                               judged)

    monkeypatch.setattr(ganscape.runs, "truncation_sweep", hand_built)
    assert main(["eval", str(tmp_path), "--truncation-sweep", "1,0.25"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["truncation", "precision", "recall", "saturation"]
    assert lines[1].split() == ["none", "0.6", "0.5", "12.5000%"] and lines[3].split()[-1] == "40.0000%"
    assert lines[4] == judged["reason"] and "+27.5 points at 0.25" in lines[4]
