"""A run directory with its experiment: the store's ``RunDir`` plus ``config.yaml`` as an ``Experiment``.

Integrity: ``config.yaml`` is checked against the config stored in the newest checkpoint before a run
is resumed or evaluated, so a lost, truncated or edited file never turns a run into another
experiment.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Mapping

from ganscape.config import RESUMABLE_KEYS, Experiment, config_differences, dump_yaml, from_dict, load_config
from ganscape.errors import CheckpointError, ConfigError
from ganscape.store import rundir as store

RESTORE_HINT = "'ganscape resume {run} --restore-config' writes the checkpoint's config back (the file is kept beside)"


class RunDir(store.RunDir):
    """The run directory (layout, lock, log: see ``ganscape.store.rundir``) and its config as an ``Experiment``."""

    @classmethod
    def create(cls, cfg: Experiment) -> "RunDir":
        """Make a fresh run directory for ``cfg``, take its lock and write the resolved config into it.

        The lock is held until ``release`` (``train`` releases it when it ends), so no other process
        can start, resume or overwrite this run meanwhile.
        """
        stem = f"{cfg.data.name}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = cls.make(cfg.run.root, cfg.run.name, stem)
        run.write_config(cfg)
        return run

    def write_config(self, cfg: Experiment) -> None:
        self.write_config_text(dump_yaml(cfg))

    def read_config(self, overrides: list[str] = (), settings: Mapping[str, Any] | None = None) -> Experiment:
        """The run's config with ``overrides`` (key=value text) and ``settings`` (typed values by dotted key),
        after checking ``config.yaml`` against the newest checkpoint.

        A missing, empty or unreadable ``config.yaml``, or one that differs from the checkpoint's config
        in a key that changes the run, is refused with the difference and how to recover.
        """
        stored = self.checkpoint_config()
        if not self.config_path.is_file():
            problem = "is missing"
        elif not self.config_path.read_bytes().strip():
            problem = "is empty"
        else:
            problem = None
        if problem is None:
            try:
                cfg = load_config(self.config_path, overrides, written=True, settings=settings)
            except ConfigError as err:
                if stored is None or ((overrides or settings) and self._readable()):
                    raise  # the overrides are at fault, or there is nothing to restore from
                problem = f"cannot be read ({err})"
        if problem is not None:
            if stored is None:
                raise CheckpointError(f"{self.config_path} {problem}, and the run has no checkpoint that holds its "
                                      "config.")
            raise CheckpointError(f"{self.config_path} {problem}. The run's config is stored in its checkpoint of "
                                  f"step {stored[0]}: " + RESTORE_HINT.format(run=self.path) + ".")
        if stored is not None:
            self._check_against_checkpoint(cfg, *stored)
        return cfg

    def _check_against_checkpoint(self, cfg: Experiment, step: int, stored: dict) -> None:
        differences = config_differences(from_dict(stored), cfg, ignore=RESUMABLE_KEYS)
        if differences:
            shown = "; ".join(f"{key}: {ours!r} in config.yaml, {theirs!r} in the checkpoint"
                              for key, theirs, ours in differences[:5])
            more = f" (and {len(differences) - 5} more)" if len(differences) > 5 else ""
            raise CheckpointError(f"{self.config_path} differs from the config the run was trained with (checkpoint "
                                  f"of step {step}): {shown}{more}. A run's config is fixed once it has started; "
                                  + RESTORE_HINT.format(run=self.path) + ".")

    def _readable(self) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load_config(self.config_path, written=True)
        except ConfigError:
            return False
        return True

    def restore_config(self) -> Path | None:
        """Write the newest checkpoint's config to ``config.yaml``, keeping the old file beside it.

        Returns where the old file was kept (None when there was none).
        """
        stored = self.checkpoint_config()
        if stored is None:
            raise CheckpointError(f"{self.path} has no checkpoint that holds a config to restore.")
        kept = self.keep_config_aside()
        self.write_config(from_dict(stored[1]))
        return kept


def as_run(run: str | Path | store.RunDir) -> RunDir:
    """``run`` (a path, or a run directory of the store) as a ``RunDir`` that knows its config."""
    return run if isinstance(run, RunDir) else RunDir.open(run.path if isinstance(run, store.RunDir) else run)
