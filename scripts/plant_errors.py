"""Plant single-line errors in the training arithmetic (and a study's) and check that the tests catch every one.

    python scripts/plant_errors.py                 # every planted error, against the arithmetic tests
    python scripts/plant_errors.py --only ema      # those whose name contains "ema"
    python scripts/plant_errors.py --tests tests/  # against the whole suite (slow)

Each planted error replaces one exact piece of one line of ``src/ganscape`` (a sign, a weight, a
loop count, a decay, an optimizer argument, a penalty's input, ...), runs the tests with ``-x``, and
restores the file, also when interrupted. An error that no test notices is reported as SURVIVED: the
suite cannot see it, and a test should be written. The exit status is the number of survivors.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "ganscape"
TESTS = ["tests/test_augment.py", "tests/test_step.py", "tests/test_d_input.py", "tests/test_penalties.py", "tests/test_losses.py",
         "tests/test_norms.py", "tests/test_landscape.py", "tests/test_study.py", "tests/test_modes.py", "tests/test_standing.py",
         "tests/test_biggan_layers.py", "tests/test_biggan.py", "tests/test_import_biggan_pytorch.py",
         "tests/test_fast_step.py", "tests/test_training.py", "tests/test_distributed.py", "tests/test_data.py",
         "tests/test_budget_units.py", "tests/test_study_spaces.py", "tests/test_study_analysis.py",
         "tests/test_study_best.py", "tests/test_lazy_regularization.py", "tests/test_gan_stability.py",
         "tests/test_import_gan_stability.py", "tests/test_convergence.py", "tests/test_settling.py",
         "tests/test_study_curves.py", "tests/test_paper_presets.py", "tests/test_reconstruction.py"]

# (name, file under src/ganscape, exact text, replacement)
ERRORS = [
    # the step
    ("step: n_disc forced to 1", "training/step.py", "range(cfg.train.n_disc)", "range(1)"),
    ("step: no D-input pipeline on real data", "training/step.py",
     "real, fake = state.d_input.d_step(real, fake, state.step, streams.noise)",
     "fake = state.d_input.d_step(real, fake, state.step, streams.noise)[1]"),
    ("step: no D-input pipeline on fakes in D's update", "training/step.py",
     "real, fake = state.d_input.d_step(real, fake, state.step, streams.noise)",
     "real = state.d_input.d_step(real, fake, state.step, streams.noise)[0]"),
    ("step: no D-input pipeline on fakes in G's update", "training/step.py",
     "fake = state.d_input.g_step(fake, state.step, streams.noise)", "pass"),
    ("step: ADA observes D's logits on the fakes", "training/step.py",
     "state.d_input.observe([d.real_logits for d in d_parts])",
     "state.d_input.observe([d.fake_logits for d in d_parts])"),
    ("step: labels miss D in G's update", "training/step.py", "objective.g_totals(G, state.D_forward(fake, labels))",
     "objective.g_totals(G, state.D_forward(fake, None))"),
    ("step: labels miss D in D's update", "training/step.py", "objective.d_totals(state.D_forward, real, fake, labels,",
     "objective.d_totals(state.D_forward, real, fake, None,"),
    ("step: D's gradients accumulate", "training/step.py", "state.opt_d.zero_grad(set_to_none=True)", "pass"),
    ("step: G's gradients accumulate", "training/step.py", "state.opt_g.zero_grad(set_to_none=True)", "pass"),
    ("step: D's weight constraint skipped", "training/step.py", "objective.constrain(D)", "pass"),
    ("step: D's layer constraints skipped", "training/step.py", "apply_constraints(D)", "pass"),
    ("step: G's layer constraints skipped", "training/step.py", "apply_constraints(G)", "pass"),
    ("step: penalties left out of D's backward", "training/step.py", "(d.total / weight).backward()",
     "(d.loss / weight).backward()"),
    ("step: penalties left out of G's backward", "training/step.py", "(g.total / weight).backward()",
     "(g.loss / weight).backward()"),
    ("step: EMA updated with the wrong step", "training/step.py", "state.ema.update(G, state.step)",
     "state.ema.update(G, state.step + 1)"),
    ("step: G's update reuses D's latents", "training/step.py",
     "        for labels, streams in label_parts:\n            z = sample_latent(batch, latent.dim, latent.dist, "
     "streams.latent, device)\n", "        for labels, streams in label_parts:\n"),
    # the objective
    ("objective: penalty weights dropped", "objectives/objective.py",
     "loss + sum(weight * terms[penalty.name]", "loss + sum(terms[penalty.name]"),
    # the augmentations (DiffAugment, ADA) and ADA's controller
    ("augment: brightness shift dropped", "objectives/augment.py", "return x + _per_sample(shift, x)", "return x"),
    ("augment: saturation around the image mean", "objectives/augment.py",
     "mean = x.mean(dim=1, keepdim=True)", "mean = x.mean(dim=(1, 2, 3), keepdim=True)"),
    ("augment: contrast around the channel mean", "objectives/augment.py",
     "mean = x.mean(dim=(1, 2, 3), keepdim=True)\n    return (x - mean) * _per_sample(factor, x) + mean\n\n\ndef _source",
     "mean = x.mean(dim=1, keepdim=True)\n    return (x - mean) * _per_sample(factor, x) + mean\n\n\ndef _source"),
    ("augment: DiffAugment brightness range doubled", "objectives/augment.py",
     "x = shift_brightness(x, _uniform(x, generator) - 0.5)", "x = shift_brightness(x, 2 * _uniform(x, generator) - 1)"),
    ("augment: DiffAugment saturation range halved", "objectives/augment.py",
     "x = scale_saturation(x, _uniform(x, generator) * 2)", "x = scale_saturation(x, _uniform(x, generator) + 0.5)"),
    ("augment: translation moves the wrong way", "objectives/augment.py",
     "index = torch.arange(size, device=shift.device) - shift.long()[:, None]",
     "index = torch.arange(size, device=shift.device) + shift.long()[:, None]"),
    ("augment: translation fills with edge pixels", "objectives/augment.py",
     "return moved * inside[:, None].to(x.dtype)", "return moved"),
    ("augment: DiffAugment translation up to a quarter", "objectives/augment.py",
     "down = _integers(x, generator, -(h // 8), h // 8 + 1)", "down = _integers(x, generator, -(h // 4), h // 4 + 1)"),
    ("augment: cutout one pixel short", "objectives/augment.py",
     "in_cols = (cols >= left) & (cols < left + size[0])", "in_cols = (cols >= left) & (cols < left + size[0] - 1)"),
    ("augment: cutout a quarter of the side", "objectives/augment.py",
     "width, height = w // 2, h // 2", "width, height = w // 4, h // 4"),
    ("augment: xflip flips rows", "objectives/augment.py",
     "torch.where(flip.bool().view(-1, 1, 1, 1), x.flip(3), x)", "torch.where(flip.bool().view(-1, 1, 1, 1), x.flip(2), x)"),
    ("augment: ADA integer translation up to a quarter", "objectives/augment.py",
     "_XINT_MAX = 0.125", "_XINT_MAX = 0.25"),
    ("augment: ADA scale spread doubled", "objectives/augment.py", "_SCALE_STD = 0.2", "_SCALE_STD = 0.4"),
    ("augment: anisotropic scale keeps the area wrong", "objectives/augment.py",
     "@ scale_matrix(aniso, 1 / aniso)", "@ scale_matrix(aniso, aniso)"),
    ("augment: rotations not split", "objectives/augment.py",
     "chance = 1 - math.sqrt(1 - chance)", "chance = chance"),
    ("augment: ADA applies where it did not draw", "objectives/augment.py",
     "applied = _uniform(x, generator) < chance", "applied = _uniform(x, generator) >= chance"),
    ("augment: luma flip by one luma", "objectives/augment.py",
     "_identity(flip, 3) - 2 * _luma(flip) * flip.view(-1, 1, 1)", "_identity(flip, 3) - _luma(flip) * flip.view(-1, 1, 1)"),
    ("augment: saturation matrix keeps the grey part scaled", "objectives/augment.py",
     "luma + (_identity(factor, 3) - luma) * factor.view(-1, 1, 1)", "luma * factor.view(-1, 1, 1) + (_identity(factor, 3) - luma)"),
    ("augment: colour matrices composed in reverse", "objectives/augment.py",
     "matrix = step if matrix is None else step @ matrix", "matrix = step if matrix is None else matrix @ step"),
    ("augment: ADA's geometric group skipped", "objectives/augment.py",
     "x = warp(x, geometric_matrix(draws))", "pass"),
    ("augment: ADA's p moves the wrong way", "objectives/augment.py",
     "direction = (sign_mean > target) - (sign_mean < target)", "direction = (sign_mean < target) - (sign_mean > target)"),
    ("augment: ADA's p moves by the images seen twice", "objectives/augment.py",
     "return min(max(p + direction * images / speed_images, 0.0), 1.0)",
     "return min(max(p + 2 * direction * images / speed_images, 0.0), 1.0)"),
    ("augment: ADA's p not clamped at 0", "objectives/augment.py",
     "return min(max(p + direction * images / speed_images, 0.0), 1.0)",
     "return min(p + direction * images / speed_images, 1.0)"),
    ("d_input: ADA adjusts every update", "objectives/d_input.py",
     "if self._updates == self.settings.ada_interval:", "if True:"),
    ("d_input: fakes in G's update not augmented", "objectives/d_input.py",
     "return self._seen(fake, step, self.p, generator)\n", "return fake\n"),
    ("d_input: D's fakes seen as the reals are", "objectives/d_input.py",
     "return self._seen(real, step, self.p, generator), self._seen(fake, step, self.p, generator)",
     "return self._seen(real, step, self.p, generator), fake"),
    ("d_input: p not restored", "objectives/d_input.py", "self.p = float(state[\"p\"])", "pass"),
    ("d_input: instance noise not annealed", "objectives/d_input.py",
     "return strength * max(0.0, 1.0 - step / anneal_steps)", "return strength"),
    ("d_input: ADA counts logits, not their signs", "objectives/d_input.py",
     "torch.stack([logits.sign().sum(),", "torch.stack([logits.sum(),"),
    ("objective: real and fake logits swapped", "objectives/objective.py",
     "real_logits, fake_logits = at_least_float32(D(real, labels)), at_least_float32(D(fake, labels))",
     "fake_logits, real_logits = at_least_float32(D(real, labels)), at_least_float32(D(fake, labels))"),
    ("objective: G's loss sign flipped", "objectives/objective.py", "loss = self.loss.g_loss(fake_logits)",
     "loss = -self.loss.g_loss(fake_logits)"),
    ("objective: penalties get real and fake swapped", "objectives/objective.py",
     "PenaltyInputs(penalty_D or D, None, real, fake, labels,", "PenaltyInputs(penalty_D or D, None, fake, real, labels,"),
    ("objective: penalties on the data scale always", "objectives/objective.py",
     "PenaltyInputs(penalty_D or D, None, real, fake, labels, generator, self.scale)",
     "PenaltyInputs(penalty_D or D, None, real, fake, labels, generator)"),
    ("objective: constraint bound doubled", "objectives/objective.py", "penalty.apply(D, bound)",
     "penalty.apply(D, 2 * bound)"),
    ("step: D's micro-batch losses not divided", "training/step.py", "(d.total / weight).backward()",
     "d.total.backward()"),
    ("step: G's micro-batch losses not divided", "training/step.py", "(g.total / weight).backward()",
     "g.total.backward()"),
    ("step: D keeps only its last micro-batch", "training/step.py", "                (d.total / weight).backward()\n",
     "                state.opt_d.zero_grad()\n                (d.total / weight).backward()\n"),
    ("step: G's micro-batches share one label set", "training/step.py", "for labels, streams in label_parts:",
     "for _, streams in label_parts:"),
    # one run on several processes, and its shards
    ("step: D's gradients not summed across processes", "training/step.py",
     "        all_reduce_grads(D, state.processes)\n", ""),
    ("step: G's gradients not summed across processes", "training/step.py",
     "    all_reduce_grads(G, state.processes)\n", ""),
    ("step: shard losses not divided by the shard count", "training/step.py", "weight = parts * state.total_shards",
     "weight = parts"),
    ("distributed: every process trains shard 0 too", "training/distributed.py",
     "return list(range(processes.rank, shards, processes.world))", "return list(range(0, shards, processes.world))"),
    ("state: every shard gets the same streams", "training/state.py", 'suffix = f"/shard{shard}" if shard else ""',
     'suffix = ""'),
    # the losses
    ("loss: D's BCE real term sign", "objectives/losses.py", "F.softplus(-real_logits).mean() + F.softplus(fake",
     "F.softplus(real_logits).mean() + F.softplus(fake"),
    ("loss: ns G sign", "objectives/losses.py", "return F.softplus(-fake_logits).mean()",
     "return F.softplus(fake_logits).mean()"),
    ("loss: minimax G sign", "objectives/losses.py", "return -F.softplus(fake_logits).mean()",
     "return F.softplus(fake_logits).mean()"),
    ("loss: wgan D sign", "objectives/losses.py", "return fake_logits.mean() - real_logits.mean()",
     "return real_logits.mean() - fake_logits.mean()"),
    ("loss: wgan G weight", "objectives/losses.py", "return -fake_logits.mean()", "return -2 * fake_logits.mean()"),
    ("loss: ls D weight", "objectives/losses.py", "return 0.5 * (real - 1).square().mean() + 0.5 * fake",
     "return (real - 1).square().mean() + 0.5 * fake"),
    ("loss: ls G target", "objectives/losses.py", "return 0.5 * (torch.sigmoid(fake_logits) - 1)",
     "return 0.5 * (torch.sigmoid(fake_logits) - 0.9)"),
    ("loss: hinge margin", "objectives/losses.py", "F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits)",
     "F.relu(1 - real_logits).mean() + F.relu(fake_logits)"),
    # the penalties
    ("penalty: wgan_gp target norm", "objectives/penalties.py",
     "return (gradient_norm(D, x_hat, labels, scale) - 1).square().mean()",
     "return (gradient_norm(D, x_hat, labels, scale) - 0.5).square().mean()"),
    ("penalty: wgan_gp interpolates", "objectives/penalties.py", "x_hat = real + alpha * (fake - real)",
     "x_hat = fake + alpha * (fake - real)"),
    ("penalty: wgan_gp one alpha per element", "objectives/penalties.py",
     "alpha = _uniform((real.shape[0],) + (1,) * (real.dim() - 1), real, generator)",
     "alpha = _uniform(tuple(real.shape), real, generator)"),
    ("penalty: dragan noise centre", "objectives/penalties.py", "u.std(correction=0) * (noise - 0.5)",
     "u.std(correction=0) * (noise - 0.25)"),
    ("penalty: dragan sample std", "objectives/penalties.py", "u.std(correction=0) * (noise - 0.5)",
     "u.std() * (noise - 0.5)"),
    ("penalty: dragan not clipped", "objectives/penalties.py", "u_tilde = u_tilde.clamp(*scale.bounds)",
     "u_tilde = u_tilde"),
    ("penalty: r1 without its half", "objectives/penalties.py",
     "return 0.5 * input_gradient(D, real, labels, scale)", "return input_gradient(D, real, labels, scale)"),
    ("penalty: r2 on the data scale", "objectives/penalties.py", "return r1(D, fake, labels, scale)",
     "return r1(D, fake, labels)"),
    ("penalty: r2 on real data", "objectives/penalties.py",
     "Penalty(\"r2\", D_LOSS, lambda i: r2(i.D, i.fake,", "Penalty(\"r2\", D_LOSS, lambda i: r2(i.D, i.real,"),
    ("penalty: gradient not differentiable", "objectives/penalties.py", "create_graph=True)", "create_graph=False)"),
    ("penalty: unit scale offset", "objectives/penalties.py", "lambda x: (x + 1) / 2", "lambda x: x / 2"),
    ("penalty: unit scale factor", "objectives/penalties.py", "lambda u: 2 * u - 1", "lambda u: u - 1"),
    ("penalty: l2 sums over layers", "objectives/penalties.py",
     "return torch.stack([0.5 * w.square().sum() for w in weight_tensors(D)]).mean()",
     "return torch.stack([0.5 * w.square().sum() for w in weight_tensors(D)]).sum()"),
    ("penalty: l2 without its half", "objectives/penalties.py", "[0.5 * w.square().sum() for w", "[w.square().sum() for w"),
    ("penalty: ortho keeps the diagonal", "objectives/penalties.py",
     "return (gram * (1 - torch.eye(", "return (gram * (1 + 0 * torch.eye("),
    ("d_input: instance noise variance as std", "objectives/d_input.py",
     "return x + std * torch.randn(", "return x + std ** 2 * torch.randn("),
    ("d_input: anneal off by one", "objectives/d_input.py", "1.0 - step / anneal_steps",
     "1.0 - (step + 1) / anneal_steps"),
    ("penalty: clip bound", "objectives/penalties.py", "param.clamp_(-bound, bound)", "param.clamp_(-bound, 2 * bound)"),
    # EMA
    ("ema: decay and weight swapped", "training/ema.py", "weight = 1.0 - self.decay if", "weight = self.decay if"),
    ("ema: start off by one", "training/ema.py", "if step >= self.start else", "if step > self.start else"),
    ("ema: never moves", "training/ema.py", "avg.lerp_(param, weight)", "avg.lerp_(param, 0.0)"),
    ("ema: buffers averaged", "training/ema.py", "avg.copy_(buf)", "avg.lerp_(buf, 0.5)"),
    # optimizers
    ("optim: adam ignores beta2", "training/optim.py", "betas=(cfg.beta1, cfg.beta2)", "betas=(cfg.beta1, 0.999)"),
    ("optim: adam ignores beta1", "training/optim.py", "betas=(cfg.beta1, cfg.beta2)", "betas=(0.9, cfg.beta2)"),
    ("optim: adam ignores eps", "training/optim.py", "betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)",
     "betas=(cfg.beta1, cfg.beta2))"),
    ("optim: rmsprop ignores alpha", "training/optim.py", "alpha=cfg.alpha, eps=cfg.eps", "eps=cfg.eps"),
    ("optim: rmsprop lr", "training/optim.py", "RMSprop(params, lr=cfg.lr,", "RMSprop(params, lr=2 * cfg.lr,"),
    ("state: G gets D's optimizer settings", "training/state.py", "(G.parameters(), cfg.g_opt)",
     "(G.parameters(), cfg.d_opt)"),
    ("state: EMA start ignored", "training/state.py", "EMA(G, cfg.train.ema, cfg.train.ema_start)",
     "EMA(G, cfg.train.ema, 0)"),
    # the fast step: one D call, no host reads, float32 where it matters, compilation, layout
    ("objective: fused logits swapped", "objectives/objective.py",
     "real_logits, fake_logits = at_least_float32(both).split(", "fake_logits, real_logits = at_least_float32(both).split("),
    ("state: fused D call despite batch norm", "training/state.py", "fused_d = cfg.train.fused_d and not mixes_samples(D)",
     "fused_d = cfg.train.fused_d"),
    ("objective: logits left in bf16", "objectives/objective.py",
     "return x.to(torch.promote_types(x.dtype, torch.float32))", "return x"),
    ("step: a loss read on the host", "training/step.py", "                (d.total / weight).backward()\n",
     "                (d.total / weight).backward()\n                float(d.loss)\n"),
    ("step: penalties through the compiled D", "training/step.py", "penalty_D=D, d_update=d_update)",
     "penalty_D=state.D_forward, d_update=d_update)"),
    ("speed: tf32 left on after the run", "training/speed.py",
     "torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous", "pass"),
    ("resnet: unpool drops the NHWC layout", "nets/resnet.py", ".contiguous(memory_format=memory_format_of(x))", ""),
    ("monitor: later bad steps replace the first", "training/divergence.py",
     "newly_bad = (self.first_bad < 0) & ~torch.isfinite(values).all()", "newly_bad = ~torch.isfinite(values).all()"),
    ("prefetch: generator not moved past the prefetched batch", "data/prefetch.py", "            generator.set_state(end)\n",
     ""),
    ("prefetch: a batch served after its generator moved", "data/prefetch.py",
     "ahead[0] == n and torch.equal(ahead[1], generator.get_state())", "ahead[0] == n"),
    # spectral and weight normalization, translated ReLU
    ("spectral: u never stored", "nets/layers.py", "self.u.copy_(u)", "pass"),
    ("spectral: u stored in eval mode too", "nets/layers.py", "        if self.training:\n            self.u.copy_",
     "        if True:\n            self.u.copy_"),
    ("spectral: sigma from a refreshed v", "nets/layers.py", "        return u, v\n",
     "        return u, F.normalize(w.mT @ u, dim=0, eps=self.eps)\n"),
    ("spectral: eps ignored", "nets/layers.py", "        self.eps = eps\n", "        self.eps = 1e-12\n"),
    ("spectral: two power iterations", "nets/layers.py", "for _ in range(self.n_power_iterations):",
     "for _ in range(self.n_power_iterations + 1):"),
    ("spectral: sigma without gradient", "nets/layers.py", "return self.weight / sigma",
     "return self.weight / sigma.detach()"),
    ("weight norm: one norm for the whole layer", "nets/layers.py",
     "scale = self.tap_scale / self.weight_matrix().norm(dim=1).clamp_min(self.eps)",
     "scale = self.tap_scale / self.weight_matrix().norm().clamp_min(self.eps)"),
    ("weight norm: stride factor without its root", "nets/layers.py",
     "self.tap_scale = math.sqrt(math.prod(self.stride))", "self.tap_scale = float(math.prod(self.stride))"),
    ("weight norm: init bound", "nets/layers.py", "bound = init_factor / math.sqrt(", "bound = init_factor / ("),
    ("treLU: threshold not added back", "nets/layers.py", "return rectified + alpha", "return rectified"),
    ("treLU: slope clamped to [0, 2]", "nets/layers.py", "self.slope.clamp_(0.0, 1.0)", "self.slope.clamp_(0.0, 2.0)"),
    # BigGAN's standing statistics
    ("standing: an exponential average", "nets/standing.py",
     "m.momentum = None  # a cumulative average: each pass counts the same", "pass"),
    ("standing: the old statistics kept", "nets/standing.py", "m.reset_running_stats()", "pass"),
    # BigGAN's layers
    ("attention: softmax over the queries", "nets/attention.py", "torch.softmax(q.transpose(1, 2) @ k, dim=-1)",
     "torch.softmax(q.transpose(1, 2) @ k, dim=1)"),
    ("attention: no residual", "nets/attention.py", "return x + self.gamma * self.out(attended)",
     "return self.gamma * self.out(attended)"),
    ("conditional bn: gain without its 1", "nets/conditional_norm.py", "gain, bias = 1 + self.gain(condition),",
     "gain, bias = self.gain(condition),"),
    ("conditional bn: bias from the gain map", "nets/conditional_norm.py", "1 + self.gain(condition), self.bias(condition)",
     "1 + self.gain(condition), self.gain(condition)"),
    ("conditional bn: per-class bias from the gain table", "nets/conditional_norm.py",
     "class_embedding(self.bias, condition)", "class_embedding(self.gain, condition)"),
    # BigGAN and BigGAN-deep
    ("biggan: G block upsamples by zero insertion", "nets/biggan.py",
     "h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2)",
     "h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2, mode='bilinear')"),
    ("biggan: G shortcut without its conv", "nets/biggan.py", "return h + self.conv_sc(F.interpolate(x, scale_factor=2))",
     "return h + F.interpolate(x, scale_factor=2)"),
    ("biggan: D shortcut conv skipped in pre-activated blocks", "nets/biggan.py",
     "return self._pool(self.conv_sc(x)) if self.preactivation else self.conv_sc(self._pool(x))",
     "return self._pool(x) if self.preactivation else self.conv_sc(self._pool(x))"),
    ("biggan: D mean-pools", "nets/biggan.py", "h = F.relu(h).sum(dim=(2, 3))", "h = F.relu(h).mean(dim=(2, 3))"),
    ("biggan: projection subtracted", "nets/biggan.py", "return out + (self.embed(y) * h).sum(dim=1)",
     "return out - (self.embed(y) * h).sum(dim=1)"),
    ("biggan: z chunks shifted by one", "nets/biggan.py", "return chunks[0], rest", "return chunks[0], rest[1:] + rest[:1]"),
    ("biggan: hierarchical chunk without the embedding", "nets/biggan.py",
     "rest = [torch.cat([embedded, c], dim=1) if embedded is not None else c for c in chunks[1:]]",
     "rest = [torch.cat([torch.zeros_like(embedded), c], dim=1) if embedded is not None else c for c in chunks[1:]]"),
    ("biggan: deep z before the embedding", "nets/biggan.py", "joined = torch.cat([embedded, z], dim=1)",
     "joined = torch.cat([z, embedded], dim=1)"),
    ("biggan: deep G shortcut keeps the last channels", "nets/biggan.py", "x = x[:, :self.out_ch]",
     "x = x[:, x.shape[1] - self.out_ch:]"),
    ("biggan: deep D appends before the input", "nets/biggan.py", "x = torch.cat([x, self.conv_sc(x)], dim=1)",
     "x = torch.cat([self.conv_sc(x), x], dim=1)"),
    ("biggan: deep D block without its first ReLU", "nets/biggan.py", "self.conv1(F.relu(x))", "self.conv1(x)"),
    ("biggan: D attention placed by the block's input size", "nets/biggan.py", "            if size in settings.attention:",
     "            if size * (2 if downsample else 1) in settings.attention:"),
    ("biggan: G's embedding spectrally normalised", "nets/biggan.py",
     "self.shared = nn.Embedding(num_classes, shared_dim) if shared_dim else None",
     "self.shared = layers.embedding(num_classes, shared_dim) if shared_dim else None"),
    ("biggan: N02 init with std 0.01", "nets/biggan.py", "mean=0.0, std=0.02)", "mean=0.0, std=0.01)"),
    ("importer: sv0 not required", "importers.py", "missing += sorted(logged - set(state))", "pass"),
    ("importer: last BN gain read as its weight", "importers.py", 'entry = {"weight": "gain", **STATISTICS_NAMES}',
     'entry = {**STATISTICS_NAMES}'),
    # studies: the expected best of k trials, the Sobol mapping, the 2-D objective
    ("study: expected best without the worse scores' term", "study/budget.py",
     "probabilities = ((n - i + 1) / n) ** k - ((n - i) / n) ** k", "probabilities = ((n - i + 1) / n) ** k"),
    ("study: expected best ignores the direction", "study/budget.py", "x = x[::-1]", "x = x"),
    ("study: log-uniform draws without the low end", "study/engine.py", "math.exp(low + u * (high - low))",
     "math.exp(low + u * high)"),
    ("study: the last choice never drawn", "study/engine.py", "choices[min(int(u * len(choices)), len(choices) - 1)]",
     "choices[min(int(u * (len(choices) - 1)), len(choices) - 1)]"),
    ("study: top-ups restart the Sobol sequence", "study/engine.py", "engine.fast_forward(start)", "pass"),
    ("study: JS divergence without its half", "metrics/modes.py", "return float((kl(p) + kl(q)) / 2)",
     "return float(kl(p) + kl(q))"),
    # budgets in D updates, searched penalty weights, failed trials, best-so-far, best checkpoints
    ("budget: D budget rounded down", "training/work.py", "return -(-d_updates // n_disc)",
     "return d_updates // n_disc"),
    ("budget: D updates counted as G updates", "training/work.py", '"d_updates": step * self.n_disc',
     '"d_updates": step'),
    ("budget: eval interval left in D updates", "training/work.py", "eval=replace(cfg.eval, every=steps(cfg.eval.every))",
     "eval=cfg.eval"),
    ("penalty weight: key ignored", "config/files.py",
     "use[names.index(name)] = dataclasses.replace(use[names.index(name)], weight=weight)", "pass"),
    ("study: lambda searched where no penalty is used", "study/spec.py",
     "return Param(self.name, self.kind, self.args, keys) if keys else None",
     "return Param(self.name, self.kind, self.args, keys or self.keys)"),
    ("study: failed trials scored as the best", "study/report.py",
     "failed = self.value if self.counted else math.nan", "failed = -math.inf if self.counted else math.nan"),
    ("study: best-so-far takes the worst", "study/budget.py", "(np.fmin if minimize else np.fmax)",
     "(np.fmax if minimize else np.fmin)"),
    ("study: best step in the wrong direction", "study/engine.py",
     'pick = min if spec.objective.direction == "minimize" else max', 'pick = max'),
    # lazy regularization, GAN_stability's networks and import, convergence and settling, paper studies
    ("lazy: regularizing on the wrong updates", "objectives/objective.py",
     "regularizing = d_update % self.lazy_interval == 0", "regularizing = d_update % self.lazy_interval == 1"),
    ("lazy: weight not scaled by the interval", "objectives/objective.py",
     "(penalty, weight * self.lazy_interval if penalty.lazy else weight)", "(penalty, weight)"),
    ("gan_stability: residual branch unscaled", "nets/gan_stability.py",
     "return shortcut + RESIDUAL_SCALE * self.conv_1(", "return shortcut + self.conv_1("),
    ("gan_stability: ReLU instead of leaky ReLU", "nets/gan_stability.py",
     "lambda: nn.LeakyReLU(LEAK))", "lambda: nn.ReLU())"),
    ("gan_stability: embedding never normalized", "nets/gan_stability.py",
     "return e / e.norm(dim=1, keepdim=True) if self.unit_embedding else e", "return e"),
    ("gan_stability: D's logit of label 0 for everyone", "nets/gan_stability.py",
     "return logits.gather(1, y.view(-1, 1)).view(len(x))", "return logits[:, 0]"),
    ("import: DataParallel prefix kept", "importers.py",
     "return {key.removeprefix(PARALLEL_PREFIX): value for key, value in state.items()}",
     "return dict(state)"),
    ("convergence: g_move not per update", "training/convergence.py",
     "return float((now.double() - before.double()).norm()) / updates",
     "return float((now.double() - before.double()).norm())"),
    ("convergence: mean norm instead of root mean square", "training/convergence.py",
     "return float(squared.mean().sqrt())", "return float(squared.sqrt().mean())"),
    ("settling: peak rule ignored", "study/settling.py",
     "return bool(grad[-1] <= PEAK_FRACTION * np.nanmax(grad) and grad[-1] <= grad[-2]",
     "return bool(grad[-1] <= grad[-2]"),
    ("curves: final value of the first evaluation", "study/report.py",
     "last = [float(values[-1]) for _, values in curve.runs]", "last = [float(values[0]) for _, values in curve.runs]"),
    ("named groups: labels set nothing", "study/spec.py",
     "settings.update(self.group_sets[key][value] if key in self.group_sets else {key: value})",
     "settings.update({key: value})"),
    ("presets: base wins over the preset", "config/files.py",
     "for layer in reversed(layers):  # the root base first, the preset asked for last", "for layer in layers:"),
    ("npy: float32 images not scaled", "data/npy_folder.py", "        return array, 255.0", "        return array, 1.0"),
]


def plant(path: Path, text: str, replacement: str) -> str:
    original = path.read_text()
    if original.count(text) != 1:
        raise SystemExit(f"{path}: the text to replace occurs {original.count(text)} times, not once: {text!r}")
    path.write_text(original.replace(text, replacement))
    return original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="plant only the errors whose name contains this")
    parser.add_argument("--tests", nargs="*", default=TESTS, help="test files or folders (default: %(default)s)")
    args = parser.parse_args()
    chosen = [e for e in ERRORS if args.only in e[0]]
    survivors = []
    for i, (name, file, text, replacement) in enumerate(chosen, 1):
        path = SRC / file
        original = plant(path, text, replacement)
        tic = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                     *args.tests], cwd=REPO, capture_output=True, text=True)
        finally:
            path.write_text(original)
        caught = result.returncode != 0
        failed = next((line for line in result.stdout.splitlines() if line.startswith("FAILED")), "")
        print(f"[{i}/{len(chosen)}] {'caught  ' if caught else 'SURVIVED'} {name}  ({time.perf_counter() - tic:.0f} s)"
              + (f"\n    {failed[:160]}" if failed else ""), flush=True)
        if not caught:
            survivors.append(name)
    print(f"\n{len(chosen) - len(survivors)} of {len(chosen)} planted errors caught.")
    for name in survivors:
        print(f"  survived: {name}")
    return len(survivors)


if __name__ == "__main__":
    sys.exit(main())
