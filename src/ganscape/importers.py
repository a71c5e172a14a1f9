"""Weights trained elsewhere, converted into ganscape models: ``ganscape import`` (BigGAN-PyTorch, GAN_stability).

``biggan-pytorch`` reads the state dicts that BigGAN-PyTorch (ajbrock/BigGAN-PyTorch) saves as
``G.pth``, ``G_ema.pth`` and ``D.pth`` and writes an exported model folder (``ganscape.hub``) whose
generator gives the same images for the same z, class and truncation. The networks are built from
a ganscape config that states the reference's settings (e.g. the ``biggan_imagenet128`` preset for
``launch_BigGAN_bs256x8.sh``); every key of the file must then have its place in the network, and
every place a key, or the import is refused, naming the keys.

``gan-stability`` reads a checkpoint that LMescheder/GAN_stability's ``CheckpointIO`` saved (``model.pt``: the
state dicts ``generator``, ``discriminator`` and the moving average ``generator_test``, under
``nn.DataParallel``'s ``module.`` prefix) into the ``gs_resnet*`` networks (``ganscape.nets.gan_stability``),
whose keys are the reference's but for the blocks' names.

Files are read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.

BigGAN-PyTorch's names differ only inside layers, so the conversion is a rename per module kind:

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
    refuse_misfit(where, missing, extra, wrong,
                  "width, resolution, classes, attention, shared embedding, hierarchical z, depth")
    return converted


def refuse_misfit(where: str, missing: list[str], extra: list[str], wrong: list[str], settings: str) -> None:
    """Refuse a state dict that does not fit its network, naming (some of) the missing and unexpected keys and
    the keys of the wrong shape; ``settings`` are those the config must state as the weights were trained."""
    problems = [f"missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}" if missing else "",
                f"unexpected {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}" if extra else "",
                f"wrong shape: {'; '.join(wrong[:3])}" if wrong else ""]
    if any(problems):
        raise CheckpointError(f"{where} does not fit the network of the given config ("
                              + "; ".join(p for p in problems if p)
                              + f"). Check that the config states the settings the weights were trained with "
                                f"({settings}).")


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


# ---------------------------------------------------------------- GAN_stability

GAN_STABILITY_NETS = ("generator", "discriminator", "generator_test")
PARALLEL_PREFIX = "module."  # what nn.DataParallel, which GAN_stability's train.py wraps its nets in, adds


def _plain_state(state, path: Path, name: str) -> dict[str, torch.Tensor]:
    """The state dict ``name`` of a GAN_stability checkpoint, without ``nn.DataParallel``'s prefix."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: its '{name}' is a {type(state).__name__}, not a state dict of tensors.")
    return {key.removeprefix(PARALLEL_PREFIX): value for key, value in state.items()}


def read_gan_stability_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """The networks' state dicts in a checkpoint that GAN_stability's ``CheckpointIO.save`` wrote (``generator``,
    ``discriminator`` and, when it trained a moving average, ``generator_test``), with ``nn.DataParallel``'s
    ``module.`` prefix removed, and its iteration ``it`` (0 when it has none). The optimizers' states are not
    read. Nothing in the file is executed (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give a checkpoint that GAN_stability saved (e.g. its "
                          "output/<config>/chkpts/model.pt, or a pretrained model file of its configs/pretrained).")
    saved = read_torch_file(path, "a GAN_stability checkpoint")
    if not isinstance(saved, dict) or not {"generator", "discriminator"} <= set(saved):
        found = f"a dict of {', '.join(map(str, list(saved)[:6]))}" if isinstance(saved, dict) else \
            f"a {type(saved).__name__}"
        raise CheckpointError(f"{path} is not a GAN_stability checkpoint: it holds {found}, where GAN_stability "
                              "saves a dict with the state dicts 'generator' and 'discriminator' (and "
                              "'generator_test').")
    nets = {name: _plain_state(saved[name], path, name) for name in GAN_STABILITY_NETS if name in saved}
    it = saved.get("it")
    return nets, it if isinstance(it, int) and it >= 0 else 0


def gan_stability_names(net: nn.Module) -> dict[str, str]:
    """For every state-dict key of a ``gs_resnet*`` network: the reference's key. They differ in the blocks only:
    ``blocks.<i>.`` here is the reference's name of the i-th block (``net.reference_names``)."""
    names = {}
    for key in net.state_dict():
        head, _, rest = key.partition(".")
        index, _, entry = rest.partition(".")
        names[key] = f"{net.reference_names[int(index)]}.{entry}" if head == "blocks" else key
    return names


def convert_gan_stability_state(net: nn.Module, state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """``state`` (the reference's names, without ``module.``) as a state dict of ``net``; missing or extra keys
    and wrong shapes are refused with their reference names."""
    names = gan_stability_names(net)
    own = net.state_dict()
    missing = [name for name in names.values() if name not in state]
    extra = sorted(set(state) - set(names.values()))
    wrong = [f"{name} {tuple(state[name].shape)} where the network needs {tuple(own[key].shape)}"
             for key, name in names.items() if name in state and state[name].shape != own[key].shape]
    refuse_misfit(where, missing, extra, wrong, "arch, width = nfilter, settings.nfilter_max, settings.embed_size, "
                                                "resolution, classes")
    return {key: state[name].to(own[key].dtype) for key, name in names.items()}


def _check_gan_stability_config(cfg) -> None:
    from ganscape.nets.gan_stability import FAMILIES

    for side, net in (("g", cfg.g), ("d", cfg.d)):
        if net.arch not in FAMILIES:
            raise ConfigError(f"GAN_stability weights are for the networks {', '.join(FAMILIES)}; the config has "
                              f"{side}.arch={net.arch}. Give a GAN_stability preset or set {side}.arch.")
        if net.norm != "none":
            raise ConfigError(f"GAN_stability's networks have no normalization; the config has {side}.norm={net.norm}."
                              f" Import with {side}.norm=none.")


def _labels_of(state: dict[str, torch.Tensor], path: Path) -> int:
    """The classes of a GAN_stability generator: the rows of its label embedding (one row: unconditional, 0)."""
    if "embedding.weight" not in state:
        raise CheckpointError(f"{path}: its generator has no embedding.weight; give --classes.")
    rows = state["embedding.weight"].shape[0]
    return 0 if rows == 1 else rows


def import_gan_stability(checkpoint: str | Path, out: str | Path, preset: str | None = None, overrides=(),
                         raw: bool = False, resolution: int = 0, classes: int | None = None) -> Path:
    """Convert a GAN_stability checkpoint (``model.pt``) into an exported model folder ``out``.

    The networks are the ``g`` and ``d`` of the config ``preset`` + ``overrides`` (``gs_resnet*`` architectures
    with norm=none, and the reference config's nfilter, nfilter_max, embed_size and z dimension); the images
    have ``resolution`` pixels (default: the config's ``data.resolution``) and 3 channels. ``classes`` defaults
    to the rows of the checkpoint's label embedding (one row: unconditional). The exported generator is the
    moving average (``generator_test``) when the checkpoint has one and ``raw`` is false, else ``generator``;
    every network in the file must fit, and D is exported beside G.
    """
    from ganscape.config import load_config
    from ganscape.hub import PretrainedGenerator, check_model_folder, model_config

    out = check_model_folder(out)
    cfg = load_config(preset, list(overrides))
    _check_gan_stability_config(cfg)
    resolution = resolution or cfg.data.resolution
    if not resolution:
        raise ConfigError("give the image size of the weights with --resolution (the config sets no data.resolution).")
    path = Path(checkpoint)
    nets, it = read_gan_stability_checkpoint(path)
    classes = _labels_of(nets["generator"], path) if classes is None else classes
    spec = ModelSpec((3, resolution, resolution), classes, latent_dim=cfg.latent.dim, latent_dist=cfg.latent.dist)
    loaded = {}
    for name, state in nets.items():
        net = build_discriminator(cfg.d, spec) if name == "discriminator" else build_generator(cfg.g, spec)
        net.load_state_dict(convert_gan_stability_state(net, state, f"{path} ('{name}')"))
        loaded[name] = net.eval()
    chosen = "generator" if raw or "generator_test" not in loaded else "generator_test"
    config = model_config(cfg, spec, it, "ema" if chosen == "generator_test" else "raw",
                          f"imported {path.name}", None)
    config["provenance"]["imported"] = {"from": "GAN_stability", "files": [path.name], "generator": chosen, "it": it}
    return PretrainedGenerator(loaded[chosen], spec, config, str(out)).save_pretrained(out, loaded["discriminator"])
