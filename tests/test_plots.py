"""Sample pictures."""

import numpy as np
import torch

from ganscape.plots import (caption_font, caption_lines, class_rows, image_grid, plot_points, row_labels,
                            sample_picture, save_png, upscale, with_row_labels, with_title)


def test_image_grid_places_and_scales_pixels():
    images = torch.full((3, 3, 2, 2), -1.0)  # black
    images[1] = 1.0  # white
    images[2, 0] = 1.0  # red: R=1, G=B=-1
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 3, 3) and grid.dtype == np.uint8
    assert (grid[1:3, 1:3] == 0).all()  # first image, top left
    assert (grid[1:3, 4:6] == 255).all()  # second image, top right
    assert (grid[4:6, 1:3] == [255, 0, 0]).all()  # third image, second row
    assert (grid[0] == 255).all() and (grid[4:6, 4:6] == 255).all()  # padding and the empty cell


def test_grayscale_becomes_rgb_and_values_are_clamped(tmp_path):
    images = torch.tensor([[[[0.0, 5.0]]]])  # (1, 1, 1, 2): mid grey and out of range
    grid = image_grid(images, columns=1, padding=0)
    assert grid.shape == (1, 2, 3)
    assert (grid[0, 0] == 128).all() and (grid[0, 1] == 255).all()
    save_png(grid, tmp_path / "g.png")
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png")), grid)


def test_sample_pictures_are_enlarged_by_a_whole_factor_to_at_least_512_pixels():
    """64 digits of 32x32 tile into 8 * 34 + 2 = 274 pixels (2-pixel padding); the smallest whole factor that
    reaches 512 is 2, and every pixel of the tiled grid becomes a 2x2 block of the same colour."""
    images = torch.rand(64, 1, 32, 32) * 2 - 1
    picture = sample_picture(images, columns=8)
    assert picture.shape == (548, 548, 3)
    assert np.array_equal(picture[::2, ::2], image_grid(images, columns=8))
    assert np.array_equal(picture[1::2, 1::2], picture[::2, ::2])
    assert upscale(np.zeros((600, 20, 3), np.uint8)).shape == (600, 20, 3)  # already large enough: unchanged
    assert upscale(np.zeros((100, 30, 3), np.uint8)).shape == (600, 180, 3)  # ceil(512 / 100) = 6


def test_captions_keep_their_spaces_when_wrapped_and_drawn():
    """The words of a caption are broken into lines only at spaces, and a drawn space is visibly wider than
    the gap between letters (PIL's built-in 10-pixel font drew both 2 pixels wide: "EMAgenerator")."""
    title = "step 1200, EMA generator; a class per row"
    assert caption_lines(title, 512) == [title]
    lines = caption_lines(title, 120)
    assert len(lines) > 1 and " ".join(lines) == title
    assert all(caption_font().getlength(line) <= 120 for line in lines if " " in line)

    def widest_gap(text):
        strip = with_title(np.full((4, 300, 3), 255, np.uint8), text)[:-4]
        inked = np.flatnonzero((strip < 128).any(axis=(0, 2)))
        return int(np.diff(inked).max()) - 1

    assert widest_gap("EMA generator") >= widest_gap("EMAgenerator") + 2


def test_a_conditional_grid_has_a_class_per_row_labelled_by_name():
    """Samples of classes 2, 0, 2, 0, 2 become a row of class 2 (three samples) and a row of class 0 (two and a
    white tile); each row is labelled with the class's name, or its index when the data set named none."""
    images = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 3, 2, 2) / 10
    tiles, columns, classes = class_rows(images, torch.tensor([2, 0, 2, 0, 2]))
    assert columns == 3 and classes == [2, 0]
    assert torch.equal(tiles[:5], images[[0, 2, 4, 1, 3]]) and (tiles[5] == 1).all()
    assert row_labels(classes, ("cat", "dog", "owl")) == ["owl", "cat"] and row_labels(classes) == ["2", "0"]
    grid = np.zeros((200, 300, 3), np.uint8)  # two rows of 100 pixels
    labelled = with_row_labels(grid, ["owl", "cat"])
    strip = labelled.shape[1] - 300
    assert strip > 0 and np.array_equal(labelled[:, strip:], grid)
    assert all((labelled[rows, :strip] < 128).any() for rows in (slice(0, 100), slice(100, 200)))  # a label each


def test_a_picture_of_points_keeps_its_title_inside():
    """A title wider than the figure is wrapped, not cut off: no text touches its left and right edges."""
    points = torch.randn(200, 2)
    rgb = plot_points(points, points + 1, None, "a rather long title " * 6)
    assert rgb.shape == (540, 600, 3)
    assert (rgb[:, :2] == 255).all() and (rgb[:, -2:] == 255).all()
    orange = (rgb[..., 0] > 200) & (rgb[..., 2] < 150)
    assert orange.sum() > 100  # the generated points
