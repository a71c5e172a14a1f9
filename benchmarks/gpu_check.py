"""The GPU check: ganscape's speed goals on one GPU, measured in one run of a few minutes.

    python benchmarks/gpu_check.py --out gpu_check                    # one H100/H200: about 8 minutes
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gc  # the same code paths at toy sizes (the tests)

It writes ``gpu_check.json`` (every number, with the device, versions and settings) and ``gpu_check.md`` (the same as
tables, with the goals) to ``--out``:

1. **Training steps**: the SN-GAN ResNet for CIFAR-10 (batch 64, 5 D steps per G step, hinge loss, Adam), the GAN
   Landscape's SNDCGAN and BigGAN at 128x128 (batch 64), each in fp32, tf32, bf16 and bf16 + ``torch.compile``,
   as G steps per second (best of ``--repeats`` runs of ``--steps`` steps after a warm-up, so compilation is not
   timed), the peak GPU memory and the ratio to a plain PyTorch step on the same networks measured in the same
   run (``image_step.plain_step``). Goal: 50 G-steps/s for the ResNet on one H100 or H200.
2. **FID**: a 50,000-vs-50,000 FID of a 32x32 SNDCGAN (``Evaluator(["fid"])``, the reference side's features
   computed first, as a run's evaluator keeps them), with the Inception pass in fp32 and with TF32 matmuls: the
   seconds of each and TF32's relative deviation from fp32. Goals: 5 s, and within 0.1% of fp32.
3. **torchrun**: ``ganscape train`` under ``torchrun --nproc_per_node 1`` (NCCL on a GPU, gloo on a CPU) with
   ``train.sync_bn=true`` on in-memory data, which the loop keeps on the device: whether it ran, its speed.
   ganscape converts batch norms to synchronized ones only with several processes, so with one the run checks
   the launch, the process group and the device-resident batches, not the synchronized statistics.
4. **A short training**: ``cifar10_jpeg_sndcgan`` in bf16 for about three minutes (the step count from part 1's
   SNDCGAN bf16 speed, scaled from its 5 D steps per G step to the preset's 1), then its FID with 10,000 samples
   against the CIFAR-10 test set (``--cifar-train``/``--cifar-test``: the JPEG zips of class folders; left out,
   with the reason, where absent).

``--tiny`` shrinks every size (widths, batches, sample counts, steps) and compiles with ``aot_eager`` instead of
``inductor`` (no C++ compiler needed) for the ResNet only, so the tests run every part on a CPU in about two
minutes; the numbers it prints then mean nothing. Parts can be chosen with ``--parts steps,fid,torchrun,training``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ganscape.config import DataConfig, MetricsConfig, load_config
from ganscape.data.images import InMemoryImages
from ganscape.errors import ConfigWarning
from ganscape.metrics.evaluate import Evaluator
from ganscape.metrics.inception import file_sha256, inception_weights_path
from ganscape.store.rundir import RunDir, read_metrics
from ganscape.training.speed import precision_flags

sys.path.insert(0, str(Path(__file__).parent))  # the other benchmarks, when run from elsewhere
from image_step import ARCHS, ganscape_step, plain_step, synchronize, time_steps  # noqa: E402
from metrics_speed import LATENT_DIM, generate_uint8, sndcgan  # noqa: E402

PARTS = ("steps", "fid", "torchrun", "training")
STEP_ARCHS = ("resnet_cifar", "sndcgan", "biggan128")
VARIANTS = {"fp32": [], "tf32": ["train.precision=tf32"], "bf16": ["train.precision=bf16"],
            "bf16 + compile": ["train.precision=bf16", "train.compile=inductor"]}
GOALS = {"resnet_cifar_steps_per_s": 50.0, "fid_seconds": 5.0, "fid_tf32_relative_deviation": 1e-3}
TRAINING_SECONDS = 180.0


class Sizes:
    """Everything ``--tiny`` shrinks, in one place."""

    def __init__(self, tiny: bool):
        self.tiny = tiny
        self.batch = 2 if tiny else 64
        self.steps, self.repeats = (1, 1) if tiny else (10, 3)
        self.widths = ["g.width=8", "d.width=8"] if tiny else []  # BigGAN keeps its resolution and attention
        self.compiler = "aot_eager" if tiny else "inductor"
        self.fid_samples = 16 if tiny else 50_000
        self.fid_batch = 16 if tiny else 500
        self.eval_samples = 16 if tiny else 10_000
        self.torchrun_steps = 2 if tiny else 200

    def variants(self, arch: str) -> list[str]:
        """The step variants timed for ``arch``: all; at toy sizes the compiled one for the first architecture only
        (compiling BigGAN takes half a minute even at toy sizes on a CPU)."""
        return [name for name in VARIANTS if not self.tiny or arch == STEP_ARCHS[0] or "compile" not in name]


def variant_overrides(name: str, sizes: Sizes) -> list[str]:
    return [item.replace("=inductor", f"={sizes.compiler}") for item in VARIANTS[name]]


def step_speeds(device: torch.device, sizes: Sizes) -> list[dict]:
    """Part 1: G steps per second, peak memory and the ratio to the plain step, per architecture and variant."""
    rows = []
    for arch in STEP_ARCHS:
        size, overrides = ARCHS[arch]
        base = overrides + sizes.widths + [f"train.batch_size={sizes.batch}", "data.name=stacked_digits",
                                           f"data.resolution={size}", f"train.device={device}"]
        _, state, cfg, data = ganscape_step(base, device)
        plain_seconds, plain_peak = time_steps(plain_step(state.G, state.D, cfg, data, device, cfg.data.conditional),
                                               device, sizes.steps, sizes.repeats)
        rows.append(_step_row(arch, "plain PyTorch (fp32)", plain_seconds, plain_peak, plain_seconds))
        for name in sizes.variants(arch):
            extra = variant_overrides(name, sizes)
            with precision_flags(load_config(None, extra).train.precision):  # as `ganscape train` sets them
                seconds, peak = time_steps(ganscape_step(base + extra, device)[0], device, sizes.steps,
                                           sizes.repeats)
            rows.append(_step_row(arch, f"ganscape {name}", seconds, peak, plain_seconds))
    return rows


def _step_row(arch: str, step: str, seconds: float, peak: float, plain_seconds: float) -> dict:
    return {"arch": arch, "step": step, "g_steps_per_s": 1.0 / seconds,
            "peak_mib": None if peak != peak else peak / 2**20, "x_plain": plain_seconds / seconds}


def fid_timing(device: torch.device, sizes: Sizes, weights: Path) -> dict:
    """Part 2: the seconds of an n-vs-n FID with the Inception pass in fp32 and in TF32, and TF32's deviation."""
    n, batch = sizes.fid_samples, sizes.fid_batch
    G = sndcgan(seed=0, device=device)
    reference = generate_uint8(sndcgan(seed=1, device=device), n, batch, seed=1, device=device).cpu()
    with tempfile.TemporaryDirectory() as cache:
        evaluator = Evaluator(["fid"], InMemoryImages(reference, name="sndcgan-seed1"),
                              DataConfig(name="image_folder", root="", split="train", resolution=32),
                              latent_dim=LATENT_DIM, num_samples=n, num_reference=n,
                              settings=MetricsConfig(inception_weights=str(weights), batch_size=batch, cache_dir=cache),
                              seed=0, device=device)
        evaluator.reference_features()  # kept by the evaluator, as during training: only G's side is timed
        result = {"samples": n, "reference": n, "batch_size": batch}
        for precision in ("fp32", "tf32"):
            evaluator(G)  # warm-up: kernels chosen, memory allocated
            with precision_flags(precision):
                synchronize(device)
                tic = time.perf_counter()
                fid = evaluator(G)["fid"]
                synchronize(device)
            result[precision] = {"seconds": time.perf_counter() - tic, "fid": fid}
    result["tf32_relative_deviation"] = abs(result["tf32"]["fid"] - result["fp32"]["fid"]) / result["fp32"]["fid"]
    return result


def torchrun_check(device: torch.device, sizes: Sizes, folder: Path) -> dict:
    """Part 3: one ``ganscape train`` process under torchrun with sync_bn on device-resident data."""
    steps = sizes.torchrun_steps
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m",
               "ganscape", "train", "digits_sndcgan", f"train.steps={steps}", "train.sync_bn=true",
               f"train.device={device.type}", f"log.every={max(1, steps // 4)}", "log.samples_every=0",
               "log.tensorboard=false", f"eval.every={steps * 10}", f"checkpoint.every={steps}",
               f"run.root={folder}", "run.name=torchrun", *sizes.widths]
    tic = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    shown = ["torchrun", *(item for item in command[3:] if not item.startswith("run."))]
    result = {"command": " ".join(shown), "returncode": done.returncode, "seconds": time.perf_counter() - tic,
              "backend": "nccl" if device.type == "cuda" else "gloo"}
    if done.returncode:
        result["error"] = done.stderr[-2000:]
        return result
    rows = read_metrics(RunDir(folder / "torchrun"))
    result["steps"] = max(row["step"] for row in rows)
    result["steps_per_s"] = next((row["steps_per_s"] for row in reversed(rows) if "steps_per_s" in row), None)
    return result


def short_training(device: torch.device, sizes: Sizes, folder: Path, steps_per_s: float | None, train_zip: str,
                   test_zip: str) -> dict:
    """Part 4: SNDCGAN on CIFAR-10 in bf16 for about three minutes, then FID-10k against the test set."""
    # Part 1 times SNDCGAN with 5 D steps per G step, the preset takes 1: about a third of the work per step.
    steps = 2 if sizes.tiny else max(100, int(TRAINING_SECONDS * 3 * (steps_per_s or 10.0)))
    if sizes.tiny:
        data = ["data.name=stacked_digits", "data.resolution=32", "eval.ref_root=", "eval.ref=test"]
    else:
        missing = [path for path in (train_zip, test_zip) if not Path(path).exists()]
        if missing:
            return {"skipped": f"CIFAR-10 not found at {', '.join(missing)}: give --cifar-train and --cifar-test "
                               "(zips of class folders of JPEG files, see the cifar10_jpeg_sndcgan preset)"}
        data = [f"data.root={train_zip}", f"eval.ref_root={test_zip}"]
    overrides = [*data, *sizes.widths, "train.precision=bf16", f"train.device={device}", f"train.steps={steps}",
                 f"eval.every={steps}", "eval.metrics=[fid]", f"eval.samples={sizes.eval_samples}",
                 f"eval.ref_samples={sizes.eval_samples}", "eval.raw=false", f"checkpoint.every={steps}",
                 "log.samples_every=0", "log.tensorboard=false", f"run.root={folder}", "run.name=training",
                 *(["train.batch_size=4", "log.every=1"] if sizes.tiny else [])]
    import ganscape

    tic = time.perf_counter()
    result = ganscape.train("cifar10_jpeg_sndcgan", overrides, progress=False)
    seconds = time.perf_counter() - tic
    fid = next(row["eval/fid"] for row in reversed(read_metrics(result.run)) if "eval/fid" in row)
    return {"steps": steps, "seconds": seconds, "fid": fid, "samples": sizes.eval_samples,
            "overrides": " ".join(overrides)}


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _steps_section(rows: list[dict]) -> list[str]:
    lines = ["## Training steps", "", "| arch | step | G steps/s | peak MiB | x plain |", "|---|---|---|---|---|"]
    for row in rows:
        peak = "n/a" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
        lines.append(f"| {row['arch']} | {row['step']} | {row['g_steps_per_s']:.2f} | {peak} "
                     f"| {row['x_plain']:.2f} |")
    best = max(row["g_steps_per_s"] for row in rows
               if row["arch"] == "resnet_cifar" and row["step"].startswith("ganscape"))
    goal = GOALS["resnet_cifar_steps_per_s"]
    return lines + ["", f"ResNet-CIFAR, fastest ganscape step: {best:.1f} G-steps/s (goal {goal:g}: "
                        f"{_met(best >= goal)}).", ""]


def _fid_section(fid: dict) -> list[str]:
    fast = min(fid["fp32"]["seconds"], fid["tf32"]["seconds"])
    deviation = fid["tf32_relative_deviation"]
    return (["## FID", "", f"{fid['samples']:,} generated vs {fid['reference']:,} reference images, batch "
             f"{fid['batch_size']}.", "", "| Inception pass | seconds | FID |", "|---|---|---|"]
            + [f"| {p} | {fid[p]['seconds']:.2f} | {fid[p]['fid']:.4f} |" for p in ("fp32", "tf32")]
            + ["", f"TF32 deviates from fp32 by {deviation:.2e} (goal {GOALS['fid_tf32_relative_deviation']:g}: "
               f"{_met(deviation <= GOALS['fid_tf32_relative_deviation'])}); the faster pass took {fast:.2f} s (goal "
               f"{GOALS['fid_seconds']:g} s: {_met(fast <= GOALS['fid_seconds'])}).", ""])


def _torchrun_section(run: dict) -> list[str]:
    state = "ran" if run["returncode"] == 0 else f"failed (exit status {run['returncode']})"
    speed = f", {run['steps_per_s']:.2f} steps/s" if run.get("steps_per_s") else ""
    return ["## torchrun", "", f"`{run['command']}` ({run['backend']}): {state} in {run['seconds']:.1f} s{speed}.", ""]


def _training_section(train: dict) -> list[str]:
    if "skipped" in train:
        return ["## Short training", "", f"Left out: {train['skipped']}.", ""]
    return ["## Short training", "", f"SNDCGAN, bf16, {train['steps']} steps in {train['seconds']:.0f} s: FID "
            f"{train['fid']:.2f} with {train['samples']:,} samples against the test set.", ""]


SECTIONS = {"steps": _steps_section, "fid": _fid_section, "torchrun": _torchrun_section, "training": _training_section}


def markdown(results: dict) -> str:
    """gpu_check.md: the device, then each part that ran as a table or a line, with its goal."""
    sizes = "toy sizes (the numbers mean nothing)" if results["tiny"] else "full sizes"
    lines = [f"# GPU check: {results['device']}", "", f"PyTorch {results['torch']}, ganscape {results['ganscape']}, "
             f"{sizes}.", ""]
    for part, section in SECTIONS.items():
        if part in results:
            lines += section(results[part])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the code paths, measures nothing")
    parser.add_argument("--out", default="gpu_check", help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--weights", default="", help="FID Inception weights (default: the one ganscape picks)")
    parser.add_argument("--cifar-train", default="data/cifar10-train.zip")
    parser.add_argument("--cifar-test", default="data/cifar10-test.zip")
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; valid: {', '.join(PARTS)}")
    warnings.simplefilter("ignore", ConfigWarning)
    device, sizes, out = torch.device(args.device), Sizes(args.tiny), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import ganscape

    hardware = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"cpu ({torch.get_num_threads()} threads)")
    results = {"device": hardware, "torch": torch.__version__, "ganscape": ganscape.__version__, "tiny": args.tiny,
               "goals": GOALS}
    if "steps" in parts:
        results["steps"] = step_speeds(device, sizes)
    if "fid" in parts:
        weights = inception_weights_path(args.weights or None)
        results["fid"] = fid_timing(device, sizes, weights) | {"weights_sha256": file_sha256(weights)}
    with tempfile.TemporaryDirectory() as runs:
        if "torchrun" in parts:
            results["torchrun"] = torchrun_check(device, sizes, Path(runs))
        if "training" in parts:
            sndcgan_bf16 = next((r["g_steps_per_s"] for r in results.get("steps", [])
                                 if r["arch"] == "sndcgan" and r["step"] == "ganscape bf16"), None)
            results["training"] = short_training(device, sizes, Path(runs), sndcgan_bf16, args.cifar_train,
                                                 args.cifar_test)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if results.get("torchrun", {}).get("returncode", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
