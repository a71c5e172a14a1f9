"""A trained generator's samples as files: which classes to draw, pictures, .npz arrays, PNG folders, animations.

``ganscape sample`` and ``ganscape interpolate`` parse their options and print; the choices and the writing are here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganscape.errors import ConfigError
from ganscape.metrics.features import to_uint8
from ganscape.plots import class_rows, row_labels, sample_picture, save_png
from ganscape.training.sampling import grid_classes, points_picture

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def is_picture(out: Path) -> bool:
    return out.suffix.lower() in IMAGE_SUFFIXES


def class_list(text: str | None) -> list[str] | None:
    """'0,3,cat' as ['0', '3', 'cat']; None for no text."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def sample_labels(model, n: int, classes: str | None, per_class: int | None, picture: bool):
    """(number of samples, their classes or None) for ``model`` (a ``hub.PretrainedGenerator``): K of every
    class with ``per_class``, the ``classes`` in turn, or every class in turn (a picture shows at most 10
    classes, spread over all)."""
    if classes and per_class:
        raise ConfigError("give --classes or --per-class, not both.")
    if per_class:
        if not model.spec.num_classes:
            raise ConfigError("--per-class needs a class-conditional generator.")
        return per_class * model.spec.num_classes, torch.arange(model.spec.num_classes).repeat_interleave(per_class)
    if classes:
        chosen = model.class_labels(class_list(classes))
    elif model.spec.num_classes:
        chosen = grid_classes(model.spec.num_classes) if picture else torch.arange(model.spec.num_classes)
    else:
        return n, None
    return n, chosen[torch.arange(n) % len(chosen)]


def write_samples(images, out: Path, labels=None, class_names: tuple[str, ...] = ()) -> str:
    """Write samples where ``out`` says: a picture grid (.png, .jpg; with ``labels``, a class per row labelled
    with its name from ``class_names`` or its index), an .npz (uint8 images N x H x W x C, or float points, and
    int64 labels), or a folder of PNGs (a path ending in / or an existing folder)."""
    suffix = out.suffix.lower()
    is_image = images.ndim == 4
    if suffix == ".npz":
        arrays = {"images": to_uint8(images).permute(0, 2, 3, 1).numpy()} if is_image \
            else {"points": images.float().numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
        return f"{len(images)} samples in {out}"
    if not is_image:
        raise ConfigError(f"this generator makes points of shape {tuple(images.shape[1:])}, not images; write them "
                          "to an .npz or a scatter picture (.png).")
    if suffix in IMAGE_SUFFIXES:
        out.parent.mkdir(parents=True, exist_ok=True)
        if labels is None:
            save_png(sample_picture(images, columns=min(len(images), 8)), out)
            return f"a grid of {len(images)} samples in {out}"
        tiles, columns, classes = class_rows(images, labels)
        save_png(sample_picture(tiles, columns, labels=row_labels(classes, class_names)), out)
        return f"a grid of {len(images)} samples in {out}, a class per row"
    if suffix and not out.is_dir():
        raise ConfigError(f"--out {out}: give a picture (.png, .jpg), an .npz, or a folder (ending in /).")
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()
    for i, image in enumerate(pixels):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out / f"{i:06d}.png")
    if labels is not None:
        (out / "labels.csv").write_text("file,label\n" + "".join(f"{i:06d}.png,{int(y)}\n" for i, y in
                                                                 enumerate(labels)))
    return f"{len(images)} PNG files in {out}"


def write_scatter(model, points: torch.Tensor, out: Path) -> str:
    """A scatter picture of a 2-D generator's ``points`` over its data set's points (as its config.json records
    them), titled with its run, data set and step; returns what was written."""
    provenance = model.config.get("provenance") or {}
    data = (provenance.get("data") or {}).get("name", "2-D points")
    title = f"{provenance.get('run', Path(model.source).name)} ({data}), step {provenance.get('step', '?')}: " \
            f"{len(points)} samples"
    out.parent.mkdir(parents=True, exist_ok=True)
    points_picture(points, model.config, title, out)
    return f"a scatter picture of {len(points)} samples in {out}"

def write_interpolation(images: torch.Tensor, rows: int, steps: int, out: Path, frame_ms: int) -> str:
    """Write ``rows`` interpolations of ``steps`` images each: a .png strip (rows x steps) or an animated .gif
    whose frames show every row at one step, going there and back; returns what was written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        frames = images.view(rows, steps, *images.shape[1:]).transpose(0, 1)
        pictures = [Image.fromarray(sample_picture(frame, columns=rows)) for frame in frames]
        pictures += pictures[-2:0:-1]  # back again, so the loop has no jump
        pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
        return f"{len(pictures)} frames to {out}"
    if is_picture(out):
        save_png(sample_picture(images, columns=steps), out)
        return f"{rows} rows of {steps} steps to {out}"
    raise ConfigError(f"--out {out}: give a picture (.png) or an animation (.gif).")
