"""ganscape's Inception features and scores against torch-fidelity's, on the same weights file and inputs.

The weights are random (seeded) but written in the real format: pytorch-fid's state dict, which is
also what torch-fidelity's ``FeatureExtractorInceptionV3`` loads. ganscape reads the file with
``load_inception`` and its ``"tf"`` input convention (8-bit pixels, (p - 128) / 128, TF1 bilinear
resize); torch-fidelity reads the same file and the same uint8 images. Pool features and logits must
agree to float rounding. FID, KID, IS and precision/recall on fixed features must agree with
torch-fidelity's own functions on the same features.

Skipped where torch-fidelity (which needs torchvision) is not installed:
``pip install torch-fidelity torchvision``.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_fidelity", reason="needs torch-fidelity, which needs torchvision: "
                                             "pip install torch-fidelity torchvision")

from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric  # noqa: E402
from torch_fidelity.metric_isc import isc_features_to_metric  # noqa: E402
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402
from torch_fidelity.metric_prc import prc_features_to_metric  # noqa: E402

from ganscape.metrics.features import inception_features, to_uint8  # noqa: E402
from ganscape.metrics.fid import fid_from_features  # noqa: E402
from ganscape.metrics.inception import load_inception  # noqa: E402
from random_inception import random_fid_inception_state, smooth_images  # noqa: E402
from ganscape.metrics.inception_score import inception_score  # noqa: E402
from ganscape.metrics.kid import kernel_inception_distance  # noqa: E402
from ganscape.metrics.precision_recall import precision_recall  # noqa: E402

# Image groups (count, height, width): CIFAR-sized, non-square, and already at the network's size,
# where ganscape skips the resize and torch-fidelity's TF1 resize is the identity.
IMAGE_GROUPS = [(4, 32, 32), (1, 48, 64), (1, 299, 299)]
# Largest |ganscape - torch-fidelity| relative to the largest |torch-fidelity| value. Measured on CPU
# (torch 2.14, torch-fidelity 0.4.0): 4e-7 to 5e-7 for the features and 4e-7 for the logits, while
# the features of different images differ by 6% to 30%; the differences are float32 rounding (the
# order of scaling and resizing, the resize's sample positions, channels-last convolutions).
FEATURE_TOLERANCE = 1e-4


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(random_fid_inception_state(), path)  # pytorch-fid's format: a plain state dict
    return path


@pytest.fixture(scope="module")
def images():
    return [smooth_images(count, h, w, seed=i) for i, (count, h, w) in enumerate(IMAGE_GROUPS)]


@pytest.fixture(scope="module")
def ganscape_outputs(weights_file, images):
    model = load_inception(weights_file)
    pm1 = [pixels.float() / 127.5 - 1 for pixels in images]
    assert all(torch.equal(to_uint8(x), pixels) for x, pixels in zip(pm1, images))  # the same 8-bit images
    return inception_features(pm1, model, "tf", with_logits=True)


@pytest.fixture(scope="module")
def torch_fidelity_outputs(weights_file, images):
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits", "logits_unbiased"],
                                            feature_extractor_weights_path=str(weights_file))
    with torch.no_grad():
        outputs = [extractor(pixels) for pixels in images]
    return {name: torch.cat([out[i] for out in outputs]) for i, name in enumerate(extractor.features_list)}


def test_random_weights_give_informative_features(ganscape_outputs):
    features, logits = ganscape_outputs
    n = sum(count for count, _, _ in IMAGE_GROUPS)
    assert features.shape == (n, 2048) and logits.shape == (n, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    # Not collapsed: a sane scale, many active units, and images that differ from one another.
    assert 1e-2 < features.abs().max() < 1e3
    assert (features > 0).double().mean() > 0.2
    spread = features.std(dim=0).mean() / features.abs().mean()
    assert spread > 0.05, spread
    assert logits.std(dim=0).mean() > 1e-2


def test_pool_features_equal_torch_fidelity(ganscape_outputs, torch_fidelity_outputs):
    ours, theirs = ganscape_outputs[0], torch_fidelity_outputs["2048"]
    assert ours.shape == theirs.shape
    start = 0
    for count, h, w in IMAGE_GROUPS:  # each image size on its own: the resize differs with it
        diff = relative_difference(ours[start:start + count], theirs[start:start + count])
        print(f"pool features {h}x{w}: max relative difference {diff:.2e}")
        assert diff <= FEATURE_TOLERANCE, (h, w, diff)
        start += count


def test_logits_equal_torch_fidelity(ganscape_outputs, torch_fidelity_outputs, weights_file):
    ours = ganscape_outputs[1]
    # The Inception Score's logits, in ganscape as in the original TF IS code and torch-fidelity, are
    # features @ fc.weight.T without the bias: torch-fidelity's "logits_unbiased", its IS layer.
    diff = relative_difference(ours, torch_fidelity_outputs["logits_unbiased"])
    print(f"logits: max relative difference {diff:.2e}")
    assert diff <= FEATURE_TOLERANCE
    assert FeatureExtractorInceptionV3.get_default_feature_layer_for_metric("isc") == "logits_unbiased"
    # ...and adding the bias gives the classifier's output, torch-fidelity's "logits".
    bias = torch.load(weights_file, weights_only=True)["fc.bias"]
    assert relative_difference(ours + bias, torch_fidelity_outputs["logits"]) <= FEATURE_TOLERANCE


def _feature_sets(n1: int, n2: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 sets of non-negative, correlated features (like post-ReLU Inception features)."""
    generator = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=generator, dtype=torch.float64) / dim ** 0.5
    a = (torch.randn(n1, dim, generator=generator, dtype=torch.float64) @ mix).abs()
    b = (torch.randn(n2, dim, generator=generator, dtype=torch.float64) @ (mix * 1.1) + 0.2).abs()
    return a, b


def test_fid_equals_torch_fidelity():
    a, b = _feature_sets(600, 500, 64, seed=10)
    theirs = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b),
                                      verbose=False)["frechet_inception_distance"]
    ours = fid_from_features(a, b)
    assert theirs > 0.1
    assert abs(ours - theirs) <= 1e-6 * abs(theirs), (ours, theirs)
    # And from float32 features, as both libraries get them from the network.
    a32, b32 = a.float(), b.float()
    theirs32 = fid_statistics_to_metric(fid_features_to_statistics(a32), fid_features_to_statistics(b32),
                                        verbose=False)["frechet_inception_distance"]
    assert abs(fid_from_features(a32, b32) - theirs32) <= 1e-5 * abs(theirs32)


def test_kid_equals_torch_fidelity():
    # One subset of all rows: torch-fidelity's draw without replacement is then a permutation, and the
    # unbiased MMD^2 does not depend on the order of the rows, so both evaluate the same estimate.
    a, b = _feature_sets(300, 300, 2048, seed=11)
    theirs = kid_features_to_metric(a, b, kid_subsets=1, kid_subset_size=300, verbose=False)
    ours_mean, ours_std = kernel_inception_distance(a, b, num_subsets=1, subset_size=300, seed=0)
    assert abs(theirs["kernel_inception_distance_mean"]) > 1e-3
    assert abs(ours_mean - theirs["kernel_inception_distance_mean"]) <= 1e-9 * abs(ours_mean)
    assert ours_std == theirs["kernel_inception_distance_std"] == 0
    # Identical sets: both estimators are unbiased, so near zero (but not exactly), and equal.
    theirs_same = kid_features_to_metric(a, a.clone(), kid_subsets=1, kid_subset_size=300, verbose=False)
    ours_same, _ = kernel_inception_distance(a, a.clone(), num_subsets=1, subset_size=300)
    assert abs(ours_same - theirs_same["kernel_inception_distance_mean"]) <= 1e-9 * abs(ours_mean)


def test_inception_score_equals_torch_fidelity():
    generator = torch.Generator().manual_seed(12)
    logits = 3 * torch.randn(500, 1008, generator=generator) + torch.randn(1008, generator=generator)
    # Ten contiguous splits (torch-fidelity without its shuffle): the same rows in each split.
    theirs = isc_features_to_metric(logits, splits=10, shuffle=False)
    ours = inception_score(logits, splits=10)
    assert theirs["inception_score_mean"] > 1.5
    assert abs(ours[0] - theirs["inception_score_mean"]) <= 1e-9 * ours[0]
    assert abs(ours[1] - theirs["inception_score_std"]) <= 1e-9 * ours[0]
    # One split: row order does not matter, so torch-fidelity's default shuffle changes nothing.
    theirs = isc_features_to_metric(logits, splits=1, shuffle=True, rng_seed=2020)
    ours = inception_score(logits, splits=1)
    assert abs(ours[0] - theirs["inception_score_mean"]) <= 1e-9 * ours[0]
    assert ours[1] == theirs["inception_score_std"] == 0


def test_precision_recall_equals_torch_fidelity():
    real, fake = _feature_sets(400, 300, 32, seed=13)
    # torch-fidelity's convention: features_1 is the generated set, features_2 the real one.
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    ours = precision_recall(real, fake, k=3)
    assert 0 < theirs["precision"] < 1 and 0 < theirs["recall"] < 1
    # Fractions of 300 fake and 400 real samples; torch-fidelity averages in float32, so compare counts.
    assert round(ours["precision"] * len(fake)) == round(theirs["precision"] * len(fake))
    assert round(ours["recall"] * len(real)) == round(theirs["recall"] * len(real))


def write_pngs(folder, images):
    from PIL import Image

    folder.mkdir(parents=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
    return folder


def test_fid_of_two_folders_equals_torch_fidelity(tmp_path, weights_file):
    """`ganscape fid A B` on two folders of PNG files against torch-fidelity's calculate_metrics on the same
    folders and weights: within 0.1% (the tolerance the issue asks for)."""
    import json

    import torch_fidelity

    from ganscape.cli import main

    a = write_pngs(tmp_path / "a", smooth_images(300, 32, 32, seed=21))
    b = write_pngs(tmp_path / "b", (smooth_images(300, 32, 32, seed=22).float() * 0.8 + 20).to(torch.uint8))
    out = tmp_path / "ours.json"
    assert main(["fid", str(a), str(b), "--samples", "300", "--device", "cpu", "--out", str(out),
                 f"metrics.inception_weights={weights_file}", f"metrics.cache_dir={tmp_path / 'cache'}"]) == 0
    ours = json.loads(out.read_text())["values"]["fid"]
    theirs = torch_fidelity.calculate_metrics(input1=str(a), input2=str(b), fid=True, cuda=False, verbose=False,
                                              feature_extractor_weights_path=str(weights_file))
    theirs = theirs["frechet_inception_distance"]
    print(f"folder FID: ganscape {ours:.6f}, torch-fidelity {theirs:.6f}")
    assert theirs > 1.0
    assert abs(ours - theirs) <= 1e-3 * theirs, (ours, theirs)
