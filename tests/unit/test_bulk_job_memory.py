"""What a bulk job's items share in a worker (its subscription and resolved groups) is keyed by the job's run, never
by row ids that SQLite hands out again: a job under a used id must not see an earlier job's subscription."""

from teamsvoice.domain.teams_users import workflows


def test_items_of_two_runs_under_the_same_ids_share_nothing() -> None:
    first = workflows._run_key("fusion-bulk-0f1e-item-7", 1, 1)
    second = workflows._run_key("fusion-bulk-9a8b-item-7", 1, 1)  # same subscription and job ids, another job run
    assert first == "fusion-bulk-0f1e" and second == "fusion-bulk-9a8b"
    assert workflows._run_key("fusion-bulk-0f1e-item-8", 1, 1) == first  # the items of one run share
    memory = workflows._job_memory(first)
    memory.groups["Sales"] = "group-of-tenant-a"
    assert workflows._job_memory(second).groups == {} and workflows._job_memory(first) is memory
