"""What a script's author reads when a call goes wrong names the problem in the family's words: a wrong
Content-Type (JSON as text/plain, JSON to the form-taking token endpoint), a garbage Fusion token, an
unregistered redirectUrl (with the command that registers it)."""

import json

from tests.api.fusion.support import make_world
from tests.support.ctt import bearer, enterprise_body, reseller_catalogue, token_for

SUB = "/api/v01/draas/draas_v1/tenants/00000000-0000-0000-0000-000000000000/subscriptions/1"


async def test_json_sent_as_text_plain_names_the_content_type(client, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    body = json.dumps(enterprise_body(login.reseller_id, "Plain Text Inc", pbx=pbx[:1], sbc=sbc[:1]))
    plain = await client.post("/reseller/newEnterprise", content=body,
                              headers=bearer(token) | {"Content-Type": "text/plain"})
    assert plain.status_code == 400, plain.text
    message = plain.json()["message"]
    assert "Content-Type" in message and "text/plain" in message and "application/json" in message, message
    as_json = await client.post("/reseller/newEnterprise", content=body,
                                headers=bearer(token) | {"Content-Type": "application/json; charset=utf-8"})
    assert as_json.status_code == 200, as_json.text

    fusion = await client.put(f"{SUB}/msteams/users/x/phone_number", content='{"phoneNumber": "+3212345678"}',
                              headers={"Content-Type": "text/plain", "Authorization": "Bearer x"})
    assert fusion.status_code == 400, fusion.text
    reason = fusion.json()["error"]["reason"]
    assert "Content-Type" in reason and "text/plain" in reason and "phoneNumber" not in reason, reason
    form = await client.post("/api/v01/auth/login", data={"username": "a", "password": "b"})  # curl --data's default
    assert form.status_code == 400 and "application/x-www-form-urlencoded" in form.json()["error"]["reason"], form.text

    # Routes that read their body themselves (the seeds' bare text) are not concerned.
    bare = await client.post("/enterprise/getEnterpriseInfoForTenant", content="no-such-tenant",
                             headers=bearer(token) | {"Content-Type": "text/plain"})
    assert "Content-Type" not in bare.text and bare.status_code == 404, bare.text


async def test_json_to_the_token_endpoint_names_the_form_it_takes(client, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    response = await client.post("/oauth/token", auth=(login.client_id, login.client_secret), json={
        "grant_type": "password", "username": login.username, "password": login.password})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and "application/x-www-form-urlencoded" in body["error_description"], body
    assert "grant type" not in body["error_description"].lower()


async def test_a_garbage_fusion_token_is_answered_in_fusions_words(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    await make_world(client, live, organisation)
    for token in ("garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"):
        response = await client.get("/api/v01/draas/draas_v1/tenants", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert isinstance(error, str) and "segments" not in error.lower() and "/api/v01/auth/login" in error, error
    refreshed = await client.get("/api/v01/auth/access_token", headers={"Authorization": "Bearer garbage"})
    assert refreshed.status_code == 401 and "segments" not in refreshed.text.lower(), refreshed.text


async def test_an_unregistered_https_redirect_url_names_the_command(client, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    created = await client.post("/reseller/newEnterprise", headers=bearer(token),
                                json=enterprise_body(login.reseller_id, "Hooked Inc", pbx=pbx[:1], sbc=sbc[:1]))
    assert created.status_code == 200, created.text
    response = await client.post("/enterprise/getActionItemUrl", headers=bearer(token), json={
        "actionType": "REGISTRATION", "enterpriseName": "Hooked Inc", "redirectUrl": "https://hooks.example.com/consent?x=1"})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert f"teamsvoice register-redirect-url {login.reseller_id} URL" in message, message
    assert "hooks.example.com" not in message  # the caller's text is not echoed


async def test_json_sent_without_a_content_type_names_the_content_type(client, organisation) -> None:  # type: ignore[no-untyped-def]
    """Python's `requests.post(url, data=json.dumps(body))` sends no Content-Type: the answer was "body: Input
    should be a valid dictionary or object to extract fields from"."""
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    body = json.dumps(enterprise_body(login.reseller_id, "No Header Inc", pbx=pbx[:1], sbc=sbc[:1])).encode()
    bare = await client.post("/reseller/newEnterprise", content=body, headers=bearer(token))
    assert "content-type" not in bare.request.headers
    assert bare.status_code == 400, bare.text
    message = bare.json()["message"]
    assert "Content-Type: missing" in message and "application/json" in message and "dictionary" not in message, message
    fusion = await client.put(f"{SUB}/msteams/users/x/phone_number", content=b'{"phoneNumber": "+3212345678"}',
                              headers={"Authorization": "Bearer x"})
    assert fusion.status_code == 400 and "Content-Type: missing" in fusion.json()["error"]["reason"], fusion.text
