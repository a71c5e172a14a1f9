"""One training step: the whole algorithm of a GAN update, in one function.

``n_disc`` discriminator updates, then one generator update, then the EMA of the generator. What is
minimised comes from ``Objective`` (the loss, the penalties with their weights, instance noise and
weight constraints); this function only decides which batches each player sees and when each
optimizer steps.

The random streams are consumed in a fixed order, which resuming relies on: per D update, a real
batch (``data_rng``), latents (``latent_rng``), then from ``noise_rng`` the input noise of the real
and of the generated batch and the penalties' own draws; for the G update, latents, then the input
noise of the generated batch.
"""

from __future__ import annotations

import torch

from ganscape.config import Experiment
from ganscape.data.base import Dataset
from ganscape.nets import sample_latent
from ganscape.nets.layers import apply_constraints
from ganscape.objectives.objective import Objective
from ganscape.training.state import GANState


def train_step(state: GANState, data: Dataset, objective: Objective, cfg: Experiment) -> dict[str, torch.Tensor]:
    """One generator step: ``n_disc`` discriminator updates, one generator update, the EMA.

    Class-conditional runs (``data.conditional``) give G the labels of the real batch it is compared
    with, so fake and real batches have the same classes, and G's update uses the labels of the last
    real batch. Returns the losses (without penalties), D's mean logits and each loss-term
    penalty's unweighted value, as tensors on the training device.
    """
    G, D = state.G, state.D
    device = next(G.parameters()).device
    batch, latent = cfg.train.batch_size, cfg.latent

    for _ in range(cfg.train.n_disc):
        real, labels = data.sample(batch, state.data_rng)
        labels = labels.to(device) if cfg.data.conditional else None
        z = sample_latent(batch, latent.dim, latent.dist, state.latent_rng, device)
        with torch.no_grad():
            fake = G(z, labels)
        real = objective.d_input(real.to(device, non_blocking=True), state.step, state.noise_rng)
        fake = objective.d_input(fake, state.step, state.noise_rng)
        d = objective.d_totals(D, real, fake, labels, state.noise_rng)
        state.opt_d.zero_grad(set_to_none=True)
        d.total.backward()
        state.opt_d.step()
        apply_constraints(D)
        objective.constrain(D)

    z = sample_latent(batch, latent.dim, latent.dist, state.latent_rng, device)
    D.requires_grad_(False)  # the generator's loss needs gradients through D, not for D
    try:
        fake = objective.d_input(G(z, labels), state.step, state.noise_rng)
        g = objective.g_totals(G, D(fake, labels))
        state.opt_g.zero_grad(set_to_none=True)
        g.total.backward()
    finally:
        D.requires_grad_(True)
    state.opt_g.step()
    apply_constraints(G)

    state.step += 1
    if state.ema is not None:
        state.ema.update(G, state.step)
    stats = {"d_loss": d.loss, "g_loss": g.loss, "d_real": d.real_logits.mean(), "d_fake": d.fake_logits.mean()}
    stats |= {f"penalty/{name}": value for name, value in (d.terms | g.terms).items()}
    return {key: value.detach() for key, value in stats.items()}
