"""evaluate(): one feature pass for all metrics, the reference cache, the protocol, and `ganscape eval`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ganscape.cli import main
from ganscape.config import DataConfig, MetricsConfig, from_dict, to_dict
from ganscape.data import DATASETS
from ganscape.data.images import InMemoryImages
from ganscape.errors import CheckpointError, ConfigError
from ganscape.metrics import reference as ref
from ganscape.metrics.evaluate import Evaluator, evaluate, generated_batches
from ganscape.metrics.features import inception_input, to_uint8
from ganscape.metrics.inception import FIDInception, file_sha256
from ganscape.runs import RunDir
from random_inception import random_fid_inception_state, smooth_images


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised FID Inception in pytorch-fid's file format (features are finite and varied)."""
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(random_fid_inception_state(), path)
    return path


@pytest.fixture
def settings(weights, tmp_path):
    return from_dict({"inception_weights": str(weights), "cache_dir": str(tmp_path / "cache"), "batch_size": 8,
                      "kid": {"subsets": 3, "subset_size": 6}, "msssim": {"batch": 4, "batches": 2},
                      "recon": {"images": 4, "steps": 2}}, MetricsConfig)


def tiny_images(n: int = 12, seed: int = 0) -> InMemoryImages:
    return InMemoryImages(smooth_images(n, 8, 8, seed), name="tiny")


class Replay(nn.Module):
    """A 'generator' that emits given images in order, whatever the latent: its FID to them is 0."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = images
        self.offset = 0
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, z, labels=None):
        out = self.images[self.offset:self.offset + len(z)] + 0 * self.anchor
        self.offset += len(z)
        return out


class Blob(nn.Module):
    """A tiny latent-to-image map, so that reconstruction has something to optimise."""

    def __init__(self, latent_dim: int = 4):
        super().__init__()
        self.net = nn.Linear(latent_dim, 3 * 8 * 8)

    def forward(self, z, labels=None):
        return torch.tanh(self.net(z)).view(-1, 3, 8, 8)


def test_inception_input_conventions():
    x = torch.tensor([-1.0, -0.2, 0.0, 0.5, 1.0]).view(1, 1, 1, 5)
    pixels = torch.tensor([0.0, 102.0, 128.0, 191.0, 255.0])  # round((x + 1) * 127.5), half to even
    assert torch.equal(to_uint8(x).flatten().float(), pixels)
    tf = inception_input(x, "tf")
    assert tf.shape == (1, 3, 1, 5)  # grayscale repeated to RGB
    assert torch.allclose(tf[0, 1].flatten(), (pixels - 128) / 128)
    assert torch.allclose(inception_input(x, "pytorch_fid")[0, 2].flatten(), pixels * 2 / 255 - 1)
    with pytest.raises(ConfigError, match="pytorch_fid"):
        inception_input(x, "pil")


def test_the_clean_convention_is_clean_fids_input_and_is_recorded(settings, tmp_path):
    """``metrics.inception_input=clean``: the network input is clean-fid's resize of the 8-bit pixels (its
    ``build_resizer("clean")``, the independent reference) scaled by (p - 128) / 128, as clean-fid's Inception
    scales it. The protocol names the convention, so a result under another one is kept, not replaced."""
    from dataclasses import replace

    from cleanfid.resize import build_resizer

    from ganscape.metrics.evaluate import write_result
    from ganscape.metrics.features import inception_features

    pixels = smooth_images(2, 12, 10, seed=0)
    x = pixels.float() / 127.5 - 1
    expected = torch.stack([torch.from_numpy(build_resizer("clean")(image.permute(1, 2, 0).numpy()))
                            for image in pixels]).permute(0, 3, 1, 2)
    # test_inception checks the resize against clean-fid to 7.3e-4 on the 0..255 scale: 7.3e-4 / 128 here.
    torch.testing.assert_close(inception_input(x, "clean"), (expected - 128) / 128, rtol=0, atol=7.3e-4 / 128)
    clean = Evaluator(["fid"], tiny_images(), DataConfig(name="tiny"), latent_dim=4, num_samples=8,
                      settings=replace(settings, inception_input="clean"))
    features, _ = inception_features([x], clean.inception, "clean")
    assert features.shape == (2, 2048) and features.isfinite().all()
    protocol = clean.protocol()
    assert protocol["inception"]["input"] == "clean" and "clean-fid" in protocol["inception"]["resizer"]
    tf = Evaluator(["fid"], tiny_images(), DataConfig(name="tiny"), latent_dim=4, num_samples=8, settings=settings)
    path = tmp_path / "step_00000001.json"
    write_result(path, {"values": {"fid": 1.0}, "protocol": tf.protocol()})
    written, kept = write_result(path, {"values": {"fid": 2.0}, "protocol": protocol})
    assert kept == path and written != path and json.loads(path.read_text())["values"]["fid"] == 1.0
    with pytest.raises(ValueError, match="already resized to 299x299"):
        FIDInception(resize="none")(x)


def test_subset_indices_are_fixed_sorted_and_spread():
    a = ref.subset_indices(1000, 100)
    assert torch.equal(a, ref.subset_indices(1000, 100))
    assert torch.equal(a, a.sort().values) and len(set(a.tolist())) == 100
    assert (a < 500).sum() > 30 and (a >= 500).sum() > 30  # not the first 100 (files stored class by class)
    assert torch.equal(ref.subset_indices(10, 20), torch.arange(10))


def test_stacked_take_is_fixed_and_labelled():
    data = DATASETS["stacked_digits"](DataConfig(name="stacked_digits", split="test"))
    x, labels = data.take(torch.tensor([5, 0, 5]))
    assert x.shape == (3, 3, 32, 32) and torch.equal(x[0], x[2]) and labels[0] == labels[2]
    again, _ = data.take(torch.tensor([0]))
    assert torch.equal(again[0], x[1])
    assert not torch.equal(x[0], x[1])


def test_fid_of_the_reference_against_itself_is_zero(settings):
    data = tiny_images()
    images = data.take(torch.arange(len(data)))[0]
    result = evaluate(Replay(images), data, ["fid", "kid"], num_samples=len(data), dataset_cfg=DataConfig(name="tiny"),
                      latent_dim=4, num_reference=len(data), settings=settings)
    other = evaluate(Replay(tiny_images(seed=1).take(torch.arange(12))[0]), data, ["fid"], num_samples=12,
                     dataset_cfg=DataConfig(name="tiny"), latent_dim=4, settings=settings)
    # ~0: the floor is the square roots of round-off eigenvalues of the rank-11 covariances (12 samples)
    assert abs(result["values"]["fid"]) < 1e-4 * other["values"]["fid"]


def test_every_metric_in_one_call_and_its_protocol(settings, weights):
    torch.manual_seed(0)
    data = tiny_images()
    result = evaluate(Blob(), data, ["fid", "kid", "pr", "msssim", "recon"], num_samples=10,
                      dataset_cfg=DataConfig(name="tiny", split="test"), latent_dim=4, num_reference=12,
                      settings=settings, seed=3)
    values, protocol = result["values"], result["protocol"]
    assert set(values) == {"fid", "kid_mean", "kid_std", "precision", "recall", "msssim", "recon_mse",
                           "recon_mse_std"}
    assert all(isinstance(v, float) and v == v for v in values.values())
    assert 0 <= values["precision"] <= 1 and 0 < values["recon_mse"] < 1
    assert protocol["num_samples"] == 10 and protocol["seed"] == 3
    assert {"split": "test", "num_images": 12, "images_in_split": 12}.items() <= protocol["reference"].items()
    assert protocol["inception"]["weights_sha256"] == file_sha256(weights)
    assert protocol["inception"]["input"] == "tf" and "TF1" in protocol["inception"]["resizer"]
    assert protocol["kid"]["subset_size"] == 6 and protocol["recon"]["steps"] == 2
    assert protocol["ganscape_version"] and protocol["torch_version"] == torch.__version__
    assert "is" not in protocol  # only the metrics asked for


def test_reference_features_are_cached_under_a_complete_key(settings, weights, monkeypatch, tmp_path):
    data, cfg = tiny_images(), DataConfig(name="tiny", split="test")
    model = FIDInception()
    model.load_state_dict(random_fid_inception_state())
    sha = file_sha256(weights)
    folder = tmp_path / "refcache"
    first, key = ref.reference_features(data, cfg, 8, model, "tf", sha, folder, batch_size=4)
    (path,) = folder.iterdir()
    assert key["num_images"] == 8 and key["weights_sha256"] == sha and key["split"] == "test"

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached features should have been used")

    monkeypatch.setattr(ref, "inception_features", no_recompute)
    again, _ = ref.reference_features(data, cfg, 8, model, "tf", sha, folder)
    assert torch.equal(first, again)
    # Any change of protocol is another cache entry, never the stale one.
    for changed in ({"n": 6}, {"kind": "pytorch_fid"}, {"sha": "0" * 64}, {"cfg": DataConfig(name="tiny")},
                    {"cfg": DataConfig(name="tiny", split="test", resolution=16)}):
        args = {"n": 8, "kind": "tf", "sha": sha, "cfg": cfg} | changed
        other_key = ref.reference_key(args["cfg"], len(data), args["n"], args["kind"], args["sha"])
        assert ref.cache_path(other_key, folder) != path
    with pytest.raises(AssertionError, match="cached"):
        ref.reference_features(data, cfg, 6, model, "tf", sha, folder)
    # A cache file under the right name but with another key inside is refused, with its path.
    monkeypatch.undo()
    from ganscape.store.checkpoint import save_checkpoint
    save_checkpoint(path, {"key": key | {"num_images": 7}, "features": first})
    with pytest.raises(CheckpointError, match="another protocol"):
        ref.reference_features(data, cfg, 8, model, "tf", sha, folder)
    path.write_bytes(b"not a cache file")
    with pytest.raises(CheckpointError, match=str(path.name)):
        ref.reference_features(data, cfg, 8, model, "tf", sha, folder)


def test_evaluator_shares_one_feature_pass(settings, monkeypatch):
    import ganscape.metrics.evaluate as ev

    calls = []
    real = ev.inception_features

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "inception_features", counting)
    data = tiny_images()
    evaluator = Evaluator(["fid", "kid", "pr"], data, DataConfig(name="tiny"), latent_dim=4, num_samples=8,
                          settings=settings)
    evaluator(Blob())
    evaluator(Blob())
    assert calls == ["generated", "generated"]  # reference features: computed via the cache, not here


def test_inapplicable_metrics_and_missing_classifier_are_refused(settings):
    ring = DATASETS["ring8"](DataConfig(name="ring8"))
    with pytest.raises(ConfigError, match="image data"):
        Evaluator(["fid"], ring, DataConfig(name="ring8"), latent_dim=2, settings=settings)
    with pytest.raises(ConfigError, match="known modes"):
        Evaluator(["modes"], tiny_images(), DataConfig(name="tiny"), latent_dim=2, settings=settings)
    with pytest.raises(ConfigError, match="fid, is, kid"):
        Evaluator(["fidd"], tiny_images(), DataConfig(name="tiny"), latent_dim=2, settings=settings)


def test_inception_score_needs_the_classifier(settings, tmp_path):
    state = {k: v for k, v in FIDInception().state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "no_fc.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError):
        Evaluator(["is"], tiny_images(), DataConfig(name="tiny"), latent_dim=4,
                  settings=MetricsConfig(inception_weights=str(path)))
    evaluator = Evaluator(["is"], tiny_images(), DataConfig(name="tiny"), latent_dim=4, num_samples=10,
                          settings=from_dict({**to_dict(settings), "is": {"splits": 2}}, MetricsConfig))
    values = evaluator(Blob())
    assert 1.0 <= values["is_mean"] <= 1008 and values["is_std"] >= 0


def test_modes_on_stacked_digits_for_a_collapsed_generator(settings):
    data = DATASETS["stacked_digits"](DataConfig(name="stacked_digits"))
    one = data.take(torch.tensor([3]))[0]

    class Collapsed(Blob):
        def forward(self, z, labels=None):
            return one.expand(len(z), -1, -1, -1) + 0 * self.net.bias.sum()

    values = evaluate(Collapsed(), data, ["modes"], num_samples=200, dataset_cfg=DataConfig(name="stacked_digits"),
                      latent_dim=4, settings=settings)["values"]
    assert values["modes_covered"] == 1 and values["num_modes"] == 1000
    assert values["kl_to_uniform"] == pytest.approx(torch.log(torch.tensor(1000.0)).item())


def test_generated_batches_are_reproducible_and_restore_mode():
    G = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    G.train()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = G

        def forward(self, z, labels=None):
            return self.g(z)

    w = Wrap().train()
    a = torch.cat(list(generated_batches(w, 10, 4, "normal", 7, "cpu", batch_size=3)))
    b = torch.cat(list(generated_batches(w, 10, 4, "normal", 7, "cpu", batch_size=10)))
    assert torch.allclose(a, b, atol=1e-6) and w.training  # same latents, eval mode inside, mode restored


# ----------------------------------------------------------------------------------------------------------------
# The command and periodic evaluation during training


def test_eval_command_writes_values_and_protocol(tiny, tmp_path, capsys):
    assert main(["train", *tiny]) == 0
    run = RunDir(tmp_path / "runs" / "tiny")
    during_training = (run.eval / "step_00000020.json").read_text()  # 500 samples
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "modes", "--samples", "300", "--step", "20"]) == 0
    # Another protocol: the training's result is kept, the new one goes beside it, and eval says so.
    assert (run.eval / "step_00000020.json").read_text() == during_training
    out = capsys.readouterr().out
    assert "kept step_00000020.json: it was computed under another protocol" in out
    assert "another protocol (samples 300 here, 500 in the file; modes samples 300 here, 500 in the file)" in out
    (beside,) = run.eval.glob("step_00000020-*.json")
    assert f"wrote {beside}" in out
    result = json.loads(beside.read_text())
    assert result["step"] == 20 and result["protocol"]["generator"] == "ema"
    assert result["protocol"]["num_samples"] == 300 and result["protocol"]["modes"]["kind"] == "2-D mixture"
    assert set(result["values"]) >= {"modes_covered", "kl_to_uniform", "high_quality_pct"}
    assert main(["eval", str(run), "--raw", "eval.samples=200"]) == 0
    (raw_path,) = run.eval.glob("step_00000040_raw-*.json")  # training evaluated the raw G with 500 samples
    raw = json.loads(raw_path.read_text())
    assert raw["protocol"]["generator"] == "raw" and raw["protocol"]["num_samples"] == 200
    assert main(["eval", str(run), "--raw", "eval.samples=200"]) == 0  # the same protocol again: replaced
    assert sorted(p.name for p in run.eval.glob("step_00000040_raw*.json")) == sorted(["step_00000040_raw.json",
                                                                                        raw_path.name])
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "fid"]) == 2
    assert "image data" in capsys.readouterr().err
    assert main(["eval", str(run), "train.steps=5"]) == 2
    assert "eval.*" in capsys.readouterr().err
    assert main(["eval", str(run), "--step", "13"]) == 2
    assert "no checkpoint at step 13" in capsys.readouterr().err


def test_periodic_image_metrics_during_training(tmp_path, weights):
    overrides = [f"run.root={tmp_path / 'runs'}", "run.name=img", "data.name=digits", "g.arch=dcgan",
                 "d.arch=dcgan", "g.width=8", "d.width=8", "latent.dim=8", "train.steps=4", "train.batch_size=8",
                 "eval.every=2", "eval.samples=6", "eval.metrics=[fid,msssim]", "eval.raw=false",
                 f"metrics.inception_weights={weights}", f"metrics.cache_dir={tmp_path / 'cache'}",
                 "metrics.msssim_batch=3", "metrics.msssim_batches=1", "log.samples_every=0",
                 "log.tensorboard=false", "checkpoint.every=4"]
    assert main(["train", *overrides]) == 0
    run = RunDir(tmp_path / "runs" / "img")
    assert sorted(p.name for p in run.eval.iterdir()) == ["step_00000002.json", "step_00000004.json"]
    result = json.loads((run.eval / "step_00000004.json").read_text())
    assert result["protocol"]["reference"]["split"] == "test" and result["values"]["fid"] > 0
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/fid" in r] == [2, 4]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the reference features, computed once
