"""The runs layer: a run directory with its config, and the one lifecycle of a run (start, resume, branch,
evaluate) that the command line, studies and the Python API share."""

from ganscape.runs.evaluation import Evaluation, TruncationSweep, evaluate, truncation_sweep
from ganscape.runs.generator import load_run_generator
from ganscape.runs.lifecycle import Started, TrainResult, branch, check_override_keys, resume, start
from ganscape.runs.rundir import RunDir

__all__ = ["Evaluation", "RunDir", "Started", "TrainResult", "TruncationSweep", "branch", "check_override_keys",
           "evaluate", "load_run_generator", "resume", "start", "truncation_sweep"]
