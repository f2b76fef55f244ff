"""A worker has no host or port to default `TEAMSVOICE_PUBLIC_URL` from: the wizard's first step, run there without
it, fails naming the setting instead of giving a consent URL whose redirect_uri is a bare path (Entra refuses it)."""

import pytest

from teamsvoice.domain.fusion import onboarding
from teamsvoice.jobs import fusion_wizard
from teamsvoice.settings import Settings
from tests.unit.test_tenant_services import CONSENTED, KEYRING, onboarded, wizard


async def test_a_consent_url_without_a_public_url_fails_the_step_naming_the_setting(tmp_path) -> None:
    *_, connector = onboarded(consented=set())
    unset = Settings(data_dir=tmp_path, public_url=None)
    with pytest.raises(onboarding.StepFailed) as caught:
        await fusion_wizard.check_admin(connector, KEYRING, unset, wizard(), CONSENTED)
    assert caught.value.consent_url is None and "TEAMSVOICE_PUBLIC_URL" in caught.value.message
    set_ = Settings(data_dir=tmp_path, public_url="https://tv.example")
    with pytest.raises(onboarding.StepFailed) as caught:
        await fusion_wizard.check_admin(connector, KEYRING, set_, wizard(), CONSENTED)
    assert (caught.value.consent_url or "").startswith(
        "https://login.example/tenant-1/consent?redirect_uri=https://tv.example" + onboarding.CONSENT_CALLBACK_PATH)


async def test_a_consented_tenant_needs_no_public_url(tmp_path) -> None:
    *_, connector = onboarded()
    unset = Settings(data_dir=tmp_path, public_url=None)
    assert await fusion_wizard.check_admin(connector, KEYRING, unset, wizard(), CONSENTED) == "tenant-1"
