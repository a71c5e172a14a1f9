"""Errors that the command line reports as one clear message instead of a traceback."""

from __future__ import annotations

import difflib
import os
import sys
from typing import Iterable, Mapping, TypeVar

T = TypeVar("T")


def silence_stdout() -> None:
    """After a BrokenPipeError (the reader of the output went away, e.g. ``| head``): later writes to stdout,
    Python's final flush included, go to the null device instead of raising again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class GanscapeError(Exception):
    """Base of every error caused by the user's input or files rather than by a bug."""


class ConfigError(GanscapeError):
    """A configuration key, value or combination is invalid."""


class ConfigWarning(UserWarning):
    """A configuration that runs but that the literature advises against."""


class GanscapeWarning(UserWarning):
    """Something the user should know that does not stop the work (a dropped log line, a clipped setting)."""


class CheckpointError(GanscapeError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class DataError(GanscapeError):
    """A data set's files are missing, unreadable, corrupt or not in the expected format."""


class DivergenceError(GanscapeError):
    """Training produced a non-finite loss or parameter."""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """Return ``registry[name]`` or raise a ConfigError that lists the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        hint = close_matches(name, registry)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"unknown {what} {name!r}.{suggestion} Known: {known}.") from None
