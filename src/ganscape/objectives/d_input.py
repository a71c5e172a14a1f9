"""The D-input pipeline: what D sees of the real and generated batches.

Between the data (or G) and D, every batch passes through the same stages, in this order:

1. augmentation (``augment.method``): none; DiffAugment (Zhao et al. 2020) with the transforms of
   ``augment.policy`` on every image; or ADA (Karras et al. 2020), whose transforms each apply with an
   adaptive probability p;
2. instance noise (``augment.noise``): ``x + std * N(0, I)`` with the std annealed linearly to 0 over
   ``augment.noise_anneal_steps`` (Sønderby et al.; formerly the ``instance_noise`` penalty).

The training step applies it, not ``Objective``: the step calls ``d_step`` on the real and generated
batches of D's update and ``g_step`` on the generated batch of G's update, and hands the batches as D
sees them to ``Objective``, which only computes the totals. Augmenting the fakes in G's step too, and
differentiably, is what keeps the augmentation out of G's samples: G is trained through the same
transforms D is, so D cannot tell augmented from un-augmented images. Every draw comes from the
generator it is given (the run's ``Streams.noise``): per batch, the augmentation's draws, then the noise.

The pipeline is stateful (ADA's p and the statistics it is adjusted from), so it lives in the run's
state and is checkpointed with it (``state_dict``): a resumed run continues exactly. ADA reads D's
logits on the reals after each D update (``observe``) and every ``augment.ada_interval`` updates moves p
by ``adjusted_p``: up when the mean sign of D(real) is above ``augment.ada_target`` (D overfits), down
otherwise, fast enough to go from 0 to 1 in ``augment.ada_speed_images`` real images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from ganscape.errors import ConfigError
from ganscape.objectives.augment import ADA_GROUPS, DIFFAUGMENT, ada_augment, adjusted_p, check_policy, diffaugment

Tensor = torch.Tensor

DEFAULT_NOISE_STD = 0.1  # the instance_noise penalty's default weight, kept by the migration
AUGMENTATIONS = {
    "": "off",
    "diffaugment": "DiffAugment: every transform of augment.policy on every image, reals and fakes alike",
    "ada": "ADA: each transform of augment.ada_groups with probability p, adjusted from D's outputs on reals",
}
PREVIEW_P = 0.5  # ADA's p in the augmented-reals picture when the run starts at p = 0


# --------------------------------------------------------------------------------------------------
# Instance noise


def add_instance_noise(x: Tensor, std: float, generator: torch.Generator | None) -> Tensor:
    """Instance noise (Sønderby et al., Arjovsky & Bottou): ``x + std * N(0, I)``.

    Applied to both real and generated inputs of D, it makes the two distributions overlap so D
    cannot separate them perfectly and its gradients stay informative.
    """
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def annealed(strength: float, step: int, anneal_steps: int) -> float:
    """Instance noise's std at ``step``: constant if ``anneal_steps == 0``, else linear from ``strength``
    at step 0 to 0 at ``anneal_steps``, and 0 afterwards (noise is only needed while the distributions are
    far apart)."""
    if anneal_steps == 0:
        return strength
    return strength * max(0.0, 1.0 - step / anneal_steps)


# --------------------------------------------------------------------------------------------------
# Settings


@dataclass
class AugmentConfig:
    """The D-input pipeline: augmentation (``method``) and instance noise (``noise``).

    ``augment=ada`` or ``augment=diffaugment`` sets ``method``; ``augment=diffaugment:color,cutout`` sets
    the policy too (it replaces ``policy``). ``augment=none`` turns augmentation off.
    """

    SHORTHAND = "method"  # ``augment=X`` means ``augment.method=X``

    method: str = field(default="", metadata={"choices": lambda: AUGMENTATIONS, "help": (
        "augmentation of D's inputs: diffaugment, ada, or empty (off); augment=diffaugment:color,cutout also "
        "sets the policy")})
    policy: list[str] = field(default_factory=lambda: ["color", "translation", "cutout"], metadata={
        "choices": lambda: DIFFAUGMENT, "help": "diffaugment: its transforms, applied in this order"})
    ada_p: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0, "help": "ada: p at the start of the run"})
    ada_target: float = field(default=0.6, metadata={"min": 0.0, "max": 1.0, "help": (
        "ada: the mean sign of D(real) p is adjusted towards (0.6 in the paper)")})
    ada_interval: int = field(default=4, metadata={"min": 1, "max": 1 << 20,
                                                   "help": "ada: D updates between adjustments of p"})
    ada_speed_images: int = field(default=500_000, metadata={"min": 1, "help": (
        "ada: real images over which p can go from 0 to 1 (500k in the paper)")})
    ada_groups: list[str] = field(default_factory=lambda: ["blit", "geom", "color"], metadata={
        "choices": lambda: ADA_GROUPS, "help": "ada: the groups of transforms applied"})
    noise: float = field(default=0.0, metadata={"min": 0.0, "help": (
        "instance noise: std of N(0, std^2) added to D's real and generated inputs; 0: off")})
    noise_anneal_steps: int = field(default=0, metadata={"min": 0, "help": (
        "instance noise: steps over which its std falls linearly to 0; 0: constant")})

    def __post_init__(self):
        if self.method == "none":
            self.method = ""
        name, sep, policy = self.method.partition(":")
        if sep:  # diffaugment:color,cutout
            if name != "diffaugment":
                raise ConfigError(f"augment={self.method}: only diffaugment takes a policy after a colon "
                                  f"(augment=diffaugment:{','.join(DIFFAUGMENT)}).")
            self.method, self.policy = name, [item.strip() for item in policy.split(",") if item.strip()]


# --------------------------------------------------------------------------------------------------
# Migration of the settings that moved here


def _split_noise_item(item: Any) -> float | None:
    """The std of a penalty item that is instance noise (``instance_noise``, ``instance_noise:0.3``,
    ``{instance_noise: 0.3}``, ``{name: instance_noise, weight: 0.3}``); None for any other item."""
    if isinstance(item, str):
        name, sep, weight = (part.strip() for part in item.partition(":"))
        if name != "instance_noise":
            return None
        return _std(weight) if sep else DEFAULT_NOISE_STD
    if isinstance(item, Mapping):
        if item.get("name") == "instance_noise" and set(item) <= {"name", "weight"}:
            return _std(item.get("weight", DEFAULT_NOISE_STD))
        if len(item) == 1 and "instance_noise" in item:
            return _std(item["instance_noise"])
    return None


def _std(weight: Any) -> float | None:
    try:
        return float(weight)
    except (TypeError, ValueError):
        return None  # left in the penalty list, whose parser reports it


def _without_noise(use: Any) -> tuple[Any, float | None]:
    """``penalty.use`` without its instance-noise item, in the form it was written, and that item's std."""
    if isinstance(use, str):
        items = [item.strip() for item in use.split(",")]
        stds = [_split_noise_item(item) for item in items]
        rest = ",".join(item for item, std in zip(items, stds) if std is None)
    elif isinstance(use, (list, tuple)):
        stds = [_split_noise_item(item) for item in use]
        rest = [item for item, std in zip(use, stds) if std is None]
    elif isinstance(use, Mapping) and "name" not in use:  # {r1: 1, instance_noise: 0.1}
        stds = [_split_noise_item({name: weight}) for name, weight in use.items()]
        rest = {name: weight for (name, weight), std in zip(use.items(), stds) if std is None}
    else:
        return use, _split_noise_item(use)
    found = [std for std in stds if std is not None]
    return (rest, found[0]) if found else (use, None)


PENALTY_SECTION_KEYS = {"use", "pixel_scale", "noise_anneal_steps", "name", "weight"}


def instance_noise_to_augment(tree: dict) -> dict:
    """``penalty: [instance_noise:STD]`` -> ``augment.noise: STD`` and ``penalty.noise_anneal_steps`` ->
    ``augment.noise_anneal_steps`` (a key given in both forms: the new one). Idempotent; ``tree`` is left
    unchanged. The other penalties stay in ``penalty.use``, in the form they were written."""
    penalty = tree.get("penalty")
    if penalty is None:
        return tree
    if not (isinstance(penalty, Mapping) and set(penalty) & PENALTY_SECTION_KEYS):  # penalty=r1 (a shorthand)
        penalty = {"use": penalty}
    moved: dict[str, Any] = {}
    penalty = dict(penalty)
    if "use" in penalty:
        rest, std = _without_noise(penalty["use"])
        if std is not None:
            penalty["use"], moved["noise"] = rest, std
    if "noise_anneal_steps" in penalty:
        moved["noise_anneal_steps"] = penalty.pop("noise_anneal_steps")
    if not moved:
        return tree
    augment = tree.get("augment")
    augment = {"method": augment} if isinstance(augment, str) else dict(augment or {})
    return {**tree, "penalty": penalty, "augment": {**moved, **augment}}


# --------------------------------------------------------------------------------------------------
# The pipeline


def _one_process(x: Tensor) -> Tensor:
    return x


class DInput:
    """The D-input pipeline of a run (see the module's docstring), with ADA's state.

    ``reduce`` sums a tensor over the processes of a torchrun run (identity in one process), so that every
    process sees the same statistics and keeps the same p.
    """

    def __init__(self, settings: AugmentConfig | None = None, reduce: Callable[[Tensor], Tensor] = _one_process):
        self.settings = settings = settings if settings is not None else AugmentConfig()
        self.policy = check_policy(settings.policy) if settings.method == "diffaugment" else ()
        self.groups = tuple(settings.ada_groups)
        self.p = settings.ada_p
        self.reduce = reduce
        self._stats: Tensor | None = None  # since the last adjustment: (sum of sign D(real), real images)
        self._updates = 0  # D updates since the last adjustment

    @classmethod
    def from_config(cls, settings: AugmentConfig, images: bool,
                    reduce: Callable[[Tensor], Tensor] = _one_process) -> "DInput":
        """The pipeline of ``augment`` settings; ``images``: whether the data are images (augmentations are)."""
        if settings.method and not images:
            raise ConfigError(f"augment={settings.method} transforms images; these data are not images. "
                              "Use augment.noise=STD (instance noise) or no augmentation.")
        return cls(settings, reduce)

    @property
    def ada(self) -> bool:
        return self.settings.method == "ada"

    @property
    def active(self) -> bool:
        """Whether D sees anything but the batches themselves."""
        return bool(self.settings.method) or self.settings.noise > 0

    def noise_std(self, step: int) -> float:
        return annealed(self.settings.noise, step, self.settings.noise_anneal_steps)

    def _augmented(self, x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
        if self.settings.method == "diffaugment":
            return diffaugment(x, self.policy, generator)
        if self.ada:
            return ada_augment(x, p, self.groups, generator)
        return x

    def _seen(self, x: Tensor, step: int, p: float, generator: torch.Generator | None) -> Tensor:
        """``x`` augmented, then with instance noise at ``step``'s std."""
        x = self._augmented(x, p, generator)
        std = self.noise_std(step)
        return add_instance_noise(x, std, generator) if std > 0 else x

    def d_step(self, real: Tensor, fake: Tensor, step: int,
               generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """The real and generated batches of D's update as D sees them (the real's draws first)."""
        return self._seen(real, step, self.p, generator), self._seen(fake, step, self.p, generator)

    def g_step(self, fake: Tensor, step: int, generator: torch.Generator | None) -> Tensor:
        """The generated batch of G's update as D sees it, differentiable with respect to ``fake``."""
        return self._seen(fake, step, self.p, generator)

    def observe(self, real_logits: Tensor | Sequence[Tensor]) -> None:
        """After each D update, with D's logits on that update's reals (a tensor, or one per micro-batch):
        ADA's statistics, and every ``ada_interval`` updates its adjustment of p. Nothing without ADA.
        Reads the device at adjustments only."""
        if not self.ada:
            return
        logits = (real_logits if isinstance(real_logits, Tensor) else torch.cat(list(real_logits))).detach().float()
        stats = self.reduce(torch.stack([logits.sign().sum(), logits.new_tensor(float(logits.numel()))]))
        self._stats = stats if self._stats is None else self._stats.to(stats.device) + stats
        self._updates += 1
        if self._updates == self.settings.ada_interval:
            sign_sum, images = self._stats.tolist()
            self.p = adjusted_p(self.p, sign_sum / images, self.settings.ada_target, images,
                                self.settings.ada_speed_images)
            self._stats, self._updates = None, 0

    def logged(self) -> dict[str, float]:
        """What the run logs of the pipeline: ADA's p as ``augment/p``."""
        return {"augment/p": self.p} if self.ada else {}

    def state_dict(self) -> dict:
        """ADA's p, and its sign sum, image count and D updates since the last adjustment."""
        sign_sum, images = self._stats.tolist() if self._stats is not None else (0.0, 0.0)
        return {"p": self.p, "sign_sum": sign_sum, "images": images, "updates": self._updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.p = float(state["p"])
        self._updates = int(state["updates"])
        self._stats = torch.tensor([state["sign_sum"], state["images"]]) if self._updates else None

    def preview(self, real: Tensor, generator: torch.Generator) -> tuple[Tensor, str]:
        """``real`` as D sees it at step 0 (ADA at p = 0.5 when the run starts at p = 0, so something shows),
        and a caption saying what was applied."""
        p = self.p if self.p > 0 else PREVIEW_P
        stages = []
        if self.settings.method == "diffaugment":
            stages.append(f"DiffAugment ({', '.join(self.policy)})")
        elif self.ada:
            stages.append(f"ADA ({', '.join(self.groups)}) at p = {p:g}"
                          + (" (the run starts at p = 0)" if p != self.p else ""))
        if self.settings.noise > 0:
            stages.append(f"instance noise of std {self.noise_std(0):g}")
        return self._seen(real, 0, p, generator), " and ".join(stages)
