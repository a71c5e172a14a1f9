"""Quality metrics, each a plain function in its own module; ``evaluate`` puts them together.

``METRICS`` names what ``eval.metrics`` may ask for. ``BETTER`` says, for each reported value that
ranks generators, whether lower ("min") or higher ("max") is better: the loop reports the best of
these over a run's evaluations, and ``checkpoint.keep_best`` keeps the checkpoint where one was best.
Values that do not rank generators (standard deviations, counts, MS-SSIM's diversity) are not in it.
"""

METRICS = {
    "fid": "Frechet Inception distance to the reference set (lower is better)",
    "is": "Inception Score, mean and std over splits (needs weights with the classifier)",
    "kid": "kernel Inception distance, unbiased MMD^2 averaged over subsets",
    "pr": "improved precision and recall (k-nearest-neighbour manifolds)",
    "msssim": "mean MS-SSIM of random pairs of samples (lower is more diverse)",
    "recon": "reconstruction error of held-out reference images (Xiang & Li)",
    "modes": "modes covered and KL to uniform (2-D mixtures, stacked digits)",
}

BETTER = {
    "fid": "min",
    "kid_mean": "min",
    "is_mean": "max",
    "precision": "max",
    "recall": "max",
    "recon_mse": "min",
    "modes_covered": "max",
    "high_quality_pct": "max",
    "kl_to_uniform": "min",
    "js_to_target": "min",
}

# The values each metric reports (``high_quality_pct`` and ``js_to_target`` only on 2-D mixtures).
VALUES = {
    "fid": ("fid",),
    "is": ("is_mean", "is_std"),
    "kid": ("kid_mean", "kid_std"),
    "pr": ("precision", "recall"),
    "msssim": ("msssim",),
    "recon": ("recon_mse", "recon_mse_std"),
    "modes": ("modes_covered", "num_modes", "kl_to_uniform", "high_quality_pct", "js_to_target"),
}
