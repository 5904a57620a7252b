"""Synthetic data and checkpoints in the official on-disk layouts (tests and the demo use them)."""
