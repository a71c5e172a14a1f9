"""What the commands share: exit codes, the preset/override split, a run's closing lines."""

from __future__ import annotations

import os
import sys

from ganscape.errors import ConfigError

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_BUG = 2, 3, 130, 141, 1


def split_arguments(args: list[str]) -> tuple[str | None, list[str]]:
    """Separate an optional leading preset from ``key=value`` overrides. An existing path is the preset even
    when it holds '=' (a study's trial, ``runs/loss=ns/trial-0000-seed-0``)."""
    preset = None
    if args and ("=" not in args[0] or os.path.exists(args[0])):
        preset, args = args[0], args[1:]
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"unexpected argument {arg!r}: after the preset, give overrides as key=value.")
    return preset, args


def print_summary(summary: dict) -> None:
    print(f"trained to step {summary['step']} of {summary['steps']} in {summary['wall_time_s']:.1f} s")
    results = summary["results"]
    if "eval/modes_covered" in results and "eval/high_quality_pct" in results:
        which = "EMA generator" if "eval_raw/modes_covered" in results else "generator"
        print(f"modes covered: {results['eval/modes_covered']}/{results['eval/num_modes']}, "
              f"high-quality samples: {results['eval/high_quality_pct']:.1f}%, "
              f"KL(modes || uniform): {results['eval/kl_to_uniform']:.4f}  ({which})")
    elif results:
        print("last evaluation: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in results.items()))
    best = {key: value for key, value in summary.get("best", {}).items() if key.startswith("eval/")}
    if best:
        print("best evaluation: " + ", ".join(f"{key} {value:.4g} (step {step})" for key, (value, step) in best.items()))


def finish(summary: dict, run) -> int:
    """Print the summary; a run stopped by Ctrl-C says how to continue and exits with 130. A run whose
    output was closed (``| head``) stopped with a checkpoint too: it says so on stderr and exits with 141. A
    collapse (``training.collapse``) is said with the checkpoint to go back to; one that stopped the run exits 0."""
    if summary.get("output_closed"):
        if summary["step"] < summary["steps"]:
            print(f"ganscape: the output was closed: stopped at step {summary['step']} with a checkpoint; "
                  f"continue with: ganscape resume {run}", file=sys.stderr)
        return EXIT_BROKEN_PIPE
    print_summary(summary)
    collapse = summary.get("collapse")
    if collapse:  # the run's one collapse (training.collapse), and how to go back to before it
        print(collapse["message"] + (f" Continue from there with: ganscape resume {run} --from-step "
                                     f"{collapse['kept_step']}" if collapse["kept_step"] is not None else ""))
        if collapse["stopped"]:
            print(f"stopped at step {summary['step']}: a collapse was detected and collapse.stop is set")
            return 0
    if summary["stopped"]:
        print(f"stopped at step {summary['step']} on request; continue with: ganscape resume {run}")
        return EXIT_INTERRUPTED
    if summary["step"] < summary["steps"]:
        print(f"continue with: ganscape resume {run}")
    return 0
