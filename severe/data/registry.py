"""The dataset table: every dataset id, its folder under the data root, class count, media kind and
the reader of its official annotation files (docs/datasets.md). One table, no if-chains; FineGym subsets
are declarative label filters of gym99 (docs/protocol.md §7).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from severe.data.entries import VideoEntry
from severe.data.readers import ava, charades, diving48, epic, gym, hmdb, kinetics, ssv2, ucf_like, ucfrep
from severe.errors import SevereError

SPLITS = ("train", "test")
ENV_DATA_ROOT = "SEVERE_DATA"

Reader = Callable[[Path, str], list[VideoEntry]]
LabelStrings = Callable[[Path, str], dict[str, str]]


@dataclass(frozen=True)
class MediaAlternative:
    """Another accepted on-disk form of an entry's media: ``transform(entry.path)`` of kind ``media``."""

    transform: Callable[[str], str]
    media: str


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``reader(dataset_dir, split)`` lists the official entries of split train/test.

    ``num_classes`` is the official C (None for UCFRep); ``media`` is "video" (a file per entry) or
    "frames" (a folder of JPEGs per entry); ``label_kind`` is "class" (single label), "multilabel"
    (Charades), "boxes" (AVA) or "count" (UCFRep); ``manifest_labels`` gives the manifest label text of
    structured datasets (docs/datasets.md §1.3); ``alternatives`` are other accepted media forms. Frame
    datasets also give their native ``frames_fps`` and the JPEG ``frame_pattern`` inside an entry's
    folder (``{name}`` = the folder name, ``{index}`` or ``{}`` = the 1-based frame number).
    """

    id: str
    folder: str
    num_classes: int | None
    media: str
    reader: Reader
    title: str
    test_split: str
    label_kind: str = "class"
    manifest_labels: LabelStrings | None = None
    alternatives: tuple[MediaAlternative, ...] = field(default_factory=tuple)
    frames_fps: float | None = None
    frame_pattern: str | None = None

    @property
    def single_label(self) -> bool:
        """True when every entry carries one class label (N-example subsets are defined)."""
        return self.label_kind == "class"


def _gym99(keep: gym.LabelFilter | None) -> Callable[..., list[VideoEntry]]:
    return partial(gym.read_gym_split, label_set="gym99", keep=keep)


def _spec(id: str, folder: str, num_classes: int | None, media: str, reader: Callable[..., list[VideoEntry]],
          title: str, test_split: str, **extra) -> DatasetSpec:
    return DatasetSpec(id=id, folder=folder, num_classes=num_classes, media=media,
                       reader=partial(reader, num_classes=num_classes),
                       title=title, test_split=test_split, **extra)


_UCF_FILES = {"train": "trainlist01.txt", "test": "testlist01.txt"}

DATASETS: dict[str, DatasetSpec] = {s.id: s for s in (
    _spec("ucf101", "ucf101", 101, "video",
          partial(ucf_like.read_ucf_like, list_dir="ucfTrainTestlist", split_files=_UCF_FILES, media_prefix="UCF-101"),
          "UCF101", "testlist01"),
    _spec("hmdb51", "hmdb51", 51, "video", partial(hmdb.read_hmdb_split, fold=1), "HMDB51", "split 1, flag 2"),
    _spec("ssv2", "smth-smth-v2", 174, "video", ssv2.read_ssv2_split, "Something-Something v2", "validation",
          alternatives=(MediaAlternative(ssv2.ssv2_webm_alternative, "video"),)),
    _spec("ntu60", "ntu60", 60, "video",
          partial(ucf_like.read_ucf_like, list_dir="ntu_60_cross_subject_TrainTestlist", split_files=_UCF_FILES,
                  media_prefix="videos"),
          "NTU RGB+D 60 (cross-subject)", "cross-subject test"),
    _spec("gym99", "gym", 99, "video", _gym99(None), "FineGym Gym99", "gym99_val"),
    _spec("gym288", "gym", 288, "video", partial(gym.read_gym_split, label_set="gym288"),
          "FineGym Gym288", "gym288_val"),
    _spec("gym_vault", "gym", 6, "video", _gym99(gym.LabelFilter(0, 5, 99)), "FineGym Vault", "from gym99_val"),
    _spec("gym_floor", "gym", 35, "video", _gym99(gym.LabelFilter(6, 40, 99)), "FineGym Floor", "from gym99_val"),
    _spec("gym_fx_s1", "gym", 11, "video", _gym99(gym.LabelFilter(6, 16, 99)), "FineGym FX-S1", "from gym99_val"),
    _spec("gym_ub_s1", "gym", 15, "video", _gym99(gym.LabelFilter(74, 88, 99)), "FineGym UB-S1", "from gym99_val"),
    _spec("k400", "kinetics-400", 400, "video", kinetics.read_kinetics_split, "Kinetics-400", "val_videofolder"),
    _spec("diving48", "diving48", 48, "video", diving48.read_diving48_split, "Diving48 V2", "Diving48_V2_test"),
    _spec("ek100", "epic-kitchens-100", 97, "video", epic.read_epic_split, "EPIC-Kitchens-100 verbs",
          "EPIC_100_validation",
          alternatives=(MediaAlternative(epic.epic_frames_alternative, "frames"),)),
    _spec("ava", "ava", 80, "frames", ava.read_ava_split, "AVA v2.2", "val",
          label_kind="boxes", manifest_labels=ava.ava_manifest_labels,
          frames_fps=30.0, frame_pattern="{name}_{index:06d}.jpg"),
    _spec("charades", "charades", 157, "frames", charades.read_charades_split, "Charades v1", "validation",
          label_kind="multilabel", manifest_labels=charades.charades_manifest_labels,
          frames_fps=24.0, frame_pattern="{name}-{index:06d}.jpg"),
    _spec("ucfrep", "ucfrep", None, "frames", ucfrep.read_ucfrep_split, "UCFRep (UCF101 repetition counting)",
          "val", label_kind="count", frames_fps=25.0, frame_pattern="image_{:05d}.jpg"),
)}

DATASET_IDS: tuple[str, ...] = tuple(DATASETS)


def get_dataset(dataset_id: str) -> DatasetSpec:
    """The spec of ``dataset_id`` (SevereError listing the known ids otherwise)."""
    try:
        return DATASETS[dataset_id]
    except KeyError:
        raise SevereError(f"unknown dataset {dataset_id!r}; known: {', '.join(DATASET_IDS)}") from None


def resolve_data_root(cli_value: str | None) -> Path:
    """The data root: the command-line value, else $SEVERE_DATA; it must be an existing folder."""
    value = cli_value or os.environ.get(ENV_DATA_ROOT)
    if not value:
        raise SevereError(f"no data root: pass --data-root DIR (severe data: --root DIR) or set {ENV_DATA_ROOT}")
    root = Path(value).expanduser()
    if not root.is_dir():
        source = "command line" if cli_value else f"${ENV_DATA_ROOT}"
        raise SevereError(f"data root {root} (from {source}) is not an existing folder")
    return root


def dataset_dir(data_root: Path, dataset_id: str) -> Path:
    """``<data_root>/<folder of dataset_id>``."""
    return Path(data_root) / get_dataset(dataset_id).folder


def read_split(dataset_id: str, data_root: Path, split: str) -> list[VideoEntry]:
    """The official entries of ``split`` ("train" or "test") with 0-based labels from annotation files.

    Entry keys are unique within the split (SevereError naming a duplicate otherwise).
    """
    if split not in SPLITS:
        raise SevereError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    spec = get_dataset(dataset_id)
    folder = dataset_dir(data_root, dataset_id)
    if not folder.is_dir():
        raise SevereError(f"dataset folder {folder} for {dataset_id} does not exist under the data root")
    entries = spec.reader(folder, split)
    seen: set[str] = set()
    for e in entries:
        if e.key in seen:
            raise SevereError(f"{dataset_id} {split}: duplicate entry {e.key} in the annotation list")
        seen.add(e.key)
    return entries


def manifest_lines(dataset_id: str, data_root: Path, split: str,
                   entries: list[VideoEntry] | None = None) -> list[tuple[str, str]]:
    """(relative path, label text) per entry (docs/datasets.md §1.3), in entry order (not sorted).

    The path is the entry key (EK-100: ``<video>#<narration_id>``); the label is the decimal class id,
    or for Charades the sorted class ids joined by commas, for AVA the number of ground-truth rows of
    the video, for UCFRep the repetition count.
    """
    spec = get_dataset(dataset_id)
    if entries is None:
        entries = read_split(dataset_id, data_root, split)
    if spec.manifest_labels is None:
        return [(e.key, str(e.label)) for e in entries]
    labels = spec.manifest_labels(dataset_dir(data_root, dataset_id), split)
    missing = [e.path for e in entries if e.path not in labels]
    if missing:
        raise SevereError(f"{dataset_id} {split}: no annotation for {missing[0]} (and {len(missing) - 1} more)")
    return [(e.key, labels[e.path]) for e in entries]
