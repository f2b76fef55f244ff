"""Entra ID behaviour over real HTTPS: discovery, the sign-in/consent walk, the token endpoint, MSAL."""

import base64
import hashlib
import json
import secrets
from urllib.parse import urlparse

import httpx
import jwt
import msal
import pytest

from m365_emulator import clock

from emulator_support import (
    ADMIN_PASSWORD,
    App,
    Browser,
    Tenant,
    authorize_url,
    forms,
    redirect_params,
    register_app,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def test_discovery_and_jwks_verify_issued_tokens(http: httpx.Client, emulator, tenant: Tenant, consented_app: App) -> None:
    by_domain = http.get(f"/{tenant.domain}/v2.0/.well-known/openid-configuration").json()
    assert by_domain["issuer"] == f"{emulator.url}/{tenant.tenant_id}/v2.0"
    assert by_domain["token_endpoint"] == f"{emulator.url}/{tenant.tenant_id}/oauth2/v2.0/token"
    common = http.get("/organizations/v2.0/.well-known/openid-configuration").json()
    assert common["issuer"] == f"{emulator.url}/{{tenantid}}/v2.0"
    assert common["authorization_endpoint"] == f"{emulator.url}/organizations/oauth2/v2.0/authorize"
    missing = http.get("/nowhere.example/v2.0/.well-known/openid-configuration")
    assert missing.status_code == 400 and missing.json()["error_codes"] == [90002]

    jwks = http.get(urlparse(by_domain["jwks_uri"]).path).json()
    token = http.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": consented_app.client_id,
            "client_secret": consented_app.secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert claims["iss"] == by_domain["issuer"]
    assert claims["tid"] == tenant.tenant_id and claims["idtyp"] == "app"
    assert "User.ReadWrite.All" in claims["roles"]


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _redeem(http: httpx.Client, tenant: str, app: App, code: str, **extra: str) -> httpx.Response:
    return http.post(
        f"/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.secret,
            "code": code,
            "redirect_uri": app.redirect_uri,
            "client_info": "1",
            **extra,
        },
    )


def test_form_post_walk_with_consent_yields_tokens(http: httpx.Client, browser: Browser, emulator, tenant: Tenant) -> None:
    app = register_app(http, "Form post app")
    verifier, challenge = _pkce()
    url = authorize_url(
        emulator.url,
        "organizations",
        app,
        "openid profile offline_access User.Read.All",
        response_type="code id_token",
        response_mode="form_post",
        nonce="n-0S6_WzA2Mj",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    sign_in = browser.open(url)
    assert sign_in.status_code == 200
    assert {"username", "password", "tx"} <= set(forms(sign_in.text)[0].fields)

    consent = browser.submit(sign_in, {"username": tenant.admin, "password": ADMIN_PASSWORD})
    assert "Permissions requested" in consent.text
    assert "User.Read.All" in consent.text and "offline_access" in consent.text
    assert ("consent", "accept") in forms(consent.text)[0].buttons

    result = browser.consent(consent)
    assert 'onload="document.forms[0].submit()"' in result.text and "<noscript>" in result.text
    posted = forms(result.text)[0]
    assert posted.action == app.redirect_uri and posted.method == "post"
    assert posted.fields["state"] == "xyz" and posted.fields["session_state"]
    id_token_claims = jwt.decode(posted.fields["id_token"], options={"verify_signature": False})
    assert id_token_claims["nonce"] == "n-0S6_WzA2Mj" and id_token_claims["aud"] == app.client_id

    tokens = _redeem(http, "organizations", app, posted.fields["code"], code_verifier=verifier).json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= set(tokens)
    assert 3599 <= tokens["expires_in"] <= 4500
    assert "User.Read.All" in tokens["scope"].split()
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["aud"] == "https://graph.microsoft.com" and access["upn"] == tenant.admin
    assert "User.Read.All" in access["scp"].split() and access["appid"] == app.client_id
    info = json.loads(base64.urlsafe_b64decode(tokens["client_info"] + "=="))
    assert info == {"uid": tenant.admin_id, "utid": tenant.tenant_id}

    replay = _redeem(http, "organizations", app, posted.fields["code"], code_verifier=verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant" and replay.json()["error_codes"] == [54005]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(replay.json())


def test_query_mode_skips_consent_once_granted(browser: Browser, emulator, tenant: Tenant, consented_app: App) -> None:
    url = authorize_url(emulator.url, tenant.domain, consented_app, "openid offline_access Directory.ReadWrite.All")
    response = browser.sign_in(url, tenant.admin, ADMIN_PASSWORD)
    params = redirect_params(response)
    assert response.headers["location"].startswith(consented_app.redirect_uri + "?")
    assert params["state"] == "xyz" and params["code"] and params["session_state"]


def test_wrong_password_shows_sign_in_again(browser: Browser, emulator, tenant: Tenant, consented_app: App) -> None:
    url = authorize_url(emulator.url, tenant.tenant_id, consented_app, "openid")
    page = browser.sign_in(url, tenant.admin, "wrong")
    assert page.status_code == 200
    assert "AADSTS50126: Error validating credentials due to invalid username or password." in page.text
    assert "password" in forms(page.text)[0].fields
    unknown = browser.submit(page, {"username": f"nobody@{tenant.domain}", "password": "x"})
    assert "AADSTS50126" in unknown.text


def test_user_from_other_tenant_is_refused(
    browser: Browser, emulator, tenant: Tenant, other_tenant: Tenant, consented_app: App
) -> None:
    url = authorize_url(emulator.url, tenant.tenant_id, consented_app, "openid")
    page = browser.sign_in(url, other_tenant.admin, ADMIN_PASSWORD)
    assert "AADSTS50020" in page.text


def test_unknown_client_and_unregistered_redirect_are_error_pages(
    browser: Browser, emulator, tenant: Tenant, consented_app: App
) -> None:
    stranger = App("99999999-0000-0000-0000-000000000000", "x", consented_app.redirect_uri)
    page = browser.open(authorize_url(emulator.url, tenant.tenant_id, stranger, "openid"))
    assert page.status_code == 400 and "AADSTS700016" in page.text and "location" not in page.headers
    wrong_redirect = App(consented_app.client_id, consented_app.secret, "https://evil.example/cb")
    page = browser.open(authorize_url(emulator.url, tenant.tenant_id, wrong_redirect, "openid"))
    assert page.status_code == 400 and "AADSTS50011" in page.text and "location" not in page.headers


def test_unsupported_response_type_redirects_with_error(browser: Browser, emulator, tenant: Tenant, consented_app: App) -> None:
    url = authorize_url(emulator.url, tenant.tenant_id, consented_app, "openid", response_type="token")
    params = redirect_params(browser.open(url))
    assert params["error"] == "unsupported_response_type" and params["state"] == "xyz"


def test_cancel_consent_redirects_access_denied(http: httpx.Client, browser: Browser, emulator, tenant: Tenant) -> None:
    app = register_app(http, "Cancelled app")
    page = browser.sign_in(authorize_url(emulator.url, tenant.tenant_id, app, "openid User.Read"), tenant.admin, ADMIN_PASSWORD)
    params = redirect_params(browser.consent(page, accept=False))
    assert params["error"] == "access_denied" and params["error_subcode"] == "cancel" and params["state"] == "xyz"


def test_non_admin_needs_admin_approval_but_can_consent_user_scopes(
    http: httpx.Client, browser: Browser, emulator, tenant: Tenant, graph: httpx.Client
) -> None:
    created = graph.post(
        "/users",
        json={
            "accountEnabled": True,
            "displayName": "Plain User",
            "mailNickname": "plain.user",
            "userPrincipalName": f"plain.user@{tenant.domain}",
            "passwordProfile": {"password": "Us3r-Passw0rd!"},
        },
    )
    assert created.status_code == 201, created.text
    app = register_app(http, "Needs admin")
    page = browser.sign_in(
        authorize_url(emulator.url, tenant.tenant_id, app, "openid User.ReadWrite.All"),
        f"plain.user@{tenant.domain}",
        "Us3r-Passw0rd!",
    )
    assert "Need admin approval" in page.text and "AADSTS90094" in page.text
    page = browser.sign_in(
        authorize_url(emulator.url, tenant.tenant_id, app, "openid User.Read"), f"plain.user@{tenant.domain}", "Us3r-Passw0rd!"
    )
    assert "Permissions requested" in page.text and "Consent on behalf of your organization" not in page.text
    assert "code" in redirect_params(browser.consent(page))


def _code(browser: Browser, emulator, tenant: Tenant, app: App, **extra: str) -> str:
    url = authorize_url(emulator.url, tenant.tenant_id, app, "openid offline_access Directory.ReadWrite.All", **extra)
    return redirect_params(browser.sign_in(url, tenant.admin, ADMIN_PASSWORD))["code"]


def test_token_endpoint_rejections(
    http: httpx.Client, browser: Browser, emulator, tenant: Tenant, consented_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_redirect = _redeem(http, tenant.tenant_id, consented_app, _code(browser, emulator, tenant, consented_app), redirect_uri="https://localhost:5001/other")
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_grant"
    assert "redirect_uri" in wrong_redirect.json()["error_description"]

    _, challenge = _pkce()
    code = _code(browser, emulator, tenant, consented_app, code_challenge=challenge, code_challenge_method="S256")
    pkce = _redeem(http, tenant.tenant_id, consented_app, code, code_verifier="not-the-verifier")
    assert pkce.json()["error_codes"] == [501481]

    bad_secret = http.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": consented_app.redirect_uri},
        auth=(consented_app.client_id, "wrong"),
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error_codes"] == [7000215]

    unknown = _redeem(http, tenant.tenant_id, consented_app, "not-a-code")
    assert unknown.json()["error_codes"] == [70000]

    code = _code(browser, emulator, tenant, consented_app)
    later = clock.now() + 601
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = _redeem(http, tenant.tenant_id, consented_app, code)
    assert expired.json()["error"] == "invalid_grant" and expired.json()["error_codes"] == [70008]


def test_two_resources_in_one_token_request_is_refused(
    http: httpx.Client, browser: Browser, emulator, tenant: Tenant, consented_app: App
) -> None:
    code = _code(browser, emulator, tenant, consented_app)
    response = _redeem(
        http,
        tenant.tenant_id,
        consented_app,
        code,
        scope="Directory.ReadWrite.All 48ac35b8-9aa8-4d74-927d-1f4a14a0b239/user_impersonation",
    )
    assert response.json()["error"] == "invalid_request" and response.json()["error_codes"] == [28000]


@pytest.fixture()
def msal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (under MSAL) lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the session's verify=, which
    would replace the emulator CA with the system bundle."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _msal_app(emulator, tenant: str, app: App) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.secret,
        authority=f"{emulator.url}/{tenant}",
        instance_discovery=False,
        verify=str(emulator.ca_cert_path),
    )


def test_msal_auth_code_and_refresh(msal_env: None, browser: Browser, emulator, tenant: Tenant, consented_app: App) -> None:
    client = _msal_app(emulator, tenant.domain, consented_app)
    url = client.get_authorization_request_url(
        ["Directory.ReadWrite.All"], redirect_uri=consented_app.redirect_uri, state="s1"
    )
    code = redirect_params(browser.sign_in(url, tenant.admin, ADMIN_PASSWORD))["code"]
    result = client.acquire_token_by_authorization_code(
        code, ["Directory.ReadWrite.All"], redirect_uri=consented_app.redirect_uri
    )
    assert "access_token" in result, result
    assert result["id_token_claims"]["tid"] == tenant.tenant_id
    assert client.get_accounts()[0]["username"] == tenant.admin

    refreshed = client.acquire_token_by_refresh_token(result["refresh_token"], ["Directory.ReadWrite.All"])
    assert "access_token" in refreshed, refreshed
    assert refreshed["refresh_token"] != result["refresh_token"]
    reused = client.acquire_token_by_refresh_token(result["refresh_token"], ["Directory.ReadWrite.All"])
    assert reused.get("error") == "invalid_grant"

    flow = client.initiate_auth_code_flow(["Directory.ReadWrite.All"], redirect_uri=consented_app.redirect_uri)
    response = browser.sign_in(flow["auth_uri"], tenant.admin, ADMIN_PASSWORD)
    pkce_result = client.acquire_token_by_auth_code_flow(flow, redirect_params(response))
    assert "access_token" in pkce_result, pkce_result


def test_msal_client_credentials_needs_admin_consent(msal_env: None, http: httpx.Client, browser: Browser, emulator, tenant: Tenant) -> None:
    app = register_app(http, "Daemon")
    client = _msal_app(emulator, tenant.tenant_id, app)
    before = client.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "AADSTS700016" in before["error_description"]
    assert _msal_app(emulator, "common", app).acquire_token_for_client(["https://graph.microsoft.com/.default"])["error"]

    url = authorize_url(emulator.url, tenant.tenant_id, app, "openid https://graph.microsoft.com/.default", prompt="consent")
    page = browser.sign_in(url, tenant.admin, ADMIN_PASSWORD)
    assert "TeamsTelephoneNumber.ReadWrite.All" in page.text  # application permissions are listed too
    assert "code" in redirect_params(browser.consent(page))

    # A fresh client: MSAL's HTTP layer replays a recent identical error response without calling out.
    client = _msal_app(emulator, tenant.tenant_id, app)
    after = client.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in after, after
    claims = jwt.decode(after["access_token"], options={"verify_signature": False})
    assert "TeamsTelephoneNumber.ReadWrite.All" in claims["roles"] and claims["idtyp"] == "app"
    wrong_scope = client.acquire_token_for_client(["User.Read"])
    assert wrong_scope["error"] == "invalid_scope"
