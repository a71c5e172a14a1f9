"""Weights trained elsewhere, converted into ganscape models: ``ganscape import``.

``biggan-pytorch`` reads the state dicts that BigGAN-PyTorch (ajbrock/BigGAN-PyTorch) saves as
``G.pth``, ``G_ema.pth`` and ``D.pth`` and writes an exported model folder (``ganscape.hub``) whose
generator gives the same images for the same z, class and truncation. The networks are built from
a ganscape config that states the reference's settings (e.g. the ``biggan_imagenet128`` preset for
``launch_BigGAN_bs256x8.sh``); every key of the file must then have its place in the network, and
every place a key, or the import is refused, naming the keys.

Files are read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.

The names differ only inside layers, so the conversion is a rename per module kind:

* spectral norm: the reference keeps ``u0`` (1, out) and ``sv0`` (the last sigma, only logged); here
  ``u`` (out,). ``sv0`` is checked for and dropped.
* conditional batch norm: ``stored_mean``/``stored_var`` are the running statistics of its ``norm``;
  G's last batch norm calls its affine parameters ``gain``/``bias`` (here ``weight``/``bias``).
* self-attention: ``theta``, ``phi``, ``g``, ``o`` are ``query``, ``key``, ``value``, ``out``.
* ``num_batches_tracked`` does not exist there; it is set to 0 (it is used only when momentum is None).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganscape.errors import CheckpointError, ConfigError
from ganscape.nets import ModelSpec, build_discriminator, build_generator
from ganscape.nets.attention import SelfAttention
from ganscape.nets.conditional_norm import ConditionalBatchNorm2d
from ganscape.nets.layers import SpectralNorm
from ganscape.store.checkpoint import read_torch_file

ATTENTION_NAMES = {"query": "theta", "key": "phi", "value": "g", "out": "o"}
STATISTICS_NAMES = {"running_mean": "stored_mean", "running_var": "stored_var"}
FILLED = object()  # a local entry the reference does not have: keep the network's own value


def _local_name(module: nn.Module, parent: nn.Module | None, child: str, entry: str):
    """The reference's name for ``entry`` of ``module`` (whose name in ``parent`` is ``child``), ``FILLED``
    for entries it lacks."""
    if entry == "num_batches_tracked":
        return FILLED
    if isinstance(parent, SelfAttention) and child in ATTENTION_NAMES:
        child = ATTENTION_NAMES[child]
    if isinstance(parent, ConditionalBatchNorm2d) and child == "norm":
        return STATISTICS_NAMES[entry]  # the statistics sit on the conditional norm itself
    if isinstance(module, nn.BatchNorm2d) and not isinstance(parent, ConditionalBatchNorm2d):
        entry = {"weight": "gain", **STATISTICS_NAMES}.get(entry, entry)
    if isinstance(module, SpectralNorm) and entry == "u":
        entry = "u0"
    return f"{child}.{entry}" if child else entry


def reference_names(net: nn.Module) -> dict[str, object]:
    """For every state-dict key of ``net``: the reference's key, or ``FILLED``."""
    modules = dict(net.named_modules())
    names = {}
    for key in net.state_dict():
        path, _, entry = key.rpartition(".")
        parent_path, _, child = path.rpartition(".")
        parent = modules.get(parent_path) if path else None
        local = _local_name(modules[path], parent, child, entry)
        names[key] = local if local is FILLED or not parent_path else f"{parent_path}.{local}"
    return names


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict saved with torch.save, read without executing anything in it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give the path of a state dict that BigGAN-PyTorch saved "
                          "(its weights folder holds G.pth, G_ema.pth and D.pth).")
    state = read_torch_file(path, "a PyTorch state dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    return state


def convert_state_dict(net: nn.Module, state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """``state`` (the reference's names) as a state dict of ``net``; missing or extra keys and wrong shapes
    are refused with their reference names."""
    names = reference_names(net)
    own = net.state_dict()
    converted, missing, wrong = {}, [], []
    for key, name in names.items():
        if name is FILLED:
            converted[key] = own[key].clone()
            continue
        if name not in state:
            missing.append(name)
            continue
        value = state[name]
        if value.numel() == own[key].numel() and value.dim() == own[key].dim() + 1 and name.endswith(".u0"):
            value = value.reshape(own[key].shape)  # the reference's u is a (1, out) row
        if value.shape != own[key].shape:
            wrong.append(f"{name} {tuple(value.shape)} where the network needs {tuple(own[key].shape)}")
            continue
        converted[key] = value.to(own[key].dtype)
    used = {name for name in names.values() if name is not FILLED}
    logged = {name[:-len("u0")] + "sv0" for name in used if name.endswith(".u0")}
    missing += sorted(logged - set(state))
    extra = sorted(set(state) - used - logged)
    problems = [f"missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}" if missing else "",
                f"unexpected {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}" if extra else "",
                f"wrong shape: {'; '.join(wrong[:3])}" if wrong else ""]
    if any(problems):
        raise CheckpointError(f"{where} does not fit the network of the given config ("
                              + "; ".join(p for p in problems if p)
                              + "). Check that the config states the settings the weights were trained with "
                                "(width, resolution, classes, attention, shared embedding, hierarchical z, depth).")
    return converted


def load_reference_weights(net: nn.Module, path: str | Path) -> nn.Module:
    """``net`` with the weights of the BigGAN-PyTorch state dict at ``path``."""
    net.load_state_dict(convert_state_dict(net, read_state_dict(path), str(path)))
    return net


def import_biggan_pytorch(generator: str | Path, out: str | Path, preset: str | None = None, overrides=(),
                          ema: str | Path | None = None, discriminator: str | Path | None = None,
                          resolution: int = 0, classes: int = 1000) -> Path:
    """Convert BigGAN-PyTorch's ``G.pth`` (and ``G_ema.pth``, ``D.pth``) into an exported model folder ``out``.

    The networks are the ``g`` and ``d`` of the config ``preset`` + ``overrides``; the images have
    ``resolution`` pixels (default: the config's ``data.resolution``) and 3 channels, and there are ``classes``
    classes. The exported generator is the EMA one when ``ema`` is given (the weights BigGAN samples with),
    after ``generator`` has been checked to fit too.
    """
    from ganscape.config import load_config
    from ganscape.hub import PretrainedGenerator, check_model_folder, model_config

    out = check_model_folder(out)
    cfg = load_config(preset, list(overrides))
    resolution = resolution or cfg.data.resolution
    if not resolution:
        raise ConfigError("give the image size of the weights with --resolution (the config sets no data.resolution).")
    spec = ModelSpec((3, resolution, resolution), classes, latent_dim=cfg.latent.dim, latent_dist=cfg.latent.dist)
    G = load_reference_weights(build_generator(cfg.g, spec), generator)
    if ema is not None:
        G = load_reference_weights(build_generator(cfg.g, spec), ema)
    D = load_reference_weights(build_discriminator(cfg.d, spec), discriminator) if discriminator is not None else None
    files = [Path(f).name for f in (generator, ema, discriminator) if f is not None]
    config = model_config(cfg, spec, 0, "ema" if ema is not None else "raw", f"imported {Path(ema or generator).name}",
                          None)
    config["provenance"]["imported"] = {"from": "BigGAN-PyTorch", "files": files}
    return PretrainedGenerator(G.eval(), spec, config, str(out)).save_pretrained(out, D)
