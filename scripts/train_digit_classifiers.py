"""Train the digit classifiers of ``ganscape.metrics.digit_classifier`` and write their weights.

- ``digits``: scikit-learn's digits, the ``digits`` data set's train split (1,500 images);
  accuracy on its test split (297 images).
- ``mnist``: the MNIST test set (the training set is not needed): 8,000 images chosen by a seeded
  permutation for training, the other 2,000 held out for the accuracy.

Both see images as the data sets give them (32x32, [-1, 1]), with light random affine
augmentation (shifts of up to 2 pixels, rotations of up to 10 degrees, scaling by 0.9 to 1.1).
Seeds are fixed, so a run on the same machine and thread count gives the same weights.

Writes ``<kind>.safetensors`` (tensors only) and ``classifiers.json`` (held-out accuracy, image
counts, seeds, the held-out split, training settings and each file's SHA-256) into the package's
``metrics/weights`` folder, or ``--out``.

    python scripts/train_digit_classifiers.py [--mnist-root ../shared/data/mnist] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.metrics.digit_classifier import (METADATA, WEIGHTS, WEIGHTS_DIR, DigitClassifier, classify_digits,
                                               to_classifier_input)

REPO = Path(__file__).resolve().parent.parent
SEED = 0
MNIST_SPLIT_SEED = 0
MNIST_TRAIN = 8000
SETTINGS = {"digits": {"epochs": 60, "batch_size": 64, "lr": 2e-3},
            "mnist": {"epochs": 30, "batch_size": 64, "lr": 2e-3}}
SHIFT, ROTATION, SCALE = 2 / 16, math.radians(10), 0.1  # shift: 2 pixels, as 32 pixels span [-1, 1]


def as_floats(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) -> float (N, 1, 32, 32) in [-1, 1], as the image data sets convert them."""
    return to_classifier_input(images.to(torch.float32) / 127.5 - 1.0)


def digits_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The ``digits`` data set's train and test splits as (images, labels)."""
    splits = {}
    for split in ("train", "test"):
        data = build_dataset(load_config(None, ["data.name=digits", f"data.split={split}"]))
        splits[split] = (as_floats(data.images), data.labels)
    return splits


def mnist_splits(root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The MNIST test set split by ``torch.randperm(10000, seed MNIST_SPLIT_SEED)``: first 8,000 train."""
    data = build_dataset(load_config(None, ["data.name=mnist", "data.split=test", f"data.root={root}"]))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(MNIST_SPLIT_SEED))
    x, y = as_floats(data.images), data.labels
    return {"train": (x[order[:MNIST_TRAIN]], y[order[:MNIST_TRAIN]]),
            "test": (x[order[MNIST_TRAIN:]], y[order[MNIST_TRAIN:]])}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random small shift, rotation and scaling of each image; the background (-1) fills the borders."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * ROTATION
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * SCALE
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * SHIFT
    cos, sin = angle.cos() * scale, angle.sin() * scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with zeros: shift the background to 0 first, then back to -1.
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float) -> DigitClassifier:
    """Adam with a cosine learning-rate decay over ``epochs`` passes of seeded shuffles and augmentations."""
    torch.manual_seed(SEED)  # the initial weights and dropout
    generator = torch.Generator().manual_seed(SEED)
    model = DigitClassifier()
    steps = epochs * math.ceil(len(x) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(augment(x[index], generator)), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    return model.eval()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_and_save(kind: str, splits: dict, source: str, split_note: str, out: Path) -> dict:
    """Train ``kind``, write its weights to ``out`` and return its metadata entry."""
    settings = SETTINGS[kind]
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    print(f"{kind}: {len(train_x)} train images, {len(test_x)} held out", flush=True)
    start = time.perf_counter()
    model = train(train_x, train_y, **settings)
    accuracy = float((classify_digits(test_x, model) == test_y).to(torch.float64).mean())
    print(f"{kind}: held-out accuracy {accuracy:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    path = out / WEIGHTS[kind]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return {"file": path.name, "sha256": sha256(path), "held_out_accuracy": round(accuracy, 4),
            "train_images": len(train_x), "test_images": len(test_x), "source": source, "split": split_note,
            "seed": SEED, "parameters": sum(p.numel() for p in model.parameters()), **settings,
            "augmentation": "random affine: shift <= 2 px, rotation <= 10 degrees, scale 0.9..1.1",
            "torch": torch.__version__, "script": "scripts/train_digit_classifiers.py"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-root", type=Path, default=REPO.parent / "shared" / "data" / "mnist",
                        help="folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the weights and the JSON")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "digits": train_and_save("digits", digits_splits(), "sklearn.datasets.load_digits via the digits data set",
                                 "the digits data set's train split (1,500) / test split (297)", args.out),
        "mnist": train_and_save("mnist", mnist_splits(args.mnist_root), "MNIST test set (t10k-*-ubyte)",
                                f"torch.randperm(10000, generator=torch.Generator().manual_seed("
                                f"{MNIST_SPLIT_SEED})): first {MNIST_TRAIN} train, the rest held out", args.out),
    }
    (args.out / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"wrote {args.out / METADATA}")


if __name__ == "__main__":
    main()
