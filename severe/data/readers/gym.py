"""FineGym lists ``gym/annotations/gym{99,288}_{train,val}[_org].txt``: ``<clip>[.avi] <label>``.

Both forms are accepted: the suite's files name the clip with ``.avi`` (and lack a final newline), the
official ``_org`` files name it without extension; ``.avi`` is appended only when absent. Derived sets
(Vault, Floor, FX-S1, UB-S1) are a :class:`LabelFilter` over the gym99 lists (docs/protocol.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, check_label, numbered_lines, parse_int


@dataclass(frozen=True)
class LabelFilter:
    """Keep source labels in [first, last] and map them to ``label - first``; source labels must lie in
    [0, source_num_classes)."""

    first: int
    last: int
    source_num_classes: int | None = None

    def apply(self, label: int) -> int | None:
        """The new label, or None when the source label is not kept."""
        return label - self.first if self.first <= label <= self.last else None


def clip_file_name(token: str) -> str:
    """``<clip>`` or ``<clip>.avi`` -> ``<clip>.avi``."""
    return token if token.endswith(".avi") else token + ".avi"


def read_gym_list(path: Path, num_classes: int | None, keep: LabelFilter | None = None) -> list[VideoEntry]:
    """Entries of one gym list (media ``videos/<clip>.avi``), optionally filtered and remapped."""
    entries: list[VideoEntry] = []
    for no, line in numbered_lines(path):
        parts = line.split()
        if len(parts) != 2:
            raise bad_line(path, no, f"expected '<clip>[.avi] <label>', got {line!r}")
        label = parse_int(parts[1], path, no, "label")
        if keep is not None:
            check_label(label, keep.source_num_classes, path, no)
            mapped = keep.apply(label)
            if mapped is None:
                continue
            label = mapped
        check_label(label, num_classes, path, no)
        rel = f"videos/{clip_file_name(parts[0])}"
        entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries


def read_gym_split(dataset_dir: Path, split: str, *, label_set: str, num_classes: int | None,
                   keep: LabelFilter | None = None) -> list[VideoEntry]:
    """Entries of ``split`` ("train" or "test" = val) of ``gym99``/``gym288`` lists, optionally filtered."""
    name = {"train": f"{label_set}_train.txt", "test": f"{label_set}_val.txt"}[split]
    path = dataset_dir / "annotations" / name
    org = path.with_name(path.stem + "_org.txt")
    if not path.is_file() and org.is_file():
        raise SevereError(f"missing annotation file: {path}; {org.name} is present and has the same content "
                          f"(official FineGym v1.0 form): copy it to {name}")
    return read_gym_list(path, num_classes, keep)
