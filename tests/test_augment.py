"""DiffAugment's and ADA's transforms against hand-computed values on tiny images, their random
draws against the published distributions, their gradients, and ADA's p controller."""

import math

import pytest
import torch

from ganscape.errors import ConfigError
from ganscape.objectives.augment import (
    ADA_GROUPS,
    ADA_TRANSFORMS,
    DIFFAUGMENT,
    AdaDraw,
    ada_augment,
    adjusted_p,
    blit,
    brightness_matrix,
    check_groups,
    check_policy,
    color_matrix,
    contrast_matrix,
    cutout,
    diffaugment,
    draw_ada_parameters,
    geometric_matrix,
    hue_matrix,
    luma_flip_matrix,
    random_color,
    random_cutout,
    random_translation,
    recolor,
    rotate90,
    rotation_matrix,
    saturation_matrix,
    scale_contrast,
    scale_matrix,
    scale_saturation,
    shift_brightness,
    translate,
    translation_matrix,
    warp,
    xflip,
)

T = torch.tensor
GRID = torch.arange(1.0, 17.0).view(1, 1, 4, 4)  # rows [1 2 3 4], [5 6 7 8], [9 10 11 12], [13 14 15 16]


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def ramps():
    """4x4 images whose value is the pixel's horizontal (x) or vertical (y) position from the centre."""
    centred = torch.arange(4.0) - 1.5
    return centred.expand(4, 4).reshape(1, 1, 4, 4), centred[:, None].expand(4, 4).reshape(1, 1, 4, 4)


def draws(**values):
    """A hand-made draw of one sample per given transform, all applied."""
    return {key: AdaDraw(torch.ones(len(v), dtype=torch.bool), T(v, dtype=torch.float64)) for key, v in values.items()}


# --------------------------------------------------------------------------------------------------
# DiffAugment, explicit parameters


def test_shift_brightness_adds_each_samples_shift():
    """Hand values: x + shift per sample."""
    x = T([[0.1, -0.2], [0.5, 0.0]]).view(2, 1, 1, 2)
    out = shift_brightness(x, T([0.25, -0.5]))
    assert torch.allclose(out, T([[0.35, 0.05], [0.0, -0.5]]).view(2, 1, 1, 2))


def test_scale_saturation_scales_around_each_pixels_channel_mean():
    """Hand values: (0.3, -0.6, 0.9) has mean 0.2, so x2 gives (0.4, -1.4, 1.6); factor 0 gives the mean."""
    x = T([[0.3, -0.6, 0.9], [0.1, 0.2, 0.6]]).view(2, 3, 1, 1)
    out = scale_saturation(x, T([2.0, 0.0]))
    assert torch.allclose(out, T([[0.4, -1.4, 1.6], [0.3, 0.3, 0.3]]).view(2, 3, 1, 1))


def test_scale_contrast_scales_around_the_image_mean_over_channels_and_pixels():
    """Hand values: channels [1, 0] and [0.5, -0.5] have image mean 0.25; m + f (x - m) for f = 0.5, 1.5."""
    x = T([[1.0, 0.0], [0.5, -0.5]]).view(1, 2, 1, 2).repeat(2, 1, 1, 1)
    out = scale_contrast(x, T([0.5, 1.5]))
    expected = T([[[0.625, 0.125], [0.375, -0.125]], [[1.375, -0.125], [0.625, -0.875]]]).view(2, 2, 1, 2)
    assert torch.allclose(out, expected)


def test_translate_with_zero_fill_moves_whole_pixels():
    """Hand values: out[y, x] = in[y - dy, x - dx], zeros from outside, for (right 1, up 1) and (down 2)."""
    out = translate(GRID.repeat(2, 1, 1, 1), T([[1, -1], [0, 2]]))
    expected = T([[[0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15], [0, 0, 0, 0]],
                  [[0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]], dtype=torch.float32)
    assert torch.equal(out, expected.view(2, 1, 4, 4))


def test_translate_with_reflection_mirrors_about_the_edge_pixels():
    """Hand values: right 1 reads column -1 = column 1; left 2 reads columns 4, 5 = 2, 1; up 1 reads row 4 = row 2."""
    out = translate(GRID.repeat(3, 1, 1, 1), T([[1, 0], [-2, 0], [0, -1]]), padding="reflect")
    assert torch.equal(out[0, 0, 0], T([2.0, 1, 2, 3]))
    assert torch.equal(out[1, 0, 0], T([3.0, 4, 3, 2]))
    assert torch.equal(out[2, 0], T([[5.0, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [9, 10, 11, 12]]))


def test_cutout_zeroes_exactly_the_clipped_rectangle():
    """Hand values: a 2x2 square at (x 1, y 0) zeroes rows 0-1 x columns 1-2; at (-1, 3) only pixel (3, 0) is inside."""
    out = cutout(torch.ones(2, 1, 4, 4), T([[1, 0], [-1, 3]]), (2, 2))
    first = torch.ones(4, 4)
    first[0:2, 1:3] = 0
    second = torch.ones(4, 4)
    second[3, 0] = 0
    assert torch.equal(out[:, 0], torch.stack([first, second]))


# --------------------------------------------------------------------------------------------------
# DiffAugment, random draws


def test_random_color_draws_the_published_ranges():
    """Two pixels (a, -a, 0) and (d, d, d) decode the draws by hand algebra: the grey pixel ends at
    m + c d / 2 and the first pixel's blue at m - c d / 2 with m = b + d / 2, and its red minus green is
    2 a s c. Over 4000 samples b spans U(-0.5, 0.5), s U(0, 2), c U(0.5, 1.5)."""
    a, d, n = 0.4, 0.3, 4000
    x = T([[a, d], [-a, d], [0.0, d]], dtype=torch.float64).view(1, 3, 1, 2).repeat(n, 1, 1, 1)
    out = random_color(x, seeded())
    grey, blue = out[:, 0, 0, 1], out[:, 2, 0, 0]
    c = (grey - blue) / d
    b = (grey + blue) / 2 - d / 2
    s = (out[:, 0, 0, 0] - out[:, 1, 0, 0]) / (2 * a * c)
    for values, low, high in ((b, -0.5, 0.5), (s, 0.0, 2.0), (c, 0.5, 1.5)):
        width = high - low
        assert low - 1e-6 <= values.min() < low + 0.01 * width
        assert high - 0.01 * width < values.max() <= high + 1e-6
        assert abs(values.mean() - (low + high) / 2) < 4 * width / math.sqrt(12 * n)


def test_random_translation_draws_every_shift_up_to_an_eighth_of_each_side():
    """On 16x32 images with distinct pixels each output matches exactly one hand shift; shifts are
    uniform integers in [-2, 2] vertically and [-4, 4] horizontally, each of the 45 seen."""
    n, x = 2000, torch.arange(1.0, 513.0).view(1, 1, 16, 32)
    out = random_translation(x.expand(n, 1, 16, 32), seeded())
    found = torch.full((n, 2), 99)
    for dx in range(-5, 6):
        for dy in range(-3, 4):
            match = (out == translate(x, T([[dx, dy]]))).flatten(1).all(dim=1)
            found[match] = T([dx, dy])
    assert (found != 99).all()
    assert found[:, 0].abs().max() == 4 and found[:, 1].abs().max() == 2
    assert len({tuple(shift) for shift in found.tolist()}) == 9 * 5


def test_random_cutout_zeroes_half_of_each_side_anywhere_around_the_image():
    """On 8x16 images the zeroed 4x8 rectangle's top-left corner (decoded from its first or, where clipped,
    last zero row and column) takes every value of rows -2..6 and columns -4..12 (centre uniform over the
    image and one pixel past it, as in the authors' code)."""
    n = 4000
    out = random_cutout(torch.ones(n, 1, 8, 16), seeded())[:, 0]
    tops, lefts = set(), set()
    for image in out:
        rows = (image == 0).any(dim=1).nonzero()[:, 0]
        cols = (image == 0).any(dim=0).nonzero()[:, 0]
        assert (image == 0).sum() == len(rows) * len(cols)  # one solid rectangle
        tops.add(int(rows[0]) if rows[0] > 0 else int(rows[-1]) - 3)
        lefts.add(int(cols[0]) if cols[0] > 0 else int(cols[-1]) - 7)
    assert tops == set(range(-2, 7)) and lefts == set(range(-4, 13))


@pytest.mark.parametrize("name", sorted(DIFFAUGMENT))
def test_diffaugment_ops_are_differentiable_in_x(name):
    """torch.autograd.gradcheck (float64, finite differences) with the generator reseeded each call."""
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=seeded(5)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda images: DIFFAUGMENT[name](images, seeded(3)), (x,))


def test_diffaugment_applies_the_policy_in_order_and_keeps_shape_dtype():
    """The same seed through the policy's functions one by one; an empty policy returns x itself."""
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    out = diffaugment(x, "translation,color", seeded(1))
    one_by_one = seeded(1)
    assert torch.equal(out, random_color(random_translation(x, one_by_one), one_by_one))
    assert out.dtype == torch.float64 and out.shape == x.shape
    assert diffaugment(x, [], seeded()) is x


def test_check_policy_names_the_valid_policies():
    assert check_policy("color, cutout") == ("color", "cutout")
    assert check_policy(["translation"]) == ("translation",)
    with pytest.raises(ConfigError, match="Did you mean 'color'.*Known: color, cutout, translation"):
        check_policy(["colour"])


def test_augmentations_reject_non_image_data():
    toy = torch.randn(8, 2)
    with pytest.raises(ConfigError, match="augmentations are for images"):
        diffaugment(toy, ["color"], None)
    with pytest.raises(ConfigError, match="augmentations are for images"):
        ada_augment(toy, 0.5, ["geom"], None)


# --------------------------------------------------------------------------------------------------
# ADA, explicit parameters


def test_xflip_mirrors_only_the_chosen_samples():
    x = torch.arange(12.0).view(2, 1, 2, 3)
    out = xflip(x, T([1.0, 0.0]))
    assert torch.equal(out[0, 0], T([[2.0, 1, 0], [5, 4, 3]])) and torch.equal(out[1], x[1])


def test_rotate90_turns_each_sample_counterclockwise():
    """Hand values: [[1, 2], [3, 4]] turned 0, 1, 2, 3 quarter turns counterclockwise."""
    x = T([[1.0, 2], [3, 4]]).expand(4, 1, 2, 2)
    out = rotate90(x, T([0, 1, 2, 3]))
    expected = T([[[1.0, 2], [3, 4]], [[2, 4], [1, 3]], [[4, 3], [2, 1]], [[3, 1], [4, 2]]])
    assert torch.equal(out[:, 0], expected)


def test_blit_flips_then_turns_then_translates_with_mirrored_fill():
    """Hand values on the 4x4 grid 1..16: flipped and turned once is the transpose, then moved right 1
    (column -1 mirrored to column 1); turned twice, then moved up 1 (row 4 mirrored to row 2)."""
    drawn = {"xflip": AdaDraw(T([True, False]), T([1.0, 0.0])),
             "rotate90": AdaDraw(T([True, True]), T([1.0, 2.0])),
             "xint": AdaDraw(T([True, True]), T([[1.0, 0.0], [0.0, -1.0]]))}
    out = blit(GRID.repeat(2, 1, 1, 1), drawn)[:, 0]
    assert torch.equal(out[0], T([[5.0, 1, 5, 9], [6, 2, 6, 10], [7, 3, 7, 11], [8, 4, 8, 12]]))
    assert torch.equal(out[1], T([[12.0, 11, 10, 9], [8, 7, 6, 5], [4, 3, 2, 1], [8, 7, 6, 5]]))


@pytest.mark.parametrize("side", [4, 5])
def test_warp_by_a_quarter_turn_matches_rot90(side):
    """A +90 degree rotation matrix turns clockwise as displayed: torch.rot90 by 3 quarter turns (and -90 by 1)."""
    x = torch.randn(2, 3, side, side, generator=seeded(2))
    out = warp(x, rotation_matrix(T([math.pi / 2, -math.pi / 2])))
    assert torch.allclose(out[0], x[0].rot90(3, dims=(1, 2)), atol=1e-5)
    assert torch.allclose(out[1], x[1].rot90(1, dims=(1, 2)), atol=1e-5)


def test_warp_scales_about_the_centre_and_mirrors_outside():
    """Hand values on position ramps: scale 2 halves positions (out(c) = in(c / 2)); the vertical half of
    (2, 0.5) reads rows at 2c = -3, -1, 1, 3, mirrored about the edge rows +-1.5 to 0, -1, 1, 0."""
    x_ramp, y_ramp = ramps()
    assert torch.allclose(warp(x_ramp, scale_matrix(T([2.0]), T([2.0]))), x_ramp / 2, atol=1e-6)
    assert torch.allclose(warp(y_ramp, scale_matrix(T([2.0]), T([2.0]))), y_ramp / 2, atol=1e-6)
    assert torch.allclose(warp(x_ramp, scale_matrix(T([2.0]), T([0.5]))), x_ramp / 2, atol=1e-6)
    mirrored = T([0.0, -1, 1, 0])[:, None].expand(4, 4)
    assert torch.allclose(warp(y_ramp, scale_matrix(T([2.0]), T([0.5])))[0, 0], mirrored, atol=1e-6)


def test_warp_by_whole_pixels_matches_the_exact_reflected_translation():
    """Hand values: the horizontal ramp moved right by 1 reads -2.5 at the left edge, mirrored to -0.5;
    and on random images any whole-pixel shift equals ``translate`` with reflection."""
    x_ramp, _ = ramps()
    out = warp(x_ramp, translation_matrix(T([[1.0, 0.0]])))
    assert torch.allclose(out[0, 0, 0], T([-0.5, -1.5, -0.5, 0.5]), atol=1e-6)
    x = torch.randn(2, 3, 6, 6, generator=seeded(4))
    shift = T([[1.0, -2.0], [-1.0, 3.0]])
    assert torch.allclose(warp(x, translation_matrix(shift)), translate(x, shift, "reflect"), atol=1e-5)


def test_geometric_matrix_composes_scale_rotate_aniso_rotate_translate():
    """Hand-traced points for s = 2, pre-rotation 90deg (x, y) -> (-y, x), aniso (2, 1/2), post-rotation
    180deg, shift (3, -1): (1, 0) -> (2, 0) -> (0, 2) -> (0, 1) -> (0, -1) -> (3, -2);
    (0, 1) -> (0, 2) -> (-2, 0) -> (-4, 0) -> (4, 0) -> (7, -1); (0, 0) -> (3, -1)."""
    drawn = draws(scale=[2.0], rotate_pre=[math.pi / 2], aniso=[2.0], rotate_post=[math.pi])
    drawn["xfrac"] = AdaDraw(T([True]), T([[3.0, -1.0]], dtype=torch.float64))
    points = T([[1.0, 0, 1], [0, 1, 1], [0, 0, 1]], dtype=torch.float64).T
    moved = geometric_matrix(drawn)[0] @ points
    assert torch.allclose(moved.T, T([[3.0, -2, 1], [7, -1, 1], [3, -1, 1]], dtype=torch.float64), atol=1e-12)


def test_color_matrices_on_hand_pixels():
    """Hand values for rgb q = (0.1, -0.2, 0.3), mean 0.2 / 3: + 0.25; x 2; luma flip of (1, 0, 0) is
    (1, 0, 0) - 2/3 (1, 1, 1); hue by 120deg about (1, 1, 1) cycles channels (r, g, b) -> (b, r, g);
    saturation 0 is the mean, 2 is mean + 2 (q - mean)."""
    q = T([0.1, -0.2, 0.3], dtype=torch.float64)

    def apply(matrix, rgb=q):
        return (matrix[0] @ torch.cat([rgb, T([1.0], dtype=torch.float64)]))[:3]

    one = lambda v: T([v], dtype=torch.float64)  # noqa: E731
    mean = q.mean()
    assert torch.allclose(apply(brightness_matrix(one(0.25))), q + 0.25)
    assert torch.allclose(apply(contrast_matrix(one(2.0))), 2 * q)
    red = T([1.0, 0, 0], dtype=torch.float64)
    assert torch.allclose(apply(luma_flip_matrix(one(1.0)), red), T([1 / 3, -2 / 3, -2 / 3], dtype=torch.float64))
    assert torch.allclose(apply(luma_flip_matrix(one(0.0))), q)
    cycle = T([[0.0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    assert torch.allclose(hue_matrix(one(2 * math.pi / 3))[0], cycle, atol=1e-12)
    assert torch.allclose(apply(saturation_matrix(one(0.0))), mean.expand(3))
    assert torch.allclose(apply(saturation_matrix(one(2.0))), mean + 2 * (q - mean))


def test_color_matrix_composes_in_adas_order_and_recolors_images():
    """Hand trace of q = (0.1, -0.2, 0.3): +0.5 -> (0.6, 0.3, 0.8); x2 -> (1.2, 0.6, 1.6); luma flip
    subtracts 2/3 * 3.4; hue 120deg -> (b, r, g); saturation 0.5 -> mean + (x - mean) / 2."""
    drawn = draws(brightness=[0.5], contrast=[2.0], lumaflip=[1.0], hue=[2 * math.pi / 3], saturation=[0.5])
    r, g, b = 1.2 - 2 / 3 * 3.4, 0.6 - 2 / 3 * 3.4, 1.6 - 2 / 3 * 3.4
    r, g, b = b, r, g
    mean = (r + g + b) / 3
    expected = T([mean + (v - mean) / 2 for v in (r, g, b)], dtype=torch.float64)
    x = T([0.1, -0.2, 0.3], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(recolor(x, color_matrix(drawn)).flatten(), expected)


def test_grey_images_get_brightness_then_contrast():
    """Hand values: c (x + b) with b = 0.5, c = 2 on grey pixels 0.2, -0.4 gives 1.4, 0.2; one-channel
    draws have no luma flip, hue or saturation."""
    x = T([0.2, -0.4]).view(1, 1, 1, 2)
    out = recolor(x, color_matrix(draws(brightness=[0.5], contrast=[2.0])))
    assert torch.allclose(out.flatten(), T([1.4, 0.2]))
    assert set(draw_ada_parameters(x, 1.0, ["color"], seeded())) == {"brightness", "contrast"}


# --------------------------------------------------------------------------------------------------
# ADA, random draws

ROTATIONS = {"rotate_pre", "rotate_post"}


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_each_transform_is_applied_with_probability_p(p):
    """Binomial bound: the applied fraction of 4000 samples within 4 sigma of p (1 - sqrt(1 - p) for the
    two rotations); where not applied the parameter is the identity."""
    n = 4000
    drawn = draw_ada_parameters(torch.zeros(n, 3, 8, 8), p, list(ADA_GROUPS), seeded())
    assert len(drawn) == 13
    for key, (applied, value) in drawn.items():
        chance = 1 - math.sqrt(1 - p) if key in ROTATIONS else p
        assert abs(applied.float().mean() - chance) <= 4 * math.sqrt(chance * (1 - chance) / n), key
        identity = 1.0 if key in {"scale", "aniso", "contrast", "saturation"} else 0.0
        assert (value[~applied] == identity).all(), key


def test_probability_multipliers_scale_p_per_transform():
    """p = 0.5 with xflip's multiplier 0.5: a binomial fraction within 4 sigma of 0.25 (scale's, without a
    multiplier, of 0.5); rotate's 0: never rotated; p times a multiplier above 1 is clipped to 1."""
    drawn = draw_ada_parameters(torch.zeros(4000, 3, 8, 8), 0.5, ["blit", "geom"], seeded(),
                                multipliers={"xflip": 0.5, "rotate": 0.0})
    for key, chance in (("xflip", 0.25), ("scale", 0.5)):
        assert abs(drawn[key].applied.float().mean() - chance) <= 4 * math.sqrt(chance * (1 - chance) / 4000)
    assert not drawn["rotate_pre"].applied.any() and not drawn["rotate_post"].applied.any()
    clipped = draw_ada_parameters(torch.zeros(100, 3, 8, 8), 0.75, ["geom"], seeded(), multipliers={"rotate": 2.0})
    assert clipped["rotate_pre"].applied.all()  # 0.75 x 2 clipped to 1
    with pytest.raises(ConfigError, match="Known: aniso, brightness"):
        draw_ada_parameters(torch.zeros(2, 3, 8, 8), 1.0, ["geom"], seeded(), multipliers={"rotation": 1.0})


def _log2_std(values):
    return values.log2().std()


def _uniform_angle(values):
    assert -math.pi <= values.min() < -0.99 * math.pi and 0.99 * math.pi < values.max() < math.pi
    return values.std()


# key -> (statistic of the 4000 drawn values, its published value, relative tolerance)
DISTRIBUTIONS = {
    "xflip": (lambda v: v.mean(), 0.5, 0.1),  # i ~ U{0, 1}
    "rotate90": (lambda v: v.mean(), 1.5, 0.05),  # k ~ U{0, 1, 2, 3}
    "scale": (_log2_std, 0.2, 0.05),  # log2 s ~ N(0, 0.2^2)
    "aniso": (_log2_std, 0.2, 0.05),
    "rotate_pre": (_uniform_angle, math.pi / math.sqrt(3), 0.05),  # U(-pi, pi)
    "rotate_post": (_uniform_angle, math.pi / math.sqrt(3), 0.05),
    "brightness": (lambda v: v.std(), 0.2, 0.05),  # N(0, 0.2^2)
    "contrast": (_log2_std, 0.5, 0.05),  # log2 c ~ N(0, 0.5^2)
    "lumaflip": (lambda v: v.mean(), 0.5, 0.1),
    "hue": (_uniform_angle, math.pi / math.sqrt(3), 0.05),
    "saturation": (_log2_std, 1.0, 0.05),  # log2 s ~ N(0, 1)
}


def test_parameters_follow_the_published_distributions():
    """At p = 1 on 4000 samples of 16x32 images: each statistic within its tolerance of the paper's value
    (sample std within 5%: 4.5 standard errors); shifts in pixels of (width, height): integer translation
    uniform over the integers up to 0.125 of each side (4 and 2 pixels), fractional translation with std
    0.125 of each side (4 and 2 pixels)."""
    drawn = draw_ada_parameters(torch.zeros(4000, 3, 16, 32), 1.0, list(ADA_GROUPS), seeded(7))
    for key, (statistic, published, tolerance) in DISTRIBUTIONS.items():
        assert abs(float(statistic(drawn[key].value)) - published) <= tolerance * published, key
    assert set(drawn["rotate90"].value.tolist()) == {0, 1, 2, 3}
    xint = drawn["xint"].value
    assert set(xint[:, 0].tolist()) == set(range(-4, 5)) and set(xint[:, 1].tolist()) == set(range(-2, 3))
    xfrac_std = drawn["xfrac"].value.std(dim=0)
    assert torch.allclose(xfrac_std, T([4.0, 2.0]), rtol=0.05)


@pytest.mark.parametrize("groups", [["geom"], ["blit", "geom", "color"]])
def test_ada_is_differentiable_in_x(groups):
    """torch.autograd.gradcheck (float64, finite differences) at p = 1, the generator reseeded each call."""
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=seeded(6)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda images: ada_augment(images, 1.0, groups, seeded(8)), (x,))


def test_ada_runs_blit_then_geom_then_color_with_one_draw():
    """The same seed drawn once by ``draw_ada_parameters`` and applied group by group by hand."""
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=seeded(9))
    out = ada_augment(x, 0.8, ["color", "geom", "blit"], seeded(10))
    drawn = draw_ada_parameters(x, 0.8, ["blit", "geom", "color"], seeded(10))
    by_hand = recolor(warp(blit(x, drawn), geometric_matrix(drawn)), color_matrix(drawn))
    assert torch.allclose(out, by_hand) and out.dtype == x.dtype and out.shape == x.shape


def test_ada_is_reproducible_from_the_generator_and_p0_draws_nothing():
    """Equal seeds give equal images, other seeds others; p = 0 returns x itself and leaves the generator."""
    x = torch.randn(4, 3, 8, 8)
    groups = list(ADA_GROUPS)
    assert torch.equal(ada_augment(x, 0.5, groups, seeded(1)), ada_augment(x, 0.5, groups, seeded(1)))
    assert not torch.equal(ada_augment(x, 0.5, groups, seeded(1)), ada_augment(x, 0.5, groups, seeded(2)))
    generator = seeded(3)
    state = generator.get_state()
    assert ada_augment(x, 0.0, groups, generator) is x
    assert torch.equal(generator.get_state(), state)


def test_ada_rejects_bad_inputs_with_the_valid_choices():
    square = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ConfigError, match="Did you mean 'geom'.*Known: blit, color, geom"):
        check_groups(["geometric"])
    with pytest.raises(ConfigError, match="square"):
        ada_augment(torch.zeros(2, 3, 8, 16), 0.5, ["blit"], None)
    with pytest.raises(ConfigError, match="1 or 3 channels"):
        ada_augment(torch.zeros(2, 2, 8, 8), 0.5, ["color"], None)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ada_augment(square, 1.5, ["geom"], None)
    with pytest.raises(ConfigError, match="at least 2x2"):
        warp(torch.zeros(1, 1, 1, 4), scale_matrix(T([2.0]), T([2.0])))
    with pytest.raises(ConfigError, match="Known: reflect, zeros"):
        translate(square, torch.zeros(2, 2), padding="wrap")
    assert set(ADA_TRANSFORMS.values()) == set(ADA_GROUPS)


# --------------------------------------------------------------------------------------------------
# ADA's controller


def test_adjusted_p_follows_the_sign_rule_and_clamps():
    """Hand values of p + sign(sign_mean - target) * images / speed_images, clamped to [0, 1]."""
    assert adjusted_p(0.5, 0.8, 0.6, 64, 640) == pytest.approx(0.6)
    assert adjusted_p(0.5, 0.4, 0.6, 64, 640) == pytest.approx(0.4)
    assert adjusted_p(0.5, 0.6, 0.6, 64, 640) == 0.5
    assert adjusted_p(0.95, 1.0, 0.6, 128, 640) == 1.0
    assert adjusted_p(0.05, -1.0, 0.6, 128, 640) == 0.0
    with pytest.raises(ConfigError, match="> 0"):
        adjusted_p(0.5, 0.8, 0.6, 64, 0)
