"""Running a study on Optuna: storage, samplers, the trial queue, workers, heartbeats and retries.

A study folder holds ``study.yaml`` (the spec and where the storage is), ``study.journal`` (the
embedded storage: Optuna's journal file, safe for several processes on one machine; a PostgreSQL URL
instead serves workers on many machines), ``runs/`` (one ordinary run directory per trial and seed,
``<group>/trial-NNNN-seed-S``), ``logs/`` and ``report/``.

Each group is an Optuna study of its own (named ``<study>:<group>``), so a Bayesian sampler models
one group's trials only and each group has its own parameter importances. ``create`` puts ``trials``
waiting trials into each; for the Sobol and grid samplers their parameters are fixed there (the
same Sobol points, or the whole grid, in every group with the same parameters: paired comparisons; a group's
parameters are ``StudySpec.params_for(group)``), for the others the
sampler chooses them when a worker starts the trial. Workers claim waiting trials one at a time
(``study.ask()`` under a study-wide lock), train every seed and report the objective, so a study
ends with exactly as many trials as were queued. A worker beats a heartbeat into its trial; before
claiming, every worker fails the trials whose worker is dead (same machine) or silent for longer
than the grace period, and queues each again with the same parameters: the new trial resumes the
old trial's run directories from their last checkpoints. Everything goes through Optuna's public API;
``ganscape.study.leases`` says how claim, heartbeat, retry and exactly-once completion map onto it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from ganscape.errors import CheckpointError, ConfigError, ConfigWarning, DivergenceError, GanscapeError
from ganscape.metrics import BETTER
from ganscape.study.leases import (GRACE_S, HEARTBEAT_S, INTERRUPTED, Heartbeat, _optuna, claim, claim_lock, fail,
                                   fail_stale_trials, finish, requeue)
from ganscape.study.spec import Param, StudySpec, parse_spec

POLL_S = 2.0


@dataclass
class StudyDir:
    path: Path

    @property
    def spec_path(self) -> Path:
        return self.path / "study.yaml"

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def read(self) -> tuple[StudySpec, str]:
        """(the spec, the storage URL) of an existing study folder."""
        if not self.spec_path.is_file():
            raise ConfigError(f"{self.path} is not a study folder (no study.yaml); make one with 'ganscape study "
                              "create SPEC --out DIR'.")
        try:
            data = yaml.safe_load(self.spec_path.read_text())
            spec, storage = data["spec"], str(data["storage"])
        except (yaml.YAMLError, OSError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{self.spec_path} cannot be read ({type(err).__name__}: {err}); it is written by "
                              "'ganscape study create' and holds the spec and the storage URL.") from None
        return parse_spec(spec, str(self.spec_path)), storage


def storage_for(url: str, folder: Path):
    """Optuna storage: the study folder's journal file (``journal``), or an RDB URL such as postgresql://."""
    optuna = _optuna()
    if url == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    if url.startswith(("postgresql://", "postgresql+psycopg2://")):
        _postgresql_driver(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as err:  # SQLAlchemy's own errors: a wrong URL, no server, no driver
        raise ConfigError(f"cannot open the study storage {url}: {type(err).__name__}: {err}") from None


def _postgresql_driver(url: str) -> None:
    """Refuse a PostgreSQL storage without its driver, saying how to install it (SQLAlchemy only says that some
    'DB access module' is missing)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise ConfigError(f"the study storage {url} is a PostgreSQL database, and its driver (psycopg2) is not "
                          "installed: pip install 'ganscape[postgres]'.") from None


def sampler_for(spec: StudySpec):
    """Optuna's sampler for the trials whose parameters were not fixed when queued (random, tpe, gp)."""
    optuna = _optuna()
    seed = spec.sampler_seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings
        if spec.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if spec.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)


def sobol_points(spec: StudySpec, group: dict, start: int, count: int) -> list[dict]:
    """Points ``start`` .. ``start + count - 1`` of the scrambled Sobol sequence (scipy's, seeded with the
    sampler's seed), one dimension per parameter of ``group`` in name order, mapped onto each parameter's range:
    groups with the same parameters get the same points."""
    from scipy.stats import qmc

    params = sorted(spec.params_for(group), key=lambda p: p.name)
    if not params:
        return [{} for _ in range(count)]
    engine = qmc.Sobol(len(params), scramble=True, seed=spec.sampler_seed)
    if start:
        engine.fast_forward(start)  # scipy refuses a fast-forward by 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy: counts other than powers of 2 lose balance
        units = engine.random(count)
    return [{p.name: from_unit(p, float(u)) for p, u in zip(params, row)} for row in units]


def from_unit(param: Param, u: float):
    """The value of ``param`` at ``u`` in [0, 1): log-uniform, uniform, or an equal share of the choices."""
    if param.kind == "log_uniform":
        low, high = math.log(param.args[0]), math.log(param.args[1])
        return math.exp(low + u * (high - low))
    if param.kind == "uniform":
        return param.args[0] + u * (param.args[1] - param.args[0])
    choices = list(range(param.args[0], param.args[1] + 1)) if param.kind == "int" else list(param.args)
    return choices[min(int(u * len(choices)), len(choices) - 1)]


def grid_points(spec: StudySpec, group: dict) -> list[dict]:
    """Every combination of the (categorical or settings) parameters of ``group``."""
    params = spec.params_for(group)
    names = [p.name for p in params]
    return [dict(zip(names, values)) for values in itertools.product(*(list(p.args) for p in params))]


def queued_params(spec: StudySpec, group: dict, start: int, count: int) -> list[dict | None]:
    """The fixed parameters of trials ``start`` .. of ``group`` (None: the sampler chooses them)."""
    if spec.sampler == "sobol":
        return sobol_points(spec, group, start, count)
    if spec.sampler == "grid":
        points = grid_points(spec, group)
        return [points[i % len(points)] for i in range(start, start + count)]
    return [None] * count


def study_name(spec: StudySpec, group: dict) -> str:
    return f"{spec.name}:{group_label(group)}"


def enqueue(study, spec: StudySpec, group: dict, count: int) -> None:
    """Queue ``count`` more trials of ``group``; they take the next points of the group's sequence (a retry
    reuses its trial's point, so retries do not count)."""
    start = sum(1 for t in study.get_trials(deepcopy=False) if "retry_of" not in t.user_attrs)
    for params in queued_params(spec, group, start, count):
        study.enqueue_trial(params or {}, user_attrs={"group": group, "group_label": group_label(group)})


def create(spec: StudySpec, out: Path, storage: str = "journal") -> StudyDir:
    """A new study folder with its storage and one Optuna study per group, each with ``spec.trials``
    waiting trials. Every group's config is checked first, with the group's own parameters."""
    optuna = _optuna()
    folder = StudyDir(Path(out))
    if folder.spec_path.exists():
        raise ConfigError(f"{out} already holds a study; run it with 'ganscape study run {out}'.")
    for group in spec.group_names():  # every trial's config must be valid before anything runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            try:
                for params in ([example_params(spec, group)] if spec.sampler != "grid" else grid_points(spec, group)):
                    spec.trial_config(group, params, 0)
            except ConfigError as err:
                raise ConfigError(f"group {group_label(group)}: {err}") from None
    fresh = not folder.path.exists()
    folder.path.mkdir(parents=True, exist_ok=True)
    try:
        backend = storage_for(storage, folder.path)
    except ConfigError:
        if fresh:
            folder.path.rmdir()
        raise
    for group in spec.group_names():
        try:
            study = optuna.create_study(study_name=study_name(spec, group), storage=backend,
                                        direction=spec.objective.direction, sampler=sampler_for(spec))
        except optuna.exceptions.DuplicatedStudyError:
            raise ConfigError(f"the storage {storage} already holds a study named {study_name(spec, group)!r}; "
                              "give the spec another name, or use another database.") from None
        enqueue(study, spec, group, spec.trials)
    folder.spec_path.write_text(yaml.safe_dump({"spec": spec.source | {"name": spec.name}, "storage": storage},
                                               sort_keys=False))
    return folder


def load_studies(folder: StudyDir) -> tuple[StudySpec, list[tuple[dict, object]]]:
    """(the spec, [(group, its Optuna study)] in the spec's group order)."""
    optuna = _optuna()
    spec, url = folder.read()
    storage = storage_for(url, folder.path)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3) if spec.pruning else None
    return spec, [(group, optuna.load_study(study_name=study_name(spec, group), storage=storage,
                                            sampler=sampler_for(spec), pruner=pruner))
                  for group in spec.group_names()]


def example_params(spec: StudySpec, group: dict) -> dict:
    """A value of every parameter of ``group`` (its first choice or its low end), to check the configs a study
    makes."""
    return {p.name: next(iter(p.args)) for p in spec.params_for(group)}


def group_label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all"


def group_folder(group: dict) -> str:
    """A folder name for a group's runs: its values joined, unsafe characters replaced."""
    text = "-".join(f"{k}={v}" for k, v in group.items()) or "all"
    return "".join(c if c.isalnum() or c in "=.-_" else "_" for c in text)


# ---------------------------------------------------------------- workers


def suggest(trial, spec: StudySpec) -> dict:
    """The searched parameters of ``trial``, those of its group (sorted by name, so the sampler sees one fixed
    space: each group is an Optuna study of its own)."""
    params = {}
    for p in sorted(spec.params_for(trial.user_attrs["group"]), key=lambda p: p.name):
        if p.kind == "log_uniform":
            params[p.name] = trial.suggest_float(p.name, *p.args, log=True)
        elif p.kind == "uniform":
            params[p.name] = trial.suggest_float(p.name, *p.args)
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, *p.args)
        else:
            params[p.name] = trial.suggest_categorical(p.name, list(p.args))
    return params


def objective_evaluations(rows: list[dict], spec: StudySpec) -> list[tuple[int, float]]:
    """(step, value) of every finite value of the objective's metric in a run's metrics log, in step order."""
    metric = spec.objective.metric
    return [(row["step"], float(row[metric])) for row in rows
            if isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])]


def reduce_log(rows: list[dict], spec: StudySpec) -> float:
    """The objective of one run from its metrics log: the best or the last value of the metric."""
    values = [value for _, value in objective_evaluations(rows, spec)]
    if not values:
        return math.inf if spec.objective.direction == "minimize" else -math.inf
    if spec.objective.reduce == "last":
        return values[-1]
    return min(values) if spec.objective.direction == "minimize" else max(values)


def best_step(rows: list[dict], spec: StudySpec) -> int | None:
    """The step of the evaluation where the objective was best (the earliest of equal ones, as
    ``checkpoint.keep_best`` counts); None for ``reduce: last`` or when no evaluation has a finite value."""
    evaluations = objective_evaluations(rows, spec)
    if spec.objective.reduce != "best" or not evaluations:
        return None
    pick = min if spec.objective.direction == "minimize" else max  # both keep the first of equal values
    return pick(evaluations, key=lambda evaluation: evaluation[1])[0]


def best_checkpoint_step(run, spec: StudySpec) -> int | None:
    """The step of the run's checkpoint of its best evaluation (see ``best_step``); None when the run did not
    keep one there (``reduce: last``, an objective ``keep_best`` cannot rank, or a run made before trials kept it)."""
    from ganscape.store.rundir import read_metrics

    step = best_step(read_metrics(run), spec)
    return step if step is not None and run.checkpoint_file(step).is_file() else None


def keep_best_value(spec: StudySpec) -> str:
    """What ``checkpoint.keep_best`` is set to in a trial's runs so that they keep the checkpoint of the
    objective's best evaluation: the objective's value when it is ``eval/<value>``, reduced by its best, in the
    direction ``metrics.BETTER`` ranks it; "" (leave the config's) otherwise."""
    prefix, _, value = spec.objective.metric.partition("/")
    better = {"min": "minimize", "max": "maximize"}.get(BETTER.get(value, ""))
    if prefix != "eval" or spec.objective.reduce != "best" or better != spec.objective.direction:
        return ""
    return value


def work_done(rows: list[dict]) -> dict | None:
    """The training work of a run from its metrics log: the G and D updates and GFLOPs (None where not counted)
    of the steps it reached, as the last row that counts them says; None when no row counts them."""
    counted = [row for row in rows if isinstance(row.get("work/g_updates"), int)]
    if not counted:
        return None
    last = counted[-1]
    gflops = last.get("work/gflops")
    return {"g_updates": last["work/g_updates"], "d_updates": last.get("work/d_updates"),
            "gflops": float(gflops) if isinstance(gflops, (int, float)) else None}


def run_trial(trial, spec: StudySpec, folder: StudyDir, device: str, threads: int = 0) -> float:
    """Train every seed of the trial (resuming the runs a failed attempt left) and return the mean objective.

    After each seed the trial records, one entry per seed: its value (``seed_values``), the step of its best
    evaluation (``best_steps``: ``best_step``), the training work its metrics log counts (``work``:
    ``work_done``; also for a diverged or pruned run), wall time (``wall_s``) and run directory (``run_dirs``,
    relative to the study's ``runs/``); with ``truncation_sweep`` in the spec, each finished seed's amenability
    to truncation (``amenable``: True, False or None, see ``swept_amenability``)."""
    from ganscape import runs as lifecycle
    from ganscape.store.rundir import read_metrics

    optuna = _optuna()
    attrs = trial.user_attrs
    params = suggest(trial, spec)
    prefix = attrs.get("run_prefix") or f"{group_folder(attrs['group'])}/trial-{trial.number:04d}"
    trial.set_user_attr("run_prefix", prefix)
    values, best_steps, work, walls, runs, amenable = [], [], [], [], [], []
    for seed in range(spec.seeds):
        run = lifecycle.RunDir(folder.runs / f"{prefix}-seed-{seed}")
        wait_until_free(run)
        tic = time.perf_counter()
        pruning = _pruner_callback(trial, spec, seed) if spec.pruning else None
        try:
            if run.config_path.exists() and run.list_checkpoints():  # a failed attempt's run: continued
                summary = lifecycle.resume(run, settings={"train.device": device}, progress=False,
                                           on_evaluation=pruning).summary
            else:
                summary = lifecycle.start(trial_config(spec, attrs["group"], params, seed, run, device, threads),
                                          progress=False, on_evaluation=pruning).summary
            diverged = False
        except DivergenceError:
            summary, diverged = {"stopped": False}, True
        rows = read_metrics(run)
        work.append(work_done(rows))
        trial.set_user_attr("work", work)  # a pruned or stopped run's work counts too
        if summary.get("stopped"):
            if pruning is not None and pruning.pruned:
                raise optuna.TrialPruned()
            raise KeyboardInterrupt  # Ctrl-C: train stopped with a checkpoint; the worker gives the trial back
        if spec.truncation_sweep and not diverged:
            amenable.append(swept_amenability(run, spec, device))
            trial.set_user_attr("amenable", amenable)
        walls.append(time.perf_counter() - tic)
        values.append(reduce_log(rows, spec))
        best_steps.append(best_step(rows, spec))
        runs.append(f"{prefix}-seed-{seed}")  # relative to the study's runs/
        trial.set_user_attr("seed_values", values)
        trial.set_user_attr("best_steps", best_steps)
        trial.set_user_attr("diverged", trial.user_attrs.get("diverged", False) or diverged)
    trial.set_user_attr("wall_s", walls)
    trial.set_user_attr("run_dirs", runs)
    return sum(values) / len(values)  # a diverged seed's infinite value makes the trial's infinite too


def swept_amenability(run, spec: StudySpec, device: str) -> bool | None:
    """The verdict of the truncation sweep of the run's newest checkpoint at the spec's thresholds
    (``runs.truncation_sweep``, written to the run's eval/), amenable or not (None: undetermined). A sweep
    already written for that checkpoint at those thresholds, by an attempt that died after it, is read back."""
    from ganscape import runs as lifecycle
    from ganscape.store.rundir import truncation_sweep_path

    path = truncation_sweep_path(run.path, run.latest_checkpoint()[0])
    try:
        done = json.loads(path.read_text())["amenability"]
        if done["protocol"]["thresholds"] == list(spec.truncation_sweep):
            return done["amenable"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no sweep yet, or another one: sweep
    return lifecycle.truncation_sweep(run, spec.truncation_sweep, device=device, progress=False).amenability["amenable"]


def trial_config(spec: StudySpec, group: dict, params: dict, seed: int, run, device: str, threads: int):
    """The config of one seed of a trial, placed in ``run`` and on ``device`` (TensorBoard off: a study has many).

    The run keeps the checkpoint of its best evaluation (``checkpoint.keep_best``, see ``keep_best_value``)
    besides its ``checkpoint.keep`` newest: the study's samples and ``ganscape study export`` use it. Every
    evaluation step is then checkpointed too, so the best one is there to keep."""
    placement = {"run.root": str(run.path.parent), "run.name": run.path.name, "train.device": device,
                 "log.tensorboard": False}
    if threads:
        placement["train.threads"] = threads
    if keep_best := keep_best_value(spec):
        placement["checkpoint.keep_best"] = keep_best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return spec.trial_config(group, params, seed, placement)


def wait_until_free(run, poll_s: float = POLL_S) -> None:
    """Wait while another process holds the run's lock: a worker given up for a late heartbeat may still be
    training it; its retry resumes what it leaves."""
    while run.path.exists():
        try:
            run.acquire()
        except CheckpointError:
            time.sleep(poll_s)
            continue
        run.release()
        return


def _pruner_callback(trial, spec: StudySpec, seed: int):
    """Report the objective at each evaluation of the first seed; True stops the run (the trial is pruned)."""
    def on_evaluation(step: int, results: dict) -> bool:
        value = results.get(spec.objective.metric)
        if seed != 0 or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        trial.report(float(value), step)
        on_evaluation.pruned = trial.should_prune()
        return on_evaluation.pruned

    on_evaluation.pruned = False
    return on_evaluation


@dataclass
class GroupQueue:
    """One group's Optuna study as a worker claims from it, with its folder, spec, and the folder's claim lock.
    ``prefix`` names the study in the worker's log when it serves several ("" for one)."""

    folder: StudyDir
    spec: StudySpec
    lock: object
    study: object
    prefix: str = ""


def group_queues(folders: list[StudyDir]) -> list[GroupQueue]:
    """Every group of every folder, folder by folder in the spec's group order; the groups of one folder share
    its claim lock."""
    queues = []
    for folder in folders:
        spec, studies = load_studies(folder)
        lock = claim_lock(folder.read()[1], folder.path, spec.name)
        prefix = f"{folder.path.name}: " if len(folders) > 1 else ""
        queues += [GroupQueue(folder, spec, lock, study, prefix) for _, study in studies]
    return queues


def worker(folders: list[StudyDir] | StudyDir, device: str = "cpu", threads: int = 0,
           heartbeat_s: float = HEARTBEAT_S, grace_s: float = GRACE_S, log=print) -> int:
    """Claim and run trials of one study folder or several, taking every folder's groups in turn, until none
    waits and none runs elsewhere; returns the number of trials this worker completed."""
    optuna = _optuna()
    queues = group_queues([folders] if isinstance(folders, StudyDir) else list(folders))
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    done, turn = 0, 0
    while True:
        for queue in queues:
            for number in fail_stale_trials(queue.study, grace_s):
                log(f"{queue.study.study_name} trial {number}: its worker stopped; queued again")
        queue, trial, turn = claim_next(queues, turn, me)
        if trial is None:
            if not any(q.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                       for q in queues):
                return done
            time.sleep(POLL_S)
            continue
        study, spec = queue.study, queue.spec
        name = f"{queue.prefix}{trial.user_attrs['group_label']}, trial {trial.number}"
        log(f"{name} started")
        value = None
        with Heartbeat(trial, heartbeat_s):
            try:
                value = run_trial(trial, spec, queue.folder, device, threads)
                told, outcome = finish(study, trial, value), f"done: {spec.objective.metric} {value:.6g}"
            except KeyboardInterrupt:
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # given up meanwhile
                    trial.set_user_attr("heartbeat", time.time())  # the attempt's compute counts until now
                requeue(study, trial, INTERRUPTED)
                log(f"{name}: interrupted; queued again, to resume from its last checkpoint")
                raise
            except optuna.exceptions.UpdateFinishedTrialError:  # run_trial's writes refused: the trial was failed
                told = False
            except optuna.TrialPruned:
                told, outcome = finish(study, trial, state=optuna.trial.TrialState.PRUNED), "pruned"
            except GanscapeError as err:  # the trial's own fault (a config the group makes invalid): not retried
                told, outcome = fail(study, trial, str(err)), f"failed: {err}"
        if not told:  # failed by another worker: our heartbeat was late
            log(f"{name} was given up by another worker meanwhile (no heartbeat for {grace_s:.0f} s); its "
                "retry carries on")
            continue
        done += value is not None  # pruned and failed trials raised before run_trial returned a value
        log(f"{name} {outcome}")


def claim_next(queues: list[GroupQueue], turn: int, holder: dict | None = None) -> tuple[GroupQueue | None,
                                                                                         object, int]:
    """(the group's queue, a trial claimed in it for ``holder``, the next turn) from the first group, from
    ``turn`` on, where a trial waits; (None, None, turn) when none waits. Each claim holds its folder's lock."""
    for i in range(len(queues)):
        queue = queues[(turn + i) % len(queues)]
        with queue.lock:
            trial = claim(queue.study, holder)
        if trial is not None:
            return queue, trial, turn + i + 1
    return None, None, turn
