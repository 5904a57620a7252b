"""Reading checkpoint files safely: weights-only unpickling unless the user trusts the file."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from severe.errors import SevereError

_GLOBAL_RE = re.compile(r"GLOBAL ([\w.<>]+) was not an allowed global")
# how a file torch.load can read starts: a zip archive (torch >= 1.6), or a legacy pickle (protocol 2+)
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x80")


def read_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """``torch.load`` a file on CPU with ``weights_only=True``; with ``trust`` arbitrary objects too. A
    ``.safetensors`` file is read with the safetensors package (a flat name -> tensor dict).

    Raises SevereError (one line, naming the file) for a missing, empty, truncated or non-checkpoint
    file, and for a file holding pickled Python objects when ``trust`` is False (naming the object's type).
    """
    path = Path(path)
    if not path.is_file():
        raise SevereError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise SevereError(f"checkpoint file is empty: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(_ARCHIVE_MAGIC):
        raise SevereError(f"{path} is not a PyTorch checkpoint (starts with {head!r}, neither a zip archive nor a "
                          f"pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise SevereError(f"{path} is not a readable PyTorch checkpoint ({first_line(e)})") from None
        if not trust:
            raise SevereError(f"{path} contains {refused_object(e)}, which weights-only loading refuses; if you "
                              f"trust where this file comes from, pass --trust to unpickle it") from None
    except Exception as e:  # any failure of the weights-only parser on these bytes: not a checkpoint
        raise SevereError(f"{path} is not a readable PyTorch checkpoint (truncated or damaged: {first_line(e)})") from None
    # Only reached with trust=True after the weights-only attempt found pickled objects.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # the file passed the weights-only parser up to the object, so this is rare
        raise SevereError(f"{path} could not be unpickled even with --trust ({type(e).__name__}: {first_line(e)})") from None


def refused_object(e: BaseException) -> str:
    """What weights-only loading refused, from torch's message (whose wording varies between versions)."""
    text = str(e)
    found = _GLOBAL_RE.search(text)
    if found is not None:
        return f"a pickled Python object of type {found.group(1)}"
    detail = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    if detail is not None:
        return f"pickled Python data weights-only loading cannot read ({detail.group(1).strip().rstrip('.')[:160]})"
    return "pickled Python objects"


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file: a flat ``{name: tensor}`` dict (the format holds no Python objects)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise SevereError(f"{path} is a safetensors file; install the 'safetensors' package to read it") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # header or data not in the safetensors format
        raise SevereError(f"{path} is not a readable safetensors file ({first_line(e)})") from None


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
