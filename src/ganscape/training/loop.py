"""The training loop: ``train`` runs ``train_step`` and does the bookkeeping around it.

At each step, in this order: the step; its losses checked; at intervals the log (and a check of the
whole state), an atomic checkpoint, sample pictures and the evaluation. The checkpoint comes first,
so a failing picture or evaluation never costs it; such a failure is reported and training goes on.
The run stops on a non-finite value with a diagnosis, and after the current step on Ctrl-C. The
algorithm of a step is in ``training.step``, the state it updates in ``training.state``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager

import torch
from tqdm import tqdm

from ganscape.config import Experiment
from ganscape.data import build_dataset
from ganscape.data.base import is_image_data
from ganscape.data.images import LazyImages
from ganscape.data.prefetch import Prefetching
from ganscape.errors import ConfigError, GanscapeWarning
from ganscape.metrics import VALUES
from ganscape.metrics.evaluate import Evaluator, write_result
from ganscape.objectives.objective import Objective
from ganscape.training.best import BestScores
from ganscape.training.distributed import SINGLE, Processes, any_process, broadcast
from ganscape.training.divergence import LossMonitor, check_state
from ganscape.training.run import MetricsLog, RunDir, read_metrics
from ganscape.training.sampling import save_samples
from ganscape.training.snapshots import resume_state, save_state
from ganscape.training.speed import precision_flags
from ganscape.training.state import GANState, build_state, derived_seed, resolve_device, resolve_threads
from ganscape.training.step import train_step


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


@contextmanager
def cpu_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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


def attempt(what: str, step: int, action):
    """Run ``action``; report a failure as a warning instead of stopping training (its checkpoint is written)."""
    try:
        return action()
    except Exception as err:  # noqa: BLE001 - any failure of a picture or an evaluation is reported, not fatal
        warnings.warn(f"{what} at step {step} failed and was skipped: {type(err).__name__}: {err}",
                      GanscapeWarning, stacklevel=2)
        return None


def catch_up(state: GANState, data, evaluator: Evaluator | None, cfg: Experiment, run: RunDir, log: MetricsLog,
             best: BestScores) -> None:
    """The picture and evaluation due at the step a run resumes from, when they are missing: a run killed
    after a checkpoint but before them gets them now, so its log equals that of a run never killed."""
    step = state.step
    if cfg.log.samples_every and step % cfg.log.samples_every == 0 and not (run.samples / f"step_{step:08d}.png").exists():
        attempt("the sample picture", step, lambda: save_samples(state, data, cfg, run, log))
    evaluated = any(row["step"] == step and any(k.startswith("eval/") for k in row) for row in read_metrics(run))
    if evaluator is not None and step % cfg.eval.every == 0 and not evaluated:
        evaluation = attempt("the evaluation", step, lambda: evaluate(state, evaluator, cfg, run))
        if evaluation is not None:
            log.write(step, evaluation | best.update(evaluation, step))


def train(cfg: Experiment, run: RunDir, resume: bool = False, until: int | None = None,
          progress: bool | None = None, from_step: int | None = None, on_evaluation=None,
          processes: Processes = SINGLE, device: str | None = None) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run`` up to ``cfg.train.steps``.

    ``until`` stops earlier, at that step, with a checkpoint; ``resume`` continues later, from the
    newest checkpoint or from ``from_step``. ``progress``: True shows a progress bar, False prints
    nothing, None (default) shows the bar on a terminal and a plain line every ``log.every`` steps
    otherwise. ``on_evaluation(step, results)`` is called after each evaluation, and stops the run
    when it returns True (a study's pruning). The run's lock is held throughout. Returns a summary
    with the final step, whether Ctrl-C or ``on_evaluation`` stopped it (``stopped``), the last
    evaluation (``results``), the best evaluations (``best``: value and step of each ranked value) and
    the wall time.

    Under torchrun every process calls this with its ``processes`` and ``device`` (see
    ``training.distributed``); process 0 alone holds the lock and writes the run directory.
    """
    if processes.main:
        run.acquire()
    try:
        with cpu_threads(resolve_threads(cfg)), precision_flags(cfg.train.precision):
            return _train(cfg, run, resume, until, progress, from_step, on_evaluation, processes, device)
    finally:
        run.release()


def _train(cfg: Experiment, run: RunDir, resume: bool, until: int | None, progress: bool | None,
           from_step: int | None, on_evaluation, processes: Processes, device_name: str | None) -> dict:
    start_time = time.perf_counter()
    main = processes.main
    device = resolve_device(device_name or cfg.train.device)
    data = build_dataset(cfg)
    check_data(cfg, data)
    if isinstance(data, LazyImages):  # decoded per batch: the next batch is decoded during the step
        data = Prefetching(data, pin_memory=device.type == "cuda")
    elif device.type != "cpu" and hasattr(data, "to_device"):  # in-memory images: batches made on the device
        data.to_device(device)
    objective = Objective.from_config(cfg)
    state = build_state(cfg, data, device, processes)
    show_bar = main and (sys.stderr.isatty() if progress is None else progress)
    evaluator = (Evaluator.from_config(cfg, data, derived_seed(cfg.train.seed, "eval"), device, progress=show_bar)
                 if main else None)
    if cfg.checkpoint.keep_best and main:
        check_keep_best(cfg.checkpoint.keep_best, evaluator.metrics if evaluator else [])
    if resume:
        resume_state(state, run, from_step, move_newer=main)
    last = min(until, cfg.train.steps) if until is not None else cfg.train.steps
    log = MetricsLog(run, cfg.log.tensorboard, start_step=state.step) if main else None
    best = BestScores.from_log(read_metrics(run))
    if resume and main:
        catch_up(state, data, evaluator, cfg, run, log, best)
    print_lines = main and progress is None and not show_bar
    evaluates = broadcast(evaluator is not None, processes)  # every process checkpoints where process 0 evaluates
    bar = tqdm(total=last, initial=state.step, desc="train", unit="step", dynamic_ncols=True, disable=not show_bar)
    results: dict[str, float] = {}
    step_time, steps_timed, checked = 0.0, 0, state.step
    stopped = False
    monitor = LossMonitor()
    try:
        with stop_requests() as requested:
            while state.step < last:
                tic = time.perf_counter()
                monitor.record(state.step + 1, train_step(state, data, objective, cfg))
                step_time += time.perf_counter() - tic
                steps_timed += 1
                step = state.step
                if processes.many:  # every process must stop at the same step: they agree at log steps
                    stopped = due(step, cfg.log.every, last) and any_process(requested["stop"], processes)
                else:
                    stopped = requested["stop"]
                end = last if not stopped else step
                bar.update(1)
                evaluating = evaluates and due(step, cfg.eval.every, end)
                checkpointing = due(step, cfg.checkpoint.every, end) or (evaluating and bool(cfg.checkpoint.keep_best))
                evaluating = evaluating and main
                picturing = main and bool(cfg.log.samples_every) and due(step, cfg.log.samples_every, end)
                logging = due(step, cfg.log.every, end)
                if not (logging or checkpointing or (main and (evaluating or picturing))):
                    continue
                tic = time.perf_counter()
                values = monitor.read(state, run.checkpoints, processes)  # waits for the device: steps' time
                step_time += time.perf_counter() - tic
                if logging:
                    check_state(state, run.checkpoints, checked)
                    checked = step
                    values["steps_per_s"] = steps_timed / max(step_time, 1e-9)
                    step_time, steps_timed = 0.0, 0
                    if main:
                        log.write(step, values)
                        bar.set_postfix(d_loss=f"{values['d_loss']:.3f}", g_loss=f"{values['g_loss']:.3f}")
                    if print_lines:
                        print(f"step {step}/{last}  d_loss {values['d_loss']:.4f}  g_loss {values['g_loss']:.4f}"
                              f"  {values['steps_per_s']:.3g} steps/s", flush=True)
                if checkpointing:
                    save_state(state, cfg, run, best, checked, processes)
                    checked = step
                if picturing:
                    attempt("the sample picture", step, lambda: save_samples(state, data, cfg, run, log))
                if evaluating:
                    evaluation = attempt("the evaluation", step, lambda: evaluate(state, evaluator, cfg, run))
                    if evaluation is not None:
                        results = evaluation
                        log.write(step, results | best.update(results, step))
                        if on_evaluation is not None and step < last and on_evaluation(step, results):
                            stopped = True
                if stopped:
                    break
    finally:
        bar.close()
        if log is not None:
            log.close()
    return {"step": state.step, "steps": cfg.train.steps, "run_dir": str(run), "stopped": stopped,
            "results": results, "best": dict(best.best), "wall_time_s": time.perf_counter() - start_time}
