"""The ``ganscape`` command.

    ganscape train [PRESET] [key=value ...]      train a new run (no arguments: the default 2-D job)
    ganscape resume RUN_DIR [key=value ...]      continue a run from its latest checkpoint
    ganscape branch RUN_DIR [--step N] [key=value ...] --out NEW_DIR
                                                 a new run from a checkpoint of RUN_DIR, with changed settings
    ganscape eval RUN_DIR [--metrics fid,kid,...] [--samples N] [--ref test] [--step N] [--raw]
                  [--truncation T | --truncation-sweep T1,T2,...] [key=value ...]
                                                 score a checkpoint; writes RUN_DIR/eval/step_N.json
    ganscape export | sample | interpolate | fid  trained generators as artifacts (see model_cli)
    ganscape study create | run | status | report | best
                                                 hyperparameter studies on Optuna (see study/cli)
    ganscape config show [PRESET] [key=value ...] print the fully resolved config
    ganscape config keys [PREFIX]                list the config keys: type, default, description
    ganscape data download cifar10 [--root DIR]  fetch a data set's archive (checks its MD5)
    ganscape data download inception             fetch the FID Inception weights into the cache
    ganscape data info NAME [key=value ...]      build a data set and describe it
    ganscape dynamics dirac|table|spectrum ...  Dirac-GAN eigenvalues, the paper's table, a run's spectrum
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import warnings

from ganscape import __version__
from ganscape.config import RESUMABLE_KEYS
from ganscape.errors import (ConfigError, ConfigWarning, DataError, DivergenceError, GanscapeError, GanscapeWarning,
                             silence_stdout)

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


def check_override_keys(overrides: list[str], prefixes: tuple[str, ...], why: str) -> None:
    """Refuse overrides of keys outside ``prefixes`` (a run's config is fixed once it has started)."""
    for item in overrides:
        key = item.partition("=")[0]
        if "=" not in item or not key.startswith(prefixes):
            raise ConfigError(f"cannot change {key!r} {why}. Keys that may change here: "
                              f"{', '.join(p + '*' for p in prefixes)}.")


def finish(summary: dict, run) -> int:
    """Print the summary; a run stopped by Ctrl-C says how to continue and exits with 130. A run whose
    output was closed (``| head``) stopped with a checkpoint too: it says so on stderr and exits with 141."""
    if summary.get("output_closed"):
        if summary["step"] < summary["steps"]:
            print(f"ganscape: the output was closed: stopped at step {summary['step']} with a checkpoint; "
                  f"continue with: ganscape resume {run}", file=sys.stderr)
        return EXIT_BROKEN_PIPE
    print_summary(summary)
    if summary["stopped"]:
        print(f"stopped at step {summary['step']} on request; continue with: ganscape resume {run}")
        return EXIT_INTERRUPTED
    if summary["step"] < summary["steps"]:
        print(f"continue with: ganscape resume {run}")
    return 0


def cmd_train(args) -> int:
    from ganscape.config import load_config
    from ganscape.training import distributed
    from ganscape.training.loop import train
    from ganscape.training.run import RunDir

    preset, overrides = split_arguments(args.args)
    cfg = load_config(preset, overrides)
    processes, device = distributed.start(cfg.train.device)
    try:
        cfg.train.shards = cfg.train.shards or processes.world  # recorded: a resumed run keeps its streams
        distributed.shards_of(processes, cfg.train.shards)  # refused before a run directory exists
        run = RunDir.create(cfg) if processes.main else None  # process 0 names and writes the run directory
        path = distributed.broadcast(None if run is None else str(run.path), processes)
        if run is None:
            run = RunDir(path)
        try:
            if processes.main:
                print(f"run directory: {run}" + (f" ({processes.world} processes)" if processes.many else ""),
                      flush=True)
            summary = train(cfg, run, until=args.until, processes=processes, device=device)
        except BaseException:
            if processes.main:
                run.discard_if_unused()  # a run that failed before its first logged step leaves nothing behind
            raise
        return finish(summary, run) if processes.main else 0
    finally:
        distributed.stop()


def cmd_resume(args) -> int:
    from ganscape.training.loop import train
    from ganscape.training.run import RunDir

    from ganscape.training import distributed

    run = RunDir.open(args.run_dir)
    check_override_keys(args.overrides, RESUMABLE_KEYS, "when resuming: it would change the run")
    processes, device = distributed.start("auto")
    main = processes.main
    if main:
        run.acquire()  # before reading or writing its config: another process may be training it
    try:
        if args.restore_config and main:
            kept = run.restore_config()
            print(f"restored {run.config_path} from the newest checkpoint"
                  + (f" (the old file is {kept})" if kept else ""))
        distributed.barrier(processes)  # the others read the config once process 0 has restored it
        cfg = run.read_config(args.overrides)
        device = device if processes.many else cfg.train.device
        step = args.from_step if args.from_step is not None else run.latest_checkpoint()[0]
        if step >= cfg.train.steps:
            # Still resumed: a run killed after its last checkpoint gets the picture and evaluation it missed.
            if main:
                print(f"{run} is already at step {step} of {cfg.train.steps}; raise train.steps=N to train longer.")
            summary = train(cfg, run, resume=True, from_step=args.from_step, progress=False, processes=processes,
                            device=device)
            return finish(summary, run) if main and summary["stopped"] else 0  # Ctrl-C during the catch-up
        if main:
            run.write_config(cfg)
            print(f"resuming {run} from step {step}", flush=True)
        summary = train(cfg, run, resume=True, until=args.until, from_step=args.from_step, processes=processes,
                        device=device)
        return finish(summary, run) if main else 0
    finally:
        run.release()
        distributed.stop()


def cmd_branch(args) -> int:
    from ganscape.training.branch import branch_run
    from ganscape.training.loop import train

    branch = branch_run(args.run_dir, args.out, args.overrides, args.step)
    changed = "; ".join(f"{key} {old} -> {new}" for key, old, new in branch.changes) or "nothing"
    print(f"run directory: {branch.run} (branched from {args.run_dir} at step {branch.step}; changed: {changed})",
          flush=True)
    summary = train(branch.cfg, branch.run, resume=True, until=args.until)
    return finish(summary, branch.run)


EVAL_PREFIXES = ("eval.", "metrics.")


def cmd_eval(args) -> int:
    import time
    from pathlib import Path

    from ganscape.data import build_dataset
    from ganscape.metrics.evaluate import Evaluator, kept_difference, write_result
    from ganscape.training.run import RunDir
    from ganscape.training.sampling import load_run_generator
    from ganscape.training.state import derived_seed, resolve_device

    check_override_keys(args.overrides, EVAL_PREFIXES, "in ganscape eval: it describes the run, not its evaluation")
    flags = [f"eval.metrics=[{args.metrics}]"] if args.metrics else []
    flags += [f"eval.{key}={value}" for key, value in (("samples", args.samples), ("ref", args.ref),
                                                        ("ref_root", args.ref_root), ("ref_samples", args.ref_samples))
              if value is not None]
    device = resolve_device(args.device)
    if (Path(args.run_dir) / "config.json").is_file():  # an exported model: its config.json records its run
        from ganscape.config import resolve
        from ganscape.hub import load_folder

        if args.step is not None or args.raw:
            raise ConfigError("an exported model holds one generator: --step and --raw apply to run directories.")
        model = load_folder(Path(args.run_dir), device)
        cfg = resolve(model.config["provenance"]["config"], [*args.overrides, *flags])
        G, step, which = model.net, model.config["provenance"]["step"], model.config["weights"]
        target = Path(args.run_dir) / "eval" / f"step_{step:08d}.json"
    else:
        run = RunDir.open(args.run_dir)
        cfg = run.read_config([*args.overrides, *flags])
        G, _, step, _ = load_run_generator(run, args.step, ema=not args.raw, device=device)
        which = "ema" if cfg.train.ema > 0 and not args.raw else "raw"
        target = run.eval_result(step, raw=cfg.train.ema > 0 and args.raw)
    data = build_dataset(cfg)
    seed = args.seed if args.seed is not None else derived_seed(cfg.train.seed, "eval")
    evaluator = Evaluator.from_config(cfg, data, seed, device, progress=sys.stderr.isatty())
    if evaluator is None:
        raise ConfigError(f"{cfg.data.name} has no default metrics; choose some with --metrics "
                          f"(e.g. --metrics fid,kid).")
    if args.truncation_sweep:
        return truncation_sweep_command(args, evaluator, G, step, which, target)
    if args.truncation is not None:
        evaluator.truncation = args.truncation
        target = target.with_name(f"{target.stem}_truncation_{args.truncation:g}.json")
    tic = time.perf_counter()
    values = evaluator(G)
    protocol = evaluator.protocol() | {"generator": which, "seconds": time.perf_counter() - tic}
    print(f"{args.run_dir} step {step} ({which} generator), {evaluator.num_samples} samples:")
    for key, value in values.items():  # shown before the result is written: a failed write loses nothing
        print(f"  {key:16s} {value:.6g}" if isinstance(value, float) else f"  {key:16s} {value}", flush=True)
    out = Path(args.out) if args.out else target
    try:
        path, kept = write_result(out, {"step": step, "values": values, "protocol": protocol})
    except OSError as err:
        raise GanscapeError(f"cannot write the result to {err.filename or out}: {err.strerror or err}; its values "
                            "are printed above. Write it elsewhere with --out FILE.") from None
    if kept is not None:
        print(f"kept {kept.name}: it was computed under another protocol ({kept_difference(kept, protocol)})")
    print(f"wrote {path}")
    return 0


def truncation_sweep_command(args, evaluator, G, step: int, which: str, target) -> int:
    """``ganscape eval --truncation-sweep``: the metrics at every threshold, as JSON and as a picture."""
    import time
    from pathlib import Path

    from ganscape.jsonio import json_value, write_json
    from ganscape.metrics.truncation import parse_thresholds, plot_truncation_sweep, truncation_sweep

    thresholds = parse_thresholds(args.truncation_sweep)
    if evaluator.latent_dist != "normal":
        raise ConfigError(f"truncation resamples normal latents beyond a threshold; this generator's latents are "
                          f"{evaluator.latent_dist}, so there is nothing to sweep.")
    tic = time.perf_counter()
    rows = truncation_sweep(evaluator, G, thresholds)
    out = Path(args.out) if args.out else target.with_name(f"truncation_sweep_step_{step:08d}.json")
    protocol = evaluator.protocol() | {"generator": which, "seconds": time.perf_counter() - tic}
    write_json(out, {"step": step, "protocol": protocol,
                     "rows": [row | {"values": {k: json_value(v) for k, v in row["values"].items()}} for row in rows]})
    picture = plot_truncation_sweep(rows, out.with_suffix(".png"), f"{args.run_dir}, step {step} ({which} generator), "
                                                                    f"{evaluator.num_samples} samples")
    names = list(rows[0]["values"])
    print("truncation  " + "  ".join(f"{name:>12s}" for name in names))
    for row in rows:
        label = "none" if row["truncation"] is None else f"{row['truncation']:g}"
        print(f"{label:>10s}  " + "  ".join(f"{row['values'][name]:12.6g}" for name in names))
    print(f"wrote {out} and {picture}")
    return 0


def cmd_config_show(args) -> int:
    import torch

    from ganscape.config import dump_yaml, load_config
    from ganscape.data import build_dataset, declared_shape
    from ganscape.nets import ModelSpec, build_discriminator, build_generator, count_parameters

    preset, overrides = split_arguments(args.args)
    cfg = load_config(preset, overrides)
    print(dump_yaml(cfg), end="")
    data = declared_shape(cfg)  # the networks' shapes depend on the data, known from the config where it fixes them
    if data is None:
        try:
            data = build_dataset(cfg)
        except DataError as err:
            print(f"# parameters: not counted, the data set is not available: {err}")
            return 0
    try:
        with torch.device("meta"):  # count parameters without allocating them
            spec = ModelSpec.of_run(cfg, data)
            G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
    except (RuntimeError, ValueError, OverflowError) as err:  # sizes no machine can hold
        raise ConfigError(f"the networks of this config cannot be built: {err}") from None
    print(f"# parameters: G {count_parameters(G):,}  D {count_parameters(D):,}")
    return 0


def cmd_config_keys(args) -> int:
    from ganscape.config import describe_keys, written

    every = describe_keys()
    rows = [("KEY", "TYPE", "DEFAULT", "DESCRIPTION")]
    rows += [(row.key, row.type, written(row.default), row.help) for row in every if row.key.startswith(args.prefix)]
    if len(rows) == 1:
        sections = sorted({row.key.partition(".")[0] for row in every})
        raise ConfigError(f"no config key starts with {args.prefix!r}; the sections are {', '.join(sections)}.")
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def cmd_data_download(args) -> int:
    from ganscape.data import DOWNLOADS

    if args.name == "inception":
        from pathlib import Path

        from ganscape.metrics.inception import download_inception_weights

        print(f"FID Inception weights: {download_inception_weights(Path(args.root) if args.root else None)}")
        return 0
    DOWNLOADS[args.name](args.root or "")
    return 0


def cmd_data_info(args) -> int:
    from ganscape.config import load_config
    from ganscape.data import build_dataset
    from ganscape.data.base import FixedImages

    data = build_dataset(load_config(None, [f"data.name={args.name}", *args.overrides]))
    print(repr(data))
    print(f"images: {len(data):,}" if isinstance(data, FixedImages) else "images: generated on the fly")
    print(f"shape: {data.shape}")
    print(f"classes: {data.num_classes}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganscape", description="Train, evaluate and study GANs.")
    parser.add_argument("--version", action="version", version=f"ganscape {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also GANSCAPE_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
                    "e.g. metrics.inception_weights=PATH or metrics.kid_subsets=50.")
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
                                 "fidelity/variety trade-off, written to truncation_sweep_step_N.json and .png")
    evaluate.set_defaults(func=cmd_eval)

    config = commands.add_parser("config", help="inspect configs")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser("show", help="print the fully resolved config and parameter counts")
    show.add_argument("args", nargs="*", metavar="[PRESET] [key=value]")
    show.set_defaults(func=cmd_config_show)
    keys = config_commands.add_parser("keys", help="list every config key with its type, default and meaning")
    keys.add_argument("prefix", nargs="?", default="", metavar="PREFIX",
                      help="only the keys that start with it, e.g. g_opt or train.")
    keys.set_defaults(func=cmd_config_keys)

    from ganscape.data import DOWNLOADS

    data = commands.add_parser("data", help="download and inspect data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_commands.add_parser(
        "download", help="fetch a data set's archive (checks its MD5) or the FID Inception weights",
        description="Download a data set's official archive into --root, checking its MD5; or, with 'inception', "
                    "the FID Inception weights into the cache folder (checking their SHA-256), where every "
                    "metric finds them. Apart from these, only the metrics download, once, the Inception weights.")
    download.add_argument("name", choices=[*sorted(DOWNLOADS), "inception"])
    download.add_argument("--root", help="destination folder (default: the data set's default data.root, or the "
                                         "weights cache for inception)")
    download.set_defaults(func=cmd_data_download)
    info = data_commands.add_parser("info", help="build a data set and print its size, shape and classes")
    info.add_argument("name", metavar="NAME")
    info.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=DIR")
    info.set_defaults(func=cmd_data_info)

    from ganscape.dynamics.cli import add_dynamics_parser
    from ganscape.model_cli import add_model_parsers
    from ganscape.study.cli import add_study_parser

    add_model_parsers(commands)
    add_study_parser(commands)
    add_dynamics_parser(commands)
    return parser


def show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, (ConfigWarning, GanscapeWarning)):
        print(f"ganscape: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


OS_ADVICE = {  # {place}: the option that chooses where the file goes; {again}: how to carry on afterwards
    errno.ENOSPC: "free some space, then {again}",
    errno.EROFS: "the file system is read-only; choose a writable place{place}",
    errno.EACCES: "check the permissions of the folder, or choose another place{place}",
    errno.EPERM: "check the permissions of the folder, or choose another place{place}",
    errno.ENAMETOOLONG: "choose a shorter name{place}",
    errno.EDQUOT: "you are over your disk quota; free some space, then {again}",
}
AGAIN = {"train": "continue the run with 'ganscape resume RUN_DIR': its checkpoints are written atomically, so the "
                  "last one is intact",
         "resume": "resume again: the run's checkpoints are written atomically, so the last one is intact"}
# What to lower when a command runs out of memory.
MEMORY_SETTINGS = {
    "train": "train.batch_size (with train.accumulate=N to keep the batch per update), g.width, d.width, "
             "data.resolution, eval.samples or metrics.batch_size",
    "resume": "eval.samples or metrics.batch_size (a run's batch and networks are fixed once it has started)",
    "eval": "--samples or metrics.batch_size",
    "fid": "--samples, --resolution or metrics.batch_size",
    "sample": "--batch-size",
    "interpolate": "--rows or --steps",
    "dynamics": "--batch",
}


def _contains(folder: str | os.PathLike, path: str | os.PathLike) -> bool:
    folder, path = os.path.abspath(folder), os.path.abspath(path)
    return os.path.commonpath([folder, path]) == folder


def place_option(args, filename) -> str:
    """' (OPTION)' naming what chooses the place of ``filename``, the file an OSError names, for this command."""
    out, filename = getattr(args, "out", None), filename if isinstance(filename, str) else None
    if out and filename and (_contains(out, filename) or _contains(filename, out)):  # --out or a folder above it
        return " (--out PATH)"
    from ganscape.metrics.inception import CACHE_ENV_VAR, cache_root

    if filename and _contains(cache_root(), filename):
        return f" (the cache folder: {CACHE_ENV_VAR}=PATH, or metrics.cache_dir=PATH for reference features)"
    if args.command == "train":
        return " (run.root=PATH, run.name=NAME)"
    return ""


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure: torch.OutOfMemoryError, a CPU allocator's, or Python's."""
    return isinstance(err, MemoryError) or isinstance(err, RuntimeError) and any(
        text in str(err) for text in ("out of memory", "can't allocate memory", "not enough memory"))


def allocation_size(err: BaseException) -> str:
    """' (it tried to allocate 2.00 GiB)' from PyTorch's message, or ''."""
    tried = re.search(r"[Tt]ried to allocate ([\d.]+) (\w+)", str(err))
    if not tried:
        return ""
    amount, unit = tried.groups()
    if unit == "bytes":  # the CPU allocator counts bytes
        amount, unit = f"{int(amount) / 2**30:.2f}", "GiB"
    return f" (it tried to allocate {amount} {unit})"


def is_a_bug(err: BaseException) -> bool:
    """Whether an error that is not ganscape's own comes from ganscape's code rather than from the machine."""
    return not (isinstance(err, (OSError, UnicodeDecodeError)) or out_of_memory(err))


def explain(err: BaseException, args) -> str:
    """One line for an error that is not ganscape's own: what happened, to which file, what to do."""
    if isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        advice = OS_ADVICE.get(err.errno, "").format(
            place=place_option(args, err.filename), again=AGAIN.get(args.command, "run the command again"))
        return f"{err.strerror or err}{where}" + (f"; {advice}." if advice else ".")
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}); a config or log must be text."
    if out_of_memory(err):
        settings = MEMORY_SETTINGS.get(args.command)
        remedy = f"lower {settings}" if settings else "free memory, or use a machine with more"
        return f"out of memory{allocation_size(err)}; {remedy}."
    return (f"internal error: {type(err).__name__}: {err}. This is a bug in ganscape; please report it with the "
            "traceback that --debug shows.")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also follow the options (argparse collects positionals before them only)
    positional = next((name for name in ("overrides", "args") if hasattr(args, name)), None)
    if extra and positional and all("=" in e and not e.startswith("-") for e in extra):
        setattr(args, positional, getattr(args, positional) + extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.showwarning = show_warning
    debug = args.debug or os.environ.get("GANSCAPE_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (e.g. '| head'): stop quietly
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if debug:
            raise
        print("\nganscape: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DivergenceError as err:
        print(f"ganscape: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except GanscapeError as err:
        if debug:
            raise
        print(f"ganscape: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - the one boundary where any error becomes one clear line
        if debug:
            raise
        print(f"ganscape: error: {explain(err, args)}", file=sys.stderr)
        return EXIT_BUG if is_a_bug(err) else EXIT_ERROR
