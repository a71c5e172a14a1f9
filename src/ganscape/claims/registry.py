"""The papers' checkable claims, one ``Claim`` each: the claim in one sentence, the paper's number, the command
that checks it, the scale it is run at, the experiment that measures it (``claims.experiments``; None where only
a GPU can run it) and the rule that judges the measurement (``claims.verdicts``).

Only the claims' wording and the papers' numbers are written here by hand; everything the page shows beside them
is measured (``ganscape claims run``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ganscape.claims import verdicts

Judgement = tuple[bool, str, str]  # (holds, why, the measurement in words with its spread over seeds)


@dataclass(frozen=True)
class Claim:
    name: str
    paper: str
    text: str
    paper_value: str
    command: str
    scale: str = ""  # empty: needs a GPU
    experiment: str | None = None
    judge: Callable[[dict], Judgement] | None = None


def _mean_std(values: list) -> str:
    """Mean ± sample std over the seeds of values as measured.json holds them ("nan" for a failed seed)."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    if not finite:
        return "n/a"
    spread = f" ± {np.std(finite, ddof=1):.3g}" if len(finite) > 1 else ""
    return f"{np.mean(finite):.4g}{spread} ({len(finite)} seeds)"


PAPER_CONVERGENT = {"unregularized GAN": False, "non-saturating GAN": False, "WGAN": False, "WGAN-GP": False,
                    "consensus optimization": True, "instance noise": True, "R1": True, "R2": True}


def judge_dirac(measured: dict) -> Judgement:
    words = {True: "converges", False: "does not converge"}
    holds, why = verdicts.same_verdicts({k: words[v] for k, v in measured["converges"].items()},
                                        {k: words[v] for k, v in PAPER_CONVERGENT.items()})
    converging = ", ".join(name for name, ok in measured["converges"].items() if ok)
    return holds, why, f"converge: {converging or 'none'}"


def judge_regularizers(measured: dict) -> Judgement:
    groups = measured["groups"]
    holds, why = verdicts.settling_pattern({g: v["settles"] for g, v in groups.items()},
                                           {"none": False, "wgan_gp": False, "instance_noise": True, "r1": True,
                                            "r2": True})
    return holds, why, "; ".join(f"{g}: {v['runs_settling']} runs settle" for g, v in groups.items())


def judge_normalization(measured: dict) -> Judgement:
    groups = measured["groups"]
    holds, why = verdicts.lower(float(groups["weight"]["mean"]), float(groups["batch"]["mean"]), "weight norm",
                                "batch norm")
    text = "; ".join(f"{g}: {float(v['mean']):.4g} ± {float(v['std']):.2g} ({v['seeds']} seeds)"
                     for g, v in groups.items())
    return holds, why, f"reconstruction MSE {text}"


def _sweep_means(runs: list[dict], key: str) -> dict[str, float]:
    return {side: float(np.mean([float(run[side][key]) for run in runs])) for side in ("untruncated", "strongest")}


def judge_truncation(measured: dict) -> Judgement:
    runs = measured["groups"]["none"]
    precision, recall = _sweep_means(runs, "digit_precision"), _sweep_means(runs, "digit_recall")
    holds, why = verdicts.tradeoff({"precision": precision["untruncated"], "recall": recall["untruncated"]},
                                   {"precision": precision["strongest"], "recall": recall["strongest"]},
                                   "precision", "recall")
    threshold = runs[0]["strongest_threshold"]
    return holds, why, (f"untruncated -> truncation {threshold:g}, mean of {len(runs)} seeds: precision "
                        f"{_mean_std([r['untruncated']['digit_precision'] for r in runs])} -> "
                        f"{_mean_std([r['strongest']['digit_precision'] for r in runs])}, recall "
                        f"{_mean_std([r['untruncated']['digit_recall'] for r in runs])} -> "
                        f"{_mean_std([r['strongest']['digit_recall'] for r in runs])}")


def judge_amenability(measured: dict) -> Judgement:
    groups = measured["groups"]
    with_ortho = [run["amenable"] for run in groups["ortho:1e-4"]]
    without = [run["amenable"] for run in groups["none"]]
    holds, why = verdicts.more_amenable(with_ortho, without)
    return holds, why, (f"amenable: {sum(v is True for v in with_ortho)}/{len(with_ortho)} with orthogonal "
                        f"regularization, {sum(v is True for v in without)}/{len(without)} without")


def judge_shared_hier(measured: dict) -> Judgement:
    groups = measured["groups"]
    order = [("separate embeddings", "separate"), ("shared embedding", "shared"), ("+ hierarchical z", "shared_hier")]
    holds, why = verdicts.chain_decreases([(name, float(np.mean([float(v) for v in groups[key]])))
                                           for name, key in order])
    return holds, why, "best digit_fd " + "; ".join(f"{name} {_mean_std(groups[key])}" for name, key in order)


def _by_loss(groups: dict[str, list[float]]) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = {}
    for label, scores in groups.items():
        loss = dict(part.split("=", 1) for part in label.split(", "))["loss"]
        pooled.setdefault(loss, []).extend(float(v) for v in scores)
    return pooled


def _finite_median(values: list[float]) -> float:
    """The median of the finite ``values``; infinite (the worst score) when none is."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.inf


def judge_ns_stable(measured: dict) -> Judgement:
    pooled = _by_loss(measured["groups"])
    failed = {loss: sum(not math.isfinite(v) for v in scores) / len(scores) for loss, scores in pooled.items()}
    median = {loss: _finite_median(scores) for loss, scores in pooled.items()}
    holds, why = verdicts.stable_loss(failed, median, "ns")
    return holds, why, f"JS to the target over every trial of each loss: {why}"


def judge_gp_sn(measured: dict) -> Judgement:
    label = "loss=ns, penalty={}, d.norm={}"
    best = {f"{penalty}/{norm}": min((float(v) for v in measured["groups"][label.format(penalty, norm)]
                                      if math.isfinite(float(v))), default=math.inf)
            for penalty in ("none", "wgan_gp") for norm in ("none", "spectral")}
    holds, why = verdicts.regularizers_help(best, "none/none")
    return holds, why, f"best JS to the target of the NS groups (penalty/D norm): {why}"


# The built-in study ring8_landscape with 10,000 D updates per run instead of its 3,000 (claims.experiments).
LANDSCAPE_COMMAND = "ganscape claims run --only landscape_ns_stable,landscape_gp_sn"
LANDSCAPE_SCALE = "the 8-Gaussian ring, MLPs, the wide space, 10,000 D updates, 6 trials x 2 seeds per group"

CLAIMS: tuple[Claim, ...] = (
    Claim("mescheder_dirac", "Mescheder et al.", "On the Dirac-GAN, unregularized training, WGAN and WGAN-GP do not "
          "converge; consensus optimization, instance noise, R1 and R2 do.",
          "unregularized eigenvalues ±0.5i; R1/R2 (γ 0.3) −0.15 ± 0.477i; instance noise (σ 0.7) −0.1225 ± 0.485i",
          "ganscape dynamics table", "the Dirac-GAN, learning rate 0.2, 500 steps", "dirac_table", judge_dirac),
    Claim("mescheder_regularizers", "Mescheder et al.", "Unregularized training and WGAN-GP with one D step do not "
          "settle on a real problem; instance noise, R1 and R2 do.", "the Dirac-GAN and 2-D mixtures (Section 4)",
          "ganscape study create mescheder_regularizers_ring8 --out DIR && ganscape study run DIR --workers 2",
          "the 8-Gaussian ring, MLPs, 4,000 steps, 3 seeds", "mescheder_ring8", judge_regularizers),
    Claim("xiang_li_weight_norm", "Xiang & Li", "Weight normalization reaches a lower reconstruction error than "
          "batch normalization.", "about 10% lower with weight norm (CelebA, LSUN bedroom, CIFAR-10)",
          "ganscape study create xiang_li_normalization_digits --out DIR && ganscape study run DIR --workers 2",
          "DCGAN nets on the embedded digits", "xiang_li_digits", judge_normalization),
    Claim("biggan_truncation", "Brock et al.", "Truncating the latents raises fidelity and lowers variety.",
          "FID 8.7 -> 25 while IS 98.8 -> 206 from no truncation to the strongest (Table 2)",
          "ganscape eval RUN_DIR --metrics digits --truncation-sweep 2,1,0.5,0.25",
          "BigGAN on digits, batch 8, width 8, 800 steps, 3 seeds", "biggan_truncation", judge_truncation),
    Claim("biggan_ortho_amenability", "Brock et al.", "Orthogonal regularization makes more models amenable to "
          "truncation.", "16% of models without, 60% with", "ganscape eval RUN_DIR --truncation-sweep 2,1,0.5,0.25",
          "BigGAN on digits, batch 8, width 8, 800 steps, 3 seeds per group", "biggan_truncation", judge_amenability),
    Claim("biggan_shared_hier", "Brock et al.", "The shared class embedding and the hierarchical latent each "
          "improve FID.", "9.54 -> 9.18 -> 8.73 (Table 1, rows 5-7)",
          "ganscape study create biggan_ablation_digits --out DIR && ganscape study run DIR --workers 2",
          "BigGAN on digits, batch 16, width 8, 600 steps, 2 seeds", "biggan_shared_hier", judge_shared_hier),
    Claim("landscape_ns_stable", "Kurach et al.", "The non-saturating loss is stable across hyperparameter settings "
          "(no loss beats it consistently).", "NS is as good as any loss (budget curves, top-5% FIDs)",
          LANDSCAPE_COMMAND, LANDSCAPE_SCALE, "ring8_landscape", judge_ns_stable),
    Claim("landscape_gp_sn", "Kurach et al.", "Gradient penalty and spectral normalization both improve the best "
          "score.", "GP and SN both help; GP + SN is best at high budget",
          LANDSCAPE_COMMAND, LANDSCAPE_SCALE, "ring8_landscape", judge_gp_sn),
    # Claims only a GPU can check at the papers' scale.
    Claim("landscape_cifar10_fid", "Kurach et al.", "NS + spectral norm + WGAN-GP (λ 1) on ResNet-CIFAR reaches "
          "the best CIFAR-10 FID.", "FID 22.73 (IS 7.70), 10k vs 10k test images",
          "ganscape campaign run landscape --devices cuda:0,...  (or: ganscape train landscape_resnet_cifar_cifar10)"),
    Claim("landscape_celebahq_fid", "Kurach et al.", "SNDCGAN with NS + SN + GP reaches the best CelebA-HQ-128 "
          "FID.", "FID 24.67, 3k vs 3k", "ganscape study create landscape_celebahq128_sndcgan_wide --out DIR"),
    Claim("xiang_li_celeba", "Xiang & Li", "Weight normalization reaches a lower reconstruction error than batch "
          "normalization at 64x64.", "about 10% lower", "ganscape study create xiang_li_normalization --out DIR"),
    Claim("mescheder_highres", "Mescheder et al.", "R1 alone trains 1024x1024 CelebA-HQ ResNets without "
          "progressive growing or normalization.", "stable training, samples in the paper's Figure 1",
          "ganscape train gan_stability_celebahq1024 data.root=PATH"),
    Claim("biggan_imagenet128", "Brock et al.", "BigGAN at 128x128 on ImageNet.", "FID 8.7 / IS 98.8 untruncated",
          "ganscape train biggan_imagenet128 data.root=PATH"),
    Claim("biggan_table1", "Brock et al.", "Every row of Table 1 improves on the one before.",
          "FID / IS 18.65 / 52.52 -> 12.39 / 76.85 -> 9.54 / 92.98 -> 9.18 / 94.94 -> 8.73 / 98.76 -> 8.51 / 99.31",
          "ganscape study create biggan_ablation --out DIR && ganscape study run DIR --devices cuda:0,..."),
)
