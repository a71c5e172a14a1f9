"""A study's analysis: failed trials scored as the worst value, budget curves per kind of sampler, the
compute axis from the work done, legible plots, and the parts of a report (``report.study_parts``).

Nothing here trains: rows are written by hand, or trials are claimed and ended in a real (journal) study
with the user attributes a worker would record.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ganscape.errors import ConfigError
from ganscape.study.budget import best_so_far, best_so_far_band, expected_best
from ganscape.study.engine import create, load_studies, suggest
from ganscape.study.leases import claim, fail_and_queue_again, finish
from ganscape.study.report import (LEGEND_SIZE, SCORED, TICK_SIZE, budget_figures, compute_axis, failed_score,
                                   failure, gather, groups_of, study_parts, summary_rows, trial_work, write_report)
from ganscape.study.spec import parse_spec

LN2 = math.log(2)


def make_spec(**changes):
    data = {"name": "analysis", "base": "ring8_grid",
            "space": {"lr": {"log_uniform": [1e-4, 1e-2], "keys": ["g_opt.lr", "d_opt.lr"]}}, "trials": 1,
            "sampler": {"name": "random", "seed": 0}, "objective": "js_to_target"}
    return parse_spec(data | changes, "spec")


def row(value, number=0, *, state="COMPLETE", diverged=False, group="all", seeds=(), compute_s=1.0,
        gflops=math.nan, updates=math.nan):
    """A row as ``gather`` makes it, for a trial with these outcomes."""
    return {"trial": number, "order": number, "state": state, "group": group, "value": value,
            "seed_values": list(seeds), "wall_s": compute_s, "compute_s": compute_s, "diverged": diverged,
            "failed": failure(state, value, diverged), "work_gflops": gflops, "work_updates": updates,
            "work_g_updates": math.nan, "work_d_updates": math.nan, "best_steps": [], "retry_of": "",
            "run_dirs": []}


def brute_force_expected_best(scores, k, minimize=True):
    """The mean, over all n^k equally likely ordered draws with replacement, of the best score drawn."""
    best = min if minimize else max
    draws = list(itertools.product(scores, repeat=k))
    return sum(best(draw) for draw in draws) / len(draws)


# ---------------------------------------------------------------- failed trials


def test_failed_trials_count_as_the_worst_score_in_the_exact_expected_best():
    """Diverged (infinite, or finite but marked diverged) and pruned trials score ln 2 for js_to_target.
    Independent value: brute-force enumeration of all 5^k ordered draws of the scores with ln 2 written in
    for the three failed ones."""
    spec = make_spec()
    trials = [row(0.3, 0), row(math.inf, 1), row(0.1, 2, diverged=True), row(math.nan, 3, state="PRUNED"),
              row(0.5, 4)]
    failed = failed_score(spec, trials)
    assert failed.value == LN2 and failed.counted
    substituted = [0.3, LN2, LN2, LN2, 0.5]
    assert failed.scores(trials).tolist() == substituted
    [summary] = summary_rows(spec, {"all": trials}, failed)
    assert (summary["trials"], summary["diverged"], summary["pruned"]) == (5, 2, 1)
    for k in (1, 5):
        assert summary[f"expected_best_of_{k}"] == pytest.approx(brute_force_expected_best(substituted, k),
                                                                 rel=1e-12)
    assert expected_best(failed.scores(trials), 3) == pytest.approx(brute_force_expected_best(substituted, 3),
                                                                     rel=1e-12)
    assert summary["median"] == LN2 and summary["best"] == 0.3  # the marked-diverged 0.1 does not count


def test_the_worst_score_is_the_metrics_bound_else_the_worst_observed_else_what_the_spec_says():
    """js_to_target: ln 2 (the JS divergence's maximum in nats); modes_covered (maximize): 0; an unbounded
    metric: the worst finite score over every group (45 in another group than the failed trial's);
    the spec's worst when given. Independent values: those bounds and the largest of the written scores."""
    rows = [row(12.0, 0, group="a"), row(math.inf, 1, group="a"), row(45.0, 0, group="b"), row(30.0, 1, group="b")]
    assert failed_score(make_spec(), rows).value == LN2
    assert "ln 2" in failed_score(make_spec(), rows).note()
    assert failed_score(make_spec(objective="modes_covered"), rows).value == 0.0
    unbounded = failed_score(make_spec(objective={"metric": "eval/fid"}), rows)
    assert unbounded.value == 45.0 and "worst score observed" in unbounded.why and "b, trial 0" in unbounded.why
    maximized = failed_score(make_spec(objective={"metric": "eval/score", "direction": "maximize"}), rows)
    assert maximized.value == 12.0
    given = failed_score(make_spec(objective={"metric": "eval/fid", "worst": 500}), rows)
    assert given.value == 500.0 and "given in the spec" in given.note()


def test_failed_exclude_leaves_failed_trials_out_as_before():
    """With failed: exclude the scores are the finite, not diverged ones: the expected best is that of
    [0.3, 0.5] (independent value: the mean over the 4 ordered pairs of their best)."""
    spec = make_spec(objective={"metric": "js_to_target", "failed": "exclude"})
    trials = [row(0.3, 0), row(math.inf, 1), row(math.nan, 2, state="PRUNED"), row(0.5, 3)]
    failed = failed_score(spec, trials)
    [summary] = summary_rows(spec, {"all": trials}, failed)
    assert summary["expected_best_of_5"] == pytest.approx(brute_force_expected_best([0.3, 0.5], 5))
    assert summary["expected_best_of_1"] == pytest.approx(0.4)
    assert (summary["diverged"], summary["pruned"]) == (1, 1) and "left out" in failed.note()


@pytest.mark.parametrize("objective, words", [
    ({"metric": "js_to_target", "failed": "ignore"}, "none of worst, exclude"),
    ({"metric": "js_to_target", "worst": "high"}, "not a finite number"),
    ({"metric": "js_to_target", "failed": "exclude", "worst": 1.0}, "with failed: exclude"),
])
def test_the_objective_refuses_unknown_failed_policies_and_worst_values(objective, words):
    with pytest.raises(ConfigError, match=words):
        make_spec(objective=objective)


# ---------------------------------------------------------------- sequential samplers


def test_best_so_far_and_its_band_match_hand_computed_sequences():
    """Best so far of [0.5, 0.7, 0.2, NaN (left out), 0.3, 0.1] is [0.5, 0.5, 0.2, 0.2, 0.2, 0.1] by hand;
    seeds [0.4, 0.3, 0.5] and [0.6, 0.2, 0.1, 0.9] (cut to 3) give [0.4, 0.3, 0.3] and [0.6, 0.2, 0.1]:
    mean [0.5, 0.25, 0.2], low [0.4, 0.2, 0.1], high [0.6, 0.3, 0.3]."""
    assert best_so_far([0.5, 0.7, 0.2, math.nan, 0.3, 0.1]).tolist() == [0.5, 0.5, 0.2, 0.2, 0.2, 0.1]
    assert best_so_far([1.0, 3.0, 2.0], minimize=False).tolist() == [1.0, 3.0, 3.0]
    band = best_so_far_band([[0.4, 0.3, 0.5], [0.6, 0.2, 0.1, 0.9]])
    assert band["k"] == [1, 2, 3]
    assert band["mean"] == pytest.approx([0.5, 0.25, 0.2]) and band["low"] == [0.4, 0.2, 0.1]
    assert band["high"] == [0.6, 0.3, 0.3]


def _end(study, spec, value=None, state=None, **attrs):
    """Claim the next waiting trial, record ``attrs`` as its worker would and end it; returns its number."""
    trial = claim(study)
    suggest(trial, spec)
    for key, item in attrs.items():
        trial.set_user_attr(key, item)
    finish(study, trial, value, state)
    return trial.number


def test_a_sequential_samplers_curve_is_the_best_so_far_in_trial_order_with_a_band_over_seeds(tmp_path):
    """TPE, two seeds. Trial 0 is killed and retried (the retry, trial 4, takes its place); trial 2 diverges,
    trial 3 is pruned (both score ln 2). In trial order the seeds score [0.35, 0.1, ln2, ln2] and
    [0.45, 0.3, ln2, ln2]: best so far [0.35, 0.1, 0.1, 0.1] and [0.45, 0.3, 0.3, 0.3], so by hand the mean is
    [0.4, 0.2, 0.2, 0.2], the band [0.35, 0.1, ...] to [0.45, 0.3, ...]. The work axis is the cumulative
    GFLOPs in that order: 2, 2 + 3, + 1, + 0.25."""
    from optuna.trial import TrialState

    spec = make_spec(sampler={"name": "tpe", "seed": 0}, trials=4, seeds=2)
    folder = create(spec, tmp_path / "study")
    [(_, study)] = load_studies(folder)[1]

    def work(*gflops):
        return [{"g_updates": 10, "d_updates": 50, "gflops": g} for g in gflops]

    killed = claim(study)
    suggest(killed, spec)
    fail_and_queue_again(study, killed.number)
    _end(study, spec, 0.2, seed_values=[0.1, 0.3], work=work(1.5, 1.5))
    _end(study, spec, math.inf, seed_values=[0.2, math.inf], diverged=True, work=work(0.5, 0.5))
    _end(study, spec, state=TrialState.PRUNED, seed_values=[0.3], work=work(0.25))
    retry = _end(study, spec, 0.4, seed_values=[0.35, 0.45], work=work(1.0, 1.0))
    assert retry == 4

    _, rows, _ = gather(folder)
    groups = groups_of(rows, spec, SCORED)
    assert [t["trial"] for t in groups["all"]] == [4, 1, 2, 3]
    plots = {p.file: p for p in budget_figures(spec, groups, failed_score(spec, rows))}
    assert set(plots) == {"budget_trials.png", "budget_compute.png", "budget_wall.png"}
    assert plots["budget_trials.png"].title == "Best score so far against the number of trials"
    [ax] = plots["budget_trials.png"].figure.axes
    [line] = ax.lines
    assert line.get_xdata().tolist() == [1, 2, 3, 4]
    assert line.get_ydata() == pytest.approx([0.4, 0.2, 0.2, 0.2])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert min(band) == pytest.approx(0.1) and max(band) == pytest.approx(0.45)
    [compute_line] = plots["budget_compute.png"].figure.axes[0].lines
    assert compute_line.get_xdata() == pytest.approx([2.0, 5.0, 6.0, 6.25])
    assert "GFLOPs" in plots["budget_compute.png"].figure.axes[0].get_xlabel()


# ---------------------------------------------------------------- the compute axis


def test_independent_draws_cost_k_times_the_groups_mean_work():
    """Random sampler: the expected best of k trials sits at k x the mean GFLOPs of the group's trials,
    failed ones included (1, 2 and 6: mean 3, so 3, 6, 9); wall time likewise (k x 20 s = k/3 minutes)."""
    spec = make_spec()
    trials = [row(0.2, 0, gflops=1.0, compute_s=10.0), row(math.inf, 1, gflops=2.0, compute_s=20.0),
              row(0.4, 2, gflops=6.0, compute_s=30.0)]
    plots = {p.file: p for p in budget_figures(spec, {"all": trials}, failed_score(spec, trials))}
    [line] = plots["budget_compute.png"].figure.axes[0].lines
    assert line.get_xdata() == pytest.approx([3.0, 6.0, 9.0])
    assert line.get_ydata()[0] == pytest.approx((0.2 + LN2 + 0.4) / 3)
    [wall] = plots["budget_wall.png"].figure.axes[0].lines
    assert wall.get_xdata() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_a_trials_work_is_summed_over_its_seeds_and_unknown_when_a_seed_counted_none():
    """Two seeds of 10 G and 50 D updates: 20 and 100, 120 in all; GFLOPs 1.5 + 2.5 = 4, unknown (NaN) when
    one seed counted none; every count unknown when a seed's work is unknown (None) or not recorded."""
    seed = {"g_updates": 10, "d_updates": 50, "gflops": 1.5}
    both = trial_work({"work": [seed, seed | {"gflops": 2.5}]})
    assert both == {"work_g_updates": 20, "work_d_updates": 100, "work_updates": 120, "work_gflops": 4.0}
    no_flops = trial_work({"work": [seed, seed | {"gflops": None}]})
    assert no_flops["work_updates"] == 120 and math.isnan(no_flops["work_gflops"])
    for attrs in ({"work": [seed, None]}, {}):
        assert all(math.isnan(value) for value in trial_work(attrs).values())


def test_the_compute_axis_falls_back_to_update_counts_then_to_wall_time():
    with_flops = [row(0.2, 0, gflops=1.0, updates=60), row(0.3, 1, gflops=2.0, updates=60)]
    counted = [row(0.2, 0, updates=60), row(0.3, 1, gflops=2.0, updates=60)]
    nothing = [row(0.2, 0, gflops=1.0, updates=60), row(0.3, 1)]
    assert compute_axis({"all": with_flops})[0] == "work_gflops"
    assert compute_axis({"all": counted})[0] == "work_updates"
    assert compute_axis({"all": nothing})[0] == "compute_s"
    spec = make_spec()
    files = [p.file for p in budget_figures(spec, {"all": nothing}, failed_score(spec, nothing))]
    assert files == ["budget_trials.png", "budget_compute.png"]  # wall time is the compute axis: no second view


# ---------------------------------------------------------------- legible plots


def _group_rows(count: int) -> dict[str, list[dict]]:
    return {f"loss={i}": [row(0.1 * (j + 1) + 0.01 * i, j, group=f"loss={i}", gflops=1.0) for j in range(4)]
            for i in range(count)}


def test_budget_plots_have_legible_legends_and_whole_number_trial_ticks():
    """Three groups share one axis: a legend of 9 pt or more, tick labels of 8 pt or more, and the trials
    axis (log scale) labelled 1, 2, 3, 4, never 1.0 or 2.5."""
    spec = make_spec()
    groups = _group_rows(3)
    plots = {p.file: p.figure for p in budget_figures(spec, groups, failed_score(spec, []))}
    for figure in plots.values():
        figure.canvas.draw()
        [ax] = figure.axes
        [legend] = figure.legends
        assert len(legend.get_texts()) == 3
        assert all(text.get_fontsize() >= LEGEND_SIZE >= 9 for text in legend.get_texts())
        assert all(t.get_fontsize() >= TICK_SIZE >= 8 for t in ax.get_xticklabels(which="both") + ax.get_yticklabels())
    labels = [t.get_text() for t in plots["budget_trials.png"].axes[0].get_xticklabels(which="both") if t.get_text()]
    assert labels and all(label.isdigit() for label in labels) and {"1", "2", "4"} <= set(labels)


def test_more_than_eight_groups_get_one_small_plot_each():
    """Nine groups: nine axes, each titled with its group, no legend to crowd them."""
    spec = make_spec()
    groups = _group_rows(9)
    plots = {p.file: p.figure for p in budget_figures(spec, groups, failed_score(spec, []))}
    for figure in plots.values():
        assert [ax.get_title() for ax in figure.axes] == list(groups)
        assert all(len(ax.lines) == 1 for ax in figure.axes) and not figure.legends
    plots["budget_trials.png"].canvas.draw()
    for ax in plots["budget_trials.png"].axes:
        labels = [t.get_text() for t in ax.get_xticklabels(which="both") if t.get_text()]
        assert all(label.isdigit() for label in labels)
        assert all(t.get_fontsize() >= TICK_SIZE for t in ax.get_xticklabels(which="both"))


# ---------------------------------------------------------------- the report's parts


def _finished_study(tmp_path, trials: int):
    """A random-sampler study of one searched parameter with ``trials`` completed trials (one diverged)."""
    spec = make_spec(trials=trials)
    folder = create(spec, tmp_path / "study")
    [(_, study)] = load_studies(folder)[1]
    for i in range(trials):
        value = math.inf if i == 1 else 0.05 * (i + 1)
        _end(study, spec, value, seed_values=[value], wall_s=[2.0], diverged=i == 1, best_steps=[10 * i],
             work=[{"g_updates": 100, "d_updates": 500, "gflops": 0.5}])
    return folder


def test_importances_are_left_out_with_the_reason_when_a_group_has_too_few_trials(tmp_path):
    """Four trials of one parameter (10 needed): no importance picture, and the reason in summary.md and on
    the page; trials.csv carries the work done and each seed's best step."""
    folder = _finished_study(tmp_path, 4)
    parts = study_parts(folder)
    assert "Parameter importances" not in parts.figures
    [reason] = [note for note in parts.notes if note.startswith("Parameter importances are not shown")]
    assert "all has 4 of 10" in reason
    assert parts.counts == {"complete": 4, "failed": 0, "pruned": 0, "diverged": 1}
    assert parts.failed.value == LN2 and parts.table[0]["diverged"] == 1
    assert set(parts.files.values()) == {"budget_trials.png", "budget_compute.png", "budget_wall.png", "top5.png",
                                         "scores.png"}
    page = write_report(folder)
    assert reason in (folder.path / "report" / "summary.md").read_text() and reason in page.read_text()
    header, first, *_ = (folder.path / "report" / "trials.csv").read_text().splitlines()
    columns = dict(zip(header.split(","), first.split(",")))
    assert (columns["work_g_updates"], columns["work_d_updates"], columns["work_gflops"]) == ("100", "500", "0.5")
    assert columns["best_steps"] == "0" and columns["failed"] == ""


def test_importances_are_drawn_when_every_group_has_enough_trials(tmp_path):
    """Twelve trials of one parameter: enough (10 and more than 2 x 1), so the picture is there and no reason."""
    parts = study_parts(_finished_study(tmp_path, 12))
    assert parts.files["Parameter importances"] == "importances.png"
    assert not [note for note in parts.notes if "importances" in note]
    assert np.isfinite(parts.table[0]["expected_best_of_10"])
