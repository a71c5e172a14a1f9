"""Images in an LMDB database, as in LSUN's export (key: image id, value: encoded webp/jpeg/png).

Needs the optional ``lmdb`` package (``pip install lmdb`` or ``pip install 'ganscape[lmdb]'``).
``data.root`` is the database folder (LSUN's ``bedroom_train_lmdb``, holding ``data.mdb``) or
the ``.mdb`` file itself. Images are resized (short side) and centre-cropped to
``data.resolution``, or with ``data.crop=center`` centre-cropped without rescaling, as the GAN
Landscape study does for LSUN (its preset sets it). They are decoded per batch unless the decoded
set fits in memory.

Split: ``data.test_size`` images are held out as the test split, chosen by the same fixed
pseudo-random order of the keys as ``image_folder`` uses for file names. (The Landscape study
holds out LSUN's last shard instead; a key-hash choice needs no notion of shards and spreads
the held-out images over the whole database.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

from ganscape.data.images import held_out, load_images, require_resolution, require_root
from ganscape.errors import DataError


def import_lmdb():
    try:
        import lmdb
    except ImportError:
        raise DataError("data.name=lmdb needs the lmdb package: pip install lmdb "
                        "(or pip install 'ganscape[lmdb]').") from None
    return lmdb


def open_env(path: Path):
    """A read-only LMDB environment: no lock file (the data is not written while read), no readahead
    (batches read random records)."""
    lmdb = import_lmdb()
    try:
        return lmdb.open(str(path), subdir=path.is_dir(), readonly=True, lock=False, readahead=False,
                         meminit=False)
    except lmdb.Error as err:
        raise DataError(f"cannot open the LMDB database {path}: {err}") from None


_ENVIRONMENTS: dict[tuple[int, Path], object] = {}  # (process, database) -> its one open environment
_ENVIRONMENTS_LOCK = threading.Lock()


def shared_env(path: Path):
    """The process's one environment of the database at ``path``: LMDB forbids opening a database twice in
    a process (a training split and a test split read the same file), and a forked child must not
    reuse its parent's handle, so each process opens it once, on first use."""
    where = Path(path).resolve()
    if where.is_file() and where.name == "data.mdb":  # the folder and its data.mdb are one database
        where = where.parent
    key = (os.getpid(), where)
    with _ENVIRONMENTS_LOCK:
        if key not in _ENVIRONMENTS:
            _ENVIRONMENTS[key] = open_env(where)
        return _ENVIRONMENTS[key]


class LmdbSource:
    """Records of an LMDB database by key; threads share the process's environment with one read
    transaction per record."""

    def __init__(self, path: Path, keys: Sequence[bytes]):
        self.path = Path(path)
        self.keys = list(keys)
        self.description = str(self.path)

    def __len__(self) -> int:
        return len(self.keys)

    def _environment(self):
        return shared_env(self.path)

    def read(self, index: int) -> bytes:
        lmdb = import_lmdb()
        try:
            with self._environment().begin(buffers=False) as txn:
                value = txn.get(self.keys[index])
        except lmdb.Error as err:
            raise DataError(f"cannot read {self.where(index)}: {err}") from None
        if value is None:
            raise DataError(f"{self.where(index)} is missing: was the database changed while in use?")
        return value

    def where(self, index: int) -> str:
        return f"{self.path} (key {self.keys[index]!r})"


def read_keys(path: Path) -> list[bytes]:
    """All keys, in the database's (byte-wise sorted) order."""
    with shared_env(path).begin() as txn:
        return list(txn.cursor().iternext(keys=True, values=False))


def lmdb_images(cfg):
    """The images of an LMDB database, without labels, minus or only the held-out test split."""
    import_lmdb()
    path = require_root(cfg, "lmdb", "data/lsun/bedroom_train_lmdb")
    resolution = require_resolution(cfg, "lmdb")
    keys = read_keys(path)
    if not keys:
        raise DataError(f"the LMDB database {path} is empty.")
    keep = held_out(keys, cfg.test_size, cfg.split, f"lmdb {path}")
    return load_images(LmdbSource(path, [keys[i] for i in keep]), resolution, name="lmdb", flip=cfg.flip,
                       crop=cfg.crop)
