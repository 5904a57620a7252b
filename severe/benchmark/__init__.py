"""``severe benchmark``: expand a suite into experiments and run them locally or on SLURM."""
