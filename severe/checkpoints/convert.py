"""Convert a published checkpoint into the target backbone's exact state_dict, or refuse loudly.

select by prefix -> rename by exact components -> drop the block's own ``fc.*`` -> verify every key
and shape of the target architecture -> record metadata. Nothing is loaded non-strictly.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from severe import __version__
from severe.checkpoints.loading import read_checkpoint
from severe.checkpoints.methods import DETECTION_ORDER, INCOMPATIBLE_RELEASES, METHODS, MethodSpec, tensors_of
from severe.checkpoints.vit_methods import ViTMethodSpec, by_file_name, convert_vit
from severe.errors import SevereError
from severe.io import atomic_torch_save, sha256_file
from severe.models.backbones import backbone_key_shapes

# conv2 mid channels of upstream CtP (recomputed from (out, out)) vs torchvision's (230/460/921).
_UPSTREAM_CTP_MID = {"layer2.0.conv2.0.0.weight": 288, "layer3.0.conv2.0.0.weight": 576, "layer4.0.conv2.0.0.weight": 1152}
_VIDEO_MOCO_NAME = re.compile(r"video_?moco", re.IGNORECASE)


@dataclass
class Converted:
    """A backbone state_dict in torchvision order plus its metadata (plain python types)."""

    state_dict: "OrderedDict[str, torch.Tensor]"
    meta: dict
    dropped: dict[str, int]  # source groups not taken -> number of entries


def method_spec(method: str) -> MethodSpec:
    key = method.strip().lower()
    if key not in METHODS:
        raise SevereError(f"unknown method '{method}'; known methods: {', '.join(METHODS)}")
    return METHODS[key]


def _check_incompatible(obj: Any, source: str) -> None:
    names: list[str] = []
    for container in (None, "state_dict", "model", "module"):
        tensors = tensors_of(obj, container)
        if tensors:
            names.extend(tensors)
    for pattern, why in INCOMPATIBLE_RELEASES:
        hit = next((k for k in names if pattern.search(k)), None)
        if hit is not None:
            raise SevereError(f"{source}: key '{hit}': {why}")


def detect_method(obj: Any, source: str = "checkpoint", file_name: str = "") -> str | None:
    """The method whose layout ``obj`` has (docs/checkpoints.md §2.5), or None.

    MoCo and VideoMoCo share one layout: ``video_moco`` when the file name says so, else ``moco``; the same
    holds for EVEREST and VideoMAE (:func:`severe.checkpoints.vit_methods.by_file_name`).
    """
    _check_incompatible(obj, source)
    for name in DETECTION_ORDER:
        if METHODS[name].locate(obj) is not None:
            if name == "moco" and (_VIDEO_MOCO_NAME.search(file_name) or Path(file_name).name.startswith("r2plus1D_checkpoint")):
                return "video_moco"
            return by_file_name(name, file_name)
    return None


def _layout_hint(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return f"the file holds a {type(obj).__name__}, not a dict of tensors"
    keys = list(obj)[:6]
    return f"top-level entries: {', '.join(map(str, keys))}{' ...' if len(obj) > 6 else ''}"


def _group(key: str, prefix: str) -> str:
    """The block a left-out key belongs to: one component deeper than what it shares with ``prefix``."""
    parts, wanted = key.split("."), prefix.split(".")
    shared = 0
    while shared < len(parts) - 1 and shared < len(wanted) and parts[shared] == wanted[shared]:
        shared += 1
    return ".".join(parts[: shared + 1])


def pretraining_data(spec: MethodSpec, file_name: str = "", choice: str | None = None) -> dict[str, str]:
    """``{"pretraining_data", "pretraining_data_from"}`` for a method whose release spans several pretraining
    datasets (``spec.pretraining_data``): ``choice`` (``--pretraining-data``) if given, else the dataset named by
    a folder of ``file_name`` (``tubelet_contrast/mini-kinetics/...``), else the main release's (the first).
    Empty for other methods; a choice the method does not have, or one the path contradicts, is a SevereError."""
    choices = spec.pretraining_data
    if not choices:
        if choice:
            raise SevereError(f"--pretraining-data {choice}: method {spec.name} records no pretraining dataset; "
                              f"drop the option")
        return {}
    named = [c for c in choices if c in Path(file_name).parts]
    if choice:
        if choice not in choices:
            raise SevereError(f"--pretraining-data {choice} is not a {spec.name} release; choose one of "
                              f"{', '.join(choices)}")
        if named and named[0] != choice:
            raise SevereError(f"--pretraining-data {choice} contradicts the path {file_name} (a {named[0]} release); "
                              f"drop the option or fix the path")
        return {"pretraining_data": choice, "pretraining_data_from": "option"}
    if named:
        return {"pretraining_data": named[0], "pretraining_data_from": "path"}
    return {"pretraining_data": choices[0], "pretraining_data_from": "default"}


def convert_object(obj: Any, method: str, source: str = "checkpoint", file_name: str = "",
                   pretraining: str | None = None) -> Converted:
    """Convert an in-memory checkpoint object of ``method`` (see :func:`convert_file` for files);
    ``pretraining`` chooses the pretraining dataset recorded in meta (see :func:`pretraining_data`)."""
    spec = method_spec(method)
    data_meta = pretraining_data(spec, file_name, pretraining)
    _check_incompatible(obj, source)
    if isinstance(spec, ViTMethodSpec):
        return _convert_vit(obj, spec, source, file_name)
    located = spec.locate(obj)
    if located is None:
        looks = detect_method(obj, source, file_name)
        if looks is not None:
            raise SevereError(f"{source} does not have the {spec.name} layout; it looks like a '{looks}' checkpoint "
                              f"(pass --method {looks}, or --detect to check)")
        raise SevereError(f"{source} does not have the {spec.name} layout (expected "
                          f"'{spec.prefix}{spec.anchor}' under {spec.containers[0] or 'the top level'}) and matches "
                          f"no known method; {_layout_hint(obj)}")
    container, tensors, prefix = located

    selected: dict[str, torch.Tensor] = {}
    dropped: Counter[str] = Counter()
    for key, value in tensors.items():
        if not key.startswith(prefix):
            dropped[_group(key, prefix)] += 1
            continue
        name = spec.rename(key[len(prefix):])
        if name.startswith("fc."):
            dropped[prefix + "fc"] += 1
            continue
        selected[name] = value
    if isinstance(obj, Mapping) and container is not None:
        for key in obj:
            if key != container:
                dropped[str(key)] += 1

    for key, mid in _UPSTREAM_CTP_MID.items():
        if key in selected and selected[key].shape[0] == mid:
            raise SevereError(
                f"{source}: '{key}' has {mid} mid channels: this file was made with the original CtP code, which "
                f"recomputes conv2's mid channels from (out, out) (288/576/1152). Such weights cannot be loaded into "
                f"torchvision's R(2+1)D-18 (230/460/921) without changing the network; SEVERE's CtP file uses the "
                f"torchvision rule. Use ctp/snellius_r2p1d18_ctp_k400_epoch_90.pth")

    expected = backbone_key_shapes(spec.arch)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    missing = []
    for key, shape in expected.items():
        if key in selected:
            out[key] = selected[key]
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(0, dtype=torch.long)
        else:
            missing.append(key)
    unexpected = [k for k in selected if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        looks = detect_method(obj, source, file_name)
        raise SevereError(f"{source} as {spec.name} (prefix '{prefix}') does not give an exact {spec.arch}: "
                          + "; ".join(parts) + f"; the file looks like '{looks or 'no known method'}'")
    for key, shape in expected.items():
        if tuple(out[key].shape) != shape:
            raise SevereError(f"{source}: '{key}' has shape {tuple(out[key].shape)}, expected {shape} for {spec.arch}")
    for key in out:
        out[key] = out[key].detach().clone()

    meta = {
        "method": spec.name,
        "arch": spec.arch,
        "normalize": None if spec.normalize is None else {k: list(v) for k, v in spec.normalize.items()},
        "channel_order": spec.channel_order,
        "source_file": file_name,
        "source_container": container,
        "source_prefix": prefix,
        "dropped": dict(sorted(dropped.items())),
        "severe_version": __version__,
        **data_meta,
        **spec.extra_meta,
    }
    return Converted(out, meta, dict(dropped))


def _convert_vit(obj: Any, spec: ViTMethodSpec, source: str, file_name: str) -> Converted:
    """A ViT row: its key-mapping layout instead of prefix + rename (severe.checkpoints.vit_methods)."""
    try:
        done = convert_vit(obj, spec, source)
    except SevereError as e:
        looks = detect_method(obj, source, file_name)
        if looks is None or looks == spec.name or looks in spec.also_accepts or spec.name in METHODS[looks].also_accepts:
            raise
        raise SevereError(f"{e}; the file looks like a '{looks}' checkpoint (pass --method {looks})") from None
    if done is None:
        looks = detect_method(obj, source, file_name)
        hint = f"it looks like a '{looks}' checkpoint (pass --method {looks}, or --detect to check)" if looks else \
            f"it matches no known method; {_layout_hint(obj)}"
        raise SevereError(f"{source} does not have the {spec.name} layout (no ViT weights under "
                          f"{', '.join(repr(c) if c else 'the top level' for c in spec.containers)}); {hint}")
    state, container, arch, extra, dropped = done
    meta = {"method": spec.name, "arch": arch,
            "normalize": None if spec.normalize is None else {k: list(v) for k, v in spec.normalize.items()},
            "channel_order": spec.channel_order, "source_file": file_name, "source_container": container,
            **extra, "dropped": dropped, "severe_version": __version__, **spec.extra_meta}
    return Converted(state, meta, dict(dropped))


def convert_file(path: str | Path, method: str, trust: bool = False, pretraining: str | None = None) -> Converted:
    """Read ``path`` (weights-only unless ``trust``) and convert it as ``method``."""
    path = Path(path)
    pretraining_data(method_spec(method), str(path), pretraining)  # fail on bad arguments before reading a large file
    obj = read_checkpoint(path, trust=trust)
    converted = convert_object(obj, method, source=str(path), file_name=str(path), pretraining=pretraining)
    converted.meta["source_file"] = path.name
    converted.meta["source_sha256"] = sha256_file(path)
    return converted


def detect_file(path: str | Path, trust: bool = False) -> str | None:
    path = Path(path)
    return detect_method(read_checkpoint(path, trust=trust), source=str(path), file_name=str(path))


def save_converted(converted: Converted, path: str | Path) -> Path:
    """Write ``{"state_dict", "meta"}`` atomically; loadable with ``torch.load(weights_only=True)``."""
    return atomic_torch_save({"state_dict": converted.state_dict, "meta": converted.meta}, path)
