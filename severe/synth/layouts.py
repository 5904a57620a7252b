"""Each method's on-disk checkpoint layout (docs/checkpoints.md §3) as one function, referenced from its row of
:data:`severe.checkpoints.methods.METHODS` (``MethodSpec.synthetic``).

A layout function receives the seeded backbone weights (:class:`Weights`) and returns (object to save, the
exact backbone state_dict a correct conversion must produce). Heads, audio branches, queues and pickled
objects are seeded from ``seed`` too, so the same seed always writes the same file.
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import torch

State = "OrderedDict[str, torch.Tensor]"


@dataclass(frozen=True)
class Weights:
    """The inputs of a layout: backbone weights, a second copy with other values (momentum encoder / key
    encoder), the seed of everything else and the variant (see ``severe.synth.checkpoints.VARIANTS``)."""

    backbone: State
    other: State
    seed: int
    variant: str | None

    @property
    def module(self) -> str:
        """The DataParallel prefix the method's files carry (none for the single-GPU variant)."""
        return "" if self.variant == "no_module" else "module."


def random_state(shapes: dict[str, tuple[int, ...]], seed: int, dtype: torch.dtype = torch.float32) -> State:
    """Seeded random tensors of the given shapes (BN variances positive, counters int64)."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.randint(0, 10_000, shape, generator=g, dtype=torch.long)
            continue
        noise = torch.randn(shape, generator=g)
        if key.endswith("running_var"):
            value = noise.abs() * 0.1 + 0.9
        elif len(shape) >= 2:  # conv / linear weights at He scale, so a network built from them stays finite
            value = noise * math.sqrt(2.0 / math.prod(shape[1:]))
        elif key.endswith("weight"):  # normalisation scale
            value = 1.0 + 0.1 * noise
        else:  # biases, running means
            value = 0.1 * noise
        out[key] = value.to(dtype)
    return out


def _noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Seeded N(0, 1) junk (queues, memory banks): a synthetic file is fully determined by its seed."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _prefixed(prefix: str, state: dict[str, torch.Tensor], rename: Callable[[str], str] = lambda k: k) -> dict:
    return {prefix + rename(k): v for k, v in state.items()}


def _bn(name: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n,), f"{name}.bias": (n,), f"{name}.running_mean": (n,), f"{name}.running_var": (n,),
            f"{name}.num_batches_tracked": ()}


def _linear(name: str, out_dim: int, in_dim: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (out_dim, in_dim), **({f"{name}.bias": (out_dim,)} if bias else {})}


def _audio_resnet(seed: int) -> State:
    """A small 2-D audio ResNet whose stripped names look like an image ResNet's (the SeLaVi trap)."""
    shapes = {"conv1.weight": (64, 1, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for i, c in enumerate((64, 128, 256, 512), start=1):
        shapes[f"layer{i}.0.conv1.weight"] = (c, cin, 3, 3)
        shapes.update(_bn(f"layer{i}.0.bn1", c))
        cin = c
    return random_state(shapes, seed)


_OPTIMIZER = {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "params": [0, 1, 2]}]}

# torchvision -> CtP names (inverse of severe.checkpoints.methods.ctp_names)
_TV_TO_CTP = [("stem.0.", "stem.conv_s."), ("stem.1.", "stem.bn_s."), ("stem.3.", "stem.conv_t."), ("stem.4.", "stem.bn_t.")]


def to_ctp_name(key: str) -> str:
    for tv, ctp in _TV_TO_CTP:
        if key.startswith(tv):
            return ctp + key[len(tv):]
    parts = key.split(".")  # layerL.B.convK.<...>
    if parts[2] in ("conv1", "conv2"):
        k = parts[2][-1]
        if parts[3] == "0":
            sub = {"0": "conv_s", "1": "bn_s", "3": "conv_t"}[parts[4]]
            return ".".join(parts[:3] + [sub] + parts[5:])
        return ".".join(parts[:2] + [f"bn{k}"] + parts[4:])
    if parts[2] == "downsample":
        return ".".join(parts[:2] + (["downsample", "conv"] if parts[3] == "0" else ["downsample_bn"]) + parts[4:])
    raise ValueError(key)


def to_numbered_name(key: str) -> str:
    head, _, rest = key.partition(".")
    return {"stem": "0", "layer1": "1", "layer2": "2", "layer3": "3", "layer4": "4"}[head] + "." + rest


def _grad_scaler() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.cuda.amp.GradScaler()


# ----------------------------------------------------------------------------- one function per layout

def supervised(w: Weights) -> tuple[Any, State]:
    """torchvision's release: the bare model state_dict with the Kinetics fc."""
    bb = w.backbone
    obj = dict(bb)
    obj.update(random_state(_linear("fc", 400, 512), w.seed + 1))
    if w.variant == "no_num_batches":
        obj = {k: v for k, v in obj.items() if not k.endswith("num_batches_tracked")}
        bb = OrderedDict((k, torch.tensor(0) if k.endswith("num_batches_tracked") else v) for k, v in bb.items())
    return obj, bb


def selavi(w: Weights) -> tuple[Any, State]:
    """video + audio networks, 10 clustering heads per modality, self-labels."""
    m, seed = w.module, w.seed
    heads = {}
    for i in range(10):
        for side in ("v", "a"):
            heads.update(random_state({**_linear(f"mlp_{side}{i}.block_forward.2", 512, 512, bias=False),
                                       **_bn(f"mlp_{side}{i}.block_forward.4", 512),
                                       **_linear(f"mlp_{side}{i}.block_forward.8", 40, 512)}, seed + 7 + i))
    model = {**_prefixed(m + "video_network.base.", w.backbone),
             **_prefixed(m + "audio_network.base.", _audio_resnet(seed + 2)), **_prefixed(m, heads)}
    return {"model": model, "epoch": 100, "optimizer": _OPTIMIZER,
            "selflabels": torch.randint(0, 400, (64, 10), generator=torch.Generator().manual_seed(seed))}, w.backbone


def _moco(w: Weights, fc: State) -> tuple[Any, State]:
    m = w.module
    sd = {**_prefixed(m + "encoder_q.", {**w.backbone, **fc}), **_prefixed(m + "encoder_k.", {**w.other, **fc}),
          m + "queue": _noise((128, 4096), w.seed + 20), m + "queue_ptr": torch.zeros(1, dtype=torch.long)}
    return {"state_dict": sd, "epoch": 200, "arch": "r2plus1d_18", "optimizer": _OPTIMIZER}, w.backbone


def moco(w: Weights) -> tuple[Any, State]:
    """query and key encoders with a linear projection, the queue."""
    return _moco(w, random_state(_linear("fc", 128, 512), w.seed + 3))


def video_moco(w: Weights) -> tuple[Any, State]:
    """as MoCo with a 2-layer MLP projection."""
    return _moco(w, random_state({**_linear("fc.0", 512, 512), **_linear("fc.2", 128, 512)}, w.seed + 3))


def pretext_contrast(w: Weights) -> tuple[Any, State]:
    """numbered stages under base_network, projector and pretext heads, at the top level."""
    heads = random_state({**_linear("projector.mlp.0", 512, 512), **_linear("projector.mlp.2", 128, 512),
                          **_linear("fc_seq", 2, 1024), **_linear("fc_speed", 4, 1024)}, w.seed + 4)
    obj = {**_prefixed(w.module + "base_network.", w.backbone, to_numbered_name), **_prefixed(w.module, heads)}
    return obj, w.backbone


def rspnet(w: Weights) -> tuple[Any, State]:
    """numbered stages in query and key encoders (variant ``vcop``: the released VCOP names)."""
    seed, bb = w.seed, w.backbone
    if w.variant == "vcop":
        shapes = {"conv1.spatial_conv.weight": (45, 3, 1, 7, 7), "conv2.block1.conv1.spatial_conv.weight": (144, 64, 1, 3, 3),
                  "conv3.block1.downsampleconv.weight": (128, 64, 1, 1, 1)}
        return {"model": _prefixed("encoder_q.encoder.base_network.", random_state(shapes, seed)), "epoch": 200}, bb
    heads = random_state({**_linear("fc1.2", 128, 512), **_linear("fc2.2", 128, 512)}, seed + 5)
    model = {**_prefixed("encoder_q.encoder.base_network.", bb, to_numbered_name), **_prefixed("encoder_q.", heads),
             **_prefixed("encoder_k.encoder.base_network.", w.other, to_numbered_name), **_prefixed("encoder_k.", heads),
             "queue": _noise((128, 1024), seed + 21), "queue_ptr": torch.zeros(1, dtype=torch.long)}
    return {"model": model, "epoch": 200, "arch": "r2plus1d_18", "best_loss": 1.5, "optimizer": _OPTIMIZER,
            "scheduler": {"last_epoch": 200}}, bb


def avid_cma(w: Weights) -> tuple[Any, State]:
    """video model with fc, audio model, projections, memory banks (variant ``fair``: FAIR's release names)."""
    m, seed, bb = w.module, w.seed, w.backbone
    if w.variant == "fair":
        shapes = {"conv1.conv.weight": (64, 3, 3, 7, 7), "conv2x.0.spt_conv1.weight": (64, 64, 1, 3, 3),
                  "conv2x.0.tmp_conv1.weight": (64, 64, 3, 1, 1)}
        return {"model": _prefixed(m + "video_model.", random_state(shapes, seed)), "epoch": 20}, bb
    proj = {}
    for side in ("video", "audio"):
        proj.update(random_state({**_linear(f"{side}_proj.projection.0", 512, 512), **_linear(f"{side}_proj.projection.2", 512, 512),
                                  **_linear(f"{side}_proj.projection.4", 128, 512)}, seed + 6))
    model = {**_prefixed(m + "video_model.", bb), **_prefixed(m + "video_model.", random_state(_linear("fc", 400, 512), seed + 8)),
             **_prefixed(m + "audio_model.", _audio_resnet(seed + 2)), **_prefixed(m, proj)}
    criterion = {"memory_video": _noise((64, 128), seed + 22), "memory_audio": _noise((64, 128), seed + 23)}
    return {"model": model, "epoch": 20, "optimizer": _OPTIMIZER, "train_criterion": criterion}, bb


def _mmcv(w: Weights, heads: Callable[[], dict]) -> tuple[Any, State]:
    """CtP's mmcv layout: ``backbone.`` in CtP names, then ``heads()`` (variant ``upstream``: CtP's own mid channels)."""
    source = dict(w.backbone)
    if w.variant == "upstream":  # conv2 mid recomputed from (out, out): 288/576/1152 in layer{2,3,4}.0
        for layer, (c, mid) in {"layer2": (128, 288), "layer3": (256, 576), "layer4": (512, 1152)}.items():
            p = f"{layer}.0.conv2.0."
            source.update(random_state({p + "0.weight": (mid, c, 1, 3, 3), **_bn(p + "1", mid), p + "3.weight": (c, mid, 3, 1, 1)}, w.seed + 9))
    sd = _prefixed("backbone.", source, to_ctp_name)
    meta = {"epoch": 90, "iter": 123456, "mmcv_version": "1.3.0", "time": "Fri Jan  1 00:00:00 2021"}
    sd.update(heads())
    return {"meta": meta, "state_dict": sd, "optimizer": _OPTIMIZER}, w.backbone


def ctp(w: Weights) -> tuple[Any, State]:
    """mmcv layout with the patch-tracking head."""
    return _mmcv(w, lambda: _prefixed("head.", random_state(_linear("fc", 4, 512), w.seed + 10)))


def tubelet_contrast(w: Weights) -> tuple[Any, State]:
    """mmcv layout with a key encoder, projections and the queue."""
    def heads() -> dict:
        fc = random_state({**_linear("0", 512, 512), **_linear("2", 128, 512)}, w.seed + 10)
        return {**_prefixed("key_encoder.", w.other, to_ctp_name), **_prefixed("fc.", fc), **_prefixed("key_fc.", fc),
                "queue": _noise((128, 1024), w.seed + 24), "queue_ptr": torch.zeros(1, dtype=torch.long)}
    return _mmcv(w, heads)


def _tc_release(w: Weights, names: str) -> tuple[Any, State]:
    """Tubelet-Contrast's R3D-18 / I3D release (severe.checkpoints.tc_layouts): mmcv layout, original names."""
    from severe.checkpoints import tc_layouts as tc  # lazy: the method table imports this module

    rename, head = {"r3d": (tc.original_r3d_name, tc.R3D_HEAD), "i3d": (tc.i3d_names, tc.I3D_HEAD)}[names]
    dtype = next(v.dtype for v in w.backbone.values() if v.is_floating_point())
    return tc.tc_object(w.backbone, w.other, rename, head, w.seed, dtype), w.backbone


def tubelet_contrast_r3d(w: Weights) -> tuple[Any, State]:
    """mmcv layout with pyvrl R3D-18 names (``stem.conv``, ``bn1``, ``downsample_bn``), key encoder, heads, queue."""
    return _tc_release(w, "r3d")


def tubelet_contrast_i3d(w: Weights) -> tuple[Any, State]:
    """mmcv layout with Inception-v1 I3D names (``conv3d_1a_7x7.conv3d``, ``mixed_3b.branch_1.0.batch3d``), key
    encoder, heads, queue."""
    return _tc_release(w, "i3d")


def tclr(w: Weights) -> tuple[Any, State]:
    """nn.Sequential(backbone, mlp) under DataParallel, a pickled GradScaler."""
    mlp = random_state({**_linear("0", 512, 512), **_linear("2", 128, 512)}, w.seed + 11)
    sd = {**_prefixed(w.module + "0.", w.backbone), **_prefixed(w.module + "1.", mlp)}
    return {"state_dict": sd, "epoch": 300, "optimizer": _OPTIMIZER, "learning_rate": 0.1,
            "amp_scaler": _grad_scaler()}, w.backbone


def gdt(w: Weights) -> tuple[Any, State]:
    """video + audio networks, projection heads, pickled argparse arguments."""
    heads = random_state({**_linear("mlp_v", 256, 512), **_linear("mlp_a", 256, 512)}, w.seed + 12)
    model = {**_prefixed("video_network.base.", w.backbone), **_prefixed("audio_network.base.", _audio_resnet(w.seed + 2)),
             **heads}
    return {"model": model, "optimizer": _OPTIMIZER, "lr_scheduler": {"last_epoch": 100}, "epoch": 100,
            "args": argparse.Namespace(vid_base_arch="r2plus1d_18", num_clusters=256)}, w.backbone
