"""One training step: the whole algorithm of a GAN update, in one function.

``n_disc`` discriminator updates, then one generator update, then the EMA of the generator. Each
update sums the gradients of ``train.accumulate`` micro-batches of ``train.batch_size``, each cut
into ``train.shards`` equal parts with their own random streams (one part per process under
torchrun, whose gradients are summed across processes before the optimizer steps; see
``training.distributed``). Each part's loss is divided by the number of parts in the update, so an
update follows the gradient of one batch of ``accumulate * batch_size`` for networks without batch
statistics (BigGAN's batch of 2048 is 8 x 256). What is minimised comes from ``Objective`` (the
loss, the penalties with their weights and weight constraints); what D sees of each batch from the
run's D-input pipeline ``state.d_input`` (augmentation, instance noise), which this function applies to
the real and generated batches of D's updates and, differentiably, to the generated batch of G's update,
and which observes D's logits on the reals after each D update (ADA). This function only decides which
batches each player sees and when each optimizer steps. It never reads a value back from the device
(the loop does that at log steps), except ADA's statistics, every ``augment.ada_interval`` D updates.

The random streams are consumed in a fixed order, which resuming relies on: per D micro-batch and
shard, a real batch (``Streams.data``), latents (``Streams.latent``), then from ``Streams.noise``
the D-input pipeline's draws for the real and then for the generated batch (augmentation, then instance
noise) and the penalties' own draws; per G micro-batch and shard, latents, then the pipeline's draws for
the generated batch. Lazy regularization (``penalty.lazy_interval`` k > 1) skips r1 and r2 on the D
updates whose run-wide index ``state.step * n_disc + i`` is not a multiple of k; these penalties draw no
random numbers, so a lazy run consumes every stream exactly as the dense run does. The index depends
only on the step count, so every micro-batch and shard of an update, every process, and a resumed run
agree on it.
"""

from __future__ import annotations

import torch

from ganscape.config import Experiment
from ganscape.data.base import Dataset
from ganscape.nets import sample_latent
from ganscape.nets.layers import apply_constraints
from ganscape.objectives.objective import Objective, at_least_float32
from ganscape.training.distributed import all_reduce_grads
from ganscape.training.speed import as_layout, autocast
from ganscape.training.state import GANState


def train_step(state: GANState, data: Dataset, objective: Objective, cfg: Experiment) -> dict[str, torch.Tensor]:
    """One generator step: ``n_disc`` discriminator updates, one generator update, the EMA.

    Class-conditional runs (``data.conditional``) give G the labels of the real batch it is compared
    with, so fake and real batches have the same classes; G's micro-batch i uses the labels of the
    last D update's micro-batch i (shard by shard). Returns the losses (without penalties), D's mean logits and each
    loss-term penalty's unweighted value, averaged over the last update's micro-batches, as tensors
    on the training device. A lazy penalty's value is that of the last D update of this step that
    computed it, and absent when none did (``LossMonitor`` then keeps its earlier value).
    """
    G, D = state.G, state.D
    device = next(G.parameters()).device
    latent, parts = cfg.latent, cfg.train.accumulate
    batch = cfg.train.batch_size // state.total_shards  # each shard's part of a micro-batch
    weight = parts * state.total_shards  # each part's loss counts 1 / weight of the update
    networks = autocast(state.precision, device)  # G and D run in it; losses and penalty norms stay float32
    shard_streams = state.streams
    d_terms: dict[str, list[torch.Tensor]] = {}  # each D penalty's values in the last update that computed it

    for i in range(cfg.train.n_disc):
        d_update = state.step * cfg.train.n_disc + i  # run-wide, so lazy penalties keep their rhythm over resumes
        state.opt_d.zero_grad(set_to_none=True)
        d_parts, label_parts = [], []  # this update's
        for _ in range(parts):
            for streams in shard_streams:
                real, labels = data.sample(batch, streams.data)
                labels = labels.to(device) if cfg.data.conditional else None
                z = sample_latent(batch, latent.dim, latent.dist, streams.latent, device)
                with torch.no_grad(), networks:
                    fake = at_least_float32(state.G_forward(z, labels))
                real = as_layout(real.to(device, non_blocking=True), state.channels_last)
                real, fake = state.d_input.d_step(real, fake, state.step, streams.noise)
                with networks:
                    d = objective.d_totals(state.D_forward, real, fake, labels, streams.noise, fused=state.fused_d,
                                           penalty_D=D, d_update=d_update)
                (d.total / weight).backward()
                d_parts.append(d)
                label_parts.append((labels, streams))
        all_reduce_grads(D, state.processes)
        state.opt_d.step()
        apply_constraints(D)
        objective.constrain(D)
        state.d_input.observe([d.real_logits for d in d_parts])
        d_terms |= {name: [d.terms[name] for d in d_parts] for name in d_parts[0].terms}

    state.opt_g.zero_grad(set_to_none=True)
    g_parts = []
    D.requires_grad_(False)  # the generator's loss needs gradients through D, not for D
    try:
        for labels, streams in label_parts:
            z = sample_latent(batch, latent.dim, latent.dist, streams.latent, device)
            with networks:
                fake = at_least_float32(state.G_forward(z, labels))
            fake = state.d_input.g_step(fake, state.step, streams.noise)  # in float32, as in D's update
            with networks:
                g = objective.g_totals(G, state.D_forward(fake, labels))
            (g.total / weight).backward()
            g_parts.append(g)
    finally:
        D.requires_grad_(True)
    all_reduce_grads(G, state.processes)
    state.opt_g.step()
    apply_constraints(G)

    state.step += 1
    if state.ema is not None:
        state.ema.update(G, state.step)
    stats = {"d_loss": mean(d.loss for d in d_parts), "g_loss": mean(g.loss for g in g_parts),
             "d_real": mean(d.real_logits.mean() for d in d_parts), "d_fake": mean(d.fake_logits.mean() for d in d_parts)}
    stats |= {f"penalty/{name}": mean(values) for name, values in d_terms.items()}
    stats |= {f"penalty/{name}": mean(g.terms[name] for g in g_parts) for name in g_parts[0].terms}
    return stats


def mean(values) -> torch.Tensor:
    """The mean over micro-batches of a logged value (detached); one micro-batch's value as it is, since this
    runs every step."""
    values = [value.detach() for value in values]
    return values[0] if len(values) == 1 else torch.stack(values).mean()
