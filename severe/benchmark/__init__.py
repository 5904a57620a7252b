"""``severe benchmark``: expand a suite of :mod:`severe.experiments` and run it locally or on SLURM."""
