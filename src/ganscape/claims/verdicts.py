"""The rules that turn a claim's measurements into a verdict: small functions of plain numbers, so that each can
be checked on made-up results both ways (``tests/test_claims.py``).

Every rule returns ``(holds, why)``: ``holds`` is True when the measurement agrees with the paper's claim, and
``why`` says in one line which numbers decided it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

HOLDS = "holds at this scale"
FAILS = "does not hold at this scale"
GPU = "needs a GPU: not run"
NOT_RUN = "not run yet"


def verdict_text(holds: bool) -> str:
    return HOLDS if holds else FAILS


def same_verdicts(measured: Mapping[str, str], paper: Mapping[str, str]) -> tuple[bool, str]:
    """Every method's measured verdict equals the paper's (e.g. the Dirac-GAN table): the first that differs
    is named."""
    differing = [name for name in paper if measured.get(name) != paper[name]]
    if differing:
        name = differing[0]
        return False, f"{name}: {measured.get(name, 'missing')} here, {paper[name]} in the paper"
    return True, f"all {len(paper)} methods as in the paper"


def settling_pattern(measured: Mapping[str, bool], expected: Mapping[str, bool]) -> tuple[bool, str]:
    """Each group settles (True) or not exactly as expected; the first mismatch is named."""
    word = {True: "settles", False: "does not settle"}
    wrong = [group for group in expected if measured.get(group) != expected[group]]
    if wrong:
        group = wrong[0]
        seen = "missing" if group not in measured else word[measured[group]]
        return False, f"{group} {seen}, the paper says it {word[expected[group]].replace('settles', 'converges')}"
    return True, "; ".join(f"{group} {word[value]}" for group, value in expected.items())


def lower(a: float, b: float, a_name: str, b_name: str) -> tuple[bool, str]:
    """``a`` below ``b`` (both finite)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False, f"{a_name} {a:.4g} or {b_name} {b:.4g} is not finite"
    return a < b, f"{a_name} {a:.4g} {'<' if a < b else '>='} {b_name} {b:.4g}"


def chain_decreases(values: Sequence[tuple[str, float]]) -> tuple[bool, str]:
    """Each value below the one before (an ablation whose every switch helps a lower-is-better score)."""
    steps = [lower(b, a, nb, na) for (na, a), (nb, b) in zip(values, values[1:])]
    broken = [why for ok, why in steps if not ok]
    return (not broken, broken[0] if broken else "; ".join(why for _, why in steps))


def tradeoff(untruncated: Mapping[str, float], truncated: Mapping[str, float], fidelity: str,
             variety: str) -> tuple[bool, str]:
    """Truncation raises fidelity and lowers variety: ``fidelity`` higher and ``variety`` lower at the strongest
    threshold than untruncated."""
    up = truncated[fidelity] > untruncated[fidelity]
    down = truncated[variety] < untruncated[variety]
    return up and down, (f"{fidelity} {untruncated[fidelity]:.3g} -> {truncated[fidelity]:.3g} "
                         f"({'rises' if up else 'does not rise'}), {variety} {untruncated[variety]:.3g} -> "
                         f"{truncated[variety]:.3g} ({'falls' if down else 'does not fall'})")


def more_amenable(with_it: Sequence[bool | None], without: Sequence[bool | None]) -> tuple[bool, str]:
    """A larger share of amenable models with the switch than without (undetermined ones count as not)."""
    share = [sum(v is True for v in runs) / len(runs) if runs else math.nan for runs in (with_it, without)]
    if not all(math.isfinite(s) for s in share):
        return False, "no model was swept in one of the groups"
    return share[0] > share[1], f"{share[0]:.0%} amenable with it, {share[1]:.0%} without"


def stable_loss(failed: Mapping[str, float], median: Mapping[str, float], loss: str) -> tuple[bool, str]:
    """``loss`` fails no more often (share of failed trials) and scores no worse in the middle of the search space
    (median of its finite scores, lower is better) than any other loss. A spread (e.g. the interquartile range)
    would not do: a loss that never learns has none."""
    others = [name for name in failed if name != loss]
    fine = all(failed[loss] <= failed[o] and median[loss] <= median[o] for o in others)
    text = "; ".join(f"{name}: {failed[name]:.0%} failed, median {median[name]:.3g}" for name in failed)
    return fine, text


def regularizers_help(best: Mapping[str, float], plain: str) -> tuple[bool, str]:
    """Every regularized group's best score is below the unregularized group ``plain``'s (lower is better)."""
    others = [name for name in best if name != plain]
    fine = all(best[name] < best[plain] for name in others)
    return fine, "; ".join(f"{name} {best[name]:.3g}" for name in [plain, *others])
