"""The one boundary where an error becomes one clear line: warnings, OS errors, out of memory, bugs."""

from __future__ import annotations

import errno
import os
import re
import sys
import warnings

from ganscape.errors import ConfigWarning, GanscapeWarning


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

