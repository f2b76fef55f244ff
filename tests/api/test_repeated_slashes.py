"""Repeated slashes in a path resolve as one: spec 001's own example URL is
`https://api.connecttoteams.com//reseller/getEnterprisesForReseller/<ResellerId>` (it answered 404, and so did
`POST //oauth/token`). Every rule that reads the path sees the single-slash form: authentication, the body limit
by route, the Content-Type rule, /metrics' access, the families' envelopes, the console."""

import json

from tests.support.ctt import bearer, token_for


async def test_the_spec_example_url_with_a_double_slash_answers(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    token = (await client.post(f"{live.url}//oauth/token", auth=(login.client_id, login.client_secret), data={
        "username": login.username, "password": login.password, "grant_type": "password"}))
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    single = await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(access))
    double = await client.get(f"{live.url}//reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(access))
    assert double.status_code == single.status_code == 200, double.text
    assert double.json() == single.json()
    inner = await client.get(f"{live.url}/reseller///getEnterprisesForReseller/{login.reseller_id}", headers=bearer(access))
    assert inner.status_code == 200, inner.text
    # Authentication is the route's: no token, no answer.
    anonymous = await client.get(f"{live.url}//reseller/getEnterprisesForReseller/{login.reseller_id}")
    assert anonymous.status_code == 401, anonymous.text


async def test_path_rules_see_the_single_slash_path(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    token = await token_for(client, organisation.resellers[0])
    # The body limit by route: a small-body route is not given the large limit (nor the reverse).
    over = b'{"enterpriseName": "' + b"x" * (live.settings.max_request_body_bytes + 10) + b'"}'
    too_large = await client.post(f"{live.url}//reseller//newEnterprise", content=over,
                                  headers=bearer(token) | {"Content-Type": "application/json"})
    assert too_large.status_code == 413 and too_large.json()["path"] == "/reseller/newEnterprise", too_large.text
    large = await client.post(f"{live.url}//reseller//saveOrUpdateTeamsApplicationTemplate",
                              content=json.dumps({"enterpriseId": 987654, "name": "x" * (live.settings.max_request_body_bytes + 10)}),
                              headers=bearer(token) | {"Content-Type": "application/json"})
    assert large.status_code != 413, large.text  # read, then refused for what it says
    # The Content-Type rule and the family's envelope.
    plain = await client.post(f"{live.url}//reseller/newEnterprise", content='{"enterpriseName": "x"}',
                              headers=bearer(token) | {"Content-Type": "text/plain"})
    assert plain.status_code == 400 and "Content-Type: text/plain" in plain.json()["message"], plain.text
    fusion = await client.get(f"{live.url}//api/v01//draas/draas_v1/tenants", headers={"Authorization": "Bearer x"})
    assert fusion.status_code == 401 and "error" in fusion.json(), fusion.text
    # /metrics' access rule (loopback here: allowed) and the console's pages.
    metrics = await client.get(f"{live.url}//metrics")
    assert metrics.status_code == 200 and "http_requests" in metrics.text, metrics.text[:300]
    console = await client.get(f"{live.url}//console//login")
    assert console.status_code == 200 and console.headers["content-type"].startswith("text/html"), console.text[:300]


async def test_an_encoded_slash_in_a_path_segment_is_a_400_naming_it(client, live) -> None:  # type: ignore[no-untyped-def]
    """The server decodes %2F before the routes see the path: `tenants/a%2Fb/...` answered a 404 naming no cause and
    `tenants/%2F/subscriptions` (read as `tenants/subscriptions`) a 405. Each family answers 400 in its own envelope."""
    # Fusion's envelope, whatever route the decoded path would have reached.
    for method, path, segment in (
            ("GET", "/api/v01/draas/draas_v1/tenants/a%2Fb/subscriptions", 'segment 6 ("a%2Fb")'),
            ("POST", "/api/v01/draas/draas_v1/tenants/%2F/subscriptions", 'segment 6 ("%2F")'),
            ("DELETE", "/api/v01/draas/draas_v1/tenants/t/subscriptions/%2f/msteams/templates/1", 'segment 8 ("%2f")')):
        answer = await client.request(method, f"{live.url}{path}", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 400, (method, path, answer.text)
        assert answer.json() == {"error": {"code": 1000, "reason": f"path: {segment} holds an encoded '/' (%2F); "
                                                                   f"a value holding '/' cannot be given in a path"}}
    # The teamsvoice family and ConnecttoTeams: the Spring envelope; a long segment is shortened.
    long_id = "x" * 60 + "%2F" + "y"
    answer = await client.post(f"{live.url}/api/teamsvoice/v1/tenants/{long_id}/apply")
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == (f'path: segment 5 ("{"x" * 40}...") holds an encoded \'/\' (%2F); a value '
                                        f"holding '/' cannot be given in a path"), answer.text
    # Answered inside the access log and the security headers, as every answer is.
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers.get("x-request-id"), answer.headers
    ctt = await client.get(f"{live.url}//reseller/getEnterprisesForReseller/1%2F2", headers={"Authorization": "Bearer x"})
    assert ctt.status_code == 400 and ctt.json()["message"].startswith('path: segment 3 ("1%2F2")'), ctt.text
    # Other escapes in a path, and %2F in a query string, are what they were.
    elsewhere = await client.get(f"{live.url}/health?next=a%2Fb")
    assert elsewhere.status_code == 200, elsewhere.text
    other = await client.get(f"{live.url}/api/v01/draas/draas_v1/tenants/a%20b/subscriptions",
                             headers={"Authorization": "Bearer x"})
    assert other.status_code == 401, other.text
