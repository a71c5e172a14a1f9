"""The papers' claims, checked: ``registry`` (each claim, its paper's number, its command and verdict rule),
``experiments`` (the CPU experiments that measure them), ``verdicts`` (the rules), ``runner`` (resumable runs of
the experiments) and ``page`` (docs/claims.md, generated). The command is ``ganscape claims``."""
