"""ganscape: train, evaluate and study GANs across the whole GAN landscape.

``ganscape.train(CONFIG_OR_PRESET, OVERRIDES)``, ``ganscape.resume(RUN_DIR)`` and ``ganscape.evaluate(RUN_DIR)``
run what ``ganscape train``, ``resume`` and ``eval`` do (see ``ganscape.runs``);
``ganscape.load_generator(PATH_OR_REPO_ID)`` loads a trained generator (see ``ganscape.hub``).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Loading models and training need torch; the command line imports this package first and stays quick.
    if name in ("load_generator", "PretrainedGenerator"):
        from ganscape import hub

        return getattr(hub, name)
    if name in ("train", "resume", "evaluate"):
        from ganscape.runs import api

        return getattr(api, name)
    raise AttributeError(f"module 'ganscape' has no attribute {name!r}")
