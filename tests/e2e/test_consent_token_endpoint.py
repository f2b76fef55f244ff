"""ConnecttoTeams' consent callback (`/restricted/handleResponse`) when Microsoft's token endpoint does not answer
the code's redemption: not final, as any transient failure at the callback (tests/e2e/test_onboarding.py)."""

import asyncio
import html
import re
import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from tests.support.ctt import bearer
from tests.support.consent import sign_in_and_consent
from tests.support.onboarding import Onboarding
from tests.support.token_endpoint import failing_code_redemption


@pytest.fixture
def onboarding(client, live, organisation, receiver):
    receiver.reset()
    return Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])


async def test_a_token_endpoint_not_answering_the_redemption_is_not_final(onboarding, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The token endpoint answers the redemption 503: the page says Microsoft did not answer (503) and links the same
    sign-in; no failure webhook, the state usable again. Signed in again there, the registration completes and the
    provider gets its one webhook. (It was a 500, MSAL's own error for a 5xx; the state stayed burnt and the
    provider was told nothing.)"""
    await onboarding.create()
    client, live, receiver = onboarding.client, onboarding.live, onboarding.receiver
    hook = f"/hooks/token-endpoint-{uuid.uuid4().hex[:8]}"
    first = await onboarding.unposted_answer("REGISTRATION", hook)
    admin, ca = onboarding.tenant["globalAdmin"], str(live.emulator.ca_cert_path)
    with failing_code_redemption(monkeypatch) as failed:
        answered = await client.post("/restricted/handleResponse", data=first)
    assert failed, "the code's redemption was not asked"
    assert answered.status_code == 503 and "Microsoft did not answer" in answered.text, answered.text
    link = html.unescape(re.search(r"<a href='([^']+)'>Sign in again</a>", answered.text).group(1))
    assert parse_qs(urlparse(link).query)["state"] == [first["state"]]

    second = await sign_in_and_consent(link, admin["username"], admin["password"], ca)
    assert second.callback.status_code == 200 and "Registration consent" in second.callback.text, second.callback.text
    webhooks = receiver.at(hook)
    assert webhooks[0]["body"]["officeUserType"] == "GLOBAL_ADMIN" and "error" not in webhooks[0]["body"], webhooks
    info = await client.get(f"/reseller/getEnterprisesForReseller/{onboarding.login.reseller_id}", headers=bearer(onboarding.token))
    assert info.json()[0]["tenantId"] == onboarding.tenant["tenantId"]
    await asyncio.sleep(1.0)  # no other webhook comes (a failure's would have been owed since the first answer)
    assert len(receiver.at(hook)) == 1
