"""Manifests (docs/datasets.md §1.3): entries / present / missing / sha256 per split, and the media check.

Missing media are never dropped silently: :func:`check_media` fails with the count and the first
paths unless the caller explicitly allows missing files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.data.registry import dataset_dir, get_dataset, manifest_lines, read_split
from severe.data.subsets import select_subset
from severe.errors import SevereError

MISSING_EXAMPLES = 5


def media_present(dataset_dir: Path, entry: VideoEntry, media: str) -> bool:
    """True if the entry's media exist: a file for ``media="video"``, a non-empty folder for "frames"."""
    target = Path(dataset_dir) / entry.path
    if media == "video":
        return target.is_file()
    if media == "frames":
        return target.is_dir() and any(target.iterdir())
    raise ValueError(f"unknown media kind {media!r} (expected 'video' or 'frames')")


def locate_media(dataset_id: str, data_root: Path, entry: VideoEntry) -> tuple[Path, str] | None:
    """(absolute path, media kind) of the entry's media in the first accepted form found, else None.

    The official form comes first, then the dataset's declared alternatives (SSv2 ``.webm``,
    EK-100 ``rgb_frames`` folders).
    """
    spec = get_dataset(dataset_id)
    folder = dataset_dir(data_root, dataset_id)
    if media_present(folder, entry, spec.media):
        return folder / entry.path, spec.media
    for alt in spec.alternatives:
        other = VideoEntry(path=alt.transform(entry.path), label=entry.label, key=entry.key)
        if media_present(folder, other, alt.media):
            return folder / other.path, alt.media
    return None


def _partition(dataset_id: str, data_root: Path, entries: list[VideoEntry]) -> tuple[list[VideoEntry], list[VideoEntry]]:
    present: list[VideoEntry] = []
    missing: list[VideoEntry] = []
    cache: dict[str, bool] = {}  # EK-100: many segments share one video
    for e in entries:
        if e.path not in cache:
            cache[e.path] = locate_media(dataset_id, data_root, e) is not None
        (present if cache[e.path] else missing).append(e)
    return present, missing


def check_media(dataset_id: str, data_root: Path, entries: list[VideoEntry],
                allow_missing: bool) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """(present, missing) entries; SevereError when some are missing and ``allow_missing`` is False."""
    present, missing = _partition(dataset_id, data_root, entries)
    if missing and not allow_missing:
        folder = dataset_dir(data_root, dataset_id)
        first = ", ".join(e.path for e in missing[:MISSING_EXAMPLES])
        raise SevereError(f"{dataset_id}: {len(missing)} of {len(entries)} media missing under {folder} "
                          f"(first: {first}); fix the data, or add DATA.ALLOW_MISSING True to the "
                          "command (KEY VALUE) to exclude them (the excluded list is stored with the results)")
    return present, missing


def manifest_sha256(lines: list[tuple[str, str]]) -> str:
    """SHA-256 of the UTF-8 text of ``<path>\\t<label>\\n`` lines sorted bytewise."""
    encoded = sorted(f"{p}\t{lab}\n".encode("utf-8") for p, lab in lines)
    return hashlib.sha256(b"".join(encoded)).hexdigest()


def split_entries(dataset_id: str, data_root: Path, split: str, num_examples: int | None = None,
                  seed: int = 0) -> list[VideoEntry]:
    """The split's entries; for train with ``num_examples`` the N-example subset (docs/protocol.md §6)."""
    entries = read_split(dataset_id, data_root, split)
    if num_examples is not None and split == "train":
        if not get_dataset(dataset_id).single_label:
            raise SevereError(f"--num-examples is defined for single-label classification datasets, not {dataset_id}")
        entries = select_subset(entries, num_examples, seed)
    return entries


def split_manifest(dataset_id: str, data_root: Path, split: str, num_examples: int | None = None,
                   seed: int = 0) -> dict:
    """Counts and hash of one split: ``{"entries", "present", "missing", "sha256", "missing_examples"}``.

    ``num_examples`` applies to the train split only (the test split is always complete).
    """
    entries = split_entries(dataset_id, data_root, split, num_examples, seed)
    lines = manifest_lines(dataset_id, data_root, split, entries)
    present, missing = _partition(dataset_id, data_root, entries)
    return {
        "entries": len(entries),
        "present": len(present),
        "missing": len(missing),
        "sha256": manifest_sha256(lines),
        "missing_examples": [e.key for e in missing[:MISSING_EXAMPLES]],
    }
