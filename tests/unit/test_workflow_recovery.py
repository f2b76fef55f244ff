"""Every workflow of the job engine is recovered for as long as it takes: DBOS's default (100 recovery attempts)
dead-letters a workflow past them, leaving its job's row running for ever (the calling jobs had it)."""

import importlib

from dbos._dbos import _get_or_create_dbos_registry
from dbos._registrations import get_func_info

from teamsvoice.jobs import runtime


def test_no_workflow_gives_up_its_recovery() -> None:
    for name in runtime.WORKFLOW_MODULES:
        importlib.import_module(name)
    registered = {name: get_func_info(function) for name, function
                  in _get_or_create_dbos_registry().workflow_info_map.items()
                  if not name.startswith("<temp>.")}  # (a step called outside a workflow: not ours to recover)
    assert {"sync_teams_users", "refresh_teams_users", "sync_unified_app", "voice_apply_scheduled"} <= set(registered)
    assert [name for name, info in registered.items() if info is None or info.max_recovery_attempts is not None] == []
