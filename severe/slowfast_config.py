"""Compatibility names for code not yet moved to severe.tasks (severe.benchmark routes overrides by the
PySlowFast key names of these schemas). The schemas, aliases and dispatcher live in severe.tasks.slowfast,
severe.tasks.ava, severe.tasks.charades and severe.tasks.schema."""

from __future__ import annotations

from fvcore.common.config import CfgNode

from severe.tasks.schema import alias_view
from severe.tasks.slowfast import config_task, run_net_main, solver_from_config  # noqa: F401


def ava_defaults() -> CfgNode:
    """The AVA schema under PySlowFast's key names (aliases where one exists)."""
    from severe.tasks.ava import ava_defaults as defaults

    return alias_view(defaults())


def charades_defaults() -> CfgNode:
    """The Charades schema under PySlowFast's key names (aliases where one exists)."""
    from severe.tasks.charades import charades_defaults as defaults

    return alias_view(defaults())
