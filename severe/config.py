"""Experiment configs: fvcore ``CfgNode`` files (detectron2 style) + ``KEY VALUE`` overrides.

A config file is the record of an experiment. Keys are validated against the task's defaults:
unknown keys, duplicate keys and values of the wrong type are errors naming the file and key. A file
may start from another with ``_BASE_: other.yaml`` (path relative to the file).
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


def _merge(cfg: CfgNode, data: dict, source: str) -> None:
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


def merge_overrides(cfg: CfgNode, overrides: Sequence[str], aliases: dict[str, str] | None = None) -> None:
    """Apply ``KEY VALUE`` pairs from the command line (values parsed as YAML literals)."""
    if len(overrides) % 2:
        raise SevereError(f"overrides come in KEY VALUE pairs; got an odd list: {' '.join(overrides)}")
    pairs = list(zip(overrides[::2], overrides[1::2]))
    if aliases:
        keys = [k for k, _ in pairs]
        apply_aliases(dict.fromkeys(keys), aliases, "command line")  # an alias next to its internal name
        pairs = [(aliases.get(k, k), v) for k, v in pairs]
    for key, value in pairs:
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
