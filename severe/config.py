"""Experiment configs: fvcore ``CfgNode`` files (detectron2 style) + ``KEY VALUE`` overrides.

A config file is the record of an experiment. Keys are validated against the task's defaults:
unknown keys, duplicate keys and values of the wrong type are errors naming the file and key (an integer
is accepted where the default is a float: ``TRAIN.WEIGHT_DECAY 0``). A file may start from another with
``_BASE_: other.yaml`` (path relative to the file). On the command line a key given twice is an error
(:func:`check_user_overrides`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml
from fvcore.common.config import CfgNode

from severe.errors import SevereError


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (the last would silently win)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise SevereError(f"{loader.name}: key '{key}' is given twice (lines {seen[key] + 1} and "
                              f"{key_node.start_mark.line + 1}); keep one")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SevereError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            loader = _UniqueKeyLoader(f)
            loader.name = str(path)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.YAMLError as e:
        raise SevereError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SevereError(f"{path}: a config file must be a mapping of keys to values")
    return data


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _nest(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def apply_aliases(pairs: dict[str, Any], aliases: dict[str, str], source: str) -> dict[str, Any]:
    """Rename alias keys (e.g. PySlowFast's ``RNG_SEED``) to their internal names in one source (a file or
    the command line). A source giving both an alias and its internal name is an error."""
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        internal = aliases.get(key, key)
        if internal in out or (internal != key and internal in pairs):
            raise SevereError(f"{source}: {key} is another name of {internal}; give one of them")
        out[internal] = value
    return out


def _coerce_ints(cfg: CfgNode, data: dict) -> dict:
    """``data`` with an integer turned into a float wherever the schema's value is a float (YAML reads
    ``0`` and ``1`` as integers; fvcore would refuse them as a type mismatch)."""
    out = {}
    for key, value in data.items():
        current = cfg.get(key) if isinstance(cfg, CfgNode) else None
        if isinstance(value, dict) and isinstance(current, CfgNode):
            value = _coerce_ints(current, value)
        elif _int_for_float(current, value):
            value = float(value)
        out[key] = value
    return out


def _int_for_float(current: Any, value: Any) -> bool:
    return isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool)


def _lookup(cfg: CfgNode, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, CfgNode) else None
    return node


def _merge(cfg: CfgNode, data: dict, source: str) -> None:
    data = _coerce_ints(cfg, data)
    try:
        cfg.merge_from_other_cfg(CfgNode(data))
    except (KeyError, AssertionError, ValueError) as e:
        raise SevereError(f"{source}: {str(e).strip(chr(39)).splitlines()[0]} (see the defaults for the valid keys)") from None


def merge_file(cfg: CfgNode, path: str | Path, aliases: dict[str, str] | None = None) -> None:
    """Merge a YAML file (and its ``_BASE_`` chain) into ``cfg``; ``aliases`` rename keys first."""
    path = Path(path)
    data = read_yaml(path)
    base = data.pop("_BASE_", None)
    if base is not None:
        merge_file(cfg, path.parent / base, aliases)
    if aliases:
        data = _nest(apply_aliases(_flatten(data), aliases, str(path)))
    _merge(cfg, data, str(path))


def check_user_overrides(overrides: Sequence[str], aliases: dict[str, str] | None = None,
                         source: str = "command line") -> None:
    """The ``KEY VALUE`` arguments exactly as the user typed them: pairs, and no key given twice (also under
    another name). Call it on the user's own arguments, before anything adds to them."""
    overrides = [str(o) for o in overrides]
    if len(overrides) % 2:
        raise SevereError(f"overrides come in KEY VALUE pairs; got an odd number of arguments: {' '.join(overrides)}")
    seen: dict[str, tuple[str, str]] = {}
    for key, value in zip(overrides[::2], overrides[1::2]):
        internal = (aliases or {}).get(key, key)
        if internal in seen:
            first_key, first_value = seen[internal]
            also = "" if first_key == key else f" (as {first_key})"
            raise SevereError(f"{source}: {key} is given twice ({first_value}{also} and {value}); keep one")
        seen[internal] = (key, value)


def merge_overrides(cfg: CfgNode, overrides: Sequence[str], aliases: dict[str, str] | None = None) -> None:
    """Apply ``KEY VALUE`` pairs (values parsed as YAML literals); a later pair wins, so callers put pairs they
    add (forced settings, protocol rules) before the user's, whose duplicates :func:`check_user_overrides`
    refuses."""
    if len(overrides) % 2:
        raise SevereError(f"overrides come in KEY VALUE pairs; got an odd number of arguments: {' '.join(overrides)}")
    pairs = list(zip(overrides[::2], overrides[1::2]))
    if aliases:
        keys = [k for k, _ in pairs]
        apply_aliases(dict.fromkeys(keys), aliases, "command line")  # an alias next to its internal name
        pairs = [(aliases.get(k, k), v) for k, v in pairs]
    for key, value in pairs:
        decoded = CfgNode._decode_cfg_value(value)
        if _int_for_float(_lookup(cfg, key), decoded):
            value = repr(float(decoded))
        try:
            cfg.merge_from_list([key, value])
        except (KeyError, AssertionError, ValueError) as e:
            raise SevereError(f"override {key} {value}: {str(e).strip(chr(39)).splitlines()[0]}") from None


def load_config(defaults: CfgNode, path: str | Path | None = None, overrides: Sequence[str] = (),
                aliases: dict[str, str] | None = None) -> CfgNode:
    """defaults <- file <- overrides; returns a new, frozen config. ``aliases`` (other names of keys,
    e.g. PySlowFast's) are renamed to the schema's names in the file and the overrides."""
    cfg = defaults.clone()
    if path is not None:
        merge_file(cfg, path, aliases)
    merge_overrides(cfg, list(overrides), aliases)
    cfg.freeze()
    return cfg


def find_config(name: str | Path, config_dir: Path) -> Path:
    """A config path, or a name under ``config_dir`` (``domain/ucf101`` or ``domain/ucf101.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (config_dir / path, config_dir / path.with_suffix(".yaml")):
        if candidate.is_file():
            return candidate
    raise SevereError(f"config {name} not found (neither a file nor a name under {config_dir})")


def to_plain(cfg: CfgNode) -> dict:
    """A plain nested dict (for results records and YAML dumps)."""
    return {k: to_plain(v) if isinstance(v, CfgNode) else (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
