"""Suite-wide settings and shared fixtures.

* One torch thread per test process, and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = 1 for the processes the
  tests start (tiny tensors run far slower with more threads on a busy 2-core machine; results do not
  depend on it). The cores are used by pytest-xdist workers instead (``python -m pytest -q -n 2``,
  ``--dist loadgroup``): tests marked ``slow`` are collected first so that the workers share them, and the
  tests that use a module-scoped fixture of their own module form one ``xdist_group`` (one worker builds it).
* ``synthetic_root``: one tiny synthetic data root with every dataset, written once per session (per xdist
  worker) by ``severe synth``. It is shared and read-only: a test that changes data copies what it changes into its
  own ``tmp_path`` first (checked when the session ends).
* ``synthetic_checkpoint``: original-format synthetic pretrained checkpoints, one file per
  (method, seed, name), written once per session.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

try:
    from _pytest.nodeid import NodeId  # pytest >= 9.2
except ImportError:  # pragma: no cover - older pytest: xdist sets the suffix itself
    NodeId = None

from severe import cli  # noqa: E402
from severe.synth.checkpoints import write_synthetic_checkpoint  # noqa: E402

torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--every-backbone", action="store_true",
                     help="run the per-task end-to-end tests for every registered backbone, not one per family")


def _module_fixture_users(item) -> bool:
    """Whether the test uses a module-scoped fixture defined in its own module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    module = item.nodeid.split("::")[0]
    return any(defs and defs[-1].scope == "module" and defs[-1].baseid == module
               for defs in (info.name2fixturedefs.get(name) for name in info.names_closure))


def _xdist_group(config, item, group: str) -> None:
    """``xdist_group(group)``: in an xdist worker with ``--dist loadgroup`` xdist appends ``@group`` to the node
    id and the tests with one suffix run on one worker. pytest >= 9.2 keeps the id in ``_id``, where
    pytest-xdist 3.8's ``item._nodeid = ...`` has no effect, so the suffix is set here (xdist reads the last
    ``@`` part)."""
    item.add_marker(pytest.mark.xdist_group(group))
    if (getattr(config.option, "loadgroup", False) and NodeId is not None
            and isinstance(getattr(item, "_id", None), NodeId) and "@" not in item.nodeid):
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    # slow tests first (stable order otherwise): with ``-n 2`` they start early on both workers, and the many
    # short tests fill the end, so neither worker is left alone with a long test
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    # the tests sharing a module-scoped fixture of their module run on one worker: the fixture is built once
    for item in items:
        if _module_fixture_users(item):
            _xdist_group(config, item, item.nodeid.split("::")[0])
    if config.getoption("--every-backbone"):
        return
    skip = pytest.mark.skip(reason="one backbone per family by default; --every-backbone runs this one")
    for item in items:
        if item.get_closest_marker("every_backbone"):
            item.add_marker(skip)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """``severe synth --size tiny --seed 0``: every dataset folder, read-only for the tests."""
    root = tmp_path_factory.mktemp("synthetic") / "data"
    assert cli.main(["synth", "--out", str(root), "--size", "tiny", "--seed", "0"]) == 0
    before = _snapshot(root)
    yield root
    after = _snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test changed the shared synthetic root (copy into tmp_path first): {changed[:5]}"


@pytest.fixture(scope="session")
def synthetic_checkpoint(tmp_path_factory) -> Callable[..., Path]:
    """``synthetic_checkpoint(method, seed=1, name=None) -> Path`` of a synthetic checkpoint in the method's
    original format (cached for the session; treat the file as read-only)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    made: dict[tuple[str, int, str], Path] = {}

    def get(method: str, seed: int = 1, name: str | None = None) -> Path:
        key = (method, seed, name or f"{method}.pth")
        if key not in made:
            path = folder / f"{method}_seed{seed}" / key[2]
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic_checkpoint(method, path, seed=seed)
            made[key] = path
        return made[key]

    return get
