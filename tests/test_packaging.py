"""A non-editable install ships the configs: ``severe benchmark --dry-run`` from another directory plans every
experiment of the full suite with a config inside the installed package, and each runner finds every shipped
config by name there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from severe.experiments import SUITES
from tests.helpers import REPO


FIND_ALL = """
import json
from severe.configs import FAMILIES, config_dir, shipped_configs
from severe.tasks import TASKS
finders = {"ssl_benchmark": TASKS["recognition"].find_config, "repetition": TASKS["repetition"].find_config,
           "slowfast": TASKS["ava"].find_config}
out = {}
for family in FAMILIES:
    for path in shipped_configs(family):
        name = str(path.relative_to(config_dir(family)).with_suffix(""))
        out[f"{family}:{name}"] = [str(path), str(finders[family](name))]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_installed_package_ships_every_config(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "severe", src / "severe", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--no-compile", "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    package = (site / "severe").resolve()
    shipped = sorted(p.relative_to(REPO / "severe") for p in (REPO / "severe" / "configs").rglob("*.yaml"))
    installed = sorted(p.relative_to(package) for p in (package / "configs").rglob("*.yaml"))
    assert shipped and installed == shipped

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    plan = subprocess.run([sys.executable, "-m", "severe.cli", "benchmark", "--suite", "full", "--dry-run", "--init",
                           "scratch", "--data-root", "data", "--out", "out"],
                          cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout
    listed = dict(re.findall(r"^  \[new\] (\S+): .*? (?:--cfg )?(\S+\.yaml) ", plan, re.M))
    assert list(listed) == list(SUITES["full"]), plan
    for experiment, config in listed.items():
        path = Path(config)
        assert path.is_file() and path.resolve().is_relative_to(package), (experiment, config)

    found = json.loads(subprocess.run([sys.executable, "-c", FIND_ALL], cwd=elsewhere, env=env, check=True,
                                      capture_output=True, text=True).stdout)
    assert len(found) == len(shipped)
    for name, (path, resolved) in found.items():
        assert path == resolved and Path(resolved).resolve().is_relative_to(package), name
