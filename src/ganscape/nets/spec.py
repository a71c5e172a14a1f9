"""What a network is built for, without any data: ``ModelSpec``.

A generator is fully described by its architecture, its network settings and a spec: the shape of one
sample, the classes it is conditioned on (with their names) and its latent. Runs record the spec in
their checkpoints and exported models in their ``config.json``, so a trained generator loads where
its data set does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganscape.errors import CheckpointError

LATENT_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class ModelSpec:
    shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    latent_dim: int = 64
    latent_dist: str = "normal"

    @classmethod
    def of_run(cls, cfg, data) -> "ModelSpec":
        """The spec of a run: its data set's sample shape and (when ``data.conditional``) classes, its latent."""
        classes = data.num_classes if cfg.data.conditional else 0
        return cls(tuple(int(s) for s in data.shape), classes, tuple(data.class_names) if classes else (),
                   cfg.latent.dim, cfg.latent.dist)

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "num_classes": self.num_classes, "class_names": list(self.class_names),
                "latent": {"dim": self.latent_dim, "dist": self.latent_dist}}

    @classmethod
    def from_json(cls, data, where: str) -> "ModelSpec":
        """The spec stored in ``where`` (a file), checked field by field."""
        try:
            shape = tuple(data["shape"])
            num_classes, names = data["num_classes"], tuple(data.get("class_names") or ())
            latent = data["latent"]
            spec = cls(shape, num_classes, names, latent["dim"], latent["dist"])
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{where} does not describe a model (its spec lacks {err}).") from None
        problems = []
        if not (1 <= len(shape) <= 3 and all(isinstance(s, int) and 0 < s <= 1 << 16 for s in shape)):
            problems.append(f"shape {list(shape)} is not the shape of a sample")
        if not (isinstance(num_classes, int) and 0 <= num_classes <= 1 << 20):
            problems.append(f"num_classes {num_classes!r} is not a class count")
        if names and (len(names) != num_classes or not all(isinstance(n, str) for n in names)):
            problems.append(f"class_names has {len(names)} names for {num_classes} classes")
        if not (isinstance(spec.latent_dim, int) and 0 < spec.latent_dim <= 1 << 16):
            problems.append(f"latent dim {spec.latent_dim!r} is not a size")
        if spec.latent_dist not in LATENT_DISTRIBUTIONS:
            problems.append(f"latent dist {spec.latent_dist!r} is none of {', '.join(LATENT_DISTRIBUTIONS)}")
        if problems:
            raise CheckpointError(f"{where} does not describe a model: {'; '.join(problems)}.")
        return spec
