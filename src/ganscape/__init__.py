"""ganscape: train, evaluate and study GANs across the whole GAN landscape.

``ganscape.load_generator(PATH_OR_REPO_ID)`` loads a trained generator (see ``ganscape.hub``).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Loading models needs torch; the command line imports this package first and stays quick.
    if name in ("load_generator", "PretrainedGenerator"):
        from ganscape import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'ganscape' has no attribute {name!r}")
