"""``ganscape export``, ``sample``, ``interpolate``, ``fid`` and ``import``: trained generators as artifacts.

    ganscape export RUN_DIR [--step N] [--raw] [--with-discriminator] --out DIR [--push-to-hub OWNER/NAME]
    ganscape sample MODEL [--step N] --n N [--seed S] [--classes 0,3,7 | --per-class K] [--truncation T]
                    --out grid.png|DIR/|x.npz
    ganscape interpolate MODEL --steps K [--rows R] [--classes A,B] [--seed S] --out strip.png|anim.gif
    ganscape fid A B [--metrics fid,kid,pr,is] [--samples N] [--out result.json] [--json] [--[no-]progress]
    ganscape import biggan-pytorch G.pth [--G-ema G_ema.pth] [--D D.pth] [--config PRESET] [key=value ...] --out DIR
    ganscape import gan-stability MODEL.pt [--raw] [--config PRESET] [key=value ...] --out DIR

MODEL is an exported model folder, a run directory or a Hugging Face Hub repository id. Loading and exporting are
``ganscape.hub``'s; choosing and writing samples are ``ganscape.training.sample_files``'.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from ganscape.runs import check_override_keys


def _device(name: str):
    from ganscape.training.state import resolve_device

    return resolve_device(name)


def cmd_export(args) -> int:
    from ganscape.hub import export_run, load_folder
    from ganscape.runs import RunDir

    run = RunDir.open(args.run_dir)
    out = export_run(run, args.out, args.step, args.raw, args.with_discriminator)
    print(f"exported {run} to {out}")
    if args.push_to_hub:
        print(f"uploaded: {load_folder(out).push_to_hub(args.push_to_hub, out, private=args.private)}")
    return 0


def sampled_model(model: str, device: str, step: int | None):
    """The generator that ``sample`` draws from: MODEL's, or with ``step`` that of the run's checkpoint at
    that step (a run directory only: an exported model holds one set of weights)."""
    from ganscape.errors import ConfigError
    from ganscape.hub import CONFIG, load_generator, run_model
    from ganscape.runs import RunDir

    if step is None:
        return load_generator(model, _device(device))
    path = Path(model).expanduser()
    if not path.is_dir() or (path / CONFIG).is_file():
        raise ConfigError(f"--step picks a checkpoint of a run directory, and {model} is not one (an exported "
                          "model holds one set of weights); give the run directory, or leave out --step.")
    return run_model(RunDir.open(path), step, device=_device(device))[0]


def cmd_sample(args) -> int:
    from ganscape.training.sample_files import is_picture, sample_labels, write_samples, write_scatter

    model = sampled_model(args.model, args.device, args.step)
    out = Path(args.out)
    picture = is_picture(out)
    n, labels = sample_labels(model, args.n, args.classes, args.per_class, picture)
    if args.standing_stats:
        model.standing_statistics(args.standing_stats, args.batch_size, seed=args.seed + 1, truncation=args.truncation)
    images = model.sample(n, seed=args.seed, labels=labels, truncation=args.truncation, batch_size=args.batch_size)
    if picture and len(model.spec.shape) == 1:  # 2-D points: a scatter picture over the data set's points
        print(f"wrote {write_scatter(model, images, out)}")
    else:
        print(f"wrote {write_samples(images, out, labels, model.spec.class_names)}")
    return 0


def cmd_interpolate(args) -> int:
    from ganscape.errors import ConfigError
    from ganscape.hub import load_generator
    from ganscape.training.sample_files import class_list, write_interpolation

    model = load_generator(args.model, _device(args.device))
    if len(model.spec.shape) != 3:
        raise ConfigError("interpolations are pictures of images; this generator makes points.")
    classes = class_list(args.classes)
    images = model.interpolate(args.steps, args.seed, args.rows, tuple(classes) if classes else None, args.truncation)
    print(f"wrote {write_interpolation(images, args.rows, args.steps, Path(args.out), args.frame_ms)}")
    return 0


def cmd_fid(args) -> int:
    from ganscape.config import load_config
    from ganscape.hub import open_images
    from ganscape.jsonio import json_value, write_json
    from ganscape.metrics.compare import compare

    check_override_keys(args.overrides, ("metrics.",), "in ganscape fid: only the metrics' settings apply")
    settings = load_config(None, [*args.overrides]).metrics  # metrics.* settings, validated as in a config
    device = _device(args.device)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    # With --json, stdout carries the JSON object alone: every other line (ours or a library's) goes to stderr.
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
        first = open_images(args.first, args.samples, args.resolution, args.seed, args.truncation, device)
        second = open_images(args.second, args.samples, args.resolution, args.seed + 1, args.truncation, device)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        result = compare(first, second, metrics, args.samples, settings, device, progress=progress)
        print(f"{result['protocol']['first']} against {result['protocol']['second']}:")
        for key, value in result["values"].items():
            print(f"  {key:12s} {value:.6g}" if isinstance(value, float) and math.isfinite(value)
                  else f"  {key:12s} {value}")
        if args.out:
            print(f"wrote {write_json(Path(args.out), result)}")
    if args.json:
        print(json.dumps({key: json_value(value) for key, value in result["values"].items()}, allow_nan=False))
    return 0


def cmd_import(args) -> int:
    from ganscape.errors import ConfigError
    from ganscape.importers import import_biggan_pytorch, import_gan_stability

    if args.source == "gan-stability":
        if args.G_ema or args.D:
            raise ConfigError("--G-ema and --D are for biggan-pytorch: a GAN_stability checkpoint holds G, its moving "
                              "average and D in one file (the average is exported unless --raw).")
        out = import_gan_stability(args.weights, args.out, args.config, args.overrides, raw=args.raw,
                                   resolution=args.resolution, classes=args.classes)
        print(f"converted {args.weights} into {out}")
        return 0
    if args.raw:
        raise ConfigError("--raw is for gan-stability; for biggan-pytorch, leave out --G-ema to export the raw G.")
    classes = 1000 if args.classes is None else args.classes
    out = import_biggan_pytorch(args.weights, args.out, args.config, args.overrides, ema=args.G_ema,
                                discriminator=args.D, resolution=args.resolution, classes=classes)
    print(f"converted {args.weights}{' and ' + args.G_ema if args.G_ema else ''}{' and ' + args.D if args.D else ''} "
          f"into {out}")
    return 0


MODEL_HELP = "an exported model folder, a run directory, or a Hugging Face Hub repository id (owner/name)"


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="export a run's generator as a model folder (Hugging Face layout)",
        description="Write config.json, model.safetensors (the EMA generator, or --raw), optionally "
                    "discriminator.safetensors, samples.png and a README.md model card to --out. The folder loads "
                    "with ganscape.load_generator(DIR) where no data set exists.")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--out", required=True, help="the model folder to write")
    export.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    export.add_argument("--raw", action="store_true", help="the raw generator instead of its EMA")
    export.add_argument("--with-discriminator", action="store_true", help="also export D")
    export.add_argument("--push-to-hub", metavar="OWNER/NAME", help="then upload the folder to this Hub repository")
    export.add_argument("--private", action="store_true", help="with --push-to-hub: a private repository")
    export.set_defaults(func=cmd_export)


def _add_import_parser(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser(
        "import", help="convert weights trained elsewhere (BigGAN-PyTorch, GAN_stability) into a model folder",
        description="Convert the state dicts that BigGAN-PyTorch saves (G.pth, G_ema.pth, D.pth), or a checkpoint "
                    "that GAN_stability saves (model.pt: G, its moving average and D), into a model folder as "
                    "'ganscape export' writes it. The networks are those of --config (a preset or YAML file) and "
                    "the overrides, which must state the settings the weights were trained with: e.g. --config "
                    "biggan_imagenet128 for launch_BigGAN_bs256x8.sh. Files are read without running code from them "
                    "(torch.load weights_only); a key without its place in the network, or a place without its key, "
                    "is refused by name.")
    importer.add_argument("source", choices=["biggan-pytorch", "gan-stability"], help="where the weights come from")
    importer.add_argument("weights", metavar="G.pth|MODEL.pt",
                          help="biggan-pytorch: the generator's state dict; gan-stability: the checkpoint")
    importer.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. g.width=64")
    importer.add_argument("--G-ema", dest="G_ema", metavar="G_ema.pth",
                          help="the EMA generator's state dict: exported instead of G (BigGAN samples with it)")
    importer.add_argument("--D", metavar="D.pth", help="the discriminator's state dict, exported beside G")
    importer.add_argument("--config", metavar="PRESET", help="preset or YAML file with the networks' settings")
    importer.add_argument("--resolution", type=int, default=0, help="image size (default: the config's data.resolution)")
    importer.add_argument("--raw", action="store_true",
                          help="gan-stability: export the trained G instead of its moving average (generator_test)")
    importer.add_argument("--classes", type=int, help="number of classes (default: 1000 for biggan-pytorch; for "
                                                      "gan-stability the checkpoint's, 0 when it has one label)")
    importer.add_argument("--out", required=True, help="the model folder to write")
    importer.set_defaults(func=cmd_import)


def _add_sample_parser(commands: argparse._SubParsersAction) -> None:
    sample = commands.add_parser(
        "sample", help="draw samples of a trained generator",
        description="Write samples of MODEL to --out: a grid picture (.png; enlarged to at least 512 pixels, a "
                    "class per row for a conditional model; 2-D points: a scatter picture), a folder of PNG files (a "
                    "path ending in /; torch-fidelity and clean-fid read it), or an .npz of uint8 images (key "
                    "'images', and 'labels' for a conditional model). The same --seed gives the same samples.")
    sample.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sample.add_argument("--out", required=True)
    sample.add_argument("--n", type=int, default=64, help="samples (default: %(default)s)")
    sample.add_argument("--seed", type=int, default=0, help="latent seed (default: %(default)s)")
    sample.add_argument("--classes", help="class indices or names, cycled over the samples (e.g. 0,3,7 or cat,dog)")
    sample.add_argument("--per-class", type=int, metavar="K", help="K samples of every class, one grid row each")
    sample.add_argument("--truncation", type=float, metavar="T",
                        help="redraw every latent coordinate beyond ±T (BigGAN's truncation trick; normal latents)")
    sample.add_argument("--step", type=int, metavar="N",
                        help="with a run directory: its checkpoint at step N (default: the newest)")
    sample.add_argument("--batch-size", type=int, default=256)
    sample.add_argument("--standing-stats", type=int, metavar="PASSES",
                        help="first re-estimate G's batch-norm statistics from PASSES batches of other latents "
                             "(BigGAN's standing statistics)")
    sample.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    sample.set_defaults(func=cmd_sample)


def _add_interpolate_parser(commands: argparse._SubParsersAction) -> None:
    interpolate = commands.add_parser(
        "interpolate", help="interpolate between latents (or classes) of a trained generator",
        description="Each row goes from one latent to another (spherical interpolation for normal latents), or, "
                    "with --classes A,B, keeps its latent and moves from class A to class B. --out: a .png strip "
                    "(rows x steps) or an animated .gif.")
    interpolate.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    interpolate.add_argument("--out", required=True)
    interpolate.add_argument("--steps", type=int, default=8, help="samples per row (default: %(default)s)")
    interpolate.add_argument("--rows", type=int, default=4, help="interpolations (default: %(default)s)")
    interpolate.add_argument("--classes", help="two classes, A,B: interpolate between them")
    interpolate.add_argument("--seed", type=int, default=0)
    interpolate.add_argument("--truncation", type=float, metavar="T")
    interpolate.add_argument("--frame-ms", type=int, default=120, help="GIF frame duration (default: %(default)s)")
    interpolate.add_argument("--device", default="auto")
    interpolate.set_defaults(func=cmd_interpolate)


def _add_fid_parser(commands: argparse._SubParsersAction) -> None:
    fid = commands.add_parser(
        "fid", help="FID (and KID, precision/recall, IS) between two sets of images",
        description="Score set A against the reference B under one recorded protocol. Each is a folder or zip of "
                    "images, an .npz of images, NAME:SPLIT[:ROOT] of a data set (e.g. cifar10:test), or a trained "
                    "generator (an exported model, a run directory or a Hub repository id; --samples of it). "
                    "Features of image files are cached. Further settings as metrics.* overrides.")
    fid.add_argument("first", metavar="A")
    fid.add_argument("second", metavar="B")
    fid.add_argument("overrides", nargs="*", metavar="metrics.key=value")
    fid.add_argument("--metrics", default="fid", help="comma-separated: fid, kid, pr, is (default: %(default)s)")
    fid.add_argument("--samples", type=int, default=10000, help="images of each set, or samples of a generator "
                                                                "(default: %(default)s)")
    fid.add_argument("--resolution", type=int, default=0, help="resize images from files to this side (default: "
                                                               "their own square size)")
    fid.add_argument("--seed", type=int, default=0, help="latent seed of a generator's samples")
    fid.add_argument("--truncation", type=float, metavar="T")
    fid.add_argument("--device", default="auto")
    fid.add_argument("--out", help="also write the values and protocol as JSON here")
    fid.add_argument("--json", action="store_true", help="print the values as one JSON object, and nothing else, "
                     "on stdout (the rest goes to stderr)")
    fid.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bars on stderr (default: when stderr is a terminal)")
    fid.set_defaults(func=cmd_fid)


def add_model_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``export``, ``import``, ``sample``, ``interpolate`` and ``fid`` on the command's subparsers."""
    _add_export_parser(commands)
    _add_import_parser(commands)
    _add_sample_parser(commands)
    _add_interpolate_parser(commands)
    _add_fid_parser(commands)
