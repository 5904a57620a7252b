"""Initial weights for a run: a converted file, a raw published checkpoint, or none (scratch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from severe.checkpoints.convert import Converted, convert_object, detect_method, method_spec
from severe.checkpoints.loading import read_checkpoint
from severe.errors import SevereError
from severe.io import sha256_file
from severe.models.registry import BACKBONES, build_backbone

SCRATCH_META = {"method": "scratch", "arch": "r2plus1d_18", "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                "channel_order": "RGB"}


def check_initialisation(init: str, weights: str | Path | None, init_name: str = "--init",
                         weights_name: str = "--weights") -> str:
    """The canonical method id of ``init``; ``scratch`` takes no weights, every other method needs an
    existing weights file. ``init_name``/``weights_name`` name the option or config key in the messages."""
    method = init.strip().lower()
    if method == "scratch":
        if weights:
            raise SevereError(f"{init_name} scratch takes no {weights_name} (got {weights}); it starts from "
                              f"torchvision's random initialisation")
        return method
    method = method_spec(method).name
    if not weights:
        raise SevereError(f"{init_name} {method} needs {weights_name}: a converted file (severe convert) or the "
                          f"published checkpoint")
    if not Path(weights).is_file():
        raise SevereError(f"{weights_name} {weights} does not exist: weights file not found for {init_name} {method}")
    return method


def is_converted(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping) and isinstance(obj.get("state_dict"), Mapping) \
        and "arch" in obj["meta"]


def load_weights(path: str | Path, method: str | None = None, trust: bool = False) -> Converted:
    """Read a converted file, or convert a raw published checkpoint on the fly.

    ``method`` must agree with a converted file's ``meta.method`` when given; for a raw file it selects
    the converter (auto-detected when None).
    """
    path = Path(path)
    obj = read_checkpoint(path, trust=trust)
    if is_converted(obj):
        meta = dict(obj["meta"])
        if meta.get("arch") not in BACKBONES:
            raise SevereError(f"{path}: meta.arch '{meta.get('arch')}' is not a known architecture; known: "
                              f"{', '.join(BACKBONES)}")
        if method is not None and method_spec(method).name != meta.get("method"):
            raise SevereError(f"{path} was converted from a '{meta.get('method')}' checkpoint, not '{method}'")
        return Converted(dict(obj["state_dict"]), meta, dict(meta.get("dropped", {})))
    if method is None:
        method = detect_method(obj, source=str(path), file_name=str(path))
        if method is None:
            raise SevereError(f"{path} is neither a converted severe file nor a checkpoint of a known method; "
                              f"pass --init METHOD or convert it with 'severe convert'")
    converted = convert_object(obj, method, source=str(path), file_name=str(path))
    converted.meta["source_file"] = path.name
    converted.meta["source_sha256"] = sha256_file(path)
    return converted


def build_initialised_backbone(weights: Converted | None) -> nn.Module:
    """A backbone of ``weights.meta['arch']`` loaded strictly, or a scratch R(2+1)D-18 (seed first)."""
    return build_backbone(SCRATCH_META["arch"] if weights is None else None, weights)
