"""Starting, resuming and branching a run: the one place the command line, a study's trials and the Python
API (``ganscape.train``, ``ganscape.resume``) go through.

Nothing here prints: ``on_start(Started)`` is called in process 0 just before training begins (the command
line says where the run is), and each function returns a ``TrainResult``. Under torchrun every process
calls the same function; process 0 alone names and writes the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from ganscape.config import RESUMABLE_KEYS, Experiment
from ganscape.errors import ConfigError
from ganscape.runs.branching import branch_run
from ganscape.runs.rundir import RunDir, as_run
from ganscape.store import rundir as store
from ganscape.training import distributed
from ganscape.training.loop import train
from ganscape.training.work import in_g_updates


@dataclass(frozen=True)
class Started:
    """A run about to train, as ``on_start`` gets it."""

    run: RunDir
    cfg: Experiment
    step: int  # the step training starts from: 0 for a new run
    world: int = 1  # processes training it (more than one under torchrun)
    restored: Path | None = None  # resume(restore_config=True): where the replaced config.yaml was kept
    parent: Path | None = None  # branch: the run it was branched from
    changes: tuple[tuple[str, Any, Any], ...] = ()  # branch: (key, the parent's value, the branch's)

    @property
    def last_step(self) -> int:
        """The step the run ends at (``train.steps`` in steps, whatever ``train.unit`` counts)."""
        return in_g_updates(self.cfg).train.steps

    @property
    def finished(self) -> bool:
        """Whether the run is already at its last step (resuming it only makes a missed picture or evaluation)."""
        return self.step >= self.last_step


@dataclass(frozen=True)
class TrainResult:
    run: RunDir
    cfg: Experiment  # as recorded in the run directory
    summary: dict  # training.loop.train's: step, steps, stopped, output_closed, results, best, g_updates, d_updates,
    # gflops, wall_time_s
    main: bool = True  # False in the torchrun processes other than 0 (they write and report nothing)


OnStart = Callable[[Started], None]


def check_override_keys(overrides, prefixes: tuple[str, ...], why: str) -> None:
    """Refuse overrides of keys outside ``prefixes`` (a run's config is fixed once it has started)."""
    for item in overrides:
        key = item.partition("=")[0]
        if "=" not in item or not key.startswith(prefixes):
            raise ConfigError(f"cannot change {key!r} {why}. Keys that may change here: "
                              f"{', '.join(p + '*' for p in prefixes)}.")


def with_shards(cfg: Experiment, world: int) -> Experiment:
    """``cfg`` with ``train.shards`` resolved (0: one per process): recorded, so a resumed run keeps its streams."""
    return replace(cfg, train=replace(cfg.train, shards=cfg.train.shards or world))


def start(cfg: Experiment, *, until: int | None = None, progress: bool | None = None, on_start: OnStart | None = None,
          on_evaluation=None) -> TrainResult:
    """Train a new run of ``cfg`` in a new run directory (``run.root``/``run.name``); ``until`` stops earlier with
    a checkpoint. A run that fails before its first logged step leaves nothing behind."""
    processes, device = distributed.start(cfg.train.device)
    try:
        cfg = with_shards(cfg, processes.world)
        distributed.shards_of(processes, cfg.train.shards)  # refused before a run directory exists
        run = RunDir.create(cfg) if processes.main else None  # process 0 names and writes the run directory
        path = distributed.broadcast(None if run is None else str(run.path), processes)
        run = run or RunDir(path)
        try:
            if processes.main and on_start is not None:
                on_start(Started(run, cfg, 0, processes.world))
            summary = train(cfg, run, until=until, progress=progress, on_evaluation=on_evaluation,
                            processes=processes, device=device)
        except BaseException:
            if processes.main:
                run.discard_if_unused()
            raise
        return TrainResult(run, cfg, summary, processes.main)
    finally:
        distributed.stop()


def resume(run_dir: str | Path | store.RunDir, overrides=(), *, settings: Mapping[str, Any] | None = None,
           until: int | None = None, from_step: int | None = None, restore_config: bool = False,
           progress: bool | None = None, on_start: OnStart | None = None, on_evaluation=None) -> TrainResult:
    """Continue a run from its newest checkpoint (or ``from_step``: newer ones are moved aside) with
    ``overrides`` (key=value text) and ``settings`` (typed values by dotted key) of keys that do not change the
    run (``RESUMABLE_KEYS``), which config.yaml then records.
    ``restore_config`` first writes the newest checkpoint's config back to config.yaml. A run already at its
    last step is only caught up (its missed picture or evaluation)."""
    run = as_run(run_dir)
    overrides = list(overrides)
    check_override_keys([*overrides, *(f"{key}=" for key in settings or {})], RESUMABLE_KEYS,
                        "when resuming: it would change the run")
    processes, device = distributed.start("auto")
    try:
        if processes.main:
            run.acquire()  # before reading or writing its config: another process may be training it
        restored = run.restore_config() if restore_config and processes.main else None
        distributed.barrier(processes)  # the others read the config once process 0 has restored it
        cfg = run.read_config(overrides, settings)
        step = from_step if from_step is not None else run.latest_checkpoint()[0]
        started = Started(run, cfg, step, processes.world, restored=restored)
        if processes.main:
            if not started.finished:
                run.write_config(cfg)
            if on_start is not None:
                on_start(started)
        summary = train(cfg, run, resume=True, until=None if started.finished else until, from_step=from_step,
                        progress=False if started.finished else progress, on_evaluation=on_evaluation,
                        processes=processes, device=device if processes.many else cfg.train.device)
        return TrainResult(run, cfg, summary, processes.main)
    finally:
        run.release()
        distributed.stop()


def branch(parent_dir: str | Path, out: str | Path, overrides=(), *, step: int | None = None,
           until: int | None = None, progress: bool | None = None, on_start: OnStart | None = None,
           on_evaluation=None) -> TrainResult:
    """Start the run ``out`` from the checkpoint of ``parent_dir`` at ``step`` (default: its newest) with
    ``overrides`` of the settings its state fits (see ``runs.branching``), and train it."""
    made = branch_run(parent_dir, out, list(overrides), step)
    if on_start is not None:
        on_start(Started(made.run, made.cfg, made.step, parent=Path(parent_dir), changes=tuple(made.changes)))
    summary = train(made.cfg, made.run, resume=True, until=until, progress=progress, on_evaluation=on_evaluation)
    return TrainResult(made.run, made.cfg, summary)
