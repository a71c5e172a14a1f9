"""Download a file and verify its checksum: the one place ganscape fetches files over the network.

:func:`download` streams a URL into a temporary file beside its destination, with a progress bar,
hashes what arrives and renames the file into place only when the digest is the expected one, so an
interrupted, truncated or foreign download never leaves a file under the final name. A wrong digest
raises :class:`DigestMismatch` naming the file and both digests; a network, server or disk failure
raises :class:`DownloadError`, which says where it looked and how to provide the file by hand.

Callers decide when to download and what to do with a file already there (data sets: explicitly, with
``ganscape data download NAME``; the FID Inception weights: see ``metrics/inception.py``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ganscape.errors import GanscapeError
from ganscape.jsonio import new_file_mode

DOWNLOAD_TIMEOUT = 30  # seconds without an answer before a download counts as failed
CHUNK = 1 << 20
# Hex digits of a full digest per algorithm; a shorter expected value is a prefix (torch.hub's file names).
DIGEST_LENGTHS = {"md5": 32, "sha256": 64}
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError)


class DownloadError(GanscapeError):
    """The file could not be fetched (offline, server or disk failure); never raised for a wrong digest."""

    def __init__(self, url: str, dest: Path, reason: str, manual: str = ""):
        self.url, self.dest, self.reason = url, Path(dest), reason
        self.summary = f"downloading {url} to {dest} failed: {reason}"
        super().__init__(f"{self.summary}\n{manual or fetch_by_hand(url, dest)}")


class DigestMismatch(GanscapeError):
    """A downloaded or found file is not the expected one: its digest differs."""


def fetch_by_hand(url: str, dest: Path) -> str:
    """How to provide a file without network access."""
    return f"Without network access, fetch {url} on a machine that has it and put the file at {dest}."


@dataclass(frozen=True)
class Digest:
    """An expected checksum: ``algorithm`` (md5 or sha256) and the hex digest, or its first digits."""

    algorithm: str
    expected: str

    def __post_init__(self):
        if self.algorithm not in DIGEST_LENGTHS:
            raise ValueError(f"unknown digest algorithm {self.algorithm!r}; choose one of {', '.join(DIGEST_LENGTHS)}")
        full = DIGEST_LENGTHS[self.algorithm]
        if not 0 < len(self.expected) <= full or any(c not in "0123456789abcdef" for c in self.expected):
            raise ValueError(f"an expected {self.algorithm} digest is 1 to {full} lowercase hex digits, "
                             f"not {self.expected!r}")

    @property
    def name(self) -> str:
        return {"md5": "MD5", "sha256": "SHA-256"}[self.algorithm]

    def matches(self, actual: str) -> bool:
        return actual.startswith(self.expected)

    def describe(self) -> str:
        """The expected value as an error names it."""
        if len(self.expected) == DIGEST_LENGTHS[self.algorithm]:
            return self.expected
        return f"one starting with {self.expected}"

    def mismatch(self, what: str, actual: str, outcome: str) -> DigestMismatch:
        """The error for a file (``what``) whose digest is ``actual``; ``outcome`` says what became of it."""
        return DigestMismatch(f"{what} has {self.name} {actual}, expected {self.describe()}: it is corrupt or not "
                              f"the expected file; {outcome}.")


# Digests of the files hashed in this process, by (path, size, modification time, algorithm): a large file
# that several evaluations check is read once (again when it changes).
_digest_memo: dict[tuple[str, int, int, str], str] = {}


def _memo_key(path: Path, algorithm: str) -> tuple[str, int, int, str]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns, algorithm


def file_digest(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, computed once per process while its size and modification time stay."""
    path = Path(path)
    key = _memo_key(path, algorithm)
    if key not in _digest_memo:
        digest = getattr(hashlib, algorithm)()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        _digest_memo[key] = digest.hexdigest()
    return _digest_memo[key]


def file_sha256(path) -> str:
    """:func:`file_digest` with SHA-256."""
    return file_digest(path, "sha256")


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    if value is None and hasattr(response, "getheader"):
        value = response.getheader("Content-Length")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _stream(url: str, out, digest, label: str, progress: bool) -> str | None:
    """Copy the body of ``url`` into the open file ``out``, feeding ``digest``; why it is incomplete, or None.

    Raises the network's errors."""
    response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT)
    try:
        total, size = _content_length(response), 0
        with tqdm(total=total, desc=f"downloading {label}", unit="B", unit_scale=True, unit_divisor=1024,
                  dynamic_ncols=True, disable=None if progress else True) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    if total is not None and size != total:
        return f"the connection ended after {size} of {total} bytes"
    return None


def download(url: str, dest, digest: Digest, manual: str = "", progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, kept only when its digest matches; ``dest``.

    The bytes go to a temporary ``.part`` file in ``dest``'s folder, renamed to ``dest`` after the check.
    Raises :class:`DigestMismatch` (naming the URL, ``dest`` and both digests) or :class:`DownloadError`
    (ending with ``manual``, else :func:`fetch_by_hand`); either way nothing is left in the folder.
    ``progress=False``: no progress bar (else one on a terminal).
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise DownloadError(url, dest, f"cannot write into {dest.parent}: {type(err).__name__}: {err}",
                            manual) from None
    temporary = Path(name)
    try:
        hasher = getattr(hashlib, digest.algorithm)()
        try:
            with os.fdopen(fd, "wb") as out:
                incomplete = _stream(url, out, hasher, dest.name, progress)
                out.flush()
                os.fsync(out.fileno())
        except NETWORK_ERRORS as err:
            raise DownloadError(url, dest, f"{type(err).__name__}: {err}", manual) from None
        if incomplete:
            raise DownloadError(url, dest, incomplete, manual)
        actual = hasher.hexdigest()
        if not digest.matches(actual):
            raise digest.mismatch(f"the file downloaded from {url}", actual, f"it was deleted and nothing was kept "
                                  f"at {dest}")
        os.chmod(temporary, new_file_mode())  # mkstemp's file is private (0600)
        os.replace(temporary, dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _digest_memo[_memo_key(dest, digest.algorithm)] = actual
    return dest
