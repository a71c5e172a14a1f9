"""Training dynamics: the Dirac-GAN of Mescheder et al. (2018) and the spectrum of a real run.

    field.py     the training step's gradient vector field, from the registered losses and penalties
    dirac.py     the Dirac-GAN game (``dirac_gan``) for any loss and penalties, in d dimensions
    jacobian.py  Jacobian and eigenvalues at the equilibrium, verdicts, update maps, consensus optimization
    simulate.py  gradient-descent trajectories and the vector-field picture
    table.py     the paper's table of methods, reproduced
    spectrum.py  leading eigenvalues of a run's game Jacobian at a checkpoint, matrix-free

``ganscape dynamics dirac|table|spectrum`` is ``ganscape.cli.dynamics``.
"""
