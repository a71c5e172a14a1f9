"""The training loop: ``train`` runs ``train_step`` and does the bookkeeping around it.

At intervals it logs, evaluates, draws sample pictures and writes atomic checkpoints; it stops on a
non-finite loss or parameter with a diagnosis, and after the current step on Ctrl-C. The algorithm of
a step is in ``training.step``, the state it updates in ``training.state``.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from ganscape.config import Experiment
from ganscape.data import build_dataset
from ganscape.data.base import is_image_data
from ganscape.errors import CheckpointError, ConfigError, DivergenceError
from ganscape.metrics import VALUES
from ganscape.metrics.evaluate import Evaluator, write_result
from ganscape.objectives.objective import Objective
from ganscape.training.best import BestScores
from ganscape.training.checkpoint import checkpoint_name, load_checkpoint, prune_checkpoints, \
    remove_stale_temporaries, save_checkpoint
from ganscape.training.run import MetricsLog, RunDir, read_metrics
from ganscape.training.sampling import save_samples
from ganscape.training.state import GANState, build_state, derived_seed, resolve_device
from ganscape.training.step import train_step


def nonfinite_parameters(state: GANState) -> list[str]:
    bad = []
    for prefix, module in (("G", state.G), ("D", state.D)):
        bad += [f"{prefix}.{name}" for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    return bad


def check_finite(values: dict[str, float], state: GANState, run: RunDir) -> None:
    """Stop with a diagnosis when a loss or parameter is NaN or infinite."""
    bad_values = [f"{k} = {v}" for k, v in values.items() if not math.isfinite(v)]
    if not bad_values:
        return
    params = nonfinite_parameters(state)
    shown = ", ".join(params[:5]) + (f" and {len(params) - 5} more" if len(params) > 5 else "")
    try:
        last_step, last = run.latest_checkpoint()
        kept = f"The last good checkpoint is {last} (step {last_step}); it was not touched."
    except CheckpointError:
        kept = "No checkpoint had been written yet."
    raise DivergenceError(
        f"training diverged at step {state.step}: {', '.join(bad_values)}"
        + (f"; non-finite parameters: {shown}" if params else "") + f". {kept} "
        "Try a lower learning rate (g_opt.lr, d_opt.lr), a different loss, or more discriminator "
        "regularization, then start again or resume from the checkpoint.")


def evaluate(state: GANState, evaluator: Evaluator, cfg: Experiment, run: RunDir) -> dict[str, float]:
    """Metrics of the sampling generator (``eval/...``) and, when an EMA is kept, of the raw one
    (``eval_raw/...``); each result is also written with its protocol to ``eval/step_N[_raw].json``."""
    raw = state.ema is not None
    generators = {"eval": (state.sampler, False)} | ({"eval_raw": (state.G, True)} if raw and cfg.eval.raw else {})
    results = {}
    for prefix, (G, is_raw) in generators.items():
        tic = time.perf_counter()
        values = evaluator(G)
        protocol = evaluator.protocol() | {"generator": "raw" if is_raw or not raw else "ema",
                                           "seconds": time.perf_counter() - tic}
        write_result(run.eval_result(state.step, is_raw), {"step": state.step, "values": values, "protocol": protocol})
        results |= {f"{prefix}/{k}": v for k, v in values.items()}
    return results


def save_state(state: GANState, cfg: Experiment, run: RunDir, best: BestScores) -> Path:
    """Checkpoint the state atomically, then prune old checkpoints (never the best one, with keep_best)."""
    bad = nonfinite_parameters(state)
    if bad:  # never let a broken state replace a good checkpoint
        raise DivergenceError(f"refusing to checkpoint step {state.step}: non-finite parameters {bad[:5]}.")
    remove_stale_temporaries(run.checkpoints)
    path = save_checkpoint(run.checkpoints / checkpoint_name(state.step), state.state_dict())
    best_step = best.step_of(f"eval/{cfg.checkpoint.keep_best}") if cfg.checkpoint.keep_best else None
    prune_checkpoints(run.checkpoints, cfg.checkpoint.keep, frozenset() if best_step is None else {best_step})
    return path


@contextmanager
def stop_requests():
    """Turn the first Ctrl-C into a request to stop after the current step (with a checkpoint)."""
    requested = {"stop": False}
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield requested
        return

    def handler(signum, frame):
        if requested["stop"]:
            raise KeyboardInterrupt
        requested["stop"] = True
        print("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def due(step: int, every: int, last: int) -> bool:
    return step % every == 0 or step == last


def check_data(cfg: Experiment, data) -> None:
    """Settings that depend on what the data are."""
    if cfg.penalty.pixel_scale == "unit" and not is_image_data(data):
        raise ConfigError(f"penalty.pixel_scale=unit measures gradient penalties on images in [0, 1]; "
                          f"{cfg.data.name} is not image data. Use penalty.pixel_scale=data.")


def check_keep_best(value: str, metrics: list[str]) -> None:
    if not any(value in VALUES[m] for m in metrics):
        needed = [m for m, values in VALUES.items() if value in values]
        raise ConfigError(f"checkpoint.keep_best={value} keeps the checkpoint with the best {value}, which no "
                          f"evaluation of this run computes (metrics: {', '.join(metrics) or 'none'}); add "
                          f"{needed[0]} to eval.metrics.")


def train(cfg: Experiment, run: RunDir, resume: bool = False, until: int | None = None,
          progress: bool | None = None) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run`` up to ``cfg.train.steps``.

    ``until`` stops earlier, at that step, with a checkpoint; ``resume`` continues later.
    ``progress``: True shows a progress bar, False prints nothing, None (default) shows the bar on a
    terminal and a plain line every ``log.every`` steps otherwise. Returns a summary with the final
    step, the last evaluation (``results``), the best evaluations (``best``: value and step of each
    ranked value) and the wall time.
    """
    start_time = time.perf_counter()
    device = resolve_device(cfg.train.device)
    data = build_dataset(cfg)
    check_data(cfg, data)
    objective = Objective.from_config(cfg)
    state = build_state(cfg, data, device)
    show_bar = sys.stderr.isatty() if progress is None else progress
    evaluator = Evaluator.from_config(cfg, data, derived_seed(cfg.train.seed, "eval"), device, progress=show_bar)
    if cfg.checkpoint.keep_best:
        check_keep_best(cfg.checkpoint.keep_best, evaluator.metrics if evaluator else [])
    if resume:
        step, path = run.latest_checkpoint()
        try:
            state.load_state_dict(load_checkpoint(path))
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    last = min(until, cfg.train.steps) if until is not None else cfg.train.steps
    log = MetricsLog(run, cfg.log.tensorboard, start_step=state.step)
    best = BestScores.from_log(read_metrics(run))
    print_lines = progress is None and not show_bar
    bar = tqdm(total=last, initial=state.step, desc="train", unit="step", dynamic_ncols=True, disable=not show_bar)
    results: dict[str, float] = {}
    step_time, steps_timed = 0.0, 0
    try:
        with stop_requests() as requested:
            while state.step < last:
                tic = time.perf_counter()
                stats = train_step(state, data, objective, cfg)
                values = dict(zip(stats, torch.stack(list(stats.values())).tolist()))
                step_time += time.perf_counter() - tic
                steps_timed += 1
                check_finite(values, state, run)
                step = state.step
                stopping = requested["stop"]
                end = last if not stopping else step
                bar.update(1)
                if due(step, cfg.log.every, end):
                    values["steps_per_s"] = steps_timed / max(step_time, 1e-9)
                    step_time, steps_timed = 0.0, 0
                    log.write(step, values)
                    bar.set_postfix(d_loss=f"{values['d_loss']:.3f}", g_loss=f"{values['g_loss']:.3f}")
                    if print_lines:
                        print(f"step {step}/{last}  d_loss {values['d_loss']:.4f}  g_loss {values['g_loss']:.4f}"
                              f"  {values['steps_per_s']:.0f} steps/s", flush=True)
                evaluating = evaluator is not None and due(step, cfg.eval.every, end)
                if evaluating:
                    results = evaluate(state, evaluator, cfg, run)
                    log.write(step, results | best.update(results, step))
                if cfg.log.samples_every and due(step, cfg.log.samples_every, end):
                    save_samples(state, data, cfg, run, log)
                if due(step, cfg.checkpoint.every, end) or (evaluating and cfg.checkpoint.keep_best):
                    save_state(state, cfg, run, best)
                if stopping:
                    break
    finally:
        bar.close()
        log.close()
    return {"step": state.step, "steps": cfg.train.steps, "run_dir": str(run), "results": results,
            "best": dict(best.best), "wall_time_s": time.perf_counter() - start_time}
