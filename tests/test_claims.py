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
from ganscape.errors import ConfigError

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
    verdict = summary(tmp_path / "out")
    assert verdict["mescheder_dirac"] == verdicts.FAILS and verdict["biggan_truncation"] == verdicts.NOT_RUN
    assert verdict["biggan_imagenet128"] == verdicts.GPU and text.count(verdicts.GPU) >= 6


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
