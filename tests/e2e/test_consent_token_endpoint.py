"""ConnecttoTeams' consent callback (`/restricted/handleResponse`) when Microsoft's token endpoint does not answer
the code's redemption: not final, as any transient failure at the callback (tests/e2e/test_onboarding.py)."""

import asyncio
import uuid

import pytest

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
    client, receiver = onboarding.client, onboarding.receiver
    hook = f"/hooks/token-endpoint-{uuid.uuid4().hex[:8]}"
    first = await onboarding.unposted_answer("REGISTRATION", hook)
    with failing_code_redemption(monkeypatch) as failed:
        answered = await client.post("/restricted/handleResponse", data=first)
    assert failed, "the code's redemption was not asked"
    assert answered.status_code == 503 and "Microsoft did not answer" in answered.text, answered.text
    await onboarding.registered_at_the_link(answered.text, first, hook)
    await asyncio.sleep(1.0)  # no other webhook comes (a failure's would have been owed since the first answer)
    assert len(receiver.at(hook)) == 1
