"""Data set archives, fetched only on request (``ganscape data download NAME``): data sets never download.

The download itself (atomic, checksum-verified) is :func:`ganscape.store.download.download`; here a
verified archive already in place is reused, and failures become DataErrors.
"""

from __future__ import annotations

from pathlib import Path

from ganscape.errors import DataError
from ganscape.store.download import Digest, DigestMismatch, DownloadError, download, file_digest


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is already there."""
    digest = Digest("md5", md5)
    if dest.is_file() and digest.matches(file_digest(dest, "md5")):
        print(f"{dest} is already there (MD5 checked).")
        return dest
    try:
        download(url, dest, digest)
    except DownloadError as err:  # it says how to provide the file by hand
        raise DataError(str(err)) from None
    except DigestMismatch as err:
        raise DataError(f"{err} Try again, or fetch {url} by other means and put it at {dest}.") from None
    print(f"downloaded {dest} (MD5 checked).")
    return dest
