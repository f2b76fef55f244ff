"""Fixtures of the ConnecttoTeams API's tests."""

import pytest

from tests.support.onboarding import Onboarding


@pytest.fixture
async def registered(client, live, organisation, receiver) -> Onboarding:  # type: ignore[no-untyped-def]
    """An enterprise registered to the emulator's first tenant (a module may define its own)."""
    receiver.reset()
    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await onboarding.register()
    return onboarding
