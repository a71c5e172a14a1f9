"""Trained generators as artifacts: export a run's generator, load it anywhere, publish it.

An exported model is a folder in the layout of the Hugging Face Hub::

    MODEL/
      config.json                 format, ganscape version, architecture and network settings, the spec
                                  (sample shape, classes, latent), which weights (EMA or raw), and where
                                  they came from (the run's resolved config, step, last evaluation)
      model.safetensors           the generator's state dict (spectral-norm and batch-norm buffers included)
      discriminator.safetensors   with --with-discriminator: D's state dict (its settings are in config.json)
      samples.png                 an 8x8 grid of samples
      README.md                   a model card

``load_generator(source)`` (also ``PretrainedGenerator.from_pretrained``) takes such a folder, a run
directory or a Hub repository id, needs no data set, and returns the generator as an ``nn.Module``
(``G(z, labels)``). Only JSON and safetensors are read, the
config is checked field by field and the weights are loaded strictly, so a foreign, corrupt or
incomplete file is refused with its path and nothing in it is ever executed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import ganscape
from ganscape.config import Experiment, NetConfig, from_dict, migrate_network, to_dict, validate
from ganscape.errors import CheckpointError, ConfigError
from ganscape.jsonio import write_atomically, write_json
from ganscape.metrics.compare import ImageSet, generated_images, open_image_set
from ganscape.metrics.evaluate import generated_batches, seeded_latents
from ganscape.nets import ARCHITECTURES, ModelSpec, build_discriminator, build_generator
from ganscape.nets.standing import standing_statistics
from ganscape.store.rundir import is_run_dir

FORMAT = "ganscape-model-1"
CONFIG, WEIGHTS, DISCRIMINATOR, SAMPLES, CARD = ("config.json", "model.safetensors", "discriminator.safetensors",
                                                 "samples.png", "README.md")
HUB_FILES = [CONFIG, WEIGHTS, DISCRIMINATOR, SAMPLES, CARD]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class PretrainedGenerator(nn.Module):
    """A trained generator with what it was built for: ``net`` (in eval mode), ``spec`` and ``config`` (the
    contents of config.json), loaded from ``source``.

    It is the network as a module: ``G(z, labels)`` is ``net``'s forward (images in [-1, 1]; ``labels``
    class indices, or None for an unconditional generator), and it moves (``.to``), saves
    (``state_dict``, under ``net.``) and composes into other modules like any ``nn.Module``.
    """

    def __init__(self, net: nn.Module, spec: ModelSpec, config: dict, source: str):
        super().__init__()
        self.net, self.spec, self.config, self.source = net, spec, config, source
        self.eval()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z, labels)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str | torch.device = "cpu",
                        revision: str | None = None) -> "PretrainedGenerator":
        return load_generator(source, device, revision)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def class_labels(self, classes: list[int | str]) -> torch.Tensor:
        """Labels from class indices or names (checked against the spec)."""
        if not self.spec.num_classes:
            raise ConfigError("this generator is not class-conditional; it takes no classes.")
        labels = []
        for c in classes:
            index = self.spec.class_names.index(c) if isinstance(c, str) and c in self.spec.class_names else c
            try:
                index = int(index)
            except ValueError:
                raise ConfigError(f"unknown class {c!r}; the classes are 0..{self.spec.num_classes - 1}"
                                  + (f" or {', '.join(self.spec.class_names[:10])}..." if self.spec.class_names
                                     else "") + ".") from None
            if not 0 <= index < self.spec.num_classes:
                raise ConfigError(f"class {c} is not one of 0..{self.spec.num_classes - 1}.")
            labels.append(index)
        return torch.tensor(labels, dtype=torch.int64)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, labels: torch.Tensor | None = None, truncation: float | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """``n`` samples (images in [-1, 1], on the CPU) from the latents of ``seed``, as a run's own sampling
        draws them (the same seed gives the same samples). ``labels``: the classes of the samples, by
        default 0, 1, 2, ... in turn; ``truncation``: BigGAN's truncation threshold for normal latents."""
        if labels is not None and len(labels) != n:
            raise ConfigError(f"{len(labels)} labels for {n} samples.")
        batches = generated_batches(self.net, n, self.spec.latent_dim, self.spec.latent_dist, seed, self.device,
                                    self.spec.num_classes, batch_size, truncation, labels)
        return torch.cat([batch.cpu() for batch in batches])

    def standing_statistics(self, passes: int = 16, batch_size: int = 256, seed: int = 1,
                            truncation: float | None = None) -> "PretrainedGenerator":
        """BigGAN's standing statistics: re-estimate the generator's batch-norm statistics from ``passes``
        batches of latents of ``seed`` (truncated at ``truncation`` to match the samples that follow) with
        random classes; see ``nets.standing``. Returns the model, to chain with ``sample``."""
        n = passes * batch_size
        z = seeded_latents(n, self.spec.latent_dim, self.spec.latent_dist, seed, self.device, truncation)
        labels = None
        if self.spec.num_classes:
            labels = torch.randint(self.spec.num_classes, (n,), generator=torch.Generator().manual_seed(seed))
            labels = labels.to(self.device)
        standing_statistics(self.net, z, labels, passes)
        return self

    @torch.no_grad()
    def interpolate(self, steps: int, seed: int = 0, rows: int = 4, classes: tuple | None = None,
                    truncation: float | None = None) -> torch.Tensor:
        """``rows`` interpolations of ``steps`` samples each, (rows * steps, C, H, W), row by row.

        Without ``classes`` each row goes from one latent to another: spherically for normal latents (the
        path keeps a typical norm), linearly for uniform ones; a conditional generator keeps class
        ``row % classes`` along a row. With two ``classes`` (a, b) each row keeps its latent and moves
        through the class mixtures (1 - t) a + t b, which a conditional generator takes like labels.
        """
        if steps < 2 or rows < 1:
            raise ConfigError(f"an interpolation needs at least 2 steps and 1 row, not {steps} and {rows}.")
        z = seeded_latents(2 * rows, self.spec.latent_dim, self.spec.latent_dist, seed, self.device, truncation)
        t = torch.linspace(0, 1, steps, device=self.device)
        if classes is not None:
            a, b = self.class_labels(list(classes)).tolist() if len(classes) == 2 else (None, None)
            if a is None:
                raise ConfigError(f"interpolating between classes takes two classes, not {len(classes)}.")
            eye = torch.eye(self.spec.num_classes, device=self.device)
            latents = z[:rows].repeat_interleave(steps, dim=0)
            labels = ((1 - t)[:, None] * eye[a] + t[:, None] * eye[b]).repeat(rows, 1)
        else:
            mix = slerp if self.spec.latent_dist == "normal" else lerp
            latents = torch.stack([mix(z[i], z[rows + i], t) for i in range(rows)]).flatten(0, 1)
            labels = (torch.arange(rows, device=self.device) % self.spec.num_classes).repeat_interleave(steps) \
                if self.spec.num_classes else None
        self.net.eval()
        return self.net(latents, labels).cpu()

    def save_pretrained(self, out: str | Path, discriminator: nn.Module | None = None) -> Path:
        """Write config.json and the weights (and the model card with its samples) into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _save_weights(self.net, out / WEIGHTS)
        if discriminator is not None:
            _save_weights(discriminator, out / DISCRIMINATOR)
        write_json(out / CONFIG, self.config)
        write_card(self, out)
        return out

    def push_to_hub(self, repo_id: str, folder: str | Path, private: bool = False) -> str:
        """Upload an exported ``folder`` of this model to the Hub repository ``repo_id`` (created if needed)."""
        hub = _huggingface_hub()
        api = hub.HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=str(folder), allow_patterns=HUB_FILES))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (len(t), dim) on the segment from ``a`` to ``b``."""
    return a + t[:, None] * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (len(t), dim) on the great circle from ``a`` to ``b``, their norms interpolated linearly
    (Shoemake's slerp on the directions); the segment where ``a`` and ``b`` are nearly parallel."""
    norm_a, norm_b = a.norm(), b.norm()
    cos = torch.dot(a / norm_a, b / norm_b).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    directions = (torch.sin((1 - t)[:, None] * omega) * (a / norm_a) + torch.sin(t[:, None] * omega) * (b / norm_b)) \
        / torch.sin(omega)
    return directions * (norm_a + t * (norm_b - norm_a))[:, None]


def _save_weights(module: nn.Module, path: Path) -> None:
    state = {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}
    write_atomically(path, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT}))


# ---------------------------------------------------------------- from a run


def model_config(cfg: Experiment, spec: ModelSpec, step: int, weights: str, run_name: str,
                 evaluation: dict | None) -> dict:
    """The config.json of a run's generator: what it is, and where it came from. Each network carries only its
    own architecture's settings (``to_dict``); those of older versions are migrated when loaded."""
    return {
        "format": FORMAT,
        "ganscape_version": ganscape.__version__,
        "kind": "generator",
        "architecture": cfg.g.arch,
        "network": to_dict(cfg.g),
        "spec": spec.to_json(),
        "weights": weights,
        "discriminator": {"architecture": cfg.d.arch, "network": to_dict(cfg.d)},
        "provenance": {"run": run_name, "step": step, "steps": cfg.train.steps, "data": to_dict(cfg.data),
                       "loss": cfg.loss, "evaluation": evaluation, "config": to_dict(cfg)},
    }


def run_model(run, step: int | None = None, raw: bool = False, device: str | torch.device = "cpu",
              with_discriminator: bool = False) -> tuple[PretrainedGenerator, nn.Module | None]:
    """A run's generator (the EMA unless ``raw``) at its newest checkpoint or ``step``, as a model."""
    from ganscape.runs.generator import load_run_generator
    from ganscape.training.snapshots import load_run_checkpoint

    G, cfg, step, spec = load_run_generator(run, step, ema=not raw, device=device)
    weights = "raw" if raw or cfg.train.ema == 0 else "ema"
    evaluation = None
    result = run.eval_result(step, raw=raw and cfg.train.ema > 0)
    if result.is_file():
        evaluation = json.loads(result.read_text())
    model = PretrainedGenerator(G, spec, model_config(cfg, spec, step, weights, run.path.name, evaluation),
                                str(run.path))
    D = None
    if with_discriminator:
        D = build_discriminator(cfg.d, spec)
        D.load_state_dict(load_run_checkpoint(run.checkpoint_file(step))["D"])
        D.to(device).eval()
    return model, D


def export_run(run, out: str | Path, step: int | None = None, raw: bool = False,
               with_discriminator: bool = False) -> Path:
    """Export a run's generator (and optionally D) as a model folder: ``ganscape export``."""
    out = check_model_folder(out)
    model, D = run_model(run, step, raw, with_discriminator=with_discriminator)
    return model.save_pretrained(out, D)


def check_model_folder(out: str | Path) -> Path:
    """``out`` as a place to write a model folder: new, empty, or an earlier model folder (overwritten)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / CONFIG).is_file():
        raise ConfigError(f"{out} is not empty and holds no exported model; choose another --out.")
    return out


# ---------------------------------------------------------------- loading


def _huggingface_hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError("loading from or publishing to the Hugging Face Hub needs huggingface_hub: "
                          "pip install huggingface_hub (or pip install 'ganscape[hub]').") from None
    return huggingface_hub


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} cannot be read as a model config: {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{path} is not a ganscape model config (format {found!r}, expected {FORMAT!r}).")
    return config


def _network(config: dict, where: Path) -> tuple[NetConfig, ModelSpec]:
    """The network settings and spec of a config.json, checked as a config is."""
    architecture = config.get("architecture")
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{where}: unknown architecture {architecture!r}; this ganscape knows "
                              f"{', '.join(sorted(ARCHITECTURES))} (a newer ganscape may know more).")
    try:
        network = from_dict(migrate_network(config.get("network") or {}), NetConfig, "network.")
    except ConfigError as err:
        raise CheckpointError(f"{where}: {err}") from None
    problems = validate(network, "network.")
    if problems or network.arch != architecture:
        raise CheckpointError(f"{where}: {'; '.join(problems) or 'network.arch differs from architecture'}.")
    return network, ModelSpec.from_json(config.get("spec"), str(where))


def _load_weights(module: nn.Module, path: Path) -> None:
    """A safetensors state dict into ``module``, strictly: missing or extra keys and wrong shapes are named."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; an exported model needs it.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # safetensors' own error for a torn or foreign file
        raise CheckpointError(f"{path} is corrupt or not a safetensors file: {err}") from None
    expected = module.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path} does not fit the network of its config.json: "
                              + "; ".join(part for part in (f"missing {', '.join(missing[:5])}" if missing else "",
                                                            f"unexpected {', '.join(extra[:5])}" if extra else "")
                                          if part) + ".")
    wrong = [key for key in expected if expected[key].shape != state[key].shape]
    if wrong:
        raise CheckpointError(f"{path}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the network needs "
                              f"{tuple(expected[wrong[0]].shape)}.")
    bad = [key for key, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{path} holds non-finite weights ({', '.join(bad[:3])}).")
    module.load_state_dict(state)


def load_folder(folder: Path, device: str | torch.device = "cpu") -> PretrainedGenerator:
    """An exported model folder."""
    config = _read_config(folder / CONFIG)
    network, spec = _network(config, folder / CONFIG)
    net = build_generator(network, spec)
    _load_weights(net, folder / WEIGHTS)
    return PretrainedGenerator(net.to(device).eval(), spec, config, str(folder))


def load_discriminator(folder: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator exported beside a generator (``--with-discriminator``)."""
    folder = Path(folder)
    config = _read_config(folder / CONFIG)
    if not (folder / DISCRIMINATOR).is_file():
        raise CheckpointError(f"{folder} holds no discriminator; export it with --with-discriminator.")
    network, spec = _network(config["discriminator"] | {"spec": config.get("spec")}, folder / CONFIG)
    D = build_discriminator(network, spec)
    _load_weights(D, folder / DISCRIMINATOR)
    return D.to(device).eval()


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """A Hub repository's files in the local cache (downloaded when online; HF_HUB_OFFLINE=1 reads the cache
    only)."""
    hub = _huggingface_hub()
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except Exception as err:  # network, missing repository, or nothing cached while offline
        offline = " (HF_HUB_OFFLINE is set: only the local cache was searched)" if os.environ.get("HF_HUB_OFFLINE") \
            else ""
        raise CheckpointError(f"cannot get the model {repo_id!r} from the Hugging Face Hub{offline}: "
                              f"{type(err).__name__}: {err}") from None


def load_generator(source: str | Path, device: str | torch.device = "cpu",
                   revision: str | None = None) -> PretrainedGenerator:
    """A trained generator from an exported model folder, a run directory (its newest checkpoint) or a Hugging
    Face Hub repository id ("owner/name"), without its data set."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / CONFIG).is_file():
            return load_folder(path, device)
        if is_run_dir(path):
            from ganscape.runs.rundir import RunDir

            return run_model(RunDir.open(path), device=device)[0]
        raise CheckpointError(f"{path} is neither an exported model ({CONFIG}, {WEIGHTS}) nor a run directory.")
    if REPO_ID.match(str(source)) and not path.exists():
        return load_folder(hub_snapshot(str(source), revision), device)
    raise CheckpointError(f"model {str(source)!r} not found: no folder at {path.absolute()}, and it is not a Hub "
                          "repository id (owner/name).")


def names_model(text: str) -> bool:
    """Whether ``text`` names a generator rather than images: a folder with an exported model or a run
    (config.json, config.yaml or checkpoints), or a Hub repository id that is no local path."""
    path = Path(text).expanduser()
    if path.is_dir():
        return (path / CONFIG).exists() or is_run_dir(path)
    return bool(REPO_ID.match(text)) and not path.exists()


def open_images(text: str, n: int, resolution: int = 0, seed: int = 0, truncation: float | None = None,
                device: str | torch.device = "cpu") -> ImageSet:
    """One side of ``ganscape fid``: ``n`` samples of the generator ``text`` names (:func:`names_model`), else
    the files or data set split that :func:`ganscape.metrics.compare.open_image_set` opens."""
    if names_model(text):
        return generated_images(load_generator(text, device), text, n, seed, truncation)
    return open_image_set(text, resolution)


# ---------------------------------------------------------------- the model card


def write_card(model: PretrainedGenerator, out: Path) -> None:
    """README.md with the Hub's metadata header, what the model is, its metrics and how to use it, and
    samples.png beside it."""
    from ganscape.plots import sample_picture, save_png

    config, spec = model.config, model.spec
    provenance = config.get("provenance") or {}
    if len(spec.shape) == 3:
        save_png(sample_picture(model.sample(64, seed=0), columns=8), out / SAMPLES)
    evaluation = provenance.get("evaluation") or {}
    values = evaluation.get("values") or {}
    protocol = evaluation.get("protocol") or {}
    rows = "\n".join(f"| {key} | {value:.6g} |" if isinstance(value, float) else f"| {key} | {value} |"
                     for key, value in values.items())
    reference = protocol.get("reference") or {}
    against = (f" against {reference['num_images']} images of the {reference.get('split', '')} split of "
               f"{reference['dataset']}" if "num_images" in reference else "")
    metrics = (f"| metric | value |\n|---|---|\n{rows}\n\n{protocol.get('num_samples', '?')} samples{against}, at step "
               f"{evaluation.get('step', '?')}; the full protocol is in config.json."
               if values else "No evaluation was recorded for this checkpoint.")
    classes = (f"{spec.num_classes} classes ({', '.join(spec.class_names[:10])}"
               f"{', ...' if spec.num_classes > 10 else ''})" if spec.num_classes else "unconditional")
    picture = f"![samples]({SAMPLES})\n\n" if len(spec.shape) == 3 else ""
    imported = provenance.get("imported")
    origin = (f"converted from {imported['from']} weights ({', '.join(imported['files'])})" if imported else
              f"trained with ganscape on {(provenance.get('data') or {}).get('name', 'unknown data')} for "
              f"{provenance.get('step', '?')} of {provenance.get('steps', '?')} steps, {provenance.get('loss', '?')} loss")
    summary = (f"A {config['architecture']} generator ({config['weights']} weights) {origin}. It makes samples of "
               f"shape {tuple(spec.shape)} from {spec.latent_dist} latents of {spec.latent_dim} dimensions, {classes}.")
    card = f"""---
library_name: ganscape
tags: [gan, generative-adversarial-network, ganscape, {config['architecture']}]
---

# {provenance.get('run', 'ganscape generator')}

{summary}

{picture}## Metrics

{metrics}

## Use

```python
import ganscape

model = ganscape.load_generator("PATH_OR_REPO_ID")
images = model.sample(16, seed=0)  # (16, C, H, W) in [-1, 1]
```

```bash
ganscape sample PATH_OR_REPO_ID --n 64 --seed 0 --out grid.png
```
"""
    (out / CARD).write_text(card)
