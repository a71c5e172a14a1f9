"""ganscape: train, evaluate and study GANs across the whole GAN landscape."""

__version__ = "0.1.0"
