"""The experiment configs shipped inside the package (one folder per config family).

- ``ssl_benchmark/``: recognition (finetuning, linear probe, kNN), names like ``domain/ucf101``
- ``slowfast/``: the PySlowFast-style AVA and Charades configs (``AVA/...``, ``Charades/...``)
- ``repetition/``: UCF-RC repetition counting (``ucfrep`` ...)

The subproject folders ``ssl_benchmark/configs``, ``SlowFast-ssl-vssl/configs`` and
``Deep-Temporal-Repetition-Counting/configs`` of a checkout are symlinks to these folders.
"""

from __future__ import annotations

from pathlib import Path

from severe.errors import SevereError

ROOT = Path(__file__).resolve().parent
FAMILIES: tuple[str, ...] = ("ssl_benchmark", "slowfast", "repetition")


def config_dir(family: str) -> Path:
    """The folder of one config family (``ssl_benchmark``, ``slowfast`` or ``repetition``)."""
    if family not in FAMILIES:
        raise SevereError(f"unknown config family '{family}'; known: {', '.join(FAMILIES)}")
    return ROOT / family


def shipped_configs(family: str) -> list[Path]:
    """Every YAML file of one family, sorted."""
    return sorted(config_dir(family).rglob("*.yaml"))
