"""CIFAR-10 from its official python-version archive, read without extracting it.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1`` ... ``data_batch_5`` (the
50,000 training images) and ``test_batch`` (10,000 test images). Each batch is a pickled dict with
``b"data"``, uint8 (N, 3072): per image the 32x32 red, green and blue planes, each row-major, and
``b"labels"``, N class indices in 0..9.

A pickle can run any code when loaded, so the batches are read with an unpickler that resolves
only the few numpy constructors an array needs: a crafted file is refused instead of executed.

``data.root`` (default ``data/cifar10``, relative to the working directory) may be the archive,
its extracted ``cifar-10-batches-py`` folder, or a folder holding either. Nothing is downloaded
implicitly; ``ganscape data download cifar10`` fetches the archive and checks its MD5.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ganscape.data.download import fetch
from ganscape.data.images import InMemoryImages
from ganscape.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
DEFAULT_ROOT = "data/cifar10"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

# The only globals a batch may name: numpy's array and dtype reconstruction (under its numpy 1 and
# numpy 2 module names; numpy's own pickling gives the function), and the byte-string constructors
# that pickles written by Python 3 with protocol 2 use.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    ("builtins", "bytes"): bytes,
}


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside SAFE_GLOBALS, so loading runs no foreign code."""

    def find_class(self, module: str, name: str):
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name} (a CIFAR-10 batch "
                                         "needs only numpy arrays)") from None


def parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""
    try:
        batch = BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            ImportError) as err:
        raise DataError(f"{where} is not a readable CIFAR-10 batch: {err}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{where} is not a CIFAR-10 batch: expected a dict with b'data' and b'labels'.")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}: b'data' must be uint8 (N, 3072), got {getattr(data, 'dtype', type(data))} "
                        f"{getattr(data, 'shape', '')}.")
    in_range = labels.dtype.kind in "iu" and (labels.size == 0 or 0 <= labels.min() <= labels.max() <= 9)
    if labels.shape != (len(data),) or not in_range:
        raise DataError(f"{where}: b'labels' must be {len(data)} class indices in 0..9.")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def locate(root: str) -> Path:
    """The archive or batch folder that ``root`` names or contains; a DataError says where it looked."""
    base = Path(root or DEFAULT_ROOT).expanduser()
    candidates = [base, base / FOLDER, base / ARCHIVE]
    for path in candidates:
        if path.is_file() or (path.is_dir() and any((path / name).is_file() for names in BATCHES.values()
                                                    for name in names)):
            return path
    tried = "\n  ".join(str(p.absolute()) for p in candidates)
    raise DataError(f"CIFAR-10 not found. Looked for the archive {ARCHIVE} or its folder {FOLDER} at:\n  {tried}\n"
                    f"Download it with: ganscape data download cifar10"
                    f"{'' if base == Path(DEFAULT_ROOT) else f' --root {base}'}\n"
                    f"or fetch {CIFAR10_URL} yourself, and point to it with data.root=PATH.")


MAX_BATCH_BYTES = 64 << 20  # a batch of 10,000 images is 30.7 MB


def read_archive(path: Path, names: list[str]) -> dict[str, bytes]:
    """The named batch files from the tar.gz, in one pass over it (gzip cannot seek back cheaply)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in names:
                    if member.size > MAX_BATCH_BYTES:
                        raise DataError(f"the CIFAR-10 archive {path} holds {name} of {member.size:,} bytes; a batch "
                                        "file has 30,730,000 or so: the archive is corrupt.")
                    found[name] = tar.extractfile(member).read()
                    if len(found) == len(names):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read the CIFAR-10 archive {path}: {err}") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"the CIFAR-10 archive {path} lacks {', '.join(missing)}; is it cifar-10-python.tar.gz?")
    return found


def read_folder(path: Path, names: list[str]) -> dict[str, bytes]:
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        raise DataError(f"the CIFAR-10 folder {path} lacks {', '.join(missing)}.")
    large = [name for name in names if (path / name).stat().st_size > MAX_BATCH_BYTES]
    if large:
        raise DataError(f"the CIFAR-10 folder {path} holds {large[0]} of {(path / large[0]).stat().st_size:,} bytes; "
                        "a batch file has 30,730,000 or so: the folder is corrupt.")
    return {name: (path / name).read_bytes() for name in names}


CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar10(cfg) -> InMemoryImages:
    """CIFAR-10's train (50,000) or test (10,000) images, 3x32x32, 10 classes, held in memory."""
    path = locate(cfg.root)
    names = BATCHES[cfg.split]
    raw = read_archive(path, names) if path.is_file() else read_folder(path, names)
    batches = [parse_batch(raw[name], f"{path}: {name}") for name in names]
    images = torch.from_numpy(np.concatenate([images for images, _ in batches]))
    labels = torch.from_numpy(np.concatenate([labels for _, labels in batches]))
    data = InMemoryImages(images, labels, name="cifar10", num_classes=10, resolution=cfg.resolution,
                          flip=cfg.flip, source=str(path))
    data.class_names = CLASS_NAMES
    return data


def download(root: str = "") -> Path:
    """Fetch the official archive into ``root`` (default data/cifar10), checking its MD5."""
    return fetch(CIFAR10_URL, Path(root or DEFAULT_ROOT).expanduser() / ARCHIVE, CIFAR10_MD5)
