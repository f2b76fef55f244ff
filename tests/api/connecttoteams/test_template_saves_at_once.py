"""saveOrUpdateTeamsApplicationTemplate called several times at the same moment for one enterprise (a portal's
double submit, a script's retries): each content that differs gets an appVersion of its own."""

import asyncio

import pytest

from teamsvoice.domain.calling import repository, unified_app
from tests.e2e.test_calling import template_body
from tests.support.ctt import bearer
from tests.support.onboarding import Onboarding

SAVES = 4


@pytest.mark.parametrize("existing", [False, True], ids=["first-saves", "updates"])
async def test_saves_at_once_each_get_a_version_of_their_own(  # type: ignore[no-untyped-def]
        client, live, organisation, receiver, monkeypatch, existing: bool) -> None:
    """Each save read the template's version, added one and wrote it back: saves of different content at the same
    moment answered the same appVersion, and the content a sync had not published yet never was (the catalog already
    held that version). First saves at once each inserted a template: one was kept, the others refused."""
    registered = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await registered.create()  # a template needs no Microsoft tenant yet
    body = template_body(registered.enterprise_id, registered.login.reseller_id, "") | {"tenantID": None}
    path, headers = "/reseller/saveOrUpdateTeamsApplicationTemplate", bearer(registered.token)
    before = 0
    if existing:
        first = await client.post(path, headers=headers, json=body)
        assert first.status_code == 200 and first.json()["appVersion"] == "1.0.1", first.text
        before = 1

    # Every save reads the template only once all have begun (each begins before anything it waits for), so saves
    # that do not wait for each other all read what was there before any of them wrote.
    save, read = unified_app.save_template, repository.app_template
    began, all_began = 0, asyncio.Event()

    async def counted_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal began
        began += 1
        if began == SAVES:
            all_began.set()
        return await save(*args, **kwargs)

    async def read_once_all_began(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = await read(*args, **kwargs)
        await asyncio.wait_for(all_began.wait(), 60)
        return found

    monkeypatch.setattr(unified_app, "save_template", counted_save)
    monkeypatch.setattr(repository, "app_template", read_once_all_began)
    answers = await asyncio.gather(*(client.post(path, headers=headers, json=body | {"portalTabName": f"Tab {n}"})
                                     for n in range(SAVES)))
    assert [a.status_code for a in answers] == [200] * SAVES, [a.text for a in answers]
    versions = sorted(int(a.json()["appVersion"].rsplit(".", 1)[1]) for a in answers)
    assert versions == list(range(before + 1, before + SAVES + 1)), [a.json()["appVersion"] for a in answers]
    assert all(a.json()["changed"] for a in answers)
    monkeypatch.undo()
    last = next(a.json() for a in answers if a.json()["appVersion"] == f"1.0.{versions[-1]}")
    again = await client.post(path, headers=headers, json=body | {"portalTabName": last["portalTabName"]})
    assert again.json()["appVersion"] == last["appVersion"] and again.json()["changed"] is False, again.text
