"""The backbone registry: one :class:`BackboneSpec` per architecture name, strict building and loading.

A backbone is any ``nn.Module`` with

* ``forward(x)``: ``B x 3 x T x H x W`` clip -> ``B x feature_dim`` pooled feature (recognition, Charades,
  repetition counting);
* ``forward_features(x)``: the same clip -> ``B x feature_dim x T/temporal_stride x H/spatial_stride x
  W/spatial_stride`` map (AVA's RoI head, split-stream repetition counting).

Its spec records those numbers so that task models read them instead of assuming one network;
:func:`severe.models.contract.check_backbone_contract` verifies a module against its spec.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from severe.errors import SevereError

if TYPE_CHECKING:
    from severe.checkpoints.convert import Converted

__all__ = [
    "ARCHITECTURES", "BACKBONES", "BackboneSpec", "backbone_key_shapes", "build_backbone", "get_backbone_spec",
    "load_backbone_state", "register_backbone",
]


@dataclass(frozen=True)
class BackboneSpec:
    """What a task needs to know about an architecture without building it.

    ``temporal_stride``/``spatial_stride`` are those of ``forward_features``; ``default_frames``/``default_crop``
    the clip the architecture is usually run on; ``mean``/``std`` the RGB input normalisation of a scratch run
    (converted weights carry their own convention in ``meta['normalize']``, which wins). ``test_twin`` names a
    registered small architecture built by the same code (same family and strides) that the registry-wide
    tests build instead of this one (docs/adding_a_backbone.md), None = tests build this one.
    """

    name: str
    family: str
    feature_dim: int
    temporal_stride: int
    spatial_stride: int
    default_frames: int
    default_crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    builder: Callable[[], nn.Module]
    test_twin: str | None = None


BACKBONES: dict[str, BackboneSpec] = {}


class _Builders(Mapping):
    """Read-only ``name -> builder`` view of :data:`BACKBONES` (the former ``ARCHITECTURES`` dict)."""

    def __getitem__(self, name: str) -> Callable[[], nn.Module]:
        return BACKBONES[name].builder

    def __iter__(self) -> Iterator[str]:
        return iter(BACKBONES)

    def __len__(self) -> int:
        return len(BACKBONES)

    def __repr__(self) -> str:
        return f"ARCHITECTURES({', '.join(BACKBONES)})"


ARCHITECTURES: Mapping[str, Callable[[], nn.Module]] = _Builders()


def _positive_int(name: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SevereError(f"register_backbone('{name}'): {key} must be a positive integer, got {value!r}")
    return value


def _triple(name: str, key: str, value: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise SevereError(f"register_backbone('{name}'): {key} needs 3 values (R, G, B), got {list(value)}")
    return values  # type: ignore[return-value]


def register_backbone(name: str, builder: Callable[[], nn.Module], *, feature_dim: int, temporal_stride: int,
                      spatial_stride: int, family: str = "custom", default_frames: int = 32, default_crop: int = 112,
                      mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                      test_twin: str | None = None) -> BackboneSpec:
    """Add an architecture (selected with ``MODEL.ARCH name``); ``builder()`` returns a randomly initialised
    module honouring the contract in this module's docstring. Returns the new spec."""
    if not isinstance(name, str) or not name:
        raise SevereError(f"register_backbone: the name must be a non-empty string, got {name!r}")
    if name in BACKBONES:
        raise SevereError(f"architecture '{name}' is already registered; choose another name")
    if not callable(builder):
        raise SevereError(f"register_backbone('{name}'): builder must be callable, got {builder!r}")
    if test_twin is not None:
        twin = BACKBONES.get(test_twin)
        if twin is None:
            raise SevereError(f"register_backbone('{name}'): test_twin '{test_twin}' is not registered; register "
                              f"the small twin first")
        if (twin.family, twin.temporal_stride, twin.spatial_stride) != (str(family), temporal_stride, spatial_stride):
            raise SevereError(f"register_backbone('{name}'): test_twin '{test_twin}' has family/strides "
                              f"{(twin.family, twin.temporal_stride, twin.spatial_stride)}, not "
                              f"{(str(family), temporal_stride, spatial_stride)}")
    spec = BackboneSpec(
        name=name, family=str(family), feature_dim=_positive_int(name, "feature_dim", feature_dim),
        temporal_stride=_positive_int(name, "temporal_stride", temporal_stride),
        spatial_stride=_positive_int(name, "spatial_stride", spatial_stride),
        default_frames=_positive_int(name, "default_frames", default_frames),
        default_crop=_positive_int(name, "default_crop", default_crop),
        mean=_triple(name, "mean", mean), std=_triple(name, "std", std), builder=builder,
        test_twin=test_twin)
    BACKBONES[name] = spec
    _KEY_CACHE.pop(name, None)
    return spec


def get_backbone_spec(name: str) -> BackboneSpec:
    """The spec registered under ``name``; an unknown name is a SevereError listing the known ones."""
    try:
        return BACKBONES[name]
    except (KeyError, TypeError):
        raise SevereError(f"unknown architecture '{name}'; known: {', '.join(BACKBONES)}") from None


def build_backbone(arch: str | None, weights: Converted | None = None) -> nn.Module:
    """A backbone of ``arch`` (None/"" = the architecture of ``weights``), loaded strictly from ``weights`` when
    given, else randomly initialised (seed first). The module carries ``.arch``, ``.spec`` and ``.feature_dim``."""
    if weights is not None:
        weights_arch = weights.meta.get("arch")
        if arch and arch != weights_arch:
            raise SevereError(f"architecture '{arch}' differs from the architecture of the '{weights.meta.get('method')}' "
                              f"weights ({weights_arch}); drop the architecture or start from scratch")
        arch = weights_arch
    if not arch:
        raise SevereError("build_backbone needs an architecture name or weights that record one (meta['arch'])")
    spec = get_backbone_spec(arch)
    module = spec.builder()
    declared = getattr(module, "feature_dim", spec.feature_dim)
    if declared != spec.feature_dim:
        raise SevereError(f"backbone '{arch}' declares feature_dim {declared} but is registered with "
                          f"feature_dim {spec.feature_dim}; make the two agree")
    module.arch, module.spec, module.feature_dim = arch, spec, spec.feature_dim
    if weights is not None:
        load_backbone_state(module, weights.state_dict, source=f"weights of method '{weights.meta.get('method')}'")
    return module


_KEY_CACHE: dict[str, dict[str, tuple[int, ...]]] = {}


def backbone_key_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Ordered ``{key: shape}`` of the backbone's state_dict (built on the meta device, cached)."""
    if arch not in _KEY_CACHE:
        with torch.device("meta"):
            sd = build_backbone(arch).state_dict()
        _KEY_CACHE[arch] = {k: tuple(v.shape) for k, v in sd.items()}
    return dict(_KEY_CACHE[arch])


def load_backbone_state(backbone: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load weights strictly; any missing/unexpected key or shape difference is a SevereError."""
    expected = backbone_key_shapes(backbone.arch)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [(k, expected[k], tuple(v.shape)) for k, v in state_dict.items() if k in expected and tuple(v.shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k, e, f = wrong[0]
            parts.append(f"{len(wrong)} with wrong shape (e.g. {k}: expected {e}, found {f})")
        raise SevereError(f"{source} do not fit architecture {backbone.arch}: " + "; ".join(parts))
    backbone.load_state_dict(state_dict, strict=True)
