"""Truncation amenability (BigGAN, Section 3.1): whether a generator tolerates strongly truncated latents.

Brock et al. call a model amenable to truncation when its samples stay valid under strong truncation; the
others "produce saturation artifacts when fed truncated noise" (their Figure 2(b)). They found 16% of their
large models amenable without orthogonal regularization and 60% with it. Here the rows of a truncation sweep
(``truncation.truncation_sweep``: the untruncated latents first, then each threshold) are judged by two
rules, each at every threshold of the sweep:

- **fidelity holds**: the sweep's fidelity value (``precision``, else the Inception Score ``is_mean``, else
  the digit classifier's ``digit_precision``, else the 2-D mixtures' ``high_quality_pct``, or the value named
  in the rule) is nowhere worse than without
  truncation by more than ``tolerance`` times the untruncated value. Truncation trades variety for
  fidelity, so an amenable model's fidelity rises or holds. FID and KID are not chosen by default: they
  also score variety, which truncation removes by design (the paper's FID rises from 8.7 untruncated to 25
  at its highest IS), so they would call the best models unamenable.
- **no saturation**: the share of saturated pixel values (``|x| > 0.99`` in images in [-1, 1]: G's tanh
  pinned at its ends) rises nowhere by more than ``saturation_bound`` over that of the untruncated samples
  of the same latents' seed. The comparison is with the generator's own untruncated samples rather than a
  fixed level, because data sets differ in how many saturated pixels they have (a digit's background is
  all -1); what marks the paper's artifact is the saturation that truncation adds. Samples that are not
  images (2-D mixtures) have no saturation; that rule then does not apply.

The sweep must reach a strong threshold (``strong``: 0.5 by default; the paper's Figure 2 goes from 2 down
to 0.04), or amenability is undetermined (None). One broken rule makes a model not amenable; a sweep
without a fidelity value whose saturation rule holds is undetermined. ``amenability`` returns the verdict,
a one-line reason, the check at each threshold and the protocol (the rule, the value judged, the
thresholds, the saturation level, the definition in words).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

from ganscape.errors import ConfigError
from ganscape.jsonio import json_value
from ganscape.metrics import BETTER

SATURATION_LEVEL = 0.99  # |x| beyond this, in images in [-1, 1], counts as a saturated pixel value
FIDELITY_KEYS = ("precision", "is_mean", "digit_precision", "high_quality_pct")  # judged by default, the first in the sweep
DEFINITION = ("amenable: the sweep reaches a threshold <= strong; at every threshold the quality value is no worse "
              "than untruncated by more than tolerance x |untruncated|, and the share of pixel values with "
              "|x| > saturation_level rises by at most saturation_bound over the untruncated samples'")


@torch.no_grad()
def saturated_share(batches: Iterable[torch.Tensor]) -> float:
    """The share of pixel values with ``|x| > SATURATION_LEVEL`` over all images of ``batches`` ((N, C, H, W)
    each, in [-1, 1])."""
    saturated = total = 0
    for batch in batches:
        if batch.ndim != 4:
            raise ValueError(f"saturation is measured on images (N, C, H, W), got a batch of shape "
                             f"{tuple(batch.shape)}")
        saturated += int((batch.abs() > SATURATION_LEVEL).sum())
        total += batch.numel()
    if not total:
        raise ValueError("saturation needs at least one image")
    return saturated / total


@dataclass(frozen=True)
class AmenabilityRule:
    """How a truncation sweep is judged (see the module docstring)."""

    quality: str | None = None  # the fidelity value judged; None: the first of FIDELITY_KEYS in the sweep
    tolerance: float = 0.05  # how much worse it may get than untruncated, as a share of the untruncated value
    saturation_bound: float = 0.05  # how much the saturated share may rise over the untruncated samples'
    strong: float = 0.5  # the sweep must reach a threshold at or below this

    def __post_init__(self):
        if self.quality is not None and self.quality not in BETTER:
            raise ConfigError(f"amenability judges a value that ranks generators; {self.quality!r} does not. "
                              f"Valid: {', '.join(sorted(BETTER))}.")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ConfigError(f"amenability tolerance must be a finite share >= 0 (0.05: 5% worse), "
                              f"got {self.tolerance}.")
        if not 0 <= self.saturation_bound <= 1:
            raise ConfigError(f"amenability saturation_bound is a share of pixel values in [0, 1] (0.05: 5 "
                              f"points), got {self.saturation_bound}.")
        if not (math.isfinite(self.strong) and self.strong > 0):
            raise ConfigError(f"amenability strong threshold must be finite and > 0, got {self.strong}.")

    def check_computed(self, names: Iterable[str]) -> None:
        """Refuse a rule whose ``quality`` is not among ``names``, the values a sweep computes (before it runs)."""
        names = list(names)
        if self.quality is not None and self.quality not in names:
            raise ConfigError(f"amenability judges {self.quality!r}, which this sweep does not compute; it has "
                              f"{', '.join(names)}. Add its metric to --metrics.")


def amenability(rows: list[dict], rule: AmenabilityRule = AmenabilityRule()) -> dict:
    """Judge a truncation sweep: ``{"amenable": True, False or None, "reason": str, "checks": [...],
    "protocol": {...}}``; ``rows`` are ``{"truncation": T or None, "values": {...}, "saturation": share or
    None}``, the untruncated row first. Each check holds one threshold's fidelity and saturation and whether
    each rule is met there (None where the sweep has no fidelity value or no saturation)."""
    if not rows or rows[0]["truncation"] is not None:
        raise ValueError("a truncation sweep starts with its untruncated row (truncation None)")
    untruncated, truncated = rows[0], rows[1:]
    rule.check_computed(untruncated["values"])
    quality = rule.quality or next((key for key in FIDELITY_KEYS if key in untruncated["values"]), None)
    thresholds = [row["truncation"] for row in truncated]
    protocol = asdict(rule) | {"quality": quality, "saturation_level": SATURATION_LEVEL, "thresholds": thresholds,
                               "definition": DEFINITION}
    checks = [_check(row, untruncated, quality, rule) for row in truncated]
    amenable, reason = _verdict(checks, untruncated, quality, rule, min(thresholds, default=None))
    return {"amenable": amenable, "reason": reason, "checks": checks, "protocol": protocol}


def _holds(value: float, untruncated: float, better: str, tolerance: float) -> bool:
    """Whether ``value`` is no worse than ``untruncated`` by more than ``tolerance * |untruncated|``; a value
    that is not finite never holds."""
    if not (math.isfinite(value) and math.isfinite(untruncated)):
        return False
    gain = value - untruncated if better == "max" else untruncated - value
    return gain >= -tolerance * abs(untruncated)


def _check(row: dict, untruncated: dict, quality: str | None, rule: AmenabilityRule) -> dict:
    """Both rules at one threshold of the sweep."""
    value = None if quality is None else float(row["values"][quality])
    holds = None if quality is None else _holds(value, float(untruncated["values"][quality]), BETTER[quality],
                                                rule.tolerance)
    saturation, base = row.get("saturation"), untruncated.get("saturation")
    rise = None if saturation is None or base is None else saturation - base
    return {"truncation": row["truncation"], "quality": json_value(value), "quality_holds": holds,
            "saturation": saturation, "saturation_rise": rise,
            "saturation_ok": None if rise is None else rise <= rule.saturation_bound}


def _verdict(checks: list[dict], untruncated: dict, quality: str | None, rule: AmenabilityRule,
             lowest: float | None) -> tuple[bool | None, str]:
    """The verdict over all checks (a broken rule suffices to say no) and its reason in one line."""
    if lowest is None or lowest > rule.strong:
        return None, (f"undetermined: the sweep's lowest threshold is {'none' if lowest is None else f'{lowest:g}'}; "
                      f"amenability needs one at or below {rule.strong:g} (add it to --truncation-sweep)")
    base = None if quality is None else untruncated["values"][quality]
    failures = [f"{quality} falls from {_shown(base)} untruncated to {_shown(c['quality'])} at {c['truncation']:g} "
                f"(more than {rule.tolerance:.0%} worse)" for c in checks if c["quality_holds"] is False][:1]
    worst = max((c for c in checks if c["saturation_ok"] is not None), key=lambda c: c["saturation_rise"],
                default=None)
    saturation = ("saturation not measured (the samples are not images)" if worst is None else
                  f"largest rise of saturated pixels {_points(worst['saturation_rise'])} at {worst['truncation']:g} "
                  f"({untruncated['saturation']:.2%} -> {worst['saturation']:.2%}; bound "
                  f"{_points(rule.saturation_bound)})")
    if worst is not None and not worst["saturation_ok"]:
        failures.append(saturation)
    if failures:
        return False, "not amenable: " + "; ".join(failures)
    if quality is None:
        return None, (f"undetermined: the sweep has no fidelity value ({', '.join(FIDELITY_KEYS)}; add one with "
                      f"--metrics pr or --metrics is); {saturation}")
    strongest = next(c for c in checks if c["truncation"] == lowest)
    return True, (f"amenable: {quality} holds within {rule.tolerance:.0%} down to {lowest:g} ({_shown(base)} -> "
                  f"{_shown(strongest['quality'])}); {saturation}")


def _shown(value) -> str:
    """A value in a reason: numbers to 4 significant digits; "nan" and "inf" (as JSON holds them) as they are."""
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _points(share: float) -> str:
    """A change of a share in percentage points, signed, to 3 significant digits: "+3.12 points"."""
    return f"{100 * share:+.3g} points"
