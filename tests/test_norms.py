"""Normalizations chosen by name: spectral and weight normalized layers, translated ReLUs, feature
norms, and every NORMS entry inside the MLP generator and discriminator."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import ConfigError
from ganscape.nets.layers import (
    NORMS,
    SNConv2d,
    SNConvTranspose2d,
    SNLinear,
    TranslatedReLU,
    WNConv2d,
    WNConvTranspose2d,
    WNLinear,
    apply_constraints,
)
from ganscape.nets.mlp import MLPDiscriminator, MLPGenerator

# (layer, an input for it)
SPECTRAL_CASES = {
    "linear": lambda: (SNLinear(32, 64), torch.randn(2, 32)),
    "conv": lambda: (SNConv2d(16, 8, 3), torch.randn(2, 16, 5, 5)),
    "conv_transpose": lambda: (SNConvTranspose2d(8, 16, 4, stride=2), torch.randn(2, 8, 3, 3)),
}


def as_matrix(weight, layer):
    """(out_features, fan_in) view of a weight shaped like ``layer.weight``."""
    out_dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    return weight.movedim(out_dim, 0).flatten(1)


# ---------------------------------------------------------------- spectral normalization


@pytest.mark.parametrize("case", SPECTRAL_CASES)
def test_spectral_estimate_converges_to_the_largest_singular_value(case):
    torch.manual_seed(0)
    layer, x = SPECTRAL_CASES[case]()
    for _ in range(200):
        layer(x)
    layer.eval()
    normalized = layer.normalized_weight().detach()
    true_sigma = torch.linalg.svdvals(as_matrix(layer.weight.detach(), layer))[0]
    estimate = layer.weight.detach().norm() / normalized.norm()
    assert estimate.item() == pytest.approx(true_sigma.item(), rel=1e-3)
    assert torch.linalg.svdvals(as_matrix(normalized, layer))[0].item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("case", SPECTRAL_CASES)
def test_spectral_u_moves_in_training_only_and_survives_a_state_dict_round_trip(case):
    torch.manual_seed(1)
    layer, x = SPECTRAL_CASES[case]()
    u0 = layer.u.clone()
    layer(x)
    assert not torch.equal(layer.u, u0)
    assert layer.u.norm().item() == pytest.approx(1.0, abs=1e-6)

    layer.eval()
    u1 = layer.u.clone()
    layer(x)
    assert torch.equal(layer.u, u1)

    state = layer.state_dict()
    assert set(state) == {"weight", "bias", "u"}
    torch.manual_seed(2)
    fresh, _ = SPECTRAL_CASES[case]()
    fresh.load_state_dict(state)
    fresh.eval()
    assert torch.equal(fresh(x), layer(x))
    fresh.train(), layer.train()
    assert torch.equal(fresh(x), layer(x)) and torch.equal(fresh.u, layer.u)


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_spectral_gradient_flows_through_w_and_sigma_with_u_and_v_fixed():
    """The gradient of W / sigma with sigma = u'^T W v, where v = normalize(W^T u) and u' = normalize(W v)
    are held constant (Miyato et al.): autograd through that formula written out is the reference."""
    torch.manual_seed(3)
    layer, x = SPECTRAL_CASES["linear"]()
    layer.eval()  # keeps u fixed so the manual formula sees the same vector
    layer(x).square().sum().backward()

    w = layer.weight.detach().clone().requires_grad_(True)
    v = F.normalize(w.detach().T @ layer.u, dim=0, eps=1e-12)
    u = F.normalize(w.detach() @ v, dim=0, eps=1e-12)
    sigma = u @ w @ v
    F.linear(x, w / sigma, layer.bias.detach()).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    torch.testing.assert_close(layer.weight.grad, w.grad)


def _algorithm1(w: np.ndarray, u: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    """Miyato et al.'s Algorithm 1 (and BigGAN-PyTorch's ``power_iteration``) in float64 NumPy: one power
    iteration from u, then sigma = u'^T W v. Returns (sigma, u')."""
    v = w.T @ u
    v = v / max(np.linalg.norm(v), eps)
    u_new = w @ v
    u_new = u_new / max(np.linalg.norm(u_new), eps)
    return float(u_new @ w @ v), u_new


@pytest.mark.parametrize("case", ["linear", "conv"])
def test_spectral_norm_matches_algorithm_1_written_in_numpy_in_both_modes(case):
    """Outputs and u follow ``_algorithm1`` (float64 NumPy) over steps in which W changes: in training
    mode u becomes u'; in eval mode the same sigma is used and u stays. The layer's eps is the one the
    transcription uses (BigGAN's 1e-6 here)."""
    torch.manual_seed(5)
    layer, x = SPECTRAL_CASES[case]()
    layer.eps = 1e-6
    layer, x = layer.double(), x.double()
    for training in (True, True, True, False, False):
        layer.train(training)
        w = as_matrix(layer.weight.detach(), layer).numpy()
        sigma, u_new = _algorithm1(w, layer.u.numpy().copy(), 1e-6)
        u_before = layer.u.clone()
        out = layer(x)
        with torch.no_grad():
            plain = (F.linear(x, layer.weight / sigma, layer.bias) if case == "linear"
                     else F.conv2d(x, layer.weight / sigma, layer.bias))
        torch.testing.assert_close(out.detach(), plain, rtol=1e-10, atol=1e-12)
        expected_u = torch.from_numpy(u_new) if training else u_before
        torch.testing.assert_close(layer.u, expected_u, rtol=1e-12, atol=1e-14)
        with torch.no_grad():  # a step of training changes W, and u must follow it
            layer.weight.add_(0.3 * torch.randn_like(layer.weight))


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_spectral_norm_refines_u_by_exactly_one_power_iteration_per_training_forward():
    """u_new = normalize(W normalize(W^T u_old)), written out; sigma = u_new.W v with v = normalize(W^T u_old);
    eval mode then takes one more iteration from u_new without storing it."""
    torch.manual_seed(6)
    layer, x = SPECTRAL_CASES["linear"]()
    w = layer.weight.detach()
    u_old = layer.u.clone()
    layer(x)
    v = F.normalize(w.T @ u_old, dim=0, eps=1e-12)
    u_new = F.normalize(w @ v, dim=0, eps=1e-12)
    torch.testing.assert_close(layer.u, u_new)
    layer.eval()
    v2 = F.normalize(w.T @ u_new, dim=0, eps=1e-12)
    u2 = F.normalize(w @ v2, dim=0, eps=1e-12)
    torch.testing.assert_close(layer.normalized_weight().detach(), w / (u2 @ w @ v2))
    torch.testing.assert_close(layer.u, u_new)


@pytest.mark.numerics  # float32, compiled against eager
def test_spectral_layers_compile_fullgraph_and_match_eager():
    torch.manual_seed(4)
    model = nn.Sequential(SNConvTranspose2d(2, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                          SNConv2d(4, 4, 3, padding=1), nn.Flatten(), SNLinear(4 * 8 * 8, 2))
    eager = copy.deepcopy(model)  # same weights and same starting u
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(3, 2, 4, 4)
    u_start = [u.clone() for u in model.buffers()]

    out, expected = compiled(x), eager(x)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(out, expected)
    for got, want in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(got.grad, want.grad)
    for got, want, start in zip(model.buffers(), eager.buffers(), u_start):
        torch.testing.assert_close(got, want)
        assert not torch.equal(got, start)  # the compiled graph wrote the power iteration back


# ---------------------------------------------------------------- weight normalization

WN_LAYERS = {
    "linear": lambda affine: WNLinear(6, 5, affine=affine),
    "conv": lambda affine: WNConv2d(3, 4, 3, affine=affine),
    "conv_transpose": lambda affine: WNConvTranspose2d(3, 4, 3, affine=affine),
}
WN_INPUTS = {"linear": (2, 6), "conv": (2, 3, 5, 5), "conv_transpose": (2, 3, 4, 4)}


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
@pytest.mark.parametrize("kind", WN_LAYERS)
def test_strict_weight_norm_has_unit_rows_and_no_bias_or_gain(kind):
    torch.manual_seed(5)
    layer = WN_LAYERS[kind](False)
    assert layer.bias is None and layer.gain is None
    assert {name for name, _ in layer.named_parameters()} == {"weight"}
    rows = as_matrix(layer.normalized_weight().detach(), layer)
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(len(rows)))


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
@pytest.mark.parametrize("kind", WN_LAYERS)
def test_affine_weight_norm_rows_have_norm_abs_gamma(kind):
    torch.manual_seed(6)
    layer = WN_LAYERS[kind](True)
    torch.testing.assert_close(layer.gain.detach(), torch.ones(4 if kind != "linear" else 5))
    assert not layer.bias.detach().any()
    with torch.no_grad():
        layer.gain.copy_(torch.randn_like(layer.gain) * 2)
    rows = as_matrix(layer.normalized_weight().detach(), layer)
    torch.testing.assert_close(rows.norm(dim=1), layer.gain.detach().abs())


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("kind", WN_LAYERS)
def test_weight_norm_output_is_invariant_to_rescaling_each_raw_weight_row(kind, affine):
    torch.manual_seed(7)
    layer = WN_LAYERS[kind](affine)
    x = torch.randn(WN_INPUTS[kind])
    before = layer(x)
    with torch.no_grad():
        factors = torch.rand(layer.weight.shape[1 if kind == "conv_transpose" else 0]) * 10 + 0.1
        shape = [1] * layer.weight.dim()
        shape[1 if kind == "conv_transpose" else 0] = -1
        layer.weight.mul_(factors.view(shape))
    torch.testing.assert_close(layer(x), before)


@pytest.mark.parametrize("make, fan_in", [(lambda: WNLinear(300, 40), 300),
                                           (lambda: WNConv2d(20, 30, 4, affine=True), 20 * 16),
                                           (lambda: WNConvTranspose2d(24, 10, 4, stride=2), 24 * 16)])
def test_weight_norm_layers_start_as_the_authors_code(make, fan_in):
    """GAN-weight-norm keeps Torch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_ch * kh * kw
    (input channels also for transposed convolutions): the bound holds and the std is bound / sqrt(3)."""
    torch.manual_seed(7)
    weight = make().weight.detach()
    bound = 1 / fan_in**0.5
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.98 * bound
    assert weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)


@pytest.mark.parametrize("arch", ["dcgan", "wn_resnet"])
def test_weight_normalized_generators_start_their_first_layer_at_one_percent(arch):
    """The authors' initWeightFactor 0.01 for G's first layer (latent -> first feature map)."""
    from ganscape.config import load_config
    from ganscape.nets import ARCHITECTURES

    cfg = load_config(None, [f"g.arch={arch}", "g.norm=weight", "g.width=8", "g.depth=1"])
    torch.manual_seed(8)
    G = ARCHITECTURES[arch].generator(cfg.g, 32, (3, 32, 32), 0)
    seed = G.seed.weight.detach()
    assert seed.abs().max().item() <= 0.01 / 32**0.5
    assert seed.std().item() == pytest.approx(0.01 / 32**0.5 / 3**0.5, rel=0.05)
    other = next(m for m in G.modules() if isinstance(m, (WNConv2d, WNConvTranspose2d)))
    assert other.weight.detach().abs().max().item() > 0.5 / other.weight_matrix().shape[1] ** 0.5


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_strided_transposed_weight_norm_scales_output_by_sqrt_of_stride_area():
    torch.manual_seed(8)
    layer = WNConvTranspose2d(3, 4, 4, stride=2, padding=1)
    x = torch.randn(2, 3, 5, 5)
    w = layer.weight.detach()
    unit = w / w.square().sum(dim=(0, 2, 3), keepdim=True).sqrt()
    expected = F.conv_transpose2d(x, unit, stride=2, padding=1) * 2
    torch.testing.assert_close(layer(x), expected)


# ---------------------------------------------------------------- translated ReLUs


def test_translated_relu_matches_the_formulas_on_hand_values():
    trelu, tprelu = TranslatedReLU(2, learnable_slope=False), TranslatedReLU(2, learnable_slope=True)
    with torch.no_grad():
        for act in (trelu, tprelu):
            act.alpha.copy_(torch.tensor([0.5, -1.0]))
        tprelu.slope.copy_(torch.tensor([0.25, 0.5]))
    x = torch.tensor([[0.0, 2.0], [1.0, -3.0]])
    assert trelu(x).tolist() == [[0.5, 2.0], [1.0, -1.0]]  # max(x, alpha)
    assert tprelu(x).tolist() == [[0.375, 2.0], [1.0, -2.0]]  # a (x - alpha) + alpha below alpha
    maps = x.T.reshape(1, 2, 2, 1)  # channel dimension 1 of a feature map
    assert trelu(maps).flatten().tolist() == [0.5, 1.0, 2.0, -1.0]


@pytest.mark.parametrize("learnable_slope", [False, True])
def test_translated_relu_gradients_match_finite_differences(learnable_slope):
    torch.manual_seed(9)
    act = TranslatedReLU(3, learnable_slope).double()
    alpha = torch.randn(3, dtype=torch.float64, requires_grad=True)
    slope = torch.rand(3, dtype=torch.float64, requires_grad=True)
    offset = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    x = (alpha.detach().view(1, 3, 1, 1) + offset.sign() * (0.1 + offset.abs())).requires_grad_(True)
    params = {"alpha": alpha, "slope": slope} if learnable_slope else {"alpha": alpha}

    def f(x, *values):
        return torch.func.functional_call(act, dict(zip(params, values)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params.values()))


def test_constrain_clamps_the_slope_and_apply_constraints_reaches_nested_modules():
    inner, outer = TranslatedReLU(3, learnable_slope=True), TranslatedReLU(2, learnable_slope=True)
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 3), inner), outer, TranslatedReLU(2, learnable_slope=False))
    with torch.no_grad():
        inner.slope.copy_(torch.tensor([-0.5, 0.3, 1.7]))
        outer.slope.copy_(torch.tensor([2.0, -1.0]))
    apply_constraints(model)
    assert inner.slope.tolist() == pytest.approx([0.0, 0.3, 1.0])
    assert outer.slope.tolist() == [1.0, 0.0]


# ---------------------------------------------------------------- feature norms


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_layer_norm_on_maps_normalises_each_sample_over_channels_and_pixels():
    norm = NORMS["layer"].feature_norm(4, 2)
    x = torch.randn(3, 4, 5, 5) * torch.tensor([1.0, 3.0, 0.5]).view(3, 1, 1, 1) + torch.arange(4.0).view(1, 4, 1, 1)
    y = norm(x).flatten(1)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(3), atol=1e-12, rtol=0)
    # var / (var + eps): the norm's eps of 1e-5 against variances above 1 (1.25 from the channel offsets alone)
    torch.testing.assert_close(y.var(dim=1, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert norm.weight.shape == (4,) and norm.bias.shape == (4,)  # gain and bias per channel
    assert isinstance(NORMS["layer"].feature_norm(4, 0), nn.LayerNorm)


def test_instance_norm_needs_feature_maps():
    with pytest.raises(ConfigError, match="instance normalization needs spatial feature maps"):
        NORMS["instance"].feature_norm(8, 0)
    with pytest.raises(ConfigError, match="mlp"):
        MLPDiscriminator((2,), 8, 1, NORMS["instance"])
    norm = NORMS["instance"].feature_norm(8, 2)
    assert isinstance(norm, nn.InstanceNorm2d) and norm.affine


def test_batch_norm_picks_1d_or_2d():
    vec, maps = NORMS["batch"].feature_norm(8, 0), NORMS["batch"].feature_norm(8, 2)
    assert type(vec) is nn.BatchNorm1d and type(maps) is nn.BatchNorm2d
    assert (vec.eps, vec.momentum, maps.eps, maps.momentum) == (1e-5, 0.1, 1e-5, 0.1)


# ---------------------------------------------------------------- every entry in the MLP


def test_registry_names_and_generator_permissions():
    assert set(NORMS) == {"none", "batch", "layer", "instance", "spectral", "weight"}
    assert {name for name, norm in NORMS.items() if norm.for_generator} == {"none", "batch", "spectral", "weight"}


def _assert_trains(model, inputs, shape):
    out = model(inputs)
    assert out.shape == shape and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("name", [name for name, norm in NORMS.items() if norm.for_generator])
def test_every_generator_norm_builds_an_mlp_generator_that_trains(name):
    torch.manual_seed(10)
    G = MLPGenerator(8, (2,), 16, 2, NORMS[name])
    _assert_trains(G, torch.randn(5, 8), (5, 2))


@pytest.mark.parametrize("name", [name for name in NORMS if name != "instance"])
def test_every_vector_norm_builds_an_mlp_discriminator_that_trains(name):
    torch.manual_seed(11)
    D = MLPDiscriminator((2,), 16, 2, NORMS[name])
    _assert_trains(D, torch.randn(5, 2), (5,))


def test_weight_norm_mlp_is_strict_inside_affine_at_the_output_with_tprelus():
    G = MLPGenerator(8, (2,), 16, 2, NORMS["weight"])
    layers = [m for m in G.modules() if isinstance(m, WNLinear)]
    assert [layer.affine for layer in layers] == [False, False, True]
    assert sum(isinstance(m, TranslatedReLU) and m.slope is not None for m in G.modules()) == 2
