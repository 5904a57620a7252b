"""Something-Something v2 JSON annotations.

``-labels.json`` maps a template without brackets to the class id as a *string*; ``-train.json`` /
``-validation.json`` are lists of ``{"id", "label", "template", "placeholders"}``. The label is looked
up by the template with ``[``/``]`` removed, never by the instantiated ``label`` sentence.
"""

from __future__ import annotations

from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import json_field, load_json

ANNOTATION_DIR = "something-something-v2-annotations"
VIDEO_DIR = "something-something-v2-videos_avi"
SPLIT_FILES = {"train": "something-something-v2-train.json",
               "test": "something-something-v2-validation.json"}


def template_key(template: str) -> str:
    """The labels-json key of a template: ``[something]`` -> ``something``."""
    return template.replace("[", "").replace("]", "")


def read_ssv2_labels(path: Path) -> dict[str, int]:
    """Template (without brackets) -> 0-based class id, from ``-labels.json``."""
    data = load_json(path)
    if not isinstance(data, dict) or not data:
        raise SevereError(f"{path}: expected a non-empty object template -> id string")
    out: dict[str, int] = {}
    for template, value in data.items():
        try:
            out[template] = int(value)
        except (TypeError, ValueError):
            raise SevereError(f"{path}: class id of {template!r} must be an integer string, got {value!r}") from None
    if len(set(out.values())) != len(out):
        raise SevereError(f"{path}: class ids are not unique")
    return out


def read_ssv2_split(dataset_dir: Path, split: str, *, num_classes: int | None = 174) -> list[VideoEntry]:
    """Entries of ``split`` ("train" or "test" = validation json); media ``<VIDEO_DIR>/<int(id)>.avi``."""
    ann = dataset_dir / ANNOTATION_DIR
    labels_path = ann / "something-something-v2-labels.json"
    labels = read_ssv2_labels(labels_path)
    path = ann / SPLIT_FILES[split]
    records = load_json(path)
    if not isinstance(records, list):
        raise SevereError(f"{path}: expected a JSON list of video records")
    entries: list[VideoEntry] = []
    for i, rec in enumerate(records):
        vid = str(json_field(rec, "id", path, i))
        template = json_field(rec, "template", path, i)
        key = template_key(str(template))
        if key not in labels:
            raise SevereError(f"{path}: record {i} (id {vid}): template {template!r} not in {labels_path.name}")
        if not vid.isdigit():
            raise SevereError(f"{path}: record {i}: video id must be digits, got {vid!r}")
        label = labels[key]
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise SevereError(f"{labels_path}: class id {label} of {key!r} outside 0..{(num_classes or 0) - 1}")
        rel = f"{VIDEO_DIR}/{int(vid)}.avi"
        entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries


def ssv2_webm_alternative(rel_path: str) -> str:
    """The official ``.webm`` name of a converted ``.avi`` entry (accepted as a fallback)."""
    return rel_path[: -len(".avi")] + ".webm" if rel_path.endswith(".avi") else rel_path
