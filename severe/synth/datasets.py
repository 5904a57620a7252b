"""Compose a synthetic data root: every dataset of the registry in its official layout (docs/datasets.md).

Annotation files follow the official formats byte for byte (see :mod:`severe.synth.annotations`);
media are small procedurally rendered videos / JPEG folders (:mod:`severe.synth.videos`) whose class
is carried by motion, so a model can learn them. Each dataset uses a *subset* of its official label
space (a handful of classes with their real ids and names where known); the registry's ``num_classes``
stays the official C. FineGym uses gym99 labels in 0-5, 6-16, 6-40 and 74-88 so that every derived
set (Vault, Floor, FX-S1, UB-S1) is non-empty, and gym288 has a class (138) only in its val list, as
the real lists do. AVA videos cover a few seconds after second 900 (not the full 15 minutes).

Output is deterministic: the same (size, seed) gives the same bytes, and each dataset folder draws
from its own generator seeded by (seed, folder name), so a subset of datasets gives the same files.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from severe.data.readers.ava import AvaBox
from severe.data.readers.charades import CharadesAction, CharadesAnnotation, charades_frame_labels
from severe.data.readers.epic import EpicSegment, epic_video_path
from severe.data.readers.ucfrep import UcfRepAnnotation
from severe.data.registry import DATASET_IDS, get_dataset
from severe.errors import SevereError
from severe.synth import annotations as ann
from severe.synth import videos

YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class SynthSize:
    """How big the synthetic datasets are."""

    height: int  # frame height; width follows each dataset's aspect ratio
    num_frames: int  # frames of a trimmed clip
    train_per_class: int  # training videos per class (segments for EK-100)
    test_per_class: int
    ava_videos: tuple[int, int]  # (train, val) videos
    ava_seconds: int  # seconds after 900 covered by AVA frames
    charades_videos: tuple[int, int]
    charades_frames: int
    ucfrep_cycle: tuple[int, int]  # cycle length range (frames)
    ucfrep_cycles: tuple[int, int]  # repetitions range
    ek_segment: tuple[int, int]  # EK-100 segment length range (frames)


SIZES: dict[str, SynthSize] = {
    "tiny": SynthSize(height=32, num_frames=32, train_per_class=3, test_per_class=2, ava_videos=(3, 2),
                      ava_seconds=6, charades_videos=(6, 4), charades_frames=72, ucfrep_cycle=(6, 12),
                      ucfrep_cycles=(2, 5), ek_segment=(20, 40)),
    "small": SynthSize(height=64, num_frames=64, train_per_class=12, test_per_class=4, ava_videos=(6, 3),
                       ava_seconds=10, charades_videos=(24, 8), charades_frames=144, ucfrep_cycle=(8, 20),
                       ucfrep_cycles=(2, 8), ek_segment=(40, 90)),
}


class _Folder:
    """Writing context of one dataset folder: its generator, frame sizes and media counters."""

    def __init__(self, root: Path, folder: str, size: SynthSize, seed: int) -> None:
        self.dir = root / folder
        self.size = size
        self.rng = np.random.default_rng([seed, zlib.crc32(folder.encode("utf-8"))])
        self.videos = 0
        self.frame_folders = 0
        self.images = 0
        self._names: set[str] = set()

    def seed(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))

    def hw(self, aspect: float) -> tuple[int, int]:
        h = self.size.height
        return h, max(8, 2 * round(h * aspect / 2))

    def video(self, rel: str, frames: np.ndarray, fps: float) -> None:
        videos.write_video(self.dir / rel, frames, fps)
        self.videos += 1

    def motion_video(self, rel: str, label: int, num_classes: int, fps: float, aspect: float) -> int:
        h, w = self.hw(aspect)
        frames = videos.render_motion_clip(label, num_classes, num_frames=self.size.num_frames, height=h,
                                           width=w, seed=self.seed())
        self.video(rel, frames, fps)
        return len(frames)

    def frames(self, rel: str, frames: np.ndarray, pattern: str) -> None:
        videos.write_frames(self.dir / rel, frames, pattern)
        self.frame_folders += 1
        self.images += len(frames)

    def unique(self, make: Callable[[], str]) -> str:
        """A fresh name from ``make`` (redrawn on collision)."""
        while True:
            name = make()
            if name not in self._names:
                self._names.add(name)
                return name

    def token(self, alphabet: str, n: int) -> str:
        return "".join(alphabet[i] for i in self.rng.integers(0, len(alphabet), size=n))

    def ytid(self) -> str:
        return self.unique(lambda: self.token(YT_ALPHABET, 11))

    def summary(self) -> dict:
        return {"videos": self.videos, "frame_folders": self.frame_folders, "images": self.images}


# ---- UCF101 ------------------------------------------------------------------------------------

UCF_CLASSES = (("ApplyEyeMakeup", "ApplyEyeMakeup"), ("Archery", "Archery"), ("BabyCrawling", "BabyCrawling"),
               ("HandstandPushups", "HandStandPushups"), ("JumpingJack", "JumpingJack"))


def _ucf101(f: _Folder) -> None:
    """``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` + ``ucfTrainTestlist`` (3 folds, CRLF lists)."""
    s, n = f.size, len(UCF_CLASSES)
    per_class: list[list[tuple[str, int]]] = []  # (relative name, group)
    for label, (folder, fname) in enumerate(UCF_CLASSES):
        items = []
        for j in range(s.test_per_class + s.train_per_class):
            group = 1 + j // 2 if j < s.test_per_class else 8 + (j - s.test_per_class) // 2
            rel = f"{folder}/v_{fname}_g{group:02d}_c{j % 2 + 1:02d}.avi"
            f.motion_video(f"UCF-101/{rel}", label, n, fps=25, aspect=4 / 3)
            items.append((rel, group))
        per_class.append(sorted(items))
    lists = f.dir / "ucfTrainTestlist"
    ann.write_class_index(lists / "classInd.txt", [c for c, _ in UCF_CLASSES], newline=ann.UCF_NEWLINE)
    for fold, test_groups in ((1, range(1, 8)), (2, range(8, 15)), (3, range(15, 22))):
        train = [(rel, label + 1) for label, items in enumerate(per_class) for rel, g in items if g not in test_groups]
        test = [(rel, None) for items in per_class for rel, g in items if g in test_groups]
        ann.write_ucf_list(lists / f"trainlist0{fold}.txt", train)
        ann.write_ucf_list(lists / f"testlist0{fold}.txt", test)


# ---- HMDB51 ------------------------------------------------------------------------------------

# code-point order of the class names is the label order; "kick" < "kick_ball" although the split
# *file* names sort the other way ("kick_ball_test..." < "kick_test...")
HMDB_CLASSES = ("brush_hair", "cartwheel", "kick", "kick_ball")
_HMDB_MOVIES = ("April_09", "Veoh_Alpha_Dog", "Glory", "THE_PROTECTOR", "likebeckam", "Faith_Rewarded")


def _hmdb51(f: _Folder) -> None:
    """``videos/<class>/<name>.avi`` + ``splits/<class>_test_split{1,2,3}.txt`` and an editor swap file."""
    s, n = f.size, len(HMDB_CLASSES)
    per_video = s.train_per_class + s.test_per_class + 1  # one unused (flag 0) video per class
    for label, cls in enumerate(HMDB_CLASSES):
        def make(cls: str = cls) -> str:
            movie = _HMDB_MOVIES[int(f.rng.integers(len(_HMDB_MOVIES)))]
            attrs = "_".join(str(f.rng.choice(opts)) for opts in
                             (("f", "h", "u"), ("cm", "nm"), ("np1", "np2"), ("ba", "fr", "le", "ri"), ("bad", "goo", "med")))
            return f"{movie}_{cls}_{attrs}_{int(f.rng.integers(0, 9))}.avi"
        names = sorted(f.unique(make) for _ in range(per_video))
        for name in names:
            f.motion_video(f"videos/{cls}/{name}", label, n, fps=30, aspect=4 / 3)
        order = [int(i) for i in f.rng.permutation(per_video)]
        for fold in (1, 2, 3):
            rot = order[(fold - 1) * s.test_per_class:] + order[:(fold - 1) * s.test_per_class]
            flags = {i: 1 for i in rot[:s.train_per_class]}
            flags.update({i: 2 for i in rot[s.train_per_class:s.train_per_class + s.test_per_class]})
            ann.write_hmdb_split(f.dir / "splits" / f"{cls}_test_split{fold}.txt",
                                 [(name, flags.get(i, 0)) for i, name in enumerate(names)])
    swap = b"b0VIM 8.2\x00\x00\x10\x00\xff\xfe" + b"\x00" * 32 + b"hug_test_split1.txt\x00"
    (f.dir / "splits" / ".hug_test_split1.txt.swp").write_bytes(swap)


# ---- Something-Something v2 --------------------------------------------------------------------

SSV2_TEMPLATES = ("Approaching [something] with your camera", "Attaching [something] to [something]",
                  "Closing [something]", "Moving [something] and [something] closer to each other",
                  "Putting [something] on a surface")
_SSV2_OBJECTS = ("a coin", "a cup", "pen", "the lid", "a book", "remote control", "keys", "a box")


def _ssv2(f: _Folder) -> None:
    """``something-something-v2-videos_avi/<id>.avi`` + the four annotation JSON files."""
    s, n = f.size, len(SSV2_TEMPLATES)
    adir = f.dir / "something-something-v2-annotations"
    labels = {t.replace("[", "").replace("]", ""): i for i, t in enumerate(SSV2_TEMPLATES)}
    ann.write_ssv2_labels(adir / "something-something-v2-labels.json", labels)

    def record(label: int) -> dict:
        vid = f.unique(lambda: str(int(f.rng.integers(1, 220848))))
        template = SSV2_TEMPLATES[label]
        objs = [str(f.rng.choice(_SSV2_OBJECTS)) for _ in range(template.count("[something]"))]
        text = template
        for o in objs:
            text = text.replace("[something]", o, 1)
        f.motion_video(f"something-something-v2-videos_avi/{vid}.avi", label, n, fps=12, aspect=3 / 2)
        return {"id": vid, "label": text[0].lower() + text[1:], "template": template, "placeholders": objs}

    for name, per in (("train", s.train_per_class), ("validation", s.test_per_class)):
        records = [record(label) for label in range(n) for _ in range(per)]
        order = f.rng.permutation(len(records))
        ann.write_ssv2_split(adir / f"something-something-v2-{name}.json", [records[int(i)] for i in order])
    test = [{"id": record(int(f.rng.integers(n)))["id"]} for _ in range(2)]
    ann.write_ssv2_split(adir / "something-something-v2-test.json", test)


# ---- NTU-60 ------------------------------------------------------------------------------------

NTU_CLASSES = (("drink_water", 1), ("eat_meal_snack", 2), ("brushing_teeth", 3), ("brushing_hair", 4),
               ("touch_back__backache_", 46))
NTU_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU_TEST_SUBJECTS = (3, 6, 7, 10, 11, 12, 20, 21, 22, 23, 24, 26, 29, 30, 32, 33, 36, 37, 39, 40)


def _ntu60(f: _Folder) -> None:
    """``videos/<class_folder>/SsssCcccPpppRrrrAaaa_rgb.avi`` + cross-subject classInd/train/test lists."""
    s, n = f.size, len(NTU_CLASSES)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for label, (folder, action) in enumerate(NTU_CLASSES):
        for split, per, subjects in (("train", s.train_per_class, NTU_TRAIN_SUBJECTS),
                                     ("test", s.test_per_class, NTU_TEST_SUBJECTS)):
            for _ in range(per):
                name = f.unique(lambda: f"S{int(f.rng.integers(1, 18)):03d}C{int(f.rng.integers(1, 4)):03d}"
                                        f"P{int(f.rng.choice(subjects)):03d}R{int(f.rng.integers(1, 3)):03d}"
                                        f"A{action:03d}_rgb.avi")
                f.motion_video(f"videos/{folder}/{name}", label, n, fps=30, aspect=16 / 9)
                lists[split].append(f"{folder}/{name}")
    ldir = f.dir / "ntu_60_cross_subject_TrainTestlist"
    ann.write_class_index(ldir / "classInd.txt", [c for c, _ in NTU_CLASSES])
    ann.write_ntu_list(ldir / "trainlist01.txt", lists["train"])
    ann.write_ntu_list(ldir / "testlist01.txt", lists["test"])


# ---- FineGym -----------------------------------------------------------------------------------

# gym99 labels used: Vault 0-5, Floor 6-40 (FX-S1 6-16), UB-S1 74-88; and their gym288 ids
GYM99_LABELS = (0, 3, 7, 12, 20, 35, 75, 80)
GYM288_OF_GYM99 = {0: 0, 3: 5, 7: 21, 12: 30, 20: 55, 35: 97, 75: 231, 80: 240}
GYM288_VAL_ONLY = 138  # absent from the real gym288 train list as well


def _gym_event(gym99_label: int) -> int:
    """FineGym event type (1 vault, 2 floor, 3 beam, 4 uneven bars) of a gym99 label."""
    return 1 if gym99_label <= 5 else 2 if gym99_label <= 40 else 3 if gym99_label <= 73 else 4


def _gym(f: _Folder) -> None:
    """``videos/<clip>.avi`` + gym99/gym288 lists (with ``_org`` variants) and the two JSON files."""
    s = f.size
    motions = len(GYM99_LABELS) + 1
    yt_pool = [f.ytid() for _ in range(3)]
    events: dict[str, dict] = {}
    tree: dict[str, dict] = {}

    def clip(motion: int, gym99_label: int | None) -> str:
        def make() -> str:
            yt = yt_pool[int(f.rng.integers(len(yt_pool)))]
            e0 = int(f.rng.integers(100, 3000))
            a0 = int(f.rng.integers(0, 40))
            return f"{yt}_E_{e0:06d}_{e0 + 60:06d}_A_{a0:04d}_{a0 + int(f.rng.integers(1, 6)):04d}"
        name = f.unique(make)
        f.motion_video(f"videos/{name}.avi", motion, motions, fps=25, aspect=16 / 9)
        yt, _, e0, e1, _, a0, a1 = name.rsplit("_", 6)
        event_id, action_id = f"{yt}_E_{e0}_{e1}", f"A_{a0}_{a1}"
        seg = {"stages": 1, "timestamps": [[float(int(a0)), float(int(a1))]]}
        events.setdefault(event_id, {})[action_id] = seg
        entry = tree.setdefault(yt, {}).setdefault(f"E_{e0}_{e1}", {
            "event": _gym_event(gym99_label if gym99_label is not None else 41),
            "segments": {}, "timestamps": [[float(int(e0)), float(int(e1))]]})
        entry["segments"][action_id] = seg
        return name

    rows: dict[str, list[tuple[str, int]]] = {"gym99_train": [], "gym99_val": [], "gym288_train": [], "gym288_val": []}
    for motion, label in enumerate(GYM99_LABELS):
        for split, per in (("train", s.train_per_class), ("val", s.test_per_class)):
            for _ in range(per):
                name = clip(motion, label)
                rows[f"gym99_{split}"].append((name, label))
                rows[f"gym288_{split}"].append((name, GYM288_OF_GYM99[label]))
    for _ in range(s.test_per_class):
        rows["gym288_val"].append((clip(len(GYM99_LABELS), None), GYM288_VAL_ONLY))
    adir = f.dir / "annotations"
    for stem, items in rows.items():
        items = [items[int(i)] for i in f.rng.permutation(len(items))]
        ann.write_gym_list(adir / f"{stem}.txt", items, org=False)
        ann.write_gym_list(adir / f"{stem}_org.txt", items, org=True)
    ann.write_json(adir / "event_annotation.json", events)
    ann.write_json(adir / "annotation.json", tree)


# ---- Kinetics-400 ------------------------------------------------------------------------------

K400_CLASSES = ("abseiling", "air_drumming", "answering_questions", "applauding", "applying_cream")


def _k400(f: _Folder) -> None:
    """``VideoData/<class>/<ytid>_<start>_<end>.avi`` + ``labels/{train,val}_videofolder.txt``."""
    s, n = f.size, len(K400_CLASSES)
    for split, per in (("train", s.train_per_class), ("val", s.test_per_class)):
        rows = []
        for label, cls in enumerate(K400_CLASSES):
            for _ in range(per):
                start = int(f.rng.integers(0, 300))
                clip_name = f"{cls}/{f.ytid()}_{start:06d}_{start + 10:06d}"
                frames = f.motion_video(f"VideoData/{clip_name}.avi", label, n, fps=30, aspect=4 / 3)
                rows.append((clip_name, frames, label))
        ann.write_videofolder_list(f.dir / "labels" / f"{split}_videofolder.txt", rows)


# ---- Diving48 ----------------------------------------------------------------------------------

DIVING48_LABELS = (0, 7, 18, 29, 31)  # class 30 occurs in neither official split


def diving48_vocabulary() -> list[list[str]]:
    """48 distinct (takeoff, somersaults, twists, flight) entries, the first as in the official file."""
    takeoffs, soms = ("Back", "Forward", "Inward", "Reward"), ("15som", "20som", "25som", "30som", "35som", "45som")
    twists, flights = ("05Twis", "NoTwis", "10Twis", "15Twis"), ("FREE", "PIKE", "TUCK")
    combos = [[t, so, tw, fl] for t in takeoffs for so in soms for tw in twists for fl in flights]
    return combos[:48]


def _diving48(f: _Folder) -> None:
    """``videos/<vid_name>.avi`` + ``labels/Diving48_V2_{train,test}.json`` and ``Diving48_vocab.json``."""
    s, n = f.size, len(DIVING48_LABELS)
    for split, per in (("train", s.train_per_class), ("test", s.test_per_class)):
        records = []
        for motion, label in enumerate(DIVING48_LABELS):
            for _ in range(per):
                name = f.unique(lambda: f"{f.token(YT_ALPHABET, 11)}_{int(f.rng.integers(0, 100000)):05d}")
                frames = f.motion_video(f"videos/{name}.avi", motion, n, fps=30, aspect=16 / 9)
                records.append({"vid_name": name, "label": label, "start_frame": 0, "end_frame": frames})
        ann.write_json(f.dir / "labels" / f"Diving48_V2_{split}.json",
                       [records[int(i)] for i in f.rng.permutation(len(records))])
    ann.write_json(f.dir / "labels" / "Diving48_vocab.json", diving48_vocabulary())


# ---- EPIC-Kitchens-100 -------------------------------------------------------------------------

EK_VERBS = ((0, "take", ("take", "grab", "pick-up"), "retrieve"), (1, "put", ("put", "put-down", "place"), "leave"),
            (2, "wash", ("wash", "rinse"), "clean"), (3, "open", ("open", "unclose"), "access"),
            (4, "close", ("close", "shut"), "block"))
EK_NOUNS = ((0, "tap", ("tap", "tap:water"), "appliances"), (1, "plate", ("plate",), "crockery"),
            (2, "cupboard", ("cupboard",), "furniture"), (3, "door", ("door",), "furniture"),
            (4, "knife", ("knife",), "cutlery"))
# (participant, video, fps): EPIC-55 videos ~59.94 fps, extension videos 50 fps
EK_VIDEOS = {"train": (("P01", "P01_01", 59.94), ("P01", "P01_101", 50.0)), "test": (("P02", "P02_01", 60.0),)}


def _ek100(f: _Folder) -> None:
    """Untrimmed ``EPIC-KITCHENS/<P>/videos/<video>.MP4`` made of verb segments + the five csv files."""
    s, n = f.size, len(EK_VERBS)
    h, w = f.hw(16 / 9)
    adir = f.dir / "annotations"
    info = []
    for split, per, name in (("train", s.train_per_class, "EPIC_100_train.csv"),
                             ("test", s.test_per_class, "EPIC_100_validation.csv")):
        verbs = [int(v) for v in f.rng.permutation(np.repeat(np.arange(n), per))]
        vids = EK_VIDEOS[split]
        segments: list[EpicSegment] = []
        narration_times: list[float] = []
        for k, (pid, vid, fps) in enumerate(vids):
            pieces, cursor = [], 0
            for idx, verb in enumerate(verbs[k::len(vids)]):
                length = int(f.rng.integers(s.ek_segment[0], s.ek_segment[1] + 1))
                pieces.append(videos.render_motion_clip(verb, n, num_frames=length, height=h, width=w, seed=f.seed()))
                nouns = [EK_NOUNS[int(i)] for i in f.rng.choice(len(EK_NOUNS), size=1 + int(f.rng.random() < 0.3),
                                                                replace=False)]
                key = EK_VERBS[verb][1]
                narration = f"{key} {nouns[0][1]}" + (f" in {nouns[1][1]}" if len(nouns) > 1 else "")
                start, stop = round(cursor / fps, 2), round((cursor + length) / fps, 2)
                segments.append(EpicSegment(
                    narration_id=f"{vid}_{idx}", participant_id=pid, video_id=vid, start_sec=start, stop_sec=stop,
                    start_frame=cursor + 1, stop_frame=cursor + length, narration=narration, verb=key,
                    verb_class=verb, noun=nouns[0][1], noun_class=nouns[0][0],
                    all_nouns=tuple(x[1] for x in nouns), all_noun_classes=tuple(x[0] for x in nouns)))
                narration_times.append(max(0.0, start - 0.25))
                cursor += length
            f.video(epic_video_path(pid, vid), np.concatenate(pieces), fps)
            info.append((vid, round(cursor / fps, 6), fps, f"{w}x{h}"))
        ann.write_epic_csv(adir / name, segments, narration_times)
    ann.write_epic_classes(adir / "EPIC_100_verb_classes.csv", EK_VERBS)
    ann.write_epic_classes(adir / "EPIC_100_noun_classes.csv", EK_NOUNS)
    ann.write_epic_video_info(adir / "EPIC_100_video_info.csv", info)


# ---- AVA ---------------------------------------------------------------------------------------

# (action id, name, type); id 2 is not in the 60-class evaluation map (still appears in ground truth)
AVA_ACTIONS = ((1, "bend/bow (at the waist)", "PERSON_MOVEMENT"), (2, "crawl", None),
               (11, "sit", "PERSON_MOVEMENT"), (12, "stand", "PERSON_MOVEMENT"), (14, "walk", "PERSON_MOVEMENT"),
               (17, "carry/hold (an object)", "OBJECT_MANIPULATION"),
               (79, "talk to (e.g., self, a person, a group)", "PERSON_INTERACTION"),
               (80, "watch (a person)", "PERSON_INTERACTION"))
AVA_ACTORS_PER_VIDEO = 3


def _jitter(f: _Folder, box: tuple[float, ...], amount: float = 0.01) -> tuple[float, float, float, float]:
    b = np.clip(np.asarray(box) + f.rng.uniform(-amount, amount, size=4), 0.0, 1.0)
    x1, x2 = sorted((round(float(b[0]), 3), round(float(b[2]), 3)))
    y1, y2 = sorted((round(float(b[1]), 3), round(float(b[3]), 3)))
    return (x1, y1, x2, y2)


def _ava(f: _Folder) -> None:
    """``frames/<id>/<id>_%06d.jpg`` (30 fps from second 900), frame lists, ground truth, detector boxes,
    excluded timestamps and the v2.2 label map."""
    s = f.size
    h, w = f.hw(16 / 9)
    adir = f.dir / "annotations"
    num_frames = s.ava_seconds * 30
    keyframes = list(range(902, 900 + s.ava_seconds - 1))
    for split, count, (gt_name, det_name, exc_name, fl_name) in (
            ("train", s.ava_videos[0], ("ava_train_v2.2.csv", "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv",
                                        "ava_train_excluded_timestamps_v2.2.csv", "train.csv")),
            ("val", s.ava_videos[1], ("ava_val_v2.2.csv", "ava_detection_val_boxes_and_labels.csv",
                                      "ava_val_excluded_timestamps_v2.2.csv", "val.csv"))):
        gt: list[AvaBox] = []
        det: list[AvaBox] = []
        frame_lists = []
        vids = sorted(f.ytid() for _ in range(count))
        excluded = [(vids[0], keyframes[1])]
        actor = 0
        for vid in vids:
            acts = []
            for _ in range(AVA_ACTORS_PER_VIDEO):
                ids = {actor % len(AVA_ACTIONS)} | ({(actor + 4) % len(AVA_ACTIONS)} if actor % 2 == 0 else set())
                acts.append(sorted(ids))
                actor += 1
            frames, boxes = videos.render_actors_clip(acts, len(AVA_ACTIONS), num_frames=num_frames, height=h,
                                                      width=w, seed=f.seed())
            names = [f"{vid}/{vid}_{i:06d}.jpg" for i in range(1, num_frames + 1)]
            f.frames(f"frames/{vid}", frames, f"{vid}_{{:06d}}.jpg")
            frame_lists.append((vid, names, None))
            for ts in keyframes:
                fi = (ts - 900) * 30
                for person, idxs in enumerate(acts):
                    box = tuple(round(float(v), 3) for v in boxes[fi, person])
                    if (vid, ts) not in excluded:
                        gt += [AvaBox(vid, ts, box, AVA_ACTIONS[i][0], person_id=person) for i in idxs]
                    dbox = _jitter(f, box)
                    score = round(float(f.rng.uniform(0.9, 1.0)), 6)
                    if split == "train":
                        det += [AvaBox(vid, ts, dbox, AVA_ACTIONS[i][0], score=score) for i in idxs]
                    else:
                        det.append(AvaBox(vid, ts, dbox, None, score=score))
                x1, y1 = (round(float(v), 3) for v in f.rng.uniform(0.0, 0.5, size=2))
                fake = (x1, y1, round(x1 + 0.3, 3), round(y1 + 0.4, 3))
                det.append(AvaBox(vid, ts, fake, -1 if split == "train" else None,
                                  score=round(float(f.rng.uniform(0.2, 0.85)), 6)))
        ann.write_ava_ground_truth(adir / gt_name, gt)
        ann.write_ava_detections(adir / "person_box_67091280_iou90" / det_name, det)
        ann.write_ava_excluded(adir / exc_name, excluded)
        ann.write_frame_list(f.dir / "frame_lists" / fl_name, frame_lists)
    ann.write_ava_label_map(adir / "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
                            {a: name for a, name, kind in AVA_ACTIONS if kind},
                            label_types={a: kind for a, _, kind in AVA_ACTIONS if kind})


# ---- Charades ----------------------------------------------------------------------------------

CHARADES_CLASSES = {0: "Holding some clothes", 1: "Putting clothes somewhere", 2: "Taking some clothes from somewhere",
                    8: "Opening a door", 63: "Synthetic action 063", 147: "Synthetic action 147"}
_CHARADES_SCENES = ("Kitchen", "Bedroom", "Living room", "Hallway", "Bathroom")


def _charades(f: _Folder) -> None:
    """``Charades_v1_rgb/<id>/<id>-%06d.jpg`` (24 fps), frame lists with per-frame labels, official csv and
    class list. The first video of each split has no action; one per split is portrait."""
    s = f.size
    classes = list(CHARADES_CLASSES)
    T = s.charades_frames
    rotate = 0
    for split, count, fl_name, csv_name in (("train", s.charades_videos[0], "train.csv", "Charades_v1_train.csv"),
                                            ("val", s.charades_videos[1], "val.csv", "Charades_v1_test.csv")):
        rows, lists = [], []
        for k in range(count):
            vid = f.unique(lambda: f.token(ID_ALPHABET, 5))
            actions = []
            for _ in range(0 if k == 0 else 1 + int(f.rng.integers(0, 3))):
                cls = classes[rotate % len(classes)]
                rotate += 1
                a = int(f.rng.integers(0, T - 12))
                b = int(f.rng.integers(a + 8, T + 24))  # may end after the video, as real annotations do
                actions.append(CharadesAction(cls, round(a / 24.0, 2), round(b / 24.0, 2)))
            labels = charades_frame_labels(actions, T)
            segments = []
            for cls in sorted({c for fl in labels for c in fl}):
                on = [i for i, fl in enumerate(labels) if cls in fl]
                segments.append((classes.index(cls), on[0], on[-1]))
            hh, ww = f.hw(4 / 3)
            if k == 1:
                hh, ww = ww, hh  # portrait
            frames = videos.render_multilabel_clip(segments, len(classes), num_frames=T, height=hh, width=ww,
                                                   seed=f.seed())
            f.frames(f"Charades_v1_rgb/{vid}", frames, f"{vid}-{{:06d}}.jpg")
            lists.append((vid, [f"{vid}/{vid}-{i:06d}.jpg" for i in range(1, T + 1)], labels))
            rows.append(CharadesAnnotation(
                id=vid, subject=f"{f.token(ID_ALPHABET[:26], 2)}{int(f.rng.integers(10, 99))}",
                scene=str(f.rng.choice(_CHARADES_SCENES)), quality=str(int(f.rng.integers(1, 8))),
                relevance=str(int(f.rng.integers(1, 8))), verified="Yes",
                script="A person walks in, picks up the clothes, then opens a door.", objects=("clothes", "door"),
                descriptions="A person holds some clothes; they open the door, and leave.",
                actions=tuple(actions), length=round(T / 24.0, 2)))
        ann.write_frame_list(f.dir / "frame_lists" / fl_name, lists)
        ann.write_charades_csv(f.dir / csv_name, rows)
    ann.write_charades_classes(f.dir / "Charades_v1_classes.txt", CHARADES_CLASSES)


# ---- UCFRep ------------------------------------------------------------------------------------

UCFREP_CLASSES = ("BabyCrawling", "HandStandPushups", "JumpingJack")


def _cycle_estimates(bounds: list[int], start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (next, previous) cycle length minus one over [start, end]; -1 where the cycle
    would leave the segment."""
    nxt = np.full(end - start + 1, -1, dtype=np.int64)
    pre = np.full(end - start + 1, -1, dtype=np.int64)
    for j, frame in enumerate(range(start, end + 1)):
        i = max(k for k in range(len(bounds) - 1) if bounds[k] <= frame) if frame < bounds[-1] else len(bounds) - 2
        length = bounds[i + 1] - bounds[i]
        if frame + length - 1 <= end:
            nxt[j] = length - 1
        if frame - length + 1 >= start:
            pre[j] = length - 1
    return nxt, pre


def _ucfrep(f: _Folder) -> None:
    """``imgs/{train,val}/<Class>/<video>/image_%05d.jpg`` + ``annotations/{train,val}/<video>.mat`` and
    ``annotations/repetition_label/<Class>.txt`` (val estimates all -1, as in the original)."""
    s = f.size
    h, w = f.hw(4 / 3)
    by_class: dict[str, dict[str, list[int]]] = {c: {} for c in UCFREP_CLASSES}
    group = 0
    for split, per in (("train", s.train_per_class), ("val", s.test_per_class)):
        for cls in UCFREP_CLASSES:
            for j in range(per):
                group += 1
                video = f"v_{cls}_g{group:02d}_c{j % 3 + 1:02d}"
                start = int(f.rng.integers(1, 7))
                bounds = [start]
                for _ in range(int(f.rng.integers(s.ucfrep_cycles[0], s.ucfrep_cycles[1] + 1))):
                    bounds.append(bounds[-1] + int(f.rng.integers(s.ucfrep_cycle[0], s.ucfrep_cycle[1] + 1)))
                end = bounds[-1]
                total = end + int(f.rng.integers(0, 7))
                frames = videos.render_oscillation_clip([b - 1 for b in bounds], num_frames=total, height=h,
                                                        width=w, seed=f.seed())
                f.frames(f"imgs/{split}/{cls}/{video}", frames, "image_{:05d}.jpg")
                nxt, pre = _cycle_estimates(bounds, start, end)
                if split == "val":
                    nxt, pre = np.full_like(nxt, -1), np.full_like(pre, -1)
                ann.write_ucfrep_mat(f.dir / "annotations" / split / f"{video}.mat", UcfRepAnnotation(
                    video=video, class_name=cls, duration=end - start + 1, start_frame=start, end_frame=end,
                    temporal_bound=tuple(bounds), offset_next_estimate=nxt, offset_pre_estimate=pre))
                by_class[cls][video] = bounds
    for cls, vids in by_class.items():
        ann.write_repetition_labels(f.dir / "annotations" / "repetition_label" / f"{cls}.txt", vids)


# ---- composer ----------------------------------------------------------------------------------

FOLDER_WRITERS: dict[str, Callable[[_Folder], None]] = {
    "ucf101": _ucf101, "hmdb51": _hmdb51, "smth-smth-v2": _ssv2, "ntu60": _ntu60, "gym": _gym,
    "kinetics-400": _k400, "diving48": _diving48, "epic-kitchens-100": _ek100, "ava": _ava,
    "charades": _charades, "ucfrep": _ucfrep,
}


def folders_for(datasets: list[str] | None) -> list[str]:
    """Dataset folders to write for the given dataset ids (all when None), in registry order."""
    ids = list(DATASET_IDS) if datasets is None else datasets
    folders = [get_dataset(d).folder for d in ids]  # SevereError for an unknown id
    return [f for f in FOLDER_WRITERS if f in folders]


def write_synthetic_root(out: Path, size: str | SynthSize = "tiny", seed: int = 0,
                         datasets: list[str] | None = None) -> dict:
    """Write synthetic datasets under ``out`` in their official layouts; returns a summary dict.

    ``size``: a name of :data:`SIZES` or a :class:`SynthSize` (the demo's own). ``datasets`` are dataset
    ids (default: all); a FineGym id writes the shared ``gym`` folder. Refuses to write into a dataset
    folder that already has content.
    """
    if not isinstance(size, SynthSize) and size not in SIZES:
        raise SevereError(f"unknown synthetic size {size!r}; use one of {', '.join(SIZES)}")
    dims = size if isinstance(size, SynthSize) else SIZES[size]
    out = Path(out)
    folders = folders_for(datasets)
    for folder in folders:
        target = out / folder
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise SevereError(f"{target} already exists and is not empty; choose an empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary: dict[str, dict] = {}
    for folder in folders:
        ctx = _Folder(out, folder, dims, seed)
        FOLDER_WRITERS[folder](ctx)
        summary[folder] = {**ctx.summary(), "datasets": [d for d in DATASET_IDS if get_dataset(d).folder == folder]}
    return {"out": str(out), "size": size if isinstance(size, str) else "custom", "seed": seed, "folders": summary,
            "seconds": round(time.perf_counter() - t0, 3)}
