"""UCF101-style lists (UCF101, NTU-60 cross-subject): ``classInd.txt`` plus train/test path lists.

Label = position of a list entry's folder (first path component) in classInd, 0-based. The numeric
column of the UCF train list is ignored; the test lists have no label column; NTU lines end in a space.
"""

from __future__ import annotations

from pathlib import Path

from severe.data.entries import VideoEntry
from severe.data.readers._common import bad_line, check_label, numbered_lines, parse_int


def read_class_index(path: Path) -> list[str]:
    """Class folder names of ``classInd.txt`` (``<id 1..C> <name>``) in file order.

    The ids must run 1, 2, 3, ... in order; anything else is reported with its line number.
    """
    names: list[str] = []
    for no, line in numbered_lines(path):
        parts = line.split()
        if len(parts) != 2:
            raise bad_line(path, no, f"expected '<id> <ClassName>', got {line!r}")
        idx = parse_int(parts[0], path, no, "class id")
        if idx != len(names) + 1:
            raise bad_line(path, no, f"class id {idx} out of order (expected {len(names) + 1})")
        if parts[1] in names:
            raise bad_line(path, no, f"duplicate class name {parts[1]!r}")
        names.append(parts[1])
    if not names:
        raise bad_line(path, 1, "no classes listed")
    return names


def read_path_list(path: Path, class_names: list[str], num_classes: int | None,
                   media_prefix: str) -> list[VideoEntry]:
    """Entries of one ``<Class>/<file> [<id>]`` list; label from the folder name's classInd position."""
    index = {name: i for i, name in enumerate(class_names)}
    entries: list[VideoEntry] = []
    for no, line in numbered_lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise bad_line(path, no, f"expected '<Class>/<file> [<id>]', got {line!r}")
        if len(parts) == 2:
            parse_int(parts[1], path, no, "class id")  # ignored but must be well-formed
        folder = parts[0].split("/", 1)[0]
        if folder not in index:
            raise bad_line(path, no, f"class folder {folder!r} is not in classInd.txt")
        label = check_label(index[folder], num_classes, path, no)
        rel = f"{media_prefix}/{parts[0]}"
        entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries


def read_ucf_like(dataset_dir: Path, split: str, *, list_dir: str, split_files: dict[str, str],
                  media_prefix: str, num_classes: int | None) -> list[VideoEntry]:
    """Entries of ``split`` ("train"/"test") for a classInd-style dataset folder."""
    lists = dataset_dir / list_dir
    classes = read_class_index(lists / "classInd.txt")
    return read_path_list(lists / split_files[split], classes, num_classes, media_prefix)
