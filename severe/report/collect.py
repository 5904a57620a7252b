"""Gather the ``results.json`` files under some directories into one cell per (initialisation, experiment).

An initialisation's row is keyed by its method id, extended with what its results' ``init`` record says when
that is not the benchmark's default: a backbone outside the R(2+1)D-18 family (``tubelet_contrast_i3d (i3d)``,
``scratch (r3d_18)``; a ViT method on its own ViT-B keeps its plain id, the report's Family column says ViT) and a pretraining dataset other than the method's main release
(``tubelet_contrast (mini-kinetics)``), so such runs never share a cell with the default ones.

A run that deviates from the SEVERE protocol carries the reasons (:func:`protocol_deviations`): config keys other
than the experiment's packaged config for its initialisation (command-line overrides, a changed epoch count ...)
and data left out (``DATA.ALLOW_MISSING`` exclusions, undecodable test videos); a cell has the union of its runs'.

Several seeds of the same cell are averaged (mean, sample std, n). Two records of the same
initialisation, experiment, mode and seed must agree (a copied run directory is counted once); if
they disagree, that is an error naming both files. Records of one experiment id must agree on factor
and direction, and known experiments must match the experiment table (:mod:`severe.experiments`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from severe.checkpoints.methods import METHODS
from severe.errors import SevereError
from severe.experiments import EXPERIMENTS
from severe.models.registry import BACKBONES
from severe.models.vit import backbone_kind
from severe.results import RESULTS_FILE, read_results

#: the backbone family of the benchmark's rows; other families are named in the row label
DEFAULT_FAMILY = "r2plus1d"


def row_key(init: str, arch: str | None = None, pretraining_data: str | None = None) -> str:
    """The row of an initialisation: ``init``, plus ``(arch, dataset)`` for a backbone outside the R(2+1)D-18
    family and a pretraining dataset other than the method's main release (see the module doc)."""
    parts = []
    spec = BACKBONES.get(arch) if arch else None
    own_vit = init in METHODS and arch == METHODS[init].arch and backbone_kind(arch) == "ViT"  # e.g. videomae's ViT-B
    if arch and (spec is None or spec.family != DEFAULT_FAMILY) and not own_vit:
        parts.append(arch)
    releases = METHODS[init].pretraining_data if init in METHODS else ()
    if pretraining_data and pretraining_data != (releases[0] if releases else None):
        parts.append(pretraining_data)
    return f"{init} ({', '.join(parts)})" if parts else init


@dataclass(frozen=True)
class Run:
    """One finished run's table-relevant fields."""

    path: Path
    init: str
    experiment_id: str
    mode: str
    factor: str
    seed: int
    value: float
    higher_is_better: bool
    arch: str | None = None  # the results' init.arch (None in records without one)
    pretraining_data: str | None = None  # the results' init.pretraining_data
    deviations: tuple[str, ...] = ()  # how the run deviates from the protocol (see protocol_deviations)

    @property
    def row(self) -> str:
        return row_key(self.init, self.arch, self.pretraining_data)


@dataclass(frozen=True)
class Cell:
    """A table cell: the mean over seeds, their sample std (None for one seed), the seeds and their files."""

    mean: float
    std: float | None = None
    n: int = 1
    seeds: tuple[int, ...] = ()
    paths: tuple[Path, ...] = ()
    deviations: tuple[str, ...] = ()  # protocol deviations of its runs (union)


@dataclass(frozen=True)
class ExperimentInfo:
    """What the records say about one (experiment id, mode) column."""

    experiment_id: str
    mode: str
    factor: str
    higher_is_better: bool


@dataclass
class Collection:
    runs: list[Run]
    cells: dict[tuple[str, str, str], Cell]  # (row key, experiment_id, mode) -> cell; see row_key
    experiments: dict[tuple[str, str], ExperimentInfo]  # (experiment_id, mode) -> info
    rows: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # row key -> (init, arch); absent: (key, None)

    @property
    def inits(self) -> list[str]:
        return sorted({k[0] for k in self.cells})


def _field(data: dict, path: Path, key: str, kind: type | tuple[type, ...]):
    node: object = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SevereError(f"{path}: results record has no '{key}'; re-run the experiment with this version of severe")
        node = node[part]
    if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):
        name = "a number" if isinstance(kind, tuple) else {str: "a string", int: "an integer", bool: "true or false"}[kind]
        raise SevereError(f"{path}: '{key}' must be {name}, got {node!r}")
    return node


def _optional_text(data: dict, path: Path, key: str) -> str | None:
    """``init.<key>`` of a results record: None when absent, else a non-empty string."""
    init = data.get("init")
    value = init.get(key) if isinstance(init, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SevereError(f"{path}: 'init.{key}' must be a non-empty string, got {value!r}")
    return value


#: config keys that do not change what a run computes (where it reads/writes, its seed, loader processes,
#: extra checkpoints, the architecture named in the row label), and the data switches whose effect (entries
#: actually left out) is reported from the record's data counts instead
PROTOCOL_FREE_KEYS = ("RUN.", "SEED", "DATA.NUM_WORKERS", "TRAIN.CHECKPOINT_EVERY", "MODEL.ARCH", "DATA.ALLOW_MISSING",
                      "DATA.ALLOW_TEST_FAILURES")


def protocol_deviations(data: dict) -> tuple[str, ...]:
    """How a results record deviates from the SEVERE protocol of its experiment: ``KEY value (protocol: value)``
    for every recorded config key that differs from the packaged config for its initialisation (known
    experiments only), and the entries its data record says were left out."""
    from severe.benchmark.reuse import flatten, protocol_config

    out = []
    config, init, exp = data.get("config"), data.get("init_method"), data.get("experiment_id")
    spec = EXPERIMENTS.get(exp) if isinstance(exp, str) else None
    # a run in another mode than its experiment's (e.g. the ucf101 config as a linear probe) has its own
    # column and no packaged config to compare with
    protocol = protocol_config(exp, init) if spec is not None and isinstance(init, str) and \
        data.get("mode") == spec.mode else None
    if isinstance(config, dict) and protocol is not None:
        got, want = flatten(config), flatten(protocol)
        for key in sorted(got.keys() & want.keys()):
            if not key.startswith(PROTOCOL_FREE_KEYS) and got[key] != want[key]:
                out.append(f"{key} {got[key]!r} (protocol: {want[key]!r})")
    record = data.get("data") if isinstance(data.get("data"), dict) else {}
    for split, counts in record.items():
        missing = counts.get("missing") if isinstance(counts, dict) else None
        if isinstance(missing, int) and not isinstance(missing, bool) and missing > 0:
            out.append(f"{missing} {split} entries left out for missing media (DATA.ALLOW_MISSING)")
    failures = record.get("test_failures")
    if isinstance(failures, int) and not isinstance(failures, bool) and failures > 0:
        out.append(f"{failures} undecodable test videos left out (DATA.ALLOW_TEST_FAILURES)")
    return tuple(out)


def read_run(path: Path) -> Run:
    """Read and validate one results file (see :func:`severe.results.read_results`)."""
    data = read_results(path)
    run = Run(
        path=Path(path),
        init=_field(data, path, "init_method", str),
        experiment_id=_field(data, path, "experiment_id", str),
        mode=_field(data, path, "mode", str),
        factor=_field(data, path, "factor", str),
        seed=_field(data, path, "seed", int),
        value=float(_field(data, path, "primary.value", (int, float))),
        higher_is_better=_field(data, path, "primary.higher_is_better", bool),
        arch=_optional_text(data, path, "arch"),
        pretraining_data=_optional_text(data, path, "pretraining_data"),
        deviations=protocol_deviations(data),
    )
    for key in ("init", "experiment_id", "mode", "factor"):
        if not getattr(run, key).strip():
            raise SevereError(f"{path}: '{key}' is empty")
    if not math.isfinite(run.value):
        raise SevereError(f"{path}: primary value {run.value} is not a finite number")
    spec = EXPERIMENTS.get(run.experiment_id)
    if spec is not None:
        if spec.factor != run.factor:
            raise SevereError(f"{path}: experiment '{run.experiment_id}' has factor '{run.factor}' but SEVERE groups it "
                              f"under '{spec.factor}'; fix EXPERIMENT.FACTOR or give the experiment another id")
        if spec.higher_is_better != run.higher_is_better:
            raise SevereError(f"{path}: experiment '{run.experiment_id}' says higher_is_better={run.higher_is_better}, "
                              f"but its SEVERE column is {'higher' if spec.higher_is_better else 'lower'}-is-better")
        if spec.higher_is_better and spec.decimals == 1 and not 0.0 <= run.value <= 100.0:
            raise SevereError(f"{path}: primary value {run.value} of '{run.experiment_id}' is not a percentage in [0, 100]")
        if not spec.higher_is_better and run.value < 0:
            raise SevereError(f"{path}: error {run.value} of '{run.experiment_id}' is negative")
    return run


def find_results(dirs: Iterable[str | Path]) -> list[Path]:
    """Every ``results.json`` under the directories (recursive, each file once, sorted)."""
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise SevereError("no results directory given")
    found: dict[Path, Path] = {}
    for d in dirs:
        if not d.exists():
            raise SevereError(f"{d}: no such directory")
        if d.is_file():
            candidates = [d] if d.name == RESULTS_FILE else []
            if not candidates:
                raise SevereError(f"{d}: not a directory (nor a {RESULTS_FILE})")
        else:
            candidates = d.rglob(RESULTS_FILE)
        for p in candidates:
            if p.is_file():
                found.setdefault(p.resolve(), p)
    if not found:
        raise SevereError(f"no {RESULTS_FILE} found under {', '.join(str(d) for d in dirs)}; "
                          f"point severe report at the run directories of finished experiments")
    return sorted(found.values())


def aggregate(runs: list[Run]) -> Collection:
    """Group runs into cells; check consistency between records of the same experiment and seed."""
    by_seed: dict[tuple[str, str, str, int], Run] = {}
    experiments: dict[tuple[str, str], tuple[ExperimentInfo, Path]] = {}
    for run in runs:
        info = ExperimentInfo(run.experiment_id, run.mode, run.factor, run.higher_is_better)
        for (exp, _), (other, other_path) in experiments.items():
            if exp == run.experiment_id and (other.factor, other.higher_is_better) != (info.factor, info.higher_is_better):
                raise SevereError(f"experiment '{exp}' is inconsistent: {other_path} says factor={other.factor}, "
                                  f"higher_is_better={other.higher_is_better} but {run.path} says factor={info.factor}, "
                                  f"higher_is_better={info.higher_is_better}")
        experiments.setdefault((run.experiment_id, run.mode), (info, run.path))
        key = (run.row, run.experiment_id, run.mode, run.seed)
        if key in by_seed:
            first = by_seed[key]
            if not math.isclose(first.value, run.value, rel_tol=0.0, abs_tol=1e-9):
                raise SevereError(f"conflicting results for init '{run.row}', experiment '{run.experiment_id}' "
                                  f"({run.mode}), seed {run.seed}: {first.value} in {first.path} vs {run.value} in "
                                  f"{run.path}; remove one of the two run directories")
            continue  # the same run reached twice (a copy): count it once
        by_seed[key] = run
    grouped: dict[tuple[str, str, str], list[Run]] = {}
    for (init, exp, mode, _), run in sorted(by_seed.items(), key=lambda kv: (kv[0][:3], kv[0][3])):
        grouped.setdefault((init, exp, mode), []).append(run)
    cells = {}
    for key, group in grouped.items():
        values = [r.value for r in group]
        cells[key] = Cell(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else None,
                          n=len(values), seeds=tuple(r.seed for r in group), paths=tuple(r.path for r in group),
                          deviations=tuple(dict.fromkeys(d for r in group for d in r.deviations)))
    rows = {run.row: (run.init, run.arch) for run in by_seed.values()}
    return Collection(runs=list(by_seed.values()), cells=cells,
                      experiments={k: info for k, (info, _) in experiments.items()}, rows=rows)


def collect(dirs: Iterable[str | Path]) -> Collection:
    """Read every results file under ``dirs`` and aggregate it (see the module doc)."""
    return aggregate([read_run(p) for p in find_results(dirs)])


def readable_results(dirs: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The results files under ``dirs`` that :func:`read_run` accepts, and the others with the reason."""
    good, skipped = [], []
    for p in find_results(dirs):
        try:
            read_run(p)
        except SevereError as e:
            skipped.append((p, str(e)))
        else:
            good.append(p)
    return good, skipped
