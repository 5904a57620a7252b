"""Speed flags (mixed precision, channels_last_3d, torch.compile): they take effect on CUDA only.

On CPU every flag is a recorded no-op, so CPU runs stay FP32 and bit-reproducible; the record goes into
the run log and the checkpoint (docs/protocol.md §1.2: mixed precision must be recorded in results).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from severe.errors import SevereError

__all__ = ["AMP_DTYPES", "Runtime", "resolve_runtime"]

AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """Resolved speed settings for one device."""

    device: torch.device
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    compile: bool
    record: dict

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes (a null context when AMP is off)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @property
    def grad_scaling(self) -> bool:
        """fp16 needs loss scaling; bf16 and FP32 do not."""
        return self.amp_dtype is torch.float16


def resolve_runtime(device: torch.device, amp: str = "off", channels_last: bool = False, compile: bool = False) -> Runtime:
    """Which requested flags apply on ``device``; ``record`` says what was requested and what is used."""
    if amp not in AMP_DTYPES:
        raise SevereError(f"amp: unknown precision '{amp}'; choose one of {sorted(AMP_DTYPES)}")
    cuda = device.type == "cuda"
    cpu_note = "no-op on CPU"
    record = {
        "device": str(device),
        "amp": amp if cuda or amp == "off" else f"off (requested {amp}; {cpu_note})",
        "channels_last_3d": channels_last if cuda or not channels_last else f"off (requested; {cpu_note})",
        "compile": compile if cuda or not compile else f"off (requested; {cpu_note})",
    }
    return Runtime(
        device=device,
        amp_dtype=AMP_DTYPES[amp] if cuda else None,
        memory_format=torch.channels_last_3d if (cuda and channels_last) else torch.contiguous_format,
        compile=bool(cuda and compile),
        record=record,
    )
