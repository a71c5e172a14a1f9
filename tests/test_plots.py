"""Sample pictures."""

import numpy as np
import torch

from ganscape.plots import image_grid, save_png


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
