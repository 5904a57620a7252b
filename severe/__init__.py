"""severe: the SEVERE / SEVERE++ benchmark for pretrained video representations."""

__version__ = "0.1.0"
