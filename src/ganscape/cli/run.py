"""``ganscape train``, ``resume``, ``branch`` and ``eval``: a run's lifecycle (``ganscape.runs``), as commands.

Each command parses its options, calls the lifecycle and prints what it reports: the run directory as training
starts (``on_start``), the summary and how to continue when it ends, an evaluation's values before its file is
written (``on_values``).
"""

from __future__ import annotations

import argparse
import sys

from ganscape.cli.common import finish, split_arguments
from ganscape.config import RESUMABLE_KEYS


def _run_directory_line(started) -> None:
    print(f"run directory: {started.run}" + (f" ({started.world} processes)" if started.world > 1 else ""),
          flush=True)


def cmd_train(args) -> int:
    from ganscape.config import load_config
    from ganscape.runs import start

    preset, overrides = split_arguments(args.args)
    result = start(load_config(preset, overrides), until=args.until, on_start=_run_directory_line)
    return finish(result.summary, result.run) if result.main else 0


def cmd_resume(args) -> int:
    from ganscape.runs import resume

    started = []  # what the lifecycle reports as training starts: a finished run only catches up

    def announce(start) -> None:
        started.append(start)
        if args.restore_config:
            print(f"restored {start.run.config_path} from the newest checkpoint"
                  + (f" (the old file is {start.restored})" if start.restored else ""))
        if start.finished:
            print(f"{start.run} is already at step {start.step} of {start.last_step}; raise train.steps=N to "
                  "train longer.")
        else:
            print(f"resuming {start.run} from step {start.step}", flush=True)

    result = resume(args.run_dir, args.overrides, until=args.until, from_step=args.from_step,
                    restore_config=args.restore_config, on_start=announce)
    if not result.main or (started and started[0].finished and not result.summary["stopped"]):
        return 0  # a finished run's catch-up prints nothing more, unless Ctrl-C stopped it
    return finish(result.summary, result.run)


def cmd_branch(args) -> int:
    from ganscape.runs import branch

    def announce(start) -> None:
        changed = "; ".join(f"{key} {old} -> {new}" for key, old, new in start.changes) or "nothing"
        print(f"run directory: {start.run} (branched from {args.run_dir} at step {start.step}; changed: {changed})",
              flush=True)

    result = branch(args.run_dir, args.out, args.overrides, step=args.step, until=args.until, on_start=announce)
    return finish(result.summary, result.run)


def _evaluation_options(args) -> dict:
    """The keyword arguments of ``runs.evaluate`` and ``runs.truncation_sweep`` that ``ganscape eval`` sets."""
    return {"metrics": args.metrics, "samples": args.samples, "ref": args.ref, "ref_root": args.ref_root,
            "ref_samples": args.ref_samples, "step": args.step, "raw": args.raw, "seed": args.seed,
            "device": args.device, "out": args.out, "progress": sys.stderr.isatty()}


def cmd_eval(args) -> int:
    from ganscape.runs import evaluate

    if args.truncation_sweep:
        return cmd_truncation_sweep(args)

    def show(step: int, generator: str, num_samples: int, values: dict) -> None:
        print(f"{args.run_dir} step {step} ({generator} generator), {num_samples} samples:")
        for key, value in values.items():  # shown before the result is written: a failed write loses nothing
            print(f"  {key:16s} {value:.6g}" if isinstance(value, float) else f"  {key:16s} {value}", flush=True)

    result = evaluate(args.run_dir, args.overrides, truncation=args.truncation, on_values=show,
                      **_evaluation_options(args))
    if result.kept is not None:
        print(f"kept {result.kept.name}: it was computed under another protocol ({result.kept_reason})")
    print(f"wrote {result.path}")
    return 0


def cmd_truncation_sweep(args) -> int:
    """``ganscape eval --truncation-sweep``: the metrics at every threshold, as a table."""
    from ganscape.runs import truncation_sweep

    sweep = truncation_sweep(args.run_dir, args.truncation_sweep, args.overrides, **_evaluation_options(args))
    names = list(sweep.rows[0]["values"])
    saturation = sweep.rows[0]["saturation"] is not None  # images: the share of saturated pixel values
    print("truncation  " + "  ".join(f"{name:>12s}" for name in names) + ("    saturation" if saturation else ""))
    for row in sweep.rows:
        label = "none" if row["truncation"] is None else f"{row['truncation']:g}"
        print(f"{label:>10s}  " + "  ".join(f"{row['values'][name]:12.6g}" for name in names)
              + (f"  {row['saturation']:12.4%}" if saturation else ""))
    print(sweep.amenability["reason"])
    print(f"wrote {sweep.path} and {sweep.picture}")
    return 0


def add_run_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``train``, ``resume``, ``branch`` and ``eval`` on the command's subparsers."""
    train = commands.add_parser("train", help="train a new run",
                                description="Train a new run from a preset (a YAML file, a name in configs/, or "
                                            "a run directory: its settings, in a new run) and key=value "
                                            "overrides; with no arguments, the default 2-D job.")
    train.add_argument("args", nargs="*", metavar="[PRESET] [key=value]")
    train.add_argument("--until", type=int, metavar="STEP",
                       help="stop at this step with a checkpoint (continue later with 'ganscape resume')")
    train.set_defaults(func=cmd_train)

    resume = commands.add_parser("resume", help="continue a run from its latest checkpoint")
    resume.add_argument("run_dir", metavar="RUN_DIR")
    resume.add_argument("overrides", nargs="*", metavar="key=value",
                        help=f"only keys that do not change the run: {', '.join(RESUMABLE_KEYS)}")
    resume.add_argument("--until", type=int, metavar="STEP", help="stop at this step with a checkpoint")
    resume.add_argument("--from-step", type=int, metavar="STEP",
                        help="continue from this checkpoint instead of the newest (newer ones are moved aside "
                             "into checkpoints/superseded-<time>/)")
    resume.add_argument("--restore-config", action="store_true",
                        help="first write the config stored in the newest checkpoint back to config.yaml (the old "
                             "file is kept beside it)")
    resume.set_defaults(func=cmd_resume)

    branch = commands.add_parser(
        "branch", help="start a new run from a checkpoint of another, with changed settings",
        description="Start the run NEW_DIR from a checkpoint of RUN_DIR (its newest, or --step) with some settings "
                    "changed (e.g. g_opt.lr, d_opt.lr, penalty, loss, train.steps): it continues from the "
                    "checkpoint's networks, EMA, optimizer state, random streams and step, and records RUN_DIR and "
                    "the step as run.parent and run.parent_step. RUN_DIR is only read.")
    branch.add_argument("run_dir", metavar="RUN_DIR")
    branch.add_argument("overrides", nargs="*", metavar="key=value",
                        help="settings to change; not those the checkpoint was made for (the networks, data, latent, "
                             "seed, shards, optimizer kind)")
    branch.add_argument("--out", required=True, metavar="NEW_DIR", help="the new run's directory (new or empty)")
    branch.add_argument("--step", type=int, metavar="STEP", help="the checkpoint to start from (default: the newest)")
    branch.add_argument("--until", type=int, metavar="STEP", help="stop at this step with a checkpoint")
    branch.set_defaults(func=cmd_branch)

    evaluate = commands.add_parser(
        "eval", help="evaluate a checkpoint's generator",
        description="Score the EMA generator (or the raw one, with --raw) of a run's checkpoint and write the values "
                    "with their full protocol to RUN_DIR/eval/step_N.json. Metrics: fid, is, kid, pr (precision "
                    "and recall), msssim, recon (reconstruction error), modes. Further settings as overrides, "
                    "e.g. metrics.inception_weights=PATH or metrics.kid.subsets=50.")
    evaluate.add_argument("run_dir", metavar="RUN_DIR|MODEL", help="a run directory, or an exported model folder")
    evaluate.add_argument("overrides", nargs="*", metavar="key=value", help="eval.* and metrics.* keys only")
    evaluate.add_argument("--metrics", help="comma-separated (default: the run's eval.metrics)")
    evaluate.add_argument("--samples", type=int, help="generated samples (default: the run's eval.samples)")
    evaluate.add_argument("--ref", help="reference split, train or test (default: the run's eval.ref)")
    evaluate.add_argument("--ref-root", help="where the reference split lies, when not in data.root")
    evaluate.add_argument("--ref-samples", type=int, help="reference images (default: as many as --samples)")
    evaluate.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    evaluate.add_argument("--raw", action="store_true", help="evaluate the raw generator, not its EMA")
    evaluate.add_argument("--seed", type=int, help="seed of the evaluated latents (default: the run's)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    evaluate.add_argument("--out", help="write the result here (default: RUN_DIR/eval/step_N.json, or MODEL/eval/)")
    truncation = evaluate.add_mutually_exclusive_group()
    truncation.add_argument("--truncation", type=float, metavar="T",
                            help="score samples of latents truncated to [-T, T] (BigGAN's trick; normal latents); "
                                 "writes step_N_truncation_T.json")
    truncation.add_argument("--truncation-sweep", metavar="T1,T2,...",
                            help="score the untruncated latents and each threshold (e.g. 0.25,0.5,1,2): the "
                                 "fidelity/variety trade-off, written to truncation_sweep_step_N.json and .png, "
                                 "and whether G is amenable to truncation (fidelity holds, no added saturation)")
    evaluate.set_defaults(func=cmd_eval)
