"""The training step against values computed independently of the code under test.

The networks are tiny and in float64, with gradients that have closed forms:

* G(z) = W z + c (one linear layer);
* D(x, y) = a.x + b + q/2 |x|^2 (+ e_y.x when conditional, a projection embedding), whose input
  gradient a + q x + e_y depends on where it is taken, so a penalty evaluated at the wrong points
  gives a different value.

Each expected gradient is written out by hand here from the papers' formulas: the loss derivatives
(sigmoids by hand, no ganscape loss function), the penalties' derivatives, instance noise at its
annealed std, and the step's batches replayed from copies of the run's random streams in the order
the step documents. The step's gradients are read where the optimizers see them (at ``step()``).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from float32_error import assert_float32_close, float32_bound
from ganscape.config import OptimConfig, load_config
from ganscape.objectives.d_input import DInput
from ganscape.objectives.objective import Objective
from ganscape.training.ema import EMA
from ganscape.training.optim import OPTIMIZERS
from ganscape.training.state import GANState
from ganscape.training.step import train_step

DIM, LATENT, CLASSES, BATCH = 3, 2, 3, 16
pytestmark = [pytest.mark.filterwarnings("ignore::ganscape.errors.ConfigWarning"),  # e.g. wgan without constraint
              pytest.mark.usefixtures("float64")]


class Blobs:
    """3-D points around (1, -1, 0.5) with labels 0..2, drawn only from the given generator."""

    name, shape, num_classes = "blobs", (DIM,), CLASSES

    def sample(self, n, generator):
        x = 0.7 * torch.randn(n, DIM, generator=generator) + torch.tensor([1.0, -1.0, 0.5])
        return x, torch.randint(CLASSES, (n,), generator=generator)


class LinearG(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(LATENT, DIM)

    def forward(self, z, y=None):
        return self.layer(z)


class QuadraticD(nn.Module):
    """D(x, y) = a.x + b + q/2 |x|^2 (+ e_y.x)."""

    def __init__(self, conditional):
        super().__init__()
        self.linear = nn.Linear(DIM, 1)
        self.q = nn.Parameter(torch.tensor(0.3))
        self.embed = nn.Embedding(CLASSES, DIM) if conditional else None

    def forward(self, x, y=None):
        out = self.linear(x).squeeze(1) + 0.5 * self.q * x.square().sum(dim=1)
        return out + (self.embed(y) * x).sum(dim=1) if self.embed is not None else out


def build(overrides):
    """A config and a GANState of the tiny networks, built with the run's own optimizer registry."""
    cfg = load_config(None, [f"train.batch_size={BATCH}", f"latent.dim={LATENT}", "train.ema=0", *overrides])
    torch.manual_seed(0)
    G, D = LinearG(), QuadraticD(cfg.data.conditional)
    with torch.no_grad():  # a D that is neither flat nor saturated on the data
        D.linear.weight.mul_(2.0)
        D.linear.bias.fill_(0.2)
    opt_g = OPTIMIZERS[cfg.g_opt.name](G.parameters(), cfg.g_opt)
    opt_d = OPTIMIZERS[cfg.d_opt.name](D.parameters(), cfg.d_opt)
    ema = EMA(G, cfg.train.ema, cfg.train.ema_start) if cfg.train.ema else None
    rngs = [torch.Generator().manual_seed(seed) for seed in (11, 12, 13)]
    return cfg, GANState(G, D, opt_g, opt_d, ema, *rngs, d_input=DInput.from_config(cfg.augment, images=False))


def recorded(optimizer, module, other):
    """Wrap ``optimizer.step`` to record, at every call, ``module``'s parameters and gradients (what the
    update reads), its parameters after the update, and the other network's parameters."""
    calls = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        params = {name: p.detach().clone() for name, p in module.named_parameters()}
        grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
        result = step(*args, **kwargs)
        after = {name: p.detach().clone() for name, p in module.named_parameters()}
        calls.append({"params": params, "grads": grads, "after": after,
                      "other": {name: p.detach().clone() for name, p in other.named_parameters()}})
        return result

    optimizer.step = recording_step
    return calls


# ---------------------------------------------------------------- derivatives written out by hand


def sigmoid(t):
    return 1 / (1 + torch.exp(-t))


def d_loss_slopes(loss, t_real, t_fake):
    """d/dt of each term of D's loss mean phi_r(D(x)) + mean phi_f(D(G(z))), per sample."""
    if loss in ("ns", "minimax"):  # softplus(-t), softplus(t)
        return -sigmoid(-t_real), sigmoid(t_fake)
    if loss == "wgan":  # -t, t
        return -torch.ones_like(t_real), torch.ones_like(t_fake)
    if loss == "hinge":  # relu(1 - t), relu(1 + t)
        return -(t_real < 1).double(), (t_fake > -1).double()
    if loss == "ls":  # (sigma(t) - 1)^2 / 2, sigma(t)^2 / 2
        s_r, s_f = sigmoid(t_real), sigmoid(t_fake)
        return (s_r - 1) * s_r * (1 - s_r), s_f * s_f * (1 - s_f)
    raise AssertionError(loss)


def g_loss_slope(loss, t):
    """d/dt of G's loss mean psi(D(G(z))), per sample."""
    if loss == "ns":  # softplus(-t)
        return -sigmoid(-t)
    if loss == "minimax":  # -softplus(t)
        return -sigmoid(t)
    if loss in ("wgan", "hinge"):  # -t
        return -torch.ones_like(t)
    if loss == "ls":  # (sigma(t) - 1)^2 / 2
        s = sigmoid(t)
        return (s - 1) * s * (1 - s)
    raise AssertionError(loss)


def d_of(p, x, y):
    """D(x, y) with parameters ``p`` (a dict of D's named parameters)."""
    out = x @ p["linear.weight"][0] + p["linear.bias"][0] + 0.5 * p["q"] * x.square().sum(dim=1)
    return out + (p["embed.weight"][y] * x).sum(dim=1) if "embed.weight" in p else out


def input_grad(p, x, y):
    """dD/dx = a + q x (+ e_y), per sample."""
    g = p["linear.weight"][0] + p["q"] * x
    return g + p["embed.weight"][y] if "embed.weight" in p else g


def zero_like(p):
    return {name: torch.zeros_like(value) for name, value in p.items()}


def add_sample_gradient(grad, p, x, y, weights):
    """grad += sum_i weights_i * dD(x_i, y_i)/dparams: x, 1, |x|^2 / 2 and x at row y_i."""
    grad["linear.weight"][0] += weights @ x
    grad["linear.bias"][0] += weights.sum()
    grad["q"] += (weights * 0.5 * x.square().sum(dim=1)).sum()
    if "embed.weight" in p:
        grad["embed.weight"].index_add_(0, y, weights[:, None] * x)


def add_input_gradient_terms(grad, p, x, y, coeff, scale):
    """grad += sum_i d/dparams of coeff_i . g_i, with g_i = scale * (a + q x_i + e_yi) the input gradient on
    the penalty's scale and coeff_i held fixed: scale * (coeff_i, 0, coeff_i . x_i, coeff_i at row y_i)."""
    grad["linear.weight"][0] += scale * coeff.sum(dim=0)
    grad["q"] += scale * (coeff * x).sum()
    if "embed.weight" in p:
        grad["embed.weight"].index_add_(0, y, scale * coeff)


def penalty_gradient(name, p, real, fake, y, noise_rng, scale_name):
    """d/dparams of the unweighted penalty, drawing its randomness from ``noise_rng`` as the step does."""
    grad = zero_like(p)
    s = 2.0 if scale_name == "unit" else 1.0  # d/dx01 = 2 d/dx for x01 = (x + 1) / 2
    if name in ("r1", "r2"):  # 1/2 mean |g|^2 -> mean g . dg
        x = real if name == "r1" else fake
        add_input_gradient_terms(grad, p, x, y, s * input_grad(p, x, y) / len(x), s)
    elif name in ("wgan_gp", "dragan"):  # mean (|g| - 1)^2 -> mean 2 (|g| - 1) g / |g| . dg
        if name == "wgan_gp":
            alpha = torch.rand(len(real), 1, generator=noise_rng)
            x = real + alpha * (fake - real)
        else:
            u = (real + 1) / 2 if scale_name == "unit" else real
            u = u + u.std(correction=0) * (torch.rand(real.shape, generator=noise_rng) - 0.5)
            x = 2 * u.clamp(0, 1) - 1 if scale_name == "unit" else u
        g = s * input_grad(p, x, y)
        norm = g.norm(dim=1, keepdim=True)
        add_input_gradient_terms(grad, p, x, y, 2 * (norm - 1) * g / norm / len(x), s)
    elif name == "l2":  # mean over D's one weight matrix of |W|^2 / 2
        grad["linear.weight"] += p["linear.weight"]
    else:
        raise AssertionError(name)
    return grad


def orthogonal_gradient(w):
    """d/dW sum_{i != j} (w_i . w_j)^2 = 4 (W W^T masked off the diagonal) W."""
    gram = w @ w.T
    return 4 * (gram - torch.diag(torch.diag(gram))) @ w


def expected_step(cfg, rngs, d_calls, g_call, d_final, step):
    """The gradients of one train_step, from its batches replayed out of copies of the run's streams.

    ``d_calls``: D's parameters at each of its updates; ``g_call``: G's parameters at its update;
    ``d_final``: D's parameters during G's update. Returns (D's gradient per update, G's gradient).
    """
    data_rng, latent_rng, noise_rng = rngs
    loss = cfg.loss
    terms = {t.name: t.weight for t in cfg.penalty.use}
    sigma = cfg.augment.noise  # the instance_noise penalty, moved to the D-input pipeline
    if cfg.augment.noise_anneal_steps:
        sigma *= max(0.0, 1 - step / cfg.augment.noise_anneal_steps)

    def latents():
        if cfg.latent.dist == "normal":
            return torch.randn(BATCH, LATENT, generator=latent_rng)
        return 2 * torch.rand(BATCH, LATENT, generator=latent_rng) - 1

    def seen(x):  # instance noise on what D sees
        return x + sigma * torch.randn(x.shape, generator=noise_rng) if sigma > 0 else x

    def g_of(z):
        return z @ g_call["params"]["layer.weight"].T + g_call["params"]["layer.bias"]

    parts = cfg.train.accumulate  # micro-batches per update: one batch of parts * BATCH samples, in order
    d_grads = []
    for call in d_calls:
        p = call["params"]
        grad, labels = zero_like(p), []
        for _ in range(parts):
            real, y = Blobs().sample(BATCH, data_rng)
            y = y if cfg.data.conditional else None
            fake = g_of(latents())
            real, fake = seen(real), seen(fake)
            slope_real, slope_fake = d_loss_slopes(loss, d_of(p, real, y), d_of(p, fake, y))
            add_sample_gradient(grad, p, real, y, slope_real / (parts * BATCH))
            add_sample_gradient(grad, p, fake, y, slope_fake / (parts * BATCH))
            for name, weight in terms.items():
                if name in ("r1", "r2", "wgan_gp", "dragan", "l2"):
                    term = penalty_gradient(name, p, real, fake, y, noise_rng, cfg.penalty.pixel_scale)
                    grad = {k: grad[k] + weight / parts * term[k] for k in grad}
            labels.append(y)
        d_grads.append(grad)

    g_grad = {"layer.weight": 0, "layer.bias": 0}
    for y in labels:  # G's micro-batch i takes the labels of the last D update's micro-batch i
        z = latents()
        fake = seen(g_of(z))
        through = g_loss_slope(loss, d_of(d_final, fake, y))[:, None] * input_grad(d_final, fake, y) / (parts * BATCH)
        g_grad = {"layer.weight": g_grad["layer.weight"] + through.T @ z,
                  "layer.bias": g_grad["layer.bias"] + through.sum(dim=0)}
    if "ortho" in terms:
        g_grad["layer.weight"] = g_grad["layer.weight"] + terms["ortho"] * orthogonal_gradient(
            g_call["params"]["layer.weight"])
    return d_grads, g_grad


def copies(state):
    """Independent copies of the run's three random streams."""
    out = []
    for rng in (state.data_rng, state.latent_rng, state.noise_rng):
        twin = torch.Generator()
        twin.set_state(rng.get_state())
        out.append(twin)
    return out


def assert_close(got, want, what):
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-11, msg=lambda m: f"{what} {name}: {m}")


# ---------------------------------------------------------------- the step's gradients

LOSSES = ["ns", "minimax", "wgan", "hinge", "ls"]
CASES = {
    **{f"{loss}": [f"loss={loss}", "train.n_disc=2"] for loss in LOSSES},
    **{f"ns+{p}": ["train.n_disc=2", f"penalty={p}:0.7"] for p in ("wgan_gp", "dragan", "r1", "r2", "l2", "ortho")},
    **{f"hinge+{p} unit": ["loss=hinge", f"penalty={p}:0.7", "penalty.pixel_scale=unit"]
       for p in ("wgan_gp", "dragan", "r1", "r2")},
    "instance noise annealed": ["penalty=instance_noise:0.4", "penalty.noise_anneal_steps=3", "train.n_disc=2"],
    "everything, conditional": ["loss=ls", "data.conditional=true", "train.n_disc=3", "latent.dist=uniform",
                                "penalty=r1:0.5,wgan_gp:0.3,l2:0.2,ortho:0.05,instance_noise:0.3",
                                "penalty.noise_anneal_steps=4", "g_opt.name=rmsprop", "d_opt.name=rmsprop"],
    "conditional wgan_gp and dragan": ["loss=wgan", "data.conditional=true", "penalty=dragan:2,wgan_gp:1",
                                       "penalty.pixel_scale=unit"],
    "3 micro-batches, conditional, penalties": ["loss=hinge", "train.accumulate=3", "train.n_disc=2",
                                                "data.conditional=true",
                                                "penalty=wgan_gp:0.5,r1:0.3,ortho:0.1,l2:0.2,instance_noise:0.2"],
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_step_gradients_equal_the_formulas_written_out(overrides):
    """Over two steps, every D update's gradient and G's equal the hand-derived gradient of the loss plus
    each weighted penalty on the replayed batches (instance noise at std sigma (1 - step / anneal)); with
    ``train.accumulate=k``, the gradient of one batch made of the k micro-batches, drawn in turn; D
    takes exactly n_disc updates per G update, G does not move during them, and D not during G's."""
    cfg, state = build(overrides)
    objective = Objective.from_config(cfg)
    d_calls = recorded(state.opt_d, state.D, state.G)
    g_calls = recorded(state.opt_g, state.G, state.D)
    for step in range(2):
        rngs = copies(state)
        g_before = {name: p.detach().clone() for name, p in state.G.named_parameters()}
        d_calls.clear(), g_calls.clear()
        train_step(state, Blobs(), objective, cfg)
        assert len(d_calls) == cfg.train.n_disc and len(g_calls) == 1
        for call in d_calls:  # G is untouched by D's updates
            assert_close(call["other"], g_before, "G during D's update")
        assert_close(g_calls[0]["params"], g_before, "G at its update")
        assert_close(g_calls[0]["other"], d_calls[-1]["after"], "D during G's update")
        assert_close(dict(state.D.named_parameters()), d_calls[-1]["after"], "D after G's update")
        for before, after in zip(d_calls, d_calls[1:]):  # nothing else changes D between its updates
            assert_close(after["params"], before["after"], "D between its updates")
        d_grads, g_grad = expected_step(cfg, rngs, d_calls, g_calls[0], d_calls[-1]["after"], step)
        for k, (call, want) in enumerate(zip(d_calls, d_grads)):
            assert_close(call["grads"], want, f"step {step}, D update {k}: gradient of")
        assert_close(g_calls[0]["grads"], g_grad, f"step {step}: G's gradient of")
    assert state.step == 2


def test_wgan_clip_clamps_d_after_every_update():
    """D's parameters at each update are those after the previous one, clamped to [-c, c]."""
    cfg, state = build(["loss=wgan", "penalty=wgan_clip:0.25", "train.n_disc=3"])
    calls = recorded(state.opt_d, state.D, state.G)
    for _ in range(2):
        train_step(state, Blobs(), Objective.from_config(cfg), cfg)
    assert len(calls) == 6
    for before, after in zip(calls, calls[1:]):
        clamped = {name: value.clamp(-0.25, 0.25) for name, value in before["after"].items()}
        assert_close(after["params"], clamped, "clipped D")
    assert any((value.abs() > 0.25).any() for value in calls[0]["after"].values())  # clipping had work to do


@pytest.mark.parametrize("loss", LOSSES)
def test_a_generator_update_moves_the_fakes_toward_higher_scores(loss):
    """With D nearly frozen (lr 1e-12), one G update raises the mean score of D on G's output for the
    same latents: every loss's G minimises a decreasing function of D's logit."""
    cfg, state = build([f"loss={loss}", "d_opt.lr=1e-12", "g_opt.lr=0.05"])
    with torch.no_grad():
        state.D.q.zero_()  # a linear D
    z = torch.randn(256, LATENT, generator=torch.Generator().manual_seed(5))
    before = state.D(state.G(z)).mean().item()
    train_step(state, Blobs(), Objective.from_config(cfg), cfg)
    after = state.D(state.G(z)).mean().item()
    assert after > before + 1e-3


# ---------------------------------------------------------------- optimizers and EMA


def adam_by_hand(p, grads, c):
    m = v = torch.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        m = c.beta1 * m + (1 - c.beta1) * g
        v = c.beta2 * v + (1 - c.beta2) * g * g
        p = p - c.lr * (m / (1 - c.beta1**t)) / ((v / (1 - c.beta2**t)).sqrt() + c.eps)
        out.append(p)
    return out


def rmsprop_by_hand(p, grads, c):
    v = torch.zeros_like(p)
    out = []
    for g in grads:
        v = c.alpha * v + (1 - c.alpha) * g * g
        p = p - c.lr * g / (v.sqrt() + c.eps)
        out.append(p)
    return out


BY_HAND = {"adam": adam_by_hand, "rmsprop": rmsprop_by_hand}


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_optimizer_updates_equal_the_update_rules_written_out(name):
    """Three steps of each registered optimizer equal Adam's (bias-corrected m / (sqrt(v) + eps)) and
    RMSProp's (g / (sqrt(v) + eps), v smoothed by alpha) rules with every configured value distinct."""
    c = OptimConfig(name=name, lr=0.05, beta1=0.6, beta2=0.8, eps=0.3, alpha=0.7)
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = OPTIMIZERS[name]([p], c)
    grads = [torch.tensor([0.3, -1.0, 2.0]), torch.tensor([-0.5, 0.2, 1.0]), torch.tensor([1.5, 0.0, -0.4])]
    for g, want in zip(grads, BY_HAND[name](p.detach().clone(), grads, c)):
        p.grad = g.clone()
        optimizer.step()
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)


def test_each_network_gets_its_own_configured_optimizer():
    """build_state gives G the g_opt settings and D the d_opt settings: one hand-written update each."""
    from ganscape.data import build_dataset
    from ganscape.training.state import build_state

    cfg = load_config(None, ["g.width=8", "d.width=8", "g_opt.name=rmsprop", "g_opt.lr=0.01", "g_opt.alpha=0.6",
                             "g_opt.eps=0.2", "d_opt.name=adam", "d_opt.lr=0.03", "d_opt.beta1=0.4",
                             "d_opt.beta2=0.7", "d_opt.eps=0.1"])
    state = build_state(cfg, build_dataset(cfg), torch.device("cpu"))
    for module, optimizer, c in ((state.G, state.opt_g, cfg.g_opt), (state.D, state.opt_d, cfg.d_opt)):
        assert {id(p) for group in optimizer.param_groups for p in group["params"]} == \
            {id(p) for p in module.parameters()}
        p = next(module.parameters())
        start = p.detach().clone()
        grads = [torch.full_like(p, 0.5), torch.full_like(p, -0.2)]
        for g, want in zip(grads, BY_HAND[c.name](start, grads, c)):
            for q in module.parameters():
                q.grad = torch.zeros_like(q)
            p.grad = g.clone()
            optimizer.step()
            torch.testing.assert_close(p.detach(), want.to(p.dtype))


def ema_closed_form(thetas, decay, start):
    """avg_k = d^(k - s') theta_s' + sum_{t = s'+1}^{k} (1 - d) d^(k - t) theta_t, where s' = max(start - 1, 0) is
    the last step at which the average copied the weights (theta_0: the initial weights)."""
    k = len(thetas) - 1
    last_copy = max(start - 1, 0)
    avg = decay ** (k - last_copy) * thetas[last_copy]
    for t in range(last_copy + 1, k + 1):
        avg = avg + (1 - decay) * decay ** (k - t) * thetas[t]
    return avg


@pytest.mark.parametrize("start", [0, 1, 4])
def test_ema_after_k_updates_equals_its_closed_form(start):
    """EMA.update(model, t) for t = 1..6 with known weights theta_t = t * v + t^2 * u."""
    model = nn.Linear(2, 1)
    v, u = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.1, 0.3, -0.2])

    def set_weights(t):
        with torch.no_grad():
            flat = t * v + t * t * u
            model.weight.copy_(flat[:2].view(1, 2))
            model.bias.copy_(flat[2:])

    set_weights(0)
    ema = EMA(model, decay=0.7, start=start)
    for t in range(1, 7):
        set_weights(t)
        ema.update(model, t)
    want = ema_closed_form([t * v + t * t * u for t in range(7)], 0.7, start)
    got = torch.cat([ema.model.weight.detach().view(-1), ema.model.bias.detach()])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.numerics  # float32 training against a float64 closed form
def test_ema_of_a_training_run_equals_its_closed_form_and_copies_buffers():
    """In a run, the EMA after k steps is the closed form over G's weights after each step (ema_start 3),
    and G's batch-norm statistics are copied into it, not averaged (as EMA's docstring says)."""
    from ganscape.data import build_dataset
    from ganscape.training.state import build_state

    cfg = load_config(None, ["g.width=8", "d.width=8", "g.norm=batch", "train.batch_size=32", "train.ema=0.8",
                             "train.ema_start=3"])
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    objective = Objective.from_config(cfg)
    history = [{name: p.detach().clone() for name, p in state.G.named_parameters()}]
    for _ in range(6):
        train_step(state, data, objective, cfg)
        history.append({name: p.detach().clone() for name, p in state.G.named_parameters()})
    for name, p in state.ema.model.named_parameters():
        want = ema_closed_form([h[name].double() for h in history], 0.8, 3)
        # float32 rounding of 6 updates of two terms each (1e-6); a wrong decay or start moves it by 3e-4 or more
        assert_float32_close(p.detach(), want, float32_bound(6, 2), name)
    buffers = dict(state.G.named_buffers())
    assert buffers and all(torch.equal(b, buffers[name]) for name, b in state.ema.model.named_buffers())


def test_the_default_job_learns_the_ring():
    """The default job (ring8, non-saturating GAN, 3000 steps) at seed 0 covers at least 6 of the 8 modes."""
    import pathlib
    import tempfile

    from ganscape.training.loop import train
    from ganscape.runs import RunDir

    with tempfile.TemporaryDirectory() as folder:
        cfg = load_config(None, [f"run.root={pathlib.Path(folder)}", "run.name=default", "log.tensorboard=false",
                                 "log.samples_every=0"])
        torch.set_default_dtype(torch.float32)
        summary = train(cfg, RunDir.create(cfg), progress=False)
    assert summary["results"]["eval/modes_covered"] >= 6
    assert summary["results"]["eval/high_quality_pct"] > 50
    assert math.isfinite(summary["results"]["eval/kl_to_uniform"])


def test_translated_relu_slopes_are_clamped_after_every_update_of_each_network():
    """Weight-normalized nets have TPReLUs whose slopes must stay in [0, 1] (Xiang & Li clamp them after
    every step): at each optimizer step's end the slopes left [0, 1] somewhere, and the step put them back."""
    from ganscape.data import build_dataset
    from ganscape.nets.layers import TranslatedReLU
    from ganscape.training.state import build_state

    torch.set_default_dtype(torch.float32)
    cfg = load_config(None, ["g.width=8", "d.width=8", "g.norm=weight", "d.norm=weight", "train.batch_size=32",
                             "g_opt.name=rmsprop", "d_opt.name=rmsprop", "g_opt.lr=0.5", "d_opt.lr=0.5"])
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    calls = {"G": recorded(state.opt_g, state.G, state.D), "D": recorded(state.opt_d, state.D, state.G)}
    for _ in range(3):
        train_step(state, data, Objective.from_config(cfg), cfg)
    for net, module in (("G", state.G), ("D", state.D)):
        slopes = [name for name, m in module.named_modules() if isinstance(m, TranslatedReLU)]
        assert slopes, net
        left = any(((call["after"][f"{name}.slope"] < 0) | (call["after"][f"{name}.slope"] > 1)).any()
                   for call in calls[net] for name in slopes)
        assert left, f"{net}: no update pushed a slope out of [0, 1], so this test would not see a missing clamp"
        for name in slopes:
            slope = dict(module.named_parameters())[f"{name}.slope"]
            assert slope.min() >= 0 and slope.max() <= 1, f"{net}.{name}"
