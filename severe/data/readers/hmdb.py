"""HMDB51 split files: ``splits/<class>_test_split<k>.txt`` with lines ``<name>.avi <flag> ``.

Classes are the split-file names of split k without the suffix, sorted by code point (never a listing
of the video folder); flag 1 = train, 2 = test, 0 = unused. Files not matching the pattern (editor
swap files such as ``.hug_test_split1.txt.swp``, hidden files) are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, check_label, numbered_lines, parse_int

FLAGS = {"train": 1, "test": 2}


def hmdb_split_files(split_dir: Path, fold: int) -> dict[str, Path]:
    """Class name -> split file of fold ``fold``, sorted by class name (code point order)."""
    if not split_dir.is_dir():
        raise SevereError(f"missing HMDB51 split folder: {split_dir}")
    pattern = re.compile(rf"^([^.].*)_test_split{fold}\.txt$")
    found = {m.group(1): p for p in split_dir.iterdir() if p.is_file() and (m := pattern.match(p.name))}
    if not found:
        raise SevereError(f"{split_dir}: no '<class>_test_split{fold}.txt' files found")
    return dict(sorted(found.items()))


def read_hmdb_split(dataset_dir: Path, split: str, *, fold: int = 1,
                    num_classes: int | None = 51) -> list[VideoEntry]:
    """Entries of ``split`` ("train" = flag 1, "test" = flag 2) of HMDB51 fold ``fold``."""
    want = FLAGS[split]
    files = hmdb_split_files(dataset_dir / "splits", fold)
    if num_classes is not None and len(files) > num_classes:
        raise SevereError(f"{dataset_dir / 'splits'}: {len(files)} classes found for split {fold}, "
                          f"HMDB51 has {num_classes}; remove the extra split files")
    entries: list[VideoEntry] = []
    for label, (cls, path) in enumerate(files.items()):
        for no, line in numbered_lines(path):
            parts = line.split()
            if len(parts) != 2:
                raise bad_line(path, no, f"expected '<name>.avi <flag>', got {line!r}")
            flag = parse_int(parts[1], path, no, "split flag")
            if flag not in (0, 1, 2):
                raise bad_line(path, no, f"split flag must be 0, 1 or 2, got {flag}")
            if flag == want:
                check_label(label, num_classes, path, no)
                rel = f"videos/{cls}/{parts[0]}"
                entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries
