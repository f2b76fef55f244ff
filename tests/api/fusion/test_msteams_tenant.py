"""Spec 004 tenant-level MS Teams endpoints: admins, wizard (durable job + admin consent), status, unlink,
domains, licences, VRPs, groups; one shared domain with ConnecttoTeams."""

import asyncio
import threading
import uuid
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from teamsvoice import demo
from teamsvoice.domain.fusion.models import FusionGroupFilter, FusionSubscription
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.support import BASE, make_world
from tests.support.emulated import emulated_tenant


@pytest.fixture
async def world(client, live, organisation):
    return await make_world(client, live, organisation)


async def _subscription(world, who: str = "reseller", name: str = "Acme") -> str:
    tenant = await world.create_tenant(who, name)
    sub = await world.create_subscription(tenant["uuid"], who)
    return f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{sub['id']}"


@contextmanager
def held_at_step_1(monkeypatch, answer: str | None = None):  # type: ignore[no-untyped-def]
    """The wizard's step 1 (`onboarding.check_admin`) held until the block ends; it then asks Microsoft as ever, or
    answers `answer` (the tenant's id) without asking."""
    from teamsvoice.domain.fusion import onboarding

    release = threading.Event()
    check_admin = onboarding.check_admin

    async def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.to_thread(release.wait, 60)
        return answer if answer is not None else await check_admin(*args, **kwargs)

    monkeypatch.setattr(onboarding, "check_admin", held)
    try:
        yield
    finally:
        release.set()


async def _consented(world, live, path: str, headers: dict, admin: dict) -> dict:
    """The subscription names the tenant's administrator, whose consent at the wizard's consent URL is then
    accepted by the consent callback (the wizard is not run again): answers the wizard as it stopped."""
    assert (await world.client.post(f"{path}/msteams/admins", headers=headers, json={
        "msUsername": admin["username"], "msPassword": admin["password"]})).status_code == 200
    stopped = await world.run_wizard(path, headers)
    callback = await asyncio.to_thread(demo.grant_admin_consent, stopped["consentUrl"], admin["username"],
                                       admin["password"], str(live.emulator.ca_cert_path))
    assert (await world.client.get(callback)).status_code == 200
    return stopped


async def test_admins(world) -> None:
    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    assert (await client.get(f"{path}/msteams/admins", headers=headers)).status_code == 404
    assert (await client.delete(f"{path}/msteams/admins", headers=headers)).status_code == 204
    body = {"msUsername": "john.doe@netaxis.onmicrosoft.com", "msPassword": "VerySecretPassword"}
    created = await client.post(f"{path}/msteams/admins", headers=headers, json=body)
    assert created.status_code == 200 and set(created.json()) == {"id"}
    again = await client.post(f"{path}/msteams/admins", headers=headers, json=body | {"msPassword": "Other"})
    assert again.json()["id"] == created.json()["id"]
    got = await client.get(f"{path}/msteams/admins", headers=headers)
    assert got.json() == {"id": created.json()["id"], "msUsername": "john.doe@netaxis.onmicrosoft.com"}
    assert "VerySecret" not in got.text
    bad = await client.post(f"{path}/msteams/admins", headers=headers, json={"msUsername": "john"})
    assert bad.status_code == 400
    # No userPrincipalName (the wizard puts its domain in Microsoft's discovery URL): refused, not stored (each was a
    # 200, and the wizard then failed, or looked up the tenant of another path).
    for username in ("john doe@netaxis.onmicrosoft.com", "john@netaxis.onmicrosoft.com/../common",
                     "john@netaxis.onmicrosoft.com?x=1", "john@@netaxis.example"):
        refused = await client.post(f"{path}/msteams/admins", headers=headers,
                                    json={"msUsername": username, "msPassword": "x"})
        assert refused.status_code == 400 and refused.json()["error"]["reason"].startswith("msUsername: "), refused.text
    assert (await client.get(f"{path}/msteams/admins", headers=headers)).json()["msUsername"] == body["msUsername"]
    deleted = await client.delete(f"{path}/msteams/admins", headers=headers)
    assert deleted.status_code == 200 and deleted.json()["msUsername"] == "john.doe@netaxis.onmicrosoft.com"


async def test_the_admin_of_a_running_wizard_is_kept(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each step of a wizard run reads the subscription's administrator: deleted between two steps, the run stopped
    there and stayed running for ever (every later start answered "already running"); changed, its later steps
    checked another account than step 1. While the run is held at step 1 both are refused (400, code 2030) and
    the administrator is left as it was; once the run has ended, both are done."""
    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    admin = {"msUsername": "admin@nowhere.example", "msPassword": "x"}
    assert (await client.post(f"{path}/msteams/admins", headers=headers, json=admin)).status_code == 200
    with held_at_step_1(monkeypatch):
        assert (await client.post(f"{path}/msteams/wizard", headers=headers)).status_code == 200
        deleted = await client.delete(f"{path}/msteams/admins", headers=headers)
        changed = await client.post(f"{path}/msteams/admins", headers=headers,
                                    json={"msUsername": "other@nowhere.example", "msPassword": "y"})
    for refused in (deleted, changed):
        assert refused.status_code == 400 and refused.json()["error"]["code"] == 2030, refused.text
    assert (await client.get(f"{path}/msteams/admins", headers=headers)).json()["msUsername"] == admin["msUsername"]
    for _ in range(300):
        if not (await client.get(f"{path}/msteams/wizard", headers=headers)).json()["running"]:
            break
        await asyncio.sleep(0.1)
    assert (await client.delete(f"{path}/msteams/admins", headers=headers)).status_code == 200


async def test_a_run_whose_admin_is_gone_ends_failed(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A run whose administrator is gone when a step starts (removed by other means than the API, which refuses it
    while the run goes on) ends there, failed, saying so: it returned without a word and stayed running for ever, and
    no wizard of the subscription could start again."""
    from teamsvoice.domain.fusion import repository_onboarding
    from tests.support.database import in_session

    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    assert (await client.post(f"{path}/msteams/admins", headers=headers,
                              json={"msUsername": "admin@nowhere.example", "msPassword": "x"})).status_code == 200
    subscription_id = int(path.rsplit("/", 1)[1])

    async def remove(session) -> None:  # type: ignore[no-untyped-def]
        admin = await repository_onboarding.ms_teams_admin(session, subscription_id)
        await repository_onboarding.delete_ms_teams_admin(session, admin)

    with held_at_step_1(monkeypatch, answer="00000000-0000-0000-0000-00000000abcd"):  # (step 1 passes if it runs)
        assert (await client.post(f"{path}/msteams/wizard", headers=headers)).status_code == 200
        await in_session(live, remove)
    deadline = asyncio.get_running_loop().time() + 60
    while (wizard := (await client.get(f"{path}/msteams/wizard", headers=headers)).json())["running"]:
        assert asyncio.get_running_loop().time() < deadline, wizard
        await asyncio.sleep(0.1)
    # (at step 1 when the job had not started it yet, else at step 2)
    assert wizard["status"] in ("wizard_1_ERROR", "wizard_2_ERROR"), wizard
    assert wizard["error"].startswith("The subscription's MS Teams administrator was deleted while the wizard ran")


async def test_status_before_onboarding_and_wizard_preconditions(world) -> None:
    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    status = (await client.get(f"{path}/msteams/status", headers=headers)).json()
    assert status["status"] == "not_initiated" and status["msTenantId"] is None
    wizard = (await client.get(f"{path}/msteams/wizard", headers=headers)).json()
    assert wizard["running"] is False and [s["step"] for s in wizard["wizardSteps"]] == [1, 2, 3, 4, 5, 6]
    refused = await client.post(f"{path}/msteams/wizard", headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 2031
    for tail in ("domains", "licenses", "vrps", "groups"):
        assert (await client.get(f"{path}/msteams/{tail}", headers=headers)).json()["error"]["code"] == 2004
    # An administrator of no Microsoft tenant: step 1 fails with a clear reason.
    await client.post(f"{path}/msteams/admins", headers=headers, json={"msUsername": "admin@nowhere.example", "msPassword": "x"})
    failed = await world.run_wizard(path, headers)
    assert failed["status"] == "wizard_1_ERROR" and "nowhere.example" in failed["error"]
    assert (await client.get(f"{path}/msteams/status", headers=headers)).json()["status"] == "wizard_1_ERROR"


async def test_onboarding_lists_and_unlink(world, live) -> None:
    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    microsoft = live.emulator.tenants[1]
    wizard = await world.onboard(path, microsoft)
    assert all(s["executed"] and s["ok"] for s in wizard["wizardSteps"])
    status = (await client.get(f"{path}/msteams/status", headers=headers)).json()
    assert status["status"] == "onboarded" and status["msTenantId"] == microsoft["tenantId"]
    assert status["mode"] == "direct_routing" and status["powershell"] == {"active": True} and status["msGraph"] == {"active": True}
    assert status["domain"] == {"name": microsoft["domain"], "verified": True}
    detail = (await client.get(path, headers=headers)).json()
    assert detail["msteamsTenant"] == {"id": microsoft["tenantId"], "mode": "direct_routing"}
    assert detail["msteamsAdmin"]["status"] == "onboarded" and detail["isDeletable"] is False
    domains = (await client.get(f"{path}/msteams/domains", headers=headers)).json()
    assert microsoft["domain"] in domains["verifiedDomains"]
    licenses = (await client.get(f"{path}/msteams/licenses", headers=headers)).json()["licenses"]
    assert {"free", "skuDescription", "skuId", "skuPartNumber", "total"} == set(licenses[0])
    free_only = (await client.get(f"{path}/msteams/licenses", headers=headers, params={"free_only": "yes"})).json()["licenses"]
    assert all(l["free"] >= 1 for l in free_only)
    assert (await client.get(f"{path}/msteams/licenses", headers=headers, params={"free_only": "maybe"})).status_code == 400
    # A policy's `description` is its name (spec 004: "Name of the voice routing policy"), not the text Teams keeps
    # as its Description (answered when it had one).
    connector = MicrosoftConnector(live.settings)
    cmdlets = connector.cmdlets(microsoft["tenantId"])
    try:
        await cmdlets.run("Set-CsOnlineVoiceRoutingPolicy", {"Identity": "teamsvoice", "Description": "To the SBCs"})
        vrps = (await client.get(f"{path}/msteams/vrps", headers=headers)).json()["results"]
    finally:
        await cmdlets.run("Set-CsOnlineVoiceRoutingPolicy", {"Identity": "teamsvoice", "Description": None})
        await connector.aclose()
    assert {"description": "Global", "identity": "Global"} in vrps
    assert {"description": "teamsvoice", "identity": "teamsvoice"} in vrps
    # The SRE filter marks groups, and a filtered group gone from Office 365 is an orphan.
    async def add_filter(session) -> None:  # type: ignore[no-untyped-def]
        subscription = await session.scalar(select(FusionSubscription).order_by(FusionSubscription.id.desc()))
        groups = (await client.get(f"{path}/msteams/groups", headers=headers)).json()["groups"]
        session.add(FusionGroupFilter(subscription_id=subscription.id, group_id=groups[0]["id"], display_name=groups[0]["displayName"]))
        session.add(FusionGroupFilter(subscription_id=subscription.id, group_id="499ce848-8b9b-4d14-8e99-90ee50ea150b",
                                      display_name="This filter is orphan"))
    await world._with_session(add_filter)
    groups = (await client.get(f"{path}/msteams/groups", headers=headers)).json()["groups"]
    assert groups[0]["filter"] is True and all(not g["filter"] for g in groups[1:-1])
    assert groups[-1] == {"displayName": "This filter is orphan", "id": "499ce848-8b9b-4d14-8e99-90ee50ea150b", "orphan": True}
    assert {"description", "displayName", "filter", "id", "teamsEnabled"} == set(groups[0])
    # One domain: the backing enterprise is registered to the tenant and visible to ConnecttoTeams.
    async def enterprise_of(session) -> None:  # type: ignore[no-untyped-def]
        enterprise = await session.scalar(select(Enterprise).where(Enterprise.tenant_id == microsoft["tenantId"]))
        assert enterprise is not None and enterprise.registered
    await world._with_session(enterprise_of)
    # The same tenant cannot be linked twice.
    other_path = await _subscription(world)
    admin = microsoft["globalAdmin"]
    await client.post(f"{other_path}/msteams/admins", headers=headers, json={"msUsername": admin["username"], "msPassword": admin["password"]})
    twice = await world.run_wizard(other_path, headers)
    assert twice["status"] == "wizard_1_ERROR" and twice["consentUrl"]  # the other subscription has no consent yet
    callback = await asyncio.to_thread(demo.grant_admin_consent, twice["consentUrl"], admin["username"], admin["password"],
                                       str(world.live.emulator.ca_cert_path))
    assert (await client.get(callback)).status_code == 200  # its admin consents for it too
    twice = await world.run_wizard(other_path, headers)
    assert twice["status"] == "already_linked"
    assert (await client.get(f"{other_path}/msteams/status", headers=headers)).json()["status"] == "already_linked"
    assert (await client.post(f"{path}/msteams/wizard", headers=headers)).json()["error"]["code"] == 2032
    unlinked = await client.post(f"{path}/msteams/unlink", headers=headers)
    assert unlinked.status_code == 200 and unlinked.json() == {"msTenantId": microsoft["tenantId"]}
    after = (await client.get(f"{path}/msteams/status", headers=headers)).json()
    assert after["status"] == "not_initiated" and after["msTenantId"] is None  # the old run describes it no more
    assert (await client.post(f"{path}/msteams/unlink", headers=headers)).status_code == 404
    # The other subscription may now take the tenant.
    assert (await world.run_wizard(other_path, headers))["status"] == "wizard_6_OK"


async def test_a_tenant_is_linked_only_by_its_admins_consent_for_that_subscription(world, live) -> None:
    """teamsvoice's one app serves every reseller: that it has consent in a tenant (granted for another reseller's
    customer) proves nothing about who may link the tenant. Another reseller's subscription that names the tenant's
    administrator (any password) gets the consent URL and nothing else: no directory answers (which accounts exist,
    which are administrators), no link, even once the owner unlinked the tenant; a forged answer at the consent
    callback records nothing. The owner's own link needs its administrator's consent again after its unlink."""
    client = world.client
    microsoft = await emulated_tenant(live, f"owned-{uuid.uuid4().hex[:8]}.example", 3)
    domain, admin = microsoft["domain"], microsoft["globalAdmin"]
    owner_headers = await world.as_("other-reseller")
    owner_tenant = await world.create_tenant("other-reseller")
    owner_path = f"{BASE}/tenants/{owner_tenant['uuid']}/subscriptions/{(await world.create_subscription(owner_tenant['uuid'], 'other-reseller'))['id']}"
    await world.onboard(owner_path, microsoft, who="other-reseller")
    users = (await client.get(f"{owner_path}/msteams/users", headers=owner_headers)).json()["users"]
    plain_user = next(u["msTeams"]["userPrincipalName"] for u in users if not u["msTeams"]["userPrincipalName"].startswith("admin@"))

    headers, path = await world.as_("reseller"), await _subscription(world)
    for unlinked in (False, True):
        if unlinked:
            assert (await client.post(f"{owner_path}/msteams/unlink", headers=owner_headers)).status_code == 200
        errors = set()
        for username in (admin["username"], plain_user, f"nobody@{domain}"):
            await client.post(f"{path}/msteams/admins", headers=headers, json={"msUsername": username, "msPassword": "guessed"})
            wizard = await world.run_wizard(path, headers)
            assert wizard["status"] == "wizard_1_ERROR" and wizard["consentUrl"], wizard
            assert not any(step["executed"] for step in wizard["wizardSteps"][1:])
            errors.add(wizard["error"])
        assert errors == {f"teamsvoice has no admin consent for this subscription in tenant {microsoft['tenantId']}: a "
                          "Global Administrator of the tenant must grant it at the consent URL, then run the wizard again"}
        assert (await client.get(f"{path}/msteams/status", headers=headers)).json()["status"] != "onboarded"
        assert (await client.get(f"{path}/msteams/users", headers=headers)).json()["error"]["code"] == 2004

        # The consent URL's answer without a Global Administrator's sign-in: refused, nothing recorded.
        state = parse_qs(urlparse(wizard["consentUrl"]).query)["state"][0]
        forged = await client.get("/api/v01/msteams/consent", params={"state": state, "code": "forged-code"})
        assert forged.status_code == 400 and "Consent not" in forged.text
        assert (await world.run_wizard(path, headers))["status"] == "wizard_1_ERROR"

    # The owner relinks: its administrator consents again (the unlink forgot the consent), and it is its own.
    await world.onboard(owner_path, microsoft, who="other-reseller")
    status = (await client.get(f"{owner_path}/msteams/status", headers=owner_headers)).json()
    assert status["status"] == "onboarded" and status["msTenantId"] == microsoft["tenantId"]


async def test_a_consent_microsoft_has_not_answered_or_applied_yet_is_not_final(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """At the consent callback, Microsoft's token service not granting the app yet (a consent takes a while to take
    effect) and then Graph answering 429 (a storm) are no final answers: each page says so (503) and links the same
    consent URL, nothing is recorded; signed in again there, the consent is granted."""
    import html
    import re

    from tests.support.live import emulator_faults

    client = world.client
    microsoft = await emulated_tenant(live, f"slow-{uuid.uuid4().hex[:8]}.example", 2)
    admin, ca = microsoft["globalAdmin"], str(live.emulator.ca_cert_path)
    headers, path = await world.as_("reseller"), await _subscription(world)
    await client.post(f"{path}/msteams/admins", headers=headers, json={"msUsername": admin["username"], "msPassword": "x"})
    consent_url = (await world.run_wizard(path, headers))["consentUrl"]
    check = MicrosoftConnector.check_app_access
    refused: list[str] = []

    async def not_yet_once(self, tenant_id: str, service: str) -> None:  # type: ignore[no-untyped-def]
        if tenant_id == microsoft["tenantId"] and not refused:
            refused.append(tenant_id)
            from teamsvoice.core.errors import UpstreamError
            raise UpstreamError(f"No app-only access to tenant {tenant_id}: unauthorized_client: AADSTS700016: "
                                "Application not found in the directory", retryable=False, upstream_code="unauthorized_client")
        await check(self, tenant_id, service)

    monkeypatch.setattr(MicrosoftConnector, "check_app_access", not_yet_once)

    async def answer(faults: dict | None = None):  # type: ignore[no-untyped-def]
        callback = await asyncio.to_thread(demo.grant_admin_consent, consent_url, admin["username"], admin["password"], ca)
        if faults:
            await emulator_faults(live.emulator, "PUT", **faults)
        try:
            return await client.get(callback)
        finally:
            if faults:
                await emulator_faults(live.emulator, "DELETE")

    for title, faults in (("Consent not effective yet", None),
                          ("Microsoft did not answer", {"storm429": {"count": 1000, "retryAfterSeconds": 0}})):
        answered = await answer(faults)
        assert answered.status_code == 503 and title in answered.text, answered.text
        link = html.unescape(re.search(r"<a href='([^']+)'>Sign in again</a>", answered.text).group(1))
        assert link == consent_url
    assert refused == [microsoft["tenantId"]]
    granted = await answer()
    assert granted.status_code == 200 and "Consent granted" in granted.text, granted.text


async def test_a_consent_link_dies_with_its_subscription(world, live) -> None:
    """A consent URL names its wizard run by a never-reused key, not the subscription by its id: once the
    subscription is deleted (its runs with it), its administrator's consent at the old URL grants nothing, even
    to another reseller's subscription that got the same id (SQLite gives a deleted highest id again)."""
    client = world.client
    microsoft = await emulated_tenant(live, f"left-{uuid.uuid4().hex[:8]}.example", 2)
    admin = microsoft["globalAdmin"]
    owner_headers, owner_path = await world.as_("other-reseller"), await _subscription(world, "other-reseller", "Leaving")
    await client.post(f"{owner_path}/msteams/admins", headers=owner_headers, json={"msUsername": admin["username"], "msPassword": "x"})
    old_link = (await world.run_wizard(owner_path, owner_headers))["consentUrl"]
    assert (await client.delete(owner_path, headers=owner_headers)).status_code in (200, 204)

    headers = await world.as_("reseller")
    tenant = await world.create_tenant(name="Arriving")
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{(await world.create_subscription(tenant['uuid']))['id']}"
    await client.post(f"{path}/msteams/admins", headers=headers, json={"msUsername": admin["username"], "msPassword": "x"})
    callback = await asyncio.to_thread(demo.grant_admin_consent, old_link, admin["username"], admin["password"],
                                       str(live.emulator.ca_cert_path))
    answered = await client.get(callback)
    assert answered.status_code == 400 and "no longer exists" in answered.text
    assert (await world.run_wizard(path, headers))["status"] == "wizard_1_ERROR"  # still no consent of its own


async def test_a_wizard_step_that_fails_unexpectedly_ends_the_run(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A defect in a wizard step (an error that is no domain error) fails that step, named by its type, and the
    run ends (it stayed running for ever, and the subscription could not be onboarded); run again, it links."""
    from teamsvoice.domain.fusion import onboarding

    headers, path = await world.as_("reseller"), await _subscription(world)
    microsoft = await emulated_tenant(live, f"defect-{uuid.uuid4().hex[:8]}.example", 2)
    await _consented(world, live, path, headers, microsoft["globalAdmin"])

    async def defect(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a defect")

    monkeypatch.setattr(onboarding, "check_licences", defect)
    wizard = await world.run_wizard(path, headers)
    assert wizard["status"] == "wizard_3_ERROR" and wizard["running"] is False, wizard
    assert wizard["wizardSteps"][2]["detail"] == "Unexpected error: RuntimeError", wizard
    monkeypatch.undo()
    assert (await world.run_wizard(path, headers))["status"] == "wizard_6_OK"


async def test_a_wizard_resumed_after_another_subscription_linked_its_tenant_changes_nothing_there(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One tenant's administrator consented for two resellers' subscriptions. The late one's wizard passed steps 1
    to 4, failed at step 5; the other linked the tenant; retried, the late run resumes at step 5 and is refused
    before it writes the voice configuration (it rewrote the linked tenant's gateway, usage, route and policy with
    its own SBC, for the other reseller's customer, and only step 6 refused)."""
    from teamsvoice.core.errors import ValidationFailed
    from teamsvoice.domain.fusion import onboarding
    from teamsvoice.domain.fusion.models import FusionWizardRun
    from teamsvoice.domain.jobs import catalogue
    from tests.support.database import in_session

    client = world.client
    microsoft = await emulated_tenant(live, f"contested-{uuid.uuid4().hex[:8]}.example", 2)
    late_headers, late_path = await world.as_("other-reseller"), await _subscription(world, "other-reseller", "Late")
    await _consented(world, live, late_path, late_headers, microsoft["globalAdmin"])
    written = []
    original = onboarding.create_voice_configuration

    async def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValidationFailed("Microsoft refused the gateway")

    async def recorded(connector, tenant, fqdn):  # type: ignore[no-untyped-def]
        written.append((tenant, fqdn))
        return await original(connector, tenant, fqdn)

    monkeypatch.setattr(onboarding, "create_voice_configuration", refused)
    late = await world.run_wizard(late_path, late_headers)
    assert late["status"] == "wizard_5_ERROR" and [s["ok"] for s in late["wizardSteps"][:4]] == [True] * 4, late
    monkeypatch.setattr(onboarding, "create_voice_configuration", recorded)
    first_path = await _subscription(world)
    await world.onboard(first_path, microsoft)  # the other reseller's subscription links the tenant
    assert [tenant for tenant, _fqdn in written] == [microsoft["tenantId"]]

    async def late_run(session) -> int:  # type: ignore[no-untyped-def]
        from sqlalchemy import func
        return await session.scalar(select(func.max(FusionWizardRun.id)).where(FusionWizardRun.subscription_id == int(late_path.rsplit("/", 1)[1])))

    run_id = await in_session(live, late_run)
    scope = [world.organisation.resellers[1].reseller_id]
    _job, follow_up = await in_session(live, lambda s: catalogue.retry(s, scope, f"wizard:{run_id}"))
    await follow_up()
    for _ in range(300):
        resumed = (await client.get(f"{late_path}/msteams/wizard", headers=late_headers)).json()
        if not resumed["running"]:
            break
        await asyncio.sleep(0.1)
    assert resumed["status"] == "already_linked" and "already linked" in resumed["wizardSteps"][4]["detail"], resumed
    assert len(written) == 1  # nothing written in the linked tenant by the late subscription's run


async def test_wizard_starts_at_the_same_moment_run_it_once(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Starts sent at the same moment (two staff members, the console and the API): one runs, the others are told
    it is already running (each found none running, and each ran, against the same tenant). The run is held at its
    step 1 until every start is answered: it failed there at once (no consent), and a start that came after it had
    ended rightly ran again (a fresh-clone CI run saw two of six run on SQLite)."""
    client, headers, path = world.client, await world.as_("reseller"), await _subscription(world)
    microsoft = await emulated_tenant(live, f"twice-{uuid.uuid4().hex[:8]}.example", 2)
    admin = microsoft["globalAdmin"]
    assert (await client.post(f"{path}/msteams/admins", headers=headers, json={
        "msUsername": admin["username"], "msPassword": admin["password"]})).status_code == 200
    with held_at_step_1(monkeypatch):
        answers = await asyncio.gather(*(client.post(f"{path}/msteams/wizard", headers=headers) for _ in range(6)))
    assert [a.status_code for a in answers].count(200) == 1, [a.text for a in answers]
    assert all(a.json()["error"] == {"code": 2030, "reason": "The onboarding wizard is already running for this subscription"}
               for a in answers if a.status_code != 200)  # (Fusion answers this conflict 400, code 2030)


async def test_one_tenant_is_onboarded_by_one_subscription_at_a_time(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One tenant's administrator consented for two resellers' subscriptions. While one's wizard runs against the
    tenant, the other's is refused at step 1, and a retry of its earlier run is refused: both passed "linked
    elsewhere" while neither had linked, and both wrote their own SBC into the tenant's voice configuration (the late
    one's route pointing the other reseller's customer at its SBC)."""
    import threading

    from teamsvoice.core.errors import Conflict
    from teamsvoice.domain.fusion import onboarding
    from teamsvoice.domain.jobs import catalogue
    from tests.support.database import in_session

    client = world.client
    microsoft = await emulated_tenant(live, f"shared-{uuid.uuid4().hex[:8]}.example", 2)
    first_headers, first_path = await world.as_("reseller"), await _subscription(world, "reseller", "First")
    other_headers, other_path = await world.as_("other-reseller"), await _subscription(world, "other-reseller", "Other")
    await _consented(world, live, first_path, first_headers, microsoft["globalAdmin"])
    await _consented(world, live, other_path, other_headers, microsoft["globalAdmin"])

    async def no_licences(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise onboarding.StepFailed("no licences today")

    monkeypatch.setattr(onboarding, "check_licences", no_licences)
    earlier = await world.run_wizard(other_path, other_headers)  # step 1 named the tenant, step 3 failed
    assert earlier["status"] == "wizard_3_ERROR" and earlier["wizardSteps"][0]["ok"] is True, earlier
    monkeypatch.undo()

    written: list[tuple[str, str]] = []
    gate = threading.Event()
    original = onboarding.create_voice_configuration

    async def held(connector, tenant, fqdn):  # type: ignore[no-untyped-def]
        written.append((tenant, fqdn))
        if len(written) == 1:  # the first run to get here waits there
            await asyncio.to_thread(gate.wait, 60)
        return await original(connector, tenant, fqdn)

    monkeypatch.setattr(onboarding, "create_voice_configuration", held)
    try:
        assert (await client.post(f"{first_path}/msteams/wizard", headers=first_headers)).status_code == 200
        for _ in range(300):
            if written:
                break
            await asyncio.sleep(0.1)
        assert written, "the first subscription's wizard did not reach step 5"

        async def other_runs(session) -> list[int]:  # type: ignore[no-untyped-def]
            from teamsvoice.domain.fusion.models import FusionWizardRun
            return list(await session.scalars(select(FusionWizardRun.id).where(
                FusionWizardRun.subscription_id == int(other_path.rsplit("/", 1)[1])).order_by(FusionWizardRun.id)))

        earlier_run = (await in_session(live, other_runs))[-1]
        scope = [world.organisation.resellers[1].reseller_id]
        with pytest.raises(Conflict, match="Another subscription's onboarding wizard is running against tenant"):
            await in_session(live, lambda s: catalogue.retry(s, scope, f"wizard:{earlier_run}"))
        refused = await world.run_wizard(other_path, other_headers)
        assert refused["status"] == "wizard_1_ERROR", refused
        assert refused["wizardSteps"][0]["detail"] == (f"Another subscription's onboarding wizard is running against tenant "
                                                     f"{microsoft['tenantId']}: run this one again once that one has ended")
    finally:
        gate.set()
    for _ in range(300):
        first = (await client.get(f"{first_path}/msteams/wizard", headers=first_headers)).json()
        if not first["running"]:
            break
        await asyncio.sleep(0.1)
    assert first["status"] == "wizard_6_OK", first
    assert len(written) == 1  # the other reseller's SBC was never written into the tenant
    again = await world.run_wizard(other_path, other_headers)  # once it ended: the tenant is linked elsewhere
    assert again["status"] == "already_linked", again
    assert len(written) == 1
