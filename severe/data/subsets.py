"""N-example training subsets (docs/protocol.md §6): k = ceil(N / C_present) entries per class, and the
optional validation split carved from the training entries.

Drawn from the full official training list (never from the files present on disk), class by class
in ascending label order, without replacement, with one explicitly seeded numpy Generator.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.io import atomic_write_text

SUBSET_HEADER = "# severe N-example subset"


def select_subset(entries: list[VideoEntry], num_examples: int, seed: int) -> list[VideoEntry]:
    """The N-example subset of ``entries`` (the official training list).

    For each class c present, in ascending label order: all its entries if it has at most k, else k
    of them drawn without replacement by ``numpy.random.default_rng(seed).choice`` (one generator for
    all classes). Chosen entries keep their list order within a class; classes follow label order.
    """
    if num_examples <= 0:
        raise SevereError(f"--num-examples must be a positive integer, got {num_examples}")
    if any(e.label < 0 for e in entries):
        raise SevereError("N-example subsets need single-label entries; this list has unlabelled entries")
    by_class: dict[int, list[VideoEntry]] = {}
    for e in entries:
        by_class.setdefault(e.label, []).append(e)
    if not by_class:
        raise SevereError("cannot draw an N-example subset from an empty training list")
    k = math.ceil(num_examples / len(by_class))
    rng = np.random.default_rng(seed)
    out: list[VideoEntry] = []
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) <= k:
            out.extend(members)
            continue
        chosen = np.sort(rng.choice(len(members), size=k, replace=False))
        out.extend(members[int(i)] for i in chosen)
    return out


def split_validation(entries: list[VideoEntry], fraction: float, seed: int) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """(train, val): ``round(fraction * n_c)`` entries of each class c held out for validation.

    Classes in ascending label order; a class with at least two entries gives at least one to validation
    and keeps at least one for training; a single-entry class stays in training. Drawn without
    replacement by ``numpy.random.default_rng([seed, 1])`` (a stream separate from the N-example subset's);
    both lists keep the input order.
    """
    if not 0.0 < fraction < 1.0:
        raise SevereError(f"DATA.VAL_FRACTION must be in (0, 1) to carve a validation split, got {fraction}")
    if any(e.label < 0 for e in entries):
        raise SevereError("a validation split needs single-label entries; this list has unlabelled entries")
    by_class: dict[int, list[int]] = {}
    for i, e in enumerate(entries):
        by_class.setdefault(e.label, []).append(i)
    rng = np.random.default_rng([seed, 1])
    held: set[int] = set()
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) < 2:
            continue
        k = min(max(1, round(fraction * len(members))), len(members) - 1)
        held.update(members[int(j)] for j in rng.choice(len(members), size=k, replace=False))
    if not held:
        raise SevereError(f"DATA.VAL_FRACTION={fraction}: no class has two training entries to split")
    return ([e for i, e in enumerate(entries) if i not in held], [e for i, e in enumerate(entries) if i in held])


def write_subset_list(entries: list[VideoEntry], path: Path, *, comment: str | None = None) -> Path:
    """Write the chosen entries atomically as ``<key>\\t<label>`` lines under a short ``#`` header."""
    lines = [SUBSET_HEADER, f"# entries: {len(entries)}"]
    if comment:
        lines += [f"# {c}" for c in comment.splitlines()]
    lines.append("# key\tlabel")
    lines += [f"{e.key}\t{e.label}" for e in entries]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_subset_list(path: Path) -> list[tuple[str, int]]:
    """(key, label) pairs of a list written by :func:`write_subset_list`."""
    if not Path(path).is_file():
        raise SevereError(f"missing subset list: {path}")
    out = []
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        key, sep, label = line.rpartition("\t")
        if not sep or not label.lstrip("-").isdigit():
            raise SevereError(f"{path}:{no}: expected '<key>\\t<label>', got {line!r}")
        out.append((key, int(label)))
    return out
