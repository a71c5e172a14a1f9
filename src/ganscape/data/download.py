"""Explicit downloads (``ganscape data download NAME``): nothing in ganscape downloads implicitly.

A download streams into a temporary file next to its destination, checks the MD5 of what arrived
and only then renames it into place, so an interrupted or corrupted download never leaves a file
that looks like the real one.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ganscape.errors import DataError

CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is already there."""
    if dest.is_file() and file_md5(dest) == md5:
        print(f"{dest} is already there (MD5 checked).")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url) as response, open(part, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, disable=None) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError) as err:
        part.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {err}. Fetch it by other means and put it at {dest}.") from None
    if digest.hexdigest() != md5:
        part.unlink()
        raise DataError(f"the download from {url} has MD5 {digest.hexdigest()}, expected {md5}: it is corrupt or "
                        f"not the expected file, so it was not kept. Try again, or fetch it by other means and put "
                        f"it at {dest}.")
    os.replace(part, dest)
    print(f"downloaded {dest} (MD5 checked).")
    return dest
