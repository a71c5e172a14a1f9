"""The claims page: each verdict rule on made-up measurements that agree with the paper and that contradict it, the
page written from a claims folder, and a run that resumes without redoing finished experiments."""

from __future__ import annotations

import json
import math

import pytest

from ganscape.claims import verdicts
from ganscape.claims.page import summary, write_page
from ganscape.claims.registry import CLAIMS, PAPER_CONVERGENT
from ganscape.claims.runner import chosen, measured_path, run_claims, strict
from ganscape.cli import main
from ganscape.errors import ConfigError, GanscapeError

JUDGED = {claim.name: claim for claim in CLAIMS}


def _sweep(precision, recall, amenable=True):
    return {"untruncated": {"digit_precision": precision[0], "digit_recall": recall[0]},
            "strongest": {"digit_precision": precision[1], "digit_recall": recall[1]},
            "strongest_threshold": 0.25, "amenable": amenable}


def _landscape(ns_scores, wgan_scores, plain=0.3, gp=0.2, sn=0.25, both=0.1):
    groups = {f"loss=ns, penalty={p}, d.norm={n}": [value, value + 0.05] for (p, n), value in
              {("none", "none"): plain, ("wgan_gp", "none"): gp, ("none", "spectral"): sn,
               ("wgan_gp", "spectral"): both}.items()}
    groups["loss=ns, penalty=none, d.norm=none"] = ns_scores
    groups["loss=wgan, penalty=none, d.norm=none"] = wgan_scores
    return {"groups": groups}


# (claim, measurements that agree with the paper, measurements that contradict it): each pair differs in the one
# number the claim is about, so a rule that looks at the wrong number or compares the wrong way fails one side.
CASES = [
    ("mescheder_dirac", {"converges": dict(PAPER_CONVERGENT)},
     {"converges": dict(PAPER_CONVERGENT) | {"WGAN-GP": True}}),
    ("mescheder_regularizers",
     {"groups": {"none": {"settles": False, "runs_settling": "0/3"}, "wgan_gp": {"settles": False, "runs_settling": "1/3"},
                 "instance_noise": {"settles": True, "runs_settling": "3/3"}, "r1": {"settles": True, "runs_settling": "3/3"},
                 "r2": {"settles": True, "runs_settling": "2/3"}}},
     {"groups": {"none": {"settles": True, "runs_settling": "3/3"}, "wgan_gp": {"settles": False, "runs_settling": "1/3"},
                 "instance_noise": {"settles": True, "runs_settling": "3/3"}, "r1": {"settles": True, "runs_settling": "3/3"},
                 "r2": {"settles": True, "runs_settling": "2/3"}}}),
    ("xiang_li_weight_norm",
     {"groups": {"weight": {"mean": 0.040, "std": 0.002, "seeds": 3}, "batch": {"mean": 0.045, "std": "nan", "seeds": 3}}},
     {"groups": {"weight": {"mean": 0.046, "std": 0.002, "seeds": 3}, "batch": {"mean": 0.045, "std": 0.001, "seeds": 3}}}),
    ("biggan_truncation", {"groups": {"none": [_sweep((0.3, 0.5), (0.4, 0.0)), _sweep((0.2, 0.4), (0.5, 0.1))]}},
     {"groups": {"none": [_sweep((0.3, 0.5), (0.4, 0.6)), _sweep((0.2, 0.4), (0.5, 0.5))]}}),
    ("biggan_ortho_amenability",
     {"groups": {"none": [_sweep((0, 0), (0, 0), False)] * 2 + [_sweep((0, 0), (0, 0), None)],
                 "ortho:1e-4": [_sweep((0, 0), (0, 0), True)] * 2 + [_sweep((0, 0), (0, 0), False)]}},
     {"groups": {"none": [_sweep((0, 0), (0, 0), True)] * 3,
                 "ortho:1e-4": [_sweep((0, 0), (0, 0), True)] * 3}}),
    ("biggan_shared_hier", {"groups": {"separate": [500.0, 520.0], "shared": [450.0, 470.0], "shared_hier": [400.0, 420.0]}},
     {"groups": {"separate": [500.0, 520.0], "shared": [530.0, 520.0], "shared_hier": [400.0, 410.0]}}),
    ("landscape_ns_stable", _landscape([0.1, 0.12, 0.11, 0.13], [0.1, "nan", 0.5, 0.6]),
     _landscape([0.1, "nan", 0.5, 0.6], [0.1, 0.12, 0.11, 0.13])),
    ("landscape_gp_sn", _landscape([0.3, 0.35], [0.3]), _landscape([0.3, 0.35], [0.3], sn=0.4)),
]


@pytest.mark.parametrize("name, agrees, contradicts", CASES, ids=[case[0] for case in CASES])
def test_each_rule_holds_on_agreeing_results_and_fails_on_contradicting_ones(name, agrees, contradicts):
    """Independent value: the verdict each made-up measurement was written to get (holds / does not hold)."""
    judge = JUDGED[name].judge
    holds, why, text = judge(agrees)
    assert holds is True and why and text
    holds, why, _ = judge(contradicts)
    assert holds is False and why


def test_every_cpu_claim_has_a_rule_and_its_experiment_and_gpu_claims_have_neither():
    from ganscape.claims.experiments import EXPERIMENTS

    for claim in CLAIMS:
        if claim.experiment is None:
            assert claim.judge is None and not claim.scale
        else:
            assert claim.judge is not None and claim.experiment in EXPERIMENTS and claim.scale
    assert {c[0] for c in CASES} == {c.name for c in CLAIMS if c.experiment is not None}


def test_rules_name_the_numbers_that_decided():
    """Hand-made cases: 0.04 < 0.045 holds; a chain broken at its second link names that link."""
    assert verdicts.lower(0.04, 0.045, "weight norm", "batch norm") == (True, "weight norm 0.04 < batch norm 0.045")
    holds, why = verdicts.chain_decreases([("a", 3.0), ("b", 2.0), ("c", 2.5)])
    assert not holds and why == "c 2.5 >= b 2"
    assert verdicts.lower(math.nan, 1.0, "x", "y")[0] is False
    assert verdicts.more_amenable([], [True])[0] is False


def test_a_stable_loss_scores_no_worse_in_the_middle_and_fails_no_more_often():
    """Hand-made pooled scores (lower is better). NS with median 0.3 against WGAN's 0.6, no failures: holds. WGAN
    at 0.69 on every trial (it never learns: no spread at all) against NS spread over 0.2-0.6 still loses to NS;
    NS with the same failures but median 0.65 against 0.6 does not hold; NS failing more often does not hold; NS with medians 0.2 against 0.3 holds though its mean (0.4) is worse."""
    judge = JUDGED["landscape_ns_stable"].judge

    def pooled(ns, wgan):
        return {"groups": {"loss=ns, penalty=none, d.norm=none": ns, "loss=wgan, penalty=none, d.norm=none": wgan}}

    assert judge(pooled([0.2, 0.3, 0.4], [0.5, 0.6, 0.7]))[0] is True
    assert judge(pooled([0.2, 0.3, 0.6], [0.69, 0.69, 0.69]))[0] is True
    holds, why, _ = judge(pooled([0.6, 0.65, 0.7, "nan"], [0.5, 0.6, 0.7, "nan"]))
    assert holds is False and why == "ns: 25% failed, median 0.65; wgan: 25% failed, median 0.6"
    assert judge(pooled([0.2, 0.3, "nan"], [0.5, 0.6, 0.7]))[0] is False
    assert judge(pooled([0.2, 0.3], ["nan", "nan"]))[0] is True  # a loss that always fails is the worst
    # the median, not the mean: one bad setting (0.9) among good ones does not make NS worse than WGAN at 0.3
    assert judge(pooled([0.1, 0.2, 0.9], [0.3, 0.3, 0.3]))[0] is True


def _fake_experiments(calls: list[str], fail_on: str | None = None):
    def experiment(name):
        def run(folder, device, workers):
            calls.append(name)
            if name == fail_on:
                raise KeyboardInterrupt  # the run is stopped here
            return {"value": 1.0, "nan_kept": math.nan}
        return run
    return {name: experiment(name) for name in ("dirac_table", "mescheder_ring8", "xiang_li_digits")}


def test_an_interrupted_run_resumes_without_redoing_finished_experiments(tmp_path):
    """Stopped in the second experiment: the first's measured.json is written, the second's is not; the next run
    calls only the second and the third. NaN is stored as strict JSON's "nan", which float() reads back."""
    names = ["mescheder_dirac", "mescheder_regularizers", "xiang_li_weight_norm"]
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_claims(tmp_path, names, experiments=_fake_experiments(calls, fail_on="mescheder_ring8"))
    assert calls == ["dirac_table", "mescheder_ring8"]
    assert measured_path(tmp_path, "dirac_table").is_file() and not measured_path(tmp_path, "mescheder_ring8").exists()
    calls.clear()
    assert run_claims(tmp_path, names, experiments=_fake_experiments(calls)) == ["mescheder_ring8", "xiang_li_digits"]
    assert calls == ["mescheder_ring8", "xiang_li_digits"]
    stored = json.loads(measured_path(tmp_path, "xiang_li_digits").read_text())["measured"]
    assert stored == {"value": 1.0, "nan_kept": "nan"} and math.isnan(float(stored["nan_kept"]))
    assert strict({"a": [math.inf]}) == {"a": ["inf"]}


def test_the_page_judges_what_the_folder_holds_and_says_what_needs_a_gpu(tmp_path):
    """One measured claim that contradicts its paper (WGAN-GP converging) is "does not hold"; an unmeasured CPU
    claim is "not run yet"; the GPU claims say so; the page links the measurements copied beside it."""
    path = measured_path(tmp_path / "out", "dirac_table")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"seconds": 9.0, "device": "cpu",
                                "measured": {"converges": dict(PAPER_CONVERGENT) | {"WGAN-GP": True}}}))
    page = write_page(tmp_path / "out", tmp_path / "docs" / "claims.md")
    text = page.read_text()
    dirac = next(line for line in text.splitlines() if line.startswith("| On the Dirac-GAN"))
    assert "does not hold at this scale: WGAN-GP: converges here, does not converge in the paper" in dirac
    assert "[dirac_table.json](claims/dirac_table.json)" in dirac and "9 s on cpu" in dirac
    assert (tmp_path / "docs" / "claims" / "dirac_table.json").is_file()
    assert "[learning curves]" not in text  # no measured experiment has a report here
    verdict = summary(tmp_path / "out")
    assert verdict["mescheder_dirac"] == verdicts.FAILS and verdict["biggan_truncation"] == verdicts.NOT_RUN
    assert verdict["biggan_imagenet128"] == verdicts.GPU and text.count(verdicts.GPU) >= 6


def test_the_page_shows_the_pictures_of_a_measured_experiments_report(tmp_path):
    """The ring's regularizer study measured, with its report's learning curves: the picture is copied beside the
    page byte for byte and linked from its row; the picture of an experiment without measurements is not."""
    groups = {g: {"settles": g in ("instance_noise", "r1", "r2"), "runs_settling": "3/3"}
              for g in ("none", "wgan_gp", "instance_noise", "r1", "r2")}
    out = tmp_path / "out"
    measured_path(out, "mescheder_ring8").parent.mkdir(parents=True)
    measured_path(out, "mescheder_ring8").write_text(json.dumps({"seconds": 300.0, "device": "cpu",
                                                                 "measured": {"groups": groups}}))
    for experiment in ("mescheder_ring8", "xiang_li_digits"):
        (out / experiment / "report").mkdir(parents=True, exist_ok=True)
        (out / experiment / "report" / "learning_curves.png").write_bytes(experiment.encode())
    text = write_page(out, tmp_path / "docs" / "claims.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Unregularized training and WGAN-GP"))
    assert "[learning curves](claims/mescheder_ring8-learning_curves.png)" in row and "holds at this scale" in row
    assert (tmp_path / "docs" / "claims" / "mescheder_ring8-learning_curves.png").read_bytes() == b"mescheder_ring8"
    assert not (tmp_path / "docs" / "claims" / "xiang_li_digits-learning_curves.png").exists()


def test_an_experiment_refuses_a_study_folder_made_from_another_spec(tmp_path):
    """A claims folder from an earlier version of an experiment (another spec) is not resumed as if it were this
    one: run_study stops before training anything and says to move the folder away."""
    from ganscape.claims.experiments import run_study
    from ganscape.study.engine import create
    from ganscape.study.spec import load_spec

    create(load_spec("ring8_landscape"), tmp_path / "study")
    with pytest.raises(GanscapeError, match="made from another spec"):
        run_study("mescheder_regularizers_ring8", tmp_path / "study", "cpu", 1)
    assert not (tmp_path / "study" / "runs").exists()


def test_the_dirac_claim_runs_for_real_and_holds(tmp_path, capsys):
    """The Dirac-GAN table (seconds on a CPU): every method converges or not as in the paper's table."""
    assert main(["claims", "run", "--only", "mescheder_dirac", "--out", str(tmp_path / "out"), "--page",
                 str(tmp_path / "claims.md")]) == 0
    assert "holds at this scale: all 8 methods as in the paper" in (tmp_path / "claims.md").read_text()
    assert main(["claims", "run", "--only", "mescheder_dirac", "--out", str(tmp_path / "out"), "--page",
                 str(tmp_path / "claims.md")]) == 0
    assert "dirac_table: measured already" in capsys.readouterr().out


def test_an_unknown_claim_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match="Did you mean 'biggan_truncation'.*Claims: mescheder_dirac"):
        chosen(["biggan_trunction"])
