"""The one method table: detection priority, report order and the recognition protocol rules live on its rows.

The rules are checked against an independent copy of the rule list (the oracle below), for every method x
dataset x mode x number of examples. Corrected after review (issue 12): no rule changes the EK-100 recipe (its
original configs ran every method at the recipe's own settings), and the scratch schedules apply to the full
training lists only (N-example scratch runs keep their config's plain schedule).
"""

from __future__ import annotations

import itertools

from severe.checkpoints.vit_methods import ViTMethodSpec
from severe.checkpoints.methods import (DETECTION_ORDER, INIT_ORDER, METHODS, PROTOCOL_RULES, RECIPES, SCRATCH,
                                       InitRule)
from severe.experiments import EXPERIMENT_LIST
from severe.recognition.config import MODES, flatten_settings, init_overrides
from severe.report.collect import Cell, Collection, ExperimentInfo
from severe.report.table import _column, _user_rows

# (method, settings, why, datasets, modes, num_examples): the protocol exceptions as listed before the move
_LONG = {"TRAIN.EPOCHS": 20, "TRAIN.MILESTONES": [10, 15, 18], "TRAIN.WEIGHT_DECAY": 1e-4}
ORACLE = [
    ("avid_cma", {"TRAIN.LR": 1e-3}, "AVID-CMA finetunes with lr 1e-3 (docs/protocol.md §3)", (), ("finetune",), ()),
    ("tclr", {"DATA.NUM_FRAMES": 32}, "TCLR's UCF101 linear probe uses 32-frame clips", ("ucf101",), ("linear",), ()),
    ("scratch", _LONG, "scratch schedule (ucf101/hmdb51/gym99/gym288)", ("ucf101", "hmdb51", "gym99", "gym288"),
     ("finetune",), (0,)),
    ("scratch", {"TRAIN.EPOCHS": 25, "TRAIN.MILESTONES": [12, 19, 22], "TRAIN.WEIGHT_DECAY": 1e-4},
     "scratch schedule (ssv2)", ("ssv2",), ("finetune",), (0,)),
    ("scratch", {"TRAIN.EPOCHS": 18, "TRAIN.MILESTONES": [7, 12, 16], "TRAIN.WEIGHT_DECAY": 1e-5},
     "scratch schedule (FineGym FX-S1/UB-S1)", ("gym_fx_s1", "gym_ub_s1"), ("finetune",), (0,)),
    ("tubelet_contrast", {"TRAIN.EPOCHS": 18, "TRAIN.MILESTONES": [8, 13, 16]}, "Tubelet-Contrast 1000-sample schedule",
     ("ucf101", "gym99"), ("finetune",), (1000,)),
    ("tubelet_contrast_i3d", {"DATA.CROP": 224, "DATA.TEST_RESIZE": 256, "TRAIN.EPOCHS": 17,
                              "TRAIN.MILESTONES": [6, 12, 15], "TRAIN.WEIGHT_DECAY": 1e-4, "MODEL.DROPOUT": 0.5},
     "Tubelet-Contrast I3D recipe (crop 224, 17 epochs, dropout 0.5)", ("ucf101", "hmdb51", "diving48"),
     ("finetune",), (0,)),
]


def oracle(method: str, dataset: str, mode: str, num_examples: int) -> list[tuple]:
    if dataset == "ek100":  # the EK-100 recipe has no per-method exception
        return []
    return [r for r in ORACLE if r[0] == method and mode in r[4] and (not r[3] or dataset in r[3])
            and (not r[5] or num_examples in r[5])]


def test_rules_reproduce_the_previous_rule_list_for_every_run():
    datasets = sorted({ds for r in ORACLE for ds in r[3]} | {"ntu60", "ek100", "diving48", "k400", "gym_vault",
                                                             "gym_floor", "unknown"})
    methods = [*INIT_ORDER, "not_a_method"]
    checked = 0
    for method, dataset, mode, n in itertools.product(methods, datasets, MODES, (0, 1000, 2000, 4000, 8000)):
        got = [(r.method, r.settings, r.why, r.datasets, r.modes, r.num_examples)
               for r in init_overrides(method, dataset, mode, n)]
        assert got == oracle(method, dataset, mode, n), (method, dataset, mode, n)
        checked += bool(got)
    assert checked > 20  # the combinations above do hit rules
    assert flatten_settings(init_overrides("scratch", "ssv2", "finetune", 0)) == \
        ["TRAIN.EPOCHS", "25", "TRAIN.MILESTONES", "[12, 19, 22]", "TRAIN.WEIGHT_DECAY", "0.0001"]
    assert init_overrides("avid_cma", "ek100", "finetune", 0) == []  # EK-100 keeps its base lr 0.0025
    assert flatten_settings(init_overrides("avid_cma", "ucf101", "finetune", 0)) == ["TRAIN.LR", "0.001"]
    assert init_overrides("scratch", "ucf101", "finetune", 1000) == []  # plain 1000-sample schedule


def test_every_rule_names_known_recipes():
    for method, rules in PROTOCOL_RULES.items():
        for r in rules:
            assert r.recipes and set(r.recipes) <= set(RECIPES), (method, r.why)


def test_rules_sit_on_the_row_of_their_method():
    assert set(PROTOCOL_RULES) == {SCRATCH, *METHODS}
    for method, rules in PROTOCOL_RULES.items():
        assert all(isinstance(r, InitRule) and r.method == method for r in rules), method
    assert sum(len(r) for r in PROTOCOL_RULES.values()) == len(ORACLE)


def test_detection_and_report_order_come_from_the_table():
    cnn = [m for m in DETECTION_ORDER if not isinstance(METHODS[m], ViTMethodSpec)]  # ViT rows: test_vit_methods.py
    assert cnn == ["tclr", "ctp", "tubelet_contrast", "tubelet_contrast_r3d", "tubelet_contrast_i3d",
                   "rspnet", "avid_cma", "selavi", "gdt", "moco", "pretext_contrast", "supervised"]
    # every method is found by its layout, or by another method whose layout it shares
    for m in METHODS.values():
        assert m.detect is not None or any(METHODS[o].detect is not None for o in m.also_accepts), m.name
        assert m.synthetic is not None, m.name
    assert tuple(m for m in INIT_ORDER if not isinstance(METHODS.get(m), ViTMethodSpec)) == (
        "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet", "avid_cma", "ctp",
        "tubelet_contrast", "tubelet_contrast_r3d", "tubelet_contrast_i3d", "tclr", "gdt")
    # the report orders its rows by the table, then unknown initialisations alphabetically
    inits = ["zzz_mine", "gdt", "aaa_mine", "scratch", "tclr", "supervised"]
    cells = {(i, "ucf101", "finetune"): Cell(mean=1.0) for i in inits}
    found = {("ucf101", "finetune"): _column("ucf101", "finetune", "domain", True, False)}
    collection = Collection([], cells, {("ucf101", "finetune"): ExperimentInfo("ucf101", "finetune", "domain", True)})
    assert [r.init for r in _user_rows(collection, found)] == ["scratch", "supervised", "tclr", "gdt", "aaa_mine",
                                                               "zzz_mine"]


def test_task_notes_name_known_tasks():
    runners = {e.runner for e in EXPERIMENT_LIST if e.runner}
    for m in METHODS.values():
        assert set(m.task_notes) <= runners, m.name
