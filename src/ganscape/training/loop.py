"""The training loop: ``train`` runs ``train_step`` and does the bookkeeping around it.

At each step, in this order: the step; its losses checked; at intervals the log (and a check of the
whole state), an atomic checkpoint, sample pictures and the evaluation. The checkpoint comes first,
so a failing picture or evaluation never costs it; such a failure is reported and training goes on,
except on a full disk, which stops the run (``resume`` makes the picture or evaluation again: their
files are written atomically, so none is left cut short). The run stops on a non-finite value with a
diagnosis, and after the current step on Ctrl-C or when the reader of its output goes away (``| head``),
with a checkpoint; Ctrl-C during an evaluation abandons it (``resume`` does it again). The
algorithm of a step is in ``training.step``, the state it updates in ``training.state``.
"""

from __future__ import annotations

import errno
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
from ganscape.errors import ConfigError, DivergenceError, GanscapeWarning, silence_stdout
from ganscape.metrics import VALUES
from ganscape.metrics.evaluate import Evaluator, evaluate_and_write
from ganscape.objectives.objective import Objective
from ganscape.store.rundir import MetricsLog, RunDir, read_metrics
from ganscape.training.best import BestScores
from ganscape.training.collapse import CollapseDetector
from ganscape.training.convergence import ConvergenceProbe
from ganscape.training.d_input_pictures import save_augmented_reals, save_p_curve
from ganscape.training.distributed import SINGLE, Processes, any_process, broadcast
from ganscape.training.divergence import LossMonitor, check_state
from ganscape.training.sampling import save_samples
from ganscape.training.snapshots import resume_state, save_state
from ganscape.training.spectra import SpectraMonitor
from ganscape.training.speed import precision_flags
from ganscape.training.state import GANState, build_state, derived_seed, resolve_device, resolve_threads
from ganscape.training.step import train_step
from ganscape.training.work import WorkCounter, in_g_updates


def evaluate(state: GANState, evaluator: Evaluator, cfg: Experiment, run: RunDir) -> dict[str, float]:
    """Metrics of the sampling generator (``eval/...``) and, when an EMA is kept, of the raw one
    (``eval_raw/...``); each result is also written with its protocol to ``eval/step_N[_raw].json``."""
    raw = state.ema is not None
    generators = {"eval": (state.sampler, False)} | ({"eval_raw": (state.G, True)} if raw and cfg.eval.raw else {})
    results = {}
    for prefix, (G, is_raw) in generators.items():
        values, *_ = evaluate_and_write(evaluator, G, state.step, "raw" if is_raw or not raw else "ema",
                                        run.eval_result(state.step, is_raw))
        results |= {f"{prefix}/{k}": v for k, v in values.items()}
    return results


class EvaluationAbandoned(KeyboardInterrupt):
    """Ctrl-C during an evaluation: it is dropped unfinished, and ``resume`` does it again."""


class StopRequests:
    """Requests to stop training early: by Ctrl-C, or by the reader of the output going away (``| head``).

    The first Ctrl-C asks to stop after the current step, with a checkpoint; during an evaluation that
    may be abandoned (see ``abandoning``) it abandons it at once. A second Ctrl-C aborts, saying how to
    continue from the last checkpoint.
    """

    def __init__(self, run: RunDir):
        self.run = run
        self.stop = False
        self.output_closed = False
        self.abandonable = False

    def interrupt(self, signum, frame) -> None:
        if self.stop:
            print(f"\naborting; continue from the last checkpoint with: ganscape resume {self.run}", file=sys.stderr)
            raise KeyboardInterrupt
        self.stop = True
        if self.abandonable:
            print(f"\nstopping: this evaluation is abandoned ('ganscape resume {self.run}' does it again; "
                  "Ctrl-C again to abort)", file=sys.stderr)
            raise EvaluationAbandoned
        print("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    @contextmanager
    def abandoning(self, allowed: bool):
        """Within: Ctrl-C abandons the work at once, where ``allowed``."""
        self.abandonable = allowed
        try:
            yield
        finally:
            self.abandonable = False

    def say(self, line: str) -> None:
        """Print a progress line; once its reader has gone, ask to stop (with a checkpoint, as Ctrl-C does)
        instead of dying without one, and print nothing more."""
        if self.output_closed:
            return
        try:
            print(line, flush=True)
        except BrokenPipeError:
            silence_stdout()
            self.output_closed = self.stop = True


@contextmanager
def stop_requests(run: RunDir):
    """``StopRequests`` that Ctrl-C (SIGINT) feeds while training."""
    requests = StopRequests(run)
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield requests
        return
    previous = signal.signal(signal.SIGINT, requests.interrupt)
    try:
        yield requests
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


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def attempt(what: str, step: int, action):
    """Run ``action``; report a failure as a warning instead of stopping training (its checkpoint is written).

    A full disk stops the run as it does at a checkpoint: ``resume`` then makes the picture or evaluation
    again (at the step it resumes from, or when it trains through that step again).
    """
    try:
        return action()
    except Exception as err:  # noqa: BLE001 - any failure of a picture or an evaluation is reported, not fatal
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            raise
        warnings.warn(f"{what} at step {step} failed and was skipped: {type(err).__name__}: {err}",
                      GanscapeWarning, stacklevel=2)
        return None


def evaluation_unless_stopped(state: GANState, evaluator: Evaluator, cfg: Experiment, run: RunDir,
                              requests: StopRequests, abandonable: bool) -> dict[str, float] | None:
    """The evaluation at this step; None when it failed (reported), or, where ``abandonable``, when a stop was
    requested before or during it: a multi-minute FID is not started, or not finished, after Ctrl-C."""
    if abandonable and requests.stop:
        return None
    try:
        with requests.abandoning(abandonable):
            return attempt("the evaluation", state.step, lambda: evaluate(state, evaluator, cfg, run))
    except EvaluationAbandoned:
        return None


def catch_up(state: GANState, data, evaluator: Evaluator | None, cfg: Experiment, run: RunDir, log: MetricsLog,
             best: BestScores, requests: StopRequests, abandonable: bool) -> None:
    """The picture and evaluation due at the step a run resumes from, when they are missing: a run killed
    (or stopped by a full disk or Ctrl-C) after a checkpoint but before them gets them now, so its log
    equals that of a run never stopped."""
    step = state.step
    if cfg.log.samples_every and step % cfg.log.samples_every == 0 and not run.sample_picture(step).exists():
        attempt("the sample picture", step, lambda: save_samples(state, data, cfg, run, log))
    evaluated = any(row["step"] == step and any(k.startswith("eval/") for k in row) for row in read_metrics(run))
    if evaluator is not None and step % cfg.eval.every == 0 and not evaluated:
        evaluation = evaluation_unless_stopped(state, evaluator, cfg, run, requests, abandonable)
        if evaluation is not None:
            log.write(step, evaluation | best.update(evaluation, step))


def train(cfg: Experiment, run: RunDir, resume: bool = False, until: int | None = None,
          progress: bool | None = None, from_step: int | None = None, on_evaluation=None,
          processes: Processes = SINGLE, device: str | None = None) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run`` up to ``cfg.train.steps``.

    The steps and intervals are those of ``in_g_updates(cfg)`` (``train.unit: d`` counts them in D updates);
    checkpoints store ``cfg`` as given. ``until`` stops earlier, at that step (in steps, as checkpoints are
    numbered), with a checkpoint; ``resume`` continues later, from the
    newest checkpoint or from ``from_step``. ``progress``: True shows a progress bar, False prints
    nothing, None (default) shows the bar on a terminal and a plain line every ``log.every`` steps
    otherwise. ``on_evaluation(step, results)`` is called after each evaluation, and stops the run
    when it returns True (a study's pruning). The run's lock is held throughout. Returns a summary
    with the final step, whether Ctrl-C or ``on_evaluation`` stopped it (``stopped``), the last
    evaluation (``results``), the best evaluations (``best``: value and step of each ranked value), the work
    done (``g_updates``, ``d_updates``, ``gflops``: see ``training.work``; None when not counted) and the wall
    time. Its ``steps`` is the run's length in steps (generator updates) whatever ``train.unit`` is.

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
    written, cfg = cfg, in_g_updates(cfg)  # checkpoints keep the config as written; the loop counts in steps
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
    convergence = ConvergenceProbe.for_run(cfg, data, state) if cfg.log.convergence else None  # after the resume
    spectra = SpectraMonitor.for_run(cfg, state) if cfg.log.spectra_every and main else None  # process 0 logs
    last = min(until, cfg.train.steps) if until is not None else cfg.train.steps
    log = MetricsLog(run, cfg.log.tensorboard, start_step=state.step) if main else None
    rows = read_metrics(run)
    best = BestScores.from_log(rows)
    collapse = (CollapseDetector.for_run(cfg, evaluator.metrics if evaluator else [], rows) if main
                else CollapseDetector())  # process 0 reads the log
    print_lines = main and progress is None and not show_bar
    evaluates = broadcast(evaluator is not None, processes)  # every process checkpoints where process 0 evaluates
    bar = tqdm(total=last, initial=state.step, desc="train", unit="step", dynamic_ncols=True, disable=not show_bar)
    results: dict[str, float] = {}
    step_time, steps_timed, checked = 0.0, 0, state.step
    stopped = False
    monitor = LossMonitor()
    work = WorkCounter.for_run(cfg, processes.many)
    try:
        with stop_requests(run) as requests:
            if main and state.step == 0 and state.d_input.active and is_image_data(data):  # what D sees
                attempt("the augmented reals picture", 0, lambda: save_augmented_reals(
                    state.d_input, data, derived_seed(cfg.train.seed, "augmented-reals"), run.augmented_reals_picture))
            if resume and main:  # under torchrun the others wait for process 0 at the first step: not abandoned
                catch_up(state, data, evaluator, cfg, run, log, best, requests, abandonable=not processes.many)
            stopped = requests.stop and not processes.many  # Ctrl-C during the catch-up: no training now
            while state.step < last and not stopped:
                tic = time.perf_counter()
                monitor.record(state.step + 1, work.run(lambda: train_step(state, data, objective, cfg)))
                step_time += time.perf_counter() - tic
                steps_timed += 1
                step = state.step
                if processes.many:  # every process must stop at the same step: they agree at log steps
                    stopped = due(step, cfg.log.every, last) and any_process(requests.stop or collapse.stopping,
                                                                             processes)
                else:
                    stopped = requests.stop or collapse.stopping
                end = last if not stopped else step
                bar.update(1)
                evaluating = evaluates and due(step, cfg.eval.every, last) and not stopped  # then resume does it
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
                    values |= state.d_input.logged()  # ADA's p, a number on the host
                    values["steps_per_s"] = steps_timed / max(step_time, 1e-9)
                    values |= work.logged(step)
                    values |= convergence.logged(state) if convergence is not None else {}
                    values |= spectra.logged(state) if spectra is not None else {}
                    step_time, steps_timed = 0.0, 0
                    if main:
                        log.write(step, values)
                        collapse.observe(step, values, run.checkpoints, log)
                        bar.set_postfix(d_loss=f"{values['d_loss']:.3f}", g_loss=f"{values['g_loss']:.3f}")
                    if print_lines:
                        requests.say(f"step {step}/{last}  d_loss {values['d_loss']:.4f}  g_loss {values['g_loss']:.4f}"
                                     f"  {values['steps_per_s']:.3g} steps/s")
                if checkpointing:
                    save_state(state, written, run, best, checked, processes, collapse.kept(run.checkpoints))
                    checked = step
                if picturing:
                    attempt("the sample picture", step, lambda: save_samples(state, data, cfg, run, log))
                    if state.d_input.ada:
                        attempt("the picture of ADA's p", step,
                                lambda: save_p_curve(read_metrics(run), run.augment_picture))
                if evaluating:
                    abandonable = not processes.many or step == last  # the others wait for process 0's evaluation
                    evaluation = evaluation_unless_stopped(state, evaluator, cfg, run, requests, abandonable)
                    if evaluation is not None:
                        results = evaluation
                        log.write(step, results | best.update(results, step))
                        collapse.observe(step, results, run.checkpoints, log)
                        if on_evaluation is not None and step < last and on_evaluation(step, results):
                            stopped = True
                    if abandonable and requests.stop:  # Ctrl-C before or during it: resume evaluates this step
                        stopped = True
                        if not checkpointing:  # one process (the last step is always checkpointed)
                            save_state(state, written, run, best, checked, processes, collapse.kept(run.checkpoints))
                            checked = step
                if stopped:
                    break
    except DivergenceError:
        if log is not None:  # the work done until the divergence is spent compute (a study counts it): logged
            log.write(state.step, work.logged(state.step))
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
    return {"step": state.step, "steps": cfg.train.steps, "run_dir": str(run), "collapse": collapse.summary(),
            "stopped": stopped and not collapse.stopping,  # a collapse ends the run: no request to continue
            "output_closed": requests.output_closed, "results": results, "best": dict(best.best),
            **work.totals(state.step), "wall_time_s": time.perf_counter() - start_time}
