"""Learning curves in a study's report (each group's objective over training, mean and spread over seeds, and
its "final values" table), and the built-in specs of Xiang & Li's normalization comparison.

Nothing here trains: trials are claimed and ended in a real (journal) study, and their runs' metrics logs are
written by hand, so every number in the table can be computed by hand from those rows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganscape.study import report
from ganscape.study.engine import create, load_studies, suggest
from ganscape.study.leases import claim, finish
from ganscape.study.report import SCORED, final_values, gather, groups_of, learning_curves, seed_band
from ganscape.study.spec import load_spec, parse_spec

NORMS = {"weight": {"g.norm": "weight", "d.norm": "weight"}, "batch": {"g.norm": "batch", "d.norm": "batch"}}

# Per group, per trial: its objective and each seed's evaluations {step: recon error}. The group's best trial
# (lower objective: weight's first, batch's second) gives its curves; the other's values would change every number.
LOGS = {
    "norm=weight": [(0.20, [{100: 0.30, 200: 0.20, 300: 0.25}, {100: 0.40, 200: 0.10, 300: 0.15}]),
                    (0.90, [{100: 0.9, 200: 0.9, 300: 0.9}, {100: 0.8, 200: 0.8, 300: 0.8}])],
    "norm=batch": [(0.95, [{100: 0.99, 200: 0.99}, {100: 0.98, 200: 0.97, 300: 0.96}]),
                   (0.35, [{100: 0.50, 200: 0.60}, {100: 0.30, 200: 0.20, 300: 0.10}])],
}


def _write_run(folder, name: str, evaluations: dict[int, float]) -> None:
    """A run directory whose metrics log has a training row before each evaluation, as the loop writes it."""
    run = folder.runs / name
    run.mkdir(parents=True)
    rows = []
    for step, value in evaluations.items():
        rows += [{"step": step, "d_loss": 1.0, "g_loss": 1.0},
                 {"step": step, "eval/recon_mse": value, "eval/recon_mse_std": 0.01}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _fabricated_study(tmp_path):
    """The two-normalization study of ``LOGS``: 2 trials x 2 seeds per group, ended with their run dirs."""
    spec = parse_spec({"name": "curves", "base": "dcgan_digits", "groups": {"norm": NORMS}, "trials": 2, "seeds": 2,
                       "objective": {"metric": "eval/recon_mse", "direction": "minimize", "reduce": "last"}}, "spec")
    folder = create(spec, tmp_path / "study")
    for group, study in load_studies(folder)[1]:
        for number, (value, seeds) in enumerate(LOGS[f"norm={group['norm']}"]):
            trial = claim(study)
            suggest(trial, spec)
            names = [f"{group['norm']}-{number}-seed-{seed}" for seed in range(len(seeds))]
            for name, evaluations in zip(names, seeds):
                _write_run(folder, name, evaluations)
            trial.set_user_attr("run_dirs", names)
            trial.set_user_attr("seed_values", [list(s.values())[-1] for s in seeds])
            finish(study, trial, value)
    return folder


def test_final_values_are_the_mean_and_sample_std_of_each_seeds_last_and_best_evaluation(tmp_path):
    """By hand from LOGS (each group's best trial: weight's 0, batch's 1): weight's seeds end at 0.25 and 0.15
    (mean 0.20, std with n - 1: sqrt(2 * 0.05^2) = 0.070711) and are best at 0.20 and 0.10 (mean 0.15, same
    std). batch's first seed stopped at step 200: last 0.60 and 0.10 (mean 0.35, std sqrt(2 * 0.25^2) =
    0.353553), best 0.50 and 0.10 (mean 0.30, std sqrt(2 * 0.2^2) = 0.282843), last step "200-300"."""
    folder = _fabricated_study(tmp_path)
    spec, rows, _ = gather(folder)
    table = {row["group"]: row for row in final_values(spec, learning_curves(folder, spec, groups_of(rows, spec,
                                                                                                     SCORED)))}
    weight, batch = table["norm=weight"], table["norm=batch"]
    assert (weight["seeds"], weight["last_step"], batch["last_step"]) == (2, "300", "200-300")
    assert [weight[k] for k in ("last_mean", "last_std", "best_mean", "best_std")] == \
        pytest.approx([0.20, 0.070711, 0.15, 0.070711], abs=1e-6)
    assert [batch[k] for k in ("last_mean", "last_std", "best_mean", "best_std")] == \
        pytest.approx([0.35, 0.353553, 0.30, 0.282843], abs=1e-6)
    assert (weight["trial"], batch["trial"]) == (0, 1)


def test_the_band_is_the_seeds_mean_lowest_and_highest_at_the_steps_all_seeds_evaluated(tmp_path):
    """batch's seeds share steps 100 and 200 (the first stopped there): by hand mean (0.5 + 0.3) / 2 = 0.4 and
    (0.6 + 0.2) / 2 = 0.4, lowest 0.3 and 0.2, highest 0.5 and 0.6."""
    folder = _fabricated_study(tmp_path)
    spec, rows, _ = gather(folder)
    curve = learning_curves(folder, spec, groups_of(rows, spec, SCORED))["norm=batch"]
    steps, mean, low, high = seed_band(curve)
    assert steps.tolist() == [100, 200]
    np.testing.assert_allclose(np.stack([mean, low, high]), [[0.4, 0.4], [0.3, 0.2], [0.5, 0.6]])


def test_the_report_draws_the_curves_and_writes_the_final_values_table(tmp_path, monkeypatch):
    """study_parts adds the figure and the table; summary.md shows the table with weight's last mean 0.2."""
    monkeypatch.setattr(report, "best_samples", lambda *args: {})  # the fabricated runs have no checkpoints
    folder = _fabricated_study(tmp_path)
    parts = report.study_parts(folder)
    assert parts.files["The objective over training"] == "learning_curves.png"
    assert [row["group"] for row in parts.tables["Final values"]] == ["norm=weight", "norm=batch"]
    report.write_report(folder)
    summary = (folder.path / "report" / "summary.md").read_text()
    assert "## Final values" in summary and "| norm=weight | 0 | 2 | 300 | 0.2 |" in summary
    assert (folder.path / "report" / "learning_curves.png").stat().st_size > 0


def test_a_group_whose_runs_are_elsewhere_has_no_curve(tmp_path):
    """Run directories trained on another machine (absent here) give no curve and no table row."""
    folder = _fabricated_study(tmp_path)
    spec, rows, _ = gather(folder)
    for name in ("batch-1-seed-0", "batch-1-seed-1"):
        (folder.runs / name / "metrics.jsonl").unlink()
        (folder.runs / name).rmdir()
    assert list(learning_curves(folder, spec, groups_of(rows, spec, SCORED))) == ["norm=weight"]


# ---------------------------------------------------------------- Xiang & Li's built-in specs


def _paper_training(cfg) -> None:
    """Xiang & Li's training: NS loss, no penalty, RMSProp alpha 0.9 and eps 1e-6 for G and D at the same
    learning rate, batch 32, one D step per G step, no EMA, z ~ N(0, I)^128, judged by the reconstruction error
    (z from 0, RMSProp lr 0.01, 50 steps) of the held-out test split."""
    assert (cfg.loss, cfg.penalty.use, cfg.g.arch, cfg.d.arch) == ("ns", [], "dcgan", "dcgan")
    for opt in (cfg.g_opt, cfg.d_opt):
        assert (opt.name, opt.alpha, opt.eps, opt.lr) == ("rmsprop", 0.9, 1e-6, cfg.g_opt.lr)
    assert (cfg.train.batch_size, cfg.train.n_disc, cfg.train.ema) == (32, 1, 0.0)
    assert (cfg.latent.dim, cfg.latent.dist) == (128, "normal")
    assert (cfg.eval.metrics, cfg.eval.ref) == (["recon"], "test")
    assert (cfg.metrics.recon.steps, cfg.metrics.recon.lr) == (50, 0.01)


@pytest.mark.parametrize("name, data, lr, steps, images, evaluations", [
    ("xiang_li_normalization", "image_folder", 2e-5, 100000, 200, 100),
    ("xiang_li_normalization_digits", "stacked_digits", 2e-4, 2500, 128, 5),
])
def test_the_xiang_li_specs_compare_three_normalizations_over_three_seeds_with_the_papers_training(
        name, data, lr, steps, images, evaluations):
    """Each normalization in G and D alike, 3 seeds, one trial (no search), the last reconstruction error as
    the objective; the paper's settings in every trial's config (CelebA: its learning rate 2e-5 and 200 test
    images every 1000 steps; digits: 2e-4, 128 test stacks at 5 checkpoints)."""
    spec = load_spec(name)
    assert (spec.trials, spec.seeds, spec.params) == (1, 3, ())
    assert (spec.objective.metric, spec.objective.direction, spec.objective.reduce) == \
        ("eval/recon_mse", "minimize", "last")
    for group in spec.group_names():
        cfg = spec.trial_config(group, {}, seed=2)
        assert cfg.g.norm == cfg.d.norm == group["norm"] and cfg.train.seed == 2
        _paper_training(cfg)
        assert (cfg.data.name, cfg.g_opt.lr, cfg.train.steps, cfg.metrics.recon.images) == (data, lr, steps, images)
        assert cfg.train.steps // cfg.eval.every == evaluations
    assert sorted(g["norm"] for g in spec.group_names()) == ["batch", "none", "weight"]


def test_the_xiang_li_campaign_runs_the_study_on_the_papers_three_data_sets():
    """One cell per data set of the paper (CelebA, LSUN bedroom, CIFAR-10), each the normalization study on
    that data set's weight-norm preset, whose trials train on that data set."""
    from ganscape.campaign.spec import load_campaign

    campaign = load_campaign("xiang_li")
    assert [(c.data, c.spec.base) for c in campaign.cells] == [
        ("celeba", "wn_dcgan_celeba"), ("lsun_bedroom", "wn_dcgan_lsun_bedroom"), ("cifar10", "wn_dcgan_cifar10")]
    for cell in campaign.cells:
        assert cell.spec.group_sets == load_spec("xiang_li_normalization").group_sets
        cfg = cell.spec.trial_config({"norm": "batch"}, {}, seed=0)
        assert cfg.g.norm == cfg.d.norm == "batch"
        assert cfg.data.name == {"celeba": "image_folder", "lsun_bedroom": "lmdb", "cifar10": "cifar10"}[cell.data]
        _paper_training(cfg)
