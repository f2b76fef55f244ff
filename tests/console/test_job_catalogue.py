"""The job catalogue's rules for kinds the browser and CLI tests do not drive (domain/jobs/catalogue.py): a failed
Teams sync and a failed voice-state apply may be retried (attempts count the runs), not cancelled; once retried
they are queued again and may be cancelled, not retried; another reseller's scope does not find them. The
follow-ups (enqueue, stop the workflow) are not run here: each job is cancelled again before the test ends, so
no queued job is left for a starting engine to pick up."""

import uuid

import pytest

from teamsvoice.core.errors import Conflict, NotFound
from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.jobs import catalogue
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state.models import VoiceApplyJob
from tests.support.database import in_session


async def test_failed_sync_and_apply_retried_then_cancelled(live, organisation) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = organisation.resellers[0].reseller_id, organisation.resellers[1].reseller_id

    async def make(session) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        enterprise = Enterprise(reseller_id=mine, enterprise_name=f"Catalogue {uuid.uuid4().hex[:6]}")
        session.add(enterprise)
        await session.flush()
        sync = CallingJob(enterprise_id=enterprise.id, kind="SYNC_TEAMS_USERS", status="COMPLETED", total=2)
        apply = VoiceApplyJob(enterprise_id=enterprise.id, status="failed", error="The tenant is no longer linked")
        session.add_all([sync, apply])
        await session.flush()
        await calling_repository.record_results(session, sync.id, {
            "a@x": {"status": "OK"}, "b@x": {"status": "FAILED", "error": "No licence"}})
        return f"sync:{sync.id}", f"voice-apply:{apply.id}"

    sync, apply = await in_session(live, make)
    for ref, error in ((sync, "No licence"), (apply, "The tenant is no longer linked")):
        job = await in_session(live, lambda s: catalogue.find(s, [mine], ref))  # noqa: B023
        assert job.retry_refusal is None and job.attempts == 1 and job.last_error == error
        assert job.cancel_refusal is not None and "already ended" in job.cancel_refusal
        with pytest.raises(NotFound):
            await in_session(live, lambda s: catalogue.find(s, [theirs], ref))  # noqa: B023
        with pytest.raises(Conflict, match="cannot be cancelled: it has already ended"):
            await in_session(live, lambda s: catalogue.cancel(s, [mine], ref))  # noqa: B023

        retried, _follow_up = await in_session(live, lambda s: catalogue.retry(s, [mine], ref))  # noqa: B023
        assert retried.status == "queued" and retried.attempts == 2 and retried.last_error is None
        assert retried.done == 0  # (a sync's results of the run before are gone: it runs again from the start)
        assert retried.cancel_refusal is None and "still queued" in (retried.retry_refusal or "")
        with pytest.raises(Conflict, match="cannot be retried: it is still queued"):
            await in_session(live, lambda s: catalogue.retry(s, [mine], ref))  # noqa: B023
        cancelled, _follow_up = await in_session(live, lambda s: catalogue.cancel(s, [mine], ref))  # noqa: B023
        assert cancelled.status == "cancelled" and cancelled.retry_refusal is None

    listed = {j.ref: j for j in await in_session(live, lambda s: catalogue.list_jobs(s, [mine], kind="sync"))}
    assert listed[sync].attempts == 2 and all(j.kind == "sync" for j in listed.values())
    assert sync not in {j.ref for j in await in_session(live, lambda s: catalogue.list_jobs(s, [theirs]))}


async def test_failed_wizard_run_resumes_at_its_failed_step_and_is_cancelled_in_its_own_terms(
        client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    from teamsvoice.domain.fusion import onboarding
    from teamsvoice.domain.fusion.models import FusionWizardRun
    from tests.api.fusion.support import make_world

    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name=f"Wizard {uuid.uuid4().hex[:6]}")
    subscription = await world.create_subscription(tenant["uuid"])
    mine = organisation.resellers[0].reseller_id

    async def make(session) -> str:  # type: ignore[no-untyped-def]
        steps = onboarding.initial_steps()
        for step in steps[:2]:
            step.update(executed=True, ok=True, detail="done")
        steps[2].update(executed=True, ok=False, detail="No Teams Phone licence")
        run = FusionWizardRun(subscription_id=subscription["id"], running=False, steps=steps, status="wizard_3_ERROR",
                              error="No Teams Phone licence")
        session.add(run)
        await session.flush()
        return f"wizard:{run.id}"

    ref = await in_session(live, make)
    job = await in_session(live, lambda s: catalogue.find(s, [mine], ref))
    assert (job.status, job.done, job.total, job.last_error) == ("failed", 2, 6, "No Teams Phone licence")
    assert job.retry_refusal is None and job.cancel_refusal is not None

    retried, _follow_up = await in_session(live, lambda s: catalogue.retry(s, [mine], ref))
    assert retried.status == "running" and retried.attempts == 2 and retried.done == 2
    cancelled, _follow_up = await in_session(live, lambda s: catalogue.cancel(s, [mine], ref))
    assert cancelled.status == "cancelled" and cancelled.retry_refusal is None

    async def read(session) -> FusionWizardRun:  # type: ignore[no-untyped-def]
        return await session.get(FusionWizardRun, int(ref.split(":")[1]))

    run = await in_session(live, read)
    assert not run.running and run.status == "wizard_3_ERROR" and run.steps[2]["detail"] == "Cancelled"
    assert [s["ok"] for s in run.steps[:2]] == [True, True]  # what succeeded stays done
    assert run.error.startswith("Cancelled by ")

    # Once the subscription is onboarded (another run linked its tenant), a failed run is not run again: its
    # steps would act on a tenant already linked.
    async def link(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.fusion.models import FusionSubscription

        subscription_row = await session.get(FusionSubscription, subscription["id"])
        (await session.get(Enterprise, subscription_row.enterprise_id)).tenant_id = str(uuid.uuid4())

    await in_session(live, link)
    job = await in_session(live, lambda s: catalogue.find(s, [mine], ref))
    assert job.retry_refusal is not None and "onboarded" in job.retry_refusal
    with pytest.raises(Conflict, match="onboarded"):
        await in_session(live, lambda s: catalogue.retry(s, [mine], ref))


async def test_a_syncs_progress_on_the_jobs_page_comes_from_its_result_rows(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A Teams sync's users done and its last failure are its result rows, counted by the database: a batch recorded
    again (a step run again after a crash) rewrites its users' rows, so a user counts once, with its latest result."""
    mine = organisation.resellers[0].reseller_id

    async def make(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        enterprise = Enterprise(reseller_id=mine, enterprise_name=f"Rows {uuid.uuid4().hex[:6]}")
        session.add(enterprise)
        await session.flush()
        running = CallingJob(enterprise_id=enterprise.id, kind="SYNC_TEAMS_USERS", status="RUNNING", total=3)
        empty = CallingJob(enterprise_id=enterprise.id, kind="SYNC_TEAMS_USERS", status="COMPLETED", total=0)
        session.add_all([running, empty])
        await session.flush()
        return running.id, empty.id

    running, empty = await in_session(live, make)
    for batch in ({"a@x": {"status": "WAITING", "error": "Graph: throttled (try 1; retrying)"},
                   "b@x": {"status": "FAILED", "error": "No licence"}},
                  {"a@x": {"status": "FAILED", "error": "Graph: forbidden"}, "b@x": {"status": "UPDATED"},
                   "c@x": {"status": "UNCHANGED"}}):
        await in_session(live, lambda s: calling_repository.record_results(s, running, batch))  # noqa: B023

    listed = {j.ref: j for j in await in_session(live, lambda s: catalogue.list_jobs(s, [mine], kind="sync"))}
    job = listed[f"sync:{running}"]
    assert (job.status, job.done, job.total, job.last_error) == ("running", 3, 3, "Graph: forbidden")
    other = listed[f"sync:{empty}"]
    assert (other.done, other.last_error) == (0, None) and "every user succeeded" in (other.retry_refusal or "")
    found = await in_session(live, lambda s: catalogue.find(s, [mine], f"sync:{running}"))
    assert (found.done, found.last_error) == (3, "Graph: forbidden")
