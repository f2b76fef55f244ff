"""Values a second hostile-input campaign sent that answered 500, checked where the domain reads them: URLs that
do not parse (an unclosed IPv6 host, a port out of range), an MSAL token whose `exp` is not a time, and the voice
record of a user deleted at offboarding (no Microsoft user id), which every sync of its enterprise then hit."""

import base64
import json

import pytest

from teamsvoice.core.errors import AuthenticationFailed, NotFound, ValidationFailed
from teamsvoice.domain.calling.unified_app import _https_url
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import service as provisioning
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state.drift import check_webhook_url
from tests.unit.test_reconcile import FakeTeams, connection

BAD_URLS = ["https://[::1/x", "https://[]/x", "https://h:99999/x", "https://h:0/x", "https://a..b/x", "https://h%00/x"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_drift_webhook_url_that_does_not_parse_is_refused(url: str) -> None:
    with pytest.raises(ValidationFailed, match="^url: "):
        check_webhook_url(url, allow_loopback=True)


def test_a_drift_webhook_url_that_parses_is_kept() -> None:
    assert check_webhook_url("https://hooks.example/drift?x=1", allow_loopback=False) == "https://hooks.example/drift?x=1"
    assert check_webhook_url("http://127.0.0.1:8443/drift", allow_loopback=True) == "http://127.0.0.1:8443/drift"


@pytest.mark.parametrize("url", ["https://[::1/x", "https://h:99999/x", "https://h:port/x"])
def test_a_unified_app_url_that_does_not_parse_is_refused(url: str) -> None:
    with pytest.raises(ValidationFailed, match="^portalURL: must be an https URL"):
        _https_url("portalURL", url)


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("expires", ["abc", [1], {}, None, "1e5", True, "\u0661\u0662\u0663"])
async def test_an_msal_token_whose_exp_is_not_a_time_is_refused(expires: object) -> None:
    enterprise = Enterprise(id=1, tenant_id="tenant-1", enterprise_name="Contoso")
    claims = {"tid": "tenant-1"} | ({} if expires is None else {"exp": expires})
    with pytest.raises(AuthenticationFailed, match="exp claim is not a time"):
        await provisioning._verify_msal_token(None, enterprise, {"accessToken": _unsigned(claims)})  # type: ignore[arg-type]


async def test_the_record_of_a_user_deleted_at_offboarding_is_not_found_and_teams_is_left_alone() -> None:
    teams = FakeTeams()
    deleted = TeamsVoiceUser(enterprise_id=1, user_principal_name="chloe@contoso.example", microsoft_user_id=None,
                             calling_enabled=True, phone_number="+14139358877")
    with pytest.raises(NotFound, match="deleted"):
        await provisioning.reconcile(connection(teams), deleted)
    assert teams.calls == []
