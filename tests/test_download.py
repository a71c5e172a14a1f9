"""Download-and-verify (store/download.py) and the data sets' explicit fetch, without any network: local
file:// URLs or a fake opener."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import pytest

from ganscape.data.download import fetch
from ganscape.errors import DataError
from ganscape.store.download import (DOWNLOAD_TIMEOUT, Digest, DigestMismatch, DownloadError, download,
                                     file_digest)

PAYLOAD = bytes(range(256)) * 5000  # more than one chunk of 1 MiB
# The standard test vectors of "abc" (RFC 1321 and FIPS 180-2), independent of hashlib.
ABC_MD5 = "900150983cd24fb0d6963f7d28e17f72"
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.fixture
def source(tmp_path):
    """A file served through a file:// URL."""
    path = tmp_path / "server" / "archive.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, length: int):
        super().__init__(body)
        self.headers = {"Content-Length": str(length)}


def test_file_digest_of_known_vectors(tmp_path):
    """Independent values: the published MD5 and SHA-256 of b"abc"."""
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_digest(path, "md5") == ABC_MD5
    assert file_digest(path, "sha256") == ABC_SHA256


def test_right_digest_is_accepted_and_written_atomically(tmp_path, source):
    """The MD5 expected is hashlib's of the served bytes; the file arrives whole, no temporary file stays."""
    dest = tmp_path / "downloads" / "archive.bin"
    expected = hashlib.md5(PAYLOAD).hexdigest()
    assert download(source.as_uri(), dest, Digest("md5", expected), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["archive.bin"]
    assert file_digest(dest, "md5") == expected


def test_sha256_prefix_is_accepted_as_torch_hub_names_files(tmp_path, source):
    """The first 8 hex digits of hashlib's SHA-256 of the served bytes suffice, as in torch.hub file names."""
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    dest = download(source.as_uri(), tmp_path / "w.pth", Digest("sha256", prefix), progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_wrong_digest_is_refused_and_nothing_is_kept(tmp_path, source, algorithm):
    """The error names the URL, the destination, the expected digest and the actual one (hashlib's)."""
    dest = tmp_path / "downloads" / "archive.bin"
    wrong = "0" * {"md5": 32, "sha256": 64}[algorithm]
    with pytest.raises(DigestMismatch) as err:
        download(source.as_uri(), dest, Digest(algorithm, wrong), progress=False)
    message = str(err.value)
    actual = hashlib.new(algorithm, PAYLOAD).hexdigest()
    assert source.as_uri() in message and str(dest) in message and wrong in message and actual in message
    assert list(dest.parent.iterdir()) == []


def test_prefix_mismatch_says_what_was_expected(tmp_path, source):
    with pytest.raises(DigestMismatch, match="SHA-256 [0-9a-f]{64}, expected one starting with 6726825d"):
        download(source.as_uri(), tmp_path / "w.pth", Digest("sha256", "6726825d"), progress=False)
    assert list(tmp_path.glob("*w.pth*")) == []


def test_offline_says_where_it_looked_and_how_to_provide_the_file(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append((url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "cache" / "file.bin"
    url = "https://example.invalid/file.bin"
    with pytest.raises(DownloadError) as err:
        download(url, dest, Digest("md5", ABC_MD5), progress=False)
    first, hint = str(err.value).splitlines()
    assert first.startswith(f"downloading {url} to {dest} failed: URLError")
    assert url in hint and str(dest) in hint and "Without network access" in hint
    assert calls == [(url, DOWNLOAD_TIMEOUT)] and list(dest.parent.iterdir()) == []
    # A caller's own instructions replace the generic ones.
    with pytest.raises(DownloadError) as err:
        download(url, dest, Digest("md5", ABC_MD5), manual="copy it from the lab's share", progress=False)
    assert str(err.value).endswith("\ncopy it from the lab's share") and err.value.reason.startswith("URLError")


def test_truncated_download_fails_and_keeps_nothing(tmp_path, monkeypatch):
    """A body shorter than its Content-Length is a failed download even before the digest is checked."""
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"abc", 10))
    with pytest.raises(DownloadError, match="after 3 of 10 bytes"):
        download("https://example.invalid/abc", tmp_path / "abc", Digest("md5", ABC_MD5), progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"abc", 3))
    assert download("https://example.invalid/abc", tmp_path / "abc", Digest("md5", ABC_MD5),
                    progress=False).read_bytes() == b"abc"


def test_bad_digests_name_the_valid_choices():
    with pytest.raises(ValueError, match="md5, sha256"):
        Digest("sha1", ABC_MD5)
    with pytest.raises(ValueError, match="1 to 32 lowercase hex digits"):
        Digest("md5", ABC_MD5 + "0")
    with pytest.raises(ValueError, match="hex digits"):
        Digest("sha256", "XYZ")


def test_data_fetch_reuses_a_verified_archive_and_refuses_a_wrong_one(tmp_path, source, capsys):
    """The data sets' explicit download: DataError naming MD5 and nothing kept on a mismatch, then a
    download, then a reuse without download when the archive there has the right MD5 (hashlib's)."""
    dest = tmp_path / "data" / "archive.bin"
    with pytest.raises(DataError, match="MD5 .* expected 0{32}"):
        fetch(source.as_uri(), dest, "0" * 32)
    assert list(dest.parent.iterdir()) == []
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    assert fetch(source.as_uri(), dest, md5) == dest and dest.read_bytes() == PAYLOAD
    assert "downloaded" in capsys.readouterr().out
    source.unlink()  # a second fetch must not reach the URL
    assert fetch(source.as_uri(), dest, md5) == dest
    assert "already there" in capsys.readouterr().out
