"""An enterprise walked through onboarding by its Global Administrator, over real HTTP (shared by e2e tests)."""

import httpx

from tests.support.consent import sign_in_and_consent
from tests.support.ctt import bearer, enterprise_body, reseller_catalogue, token_for


async def action_url(client: httpx.AsyncClient, token: str, action: str, name: str, redirect: str) -> str:
    response = await client.post("/enterprise/getActionItemUrl", headers=bearer(token),
                                 json={"actionType": action, "enterpriseName": name, "redirectUrl": redirect})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


class Onboarding:
    """One enterprise walked through registration by its Global Administrator."""

    def __init__(self, client, live, organisation, receiver, tenant) -> None:
        self.client, self.live, self.receiver, self.tenant = client, live, receiver, tenant
        self.login = organisation.resellers[0]
        self.name = f"Enterprise of {tenant['domain']}"

    async def create(self, *, manage: bool = True) -> int:
        self.token = await token_for(self.client, self.login)
        pbx, sbc = await reseller_catalogue(self.client, self.token, self.login.reseller_id)
        created = await self.client.post("/reseller/newEnterprise", headers=bearer(self.token),
                                         json=enterprise_body(self.login.reseller_id, self.name, pbx=pbx[:1], sbc=sbc[:1], manage=manage))
        assert created.status_code == 200, created.text
        self.enterprise_id = created.json()
        return self.enterprise_id

    async def consent(self, action: str, *, accept: bool = True) -> dict:
        """The webhook of this consent: the next one at its path (`/hooks/ACTION`), not merely the next one received
        (a late delivery of another consent's webhook is not this one's)."""
        path = f"/hooks/{action}"
        before = len([r for r in self.receiver.received if r["path"] == path])
        url = await action_url(self.client, self.token, action, self.name, self.receiver.url + path)
        admin = self.tenant["globalAdmin"]
        result = await sign_in_and_consent(url, admin["username"], admin["password"], str(self.live.emulator.ca_cert_path), accept=accept)
        assert result.callback.status_code == 200, result.callback.text
        self.last = result
        return self.receiver.at(path, before + 1)[before]["body"]

    async def unposted_answer(self, action: str, hook: str) -> dict:
        """The fields Microsoft's sign-in posts to the consent callback for `action` (its webhook at `hook` on the
        receiver), signed in and consented as the Global Administrator but not posted: the test posts them."""
        url = await action_url(self.client, self.token, action, self.name, self.receiver.url + hook)
        admin = self.tenant["globalAdmin"]
        return (await sign_in_and_consent(url, admin["username"], admin["password"], str(self.live.emulator.ca_cert_path),
                                          post=False)).form_post_fields

    async def registered_at_the_link(self, page: str, first: dict, hook: str):  # type: ignore[no-untyped-def]
        """After a callback `page` that linked a new sign-in for the answer `first`: the link is the same consent's
        (its state), signed in there the registration completes, the provider gets its webhook at `hook` and the
        enterprise its tenant. Answers the second sign-in's result."""
        import html
        import re
        from urllib.parse import parse_qs, urlparse

        link = html.unescape(re.search(r"<a href='([^']+)'>Sign in again</a>", page).group(1))  # type: ignore[union-attr]
        assert parse_qs(urlparse(link).query)["state"] == [first["state"]]  # the same consent, a fresh sign-in
        admin = self.tenant["globalAdmin"]
        second = await sign_in_and_consent(link, admin["username"], admin["password"], str(self.live.emulator.ca_cert_path))
        assert second.callback.status_code == 200 and "Registration consent" in second.callback.text, second.callback.text
        webhooks = self.receiver.at(hook)
        assert webhooks[0]["body"]["officeUserType"] == "GLOBAL_ADMIN" and "error" not in webhooks[0]["body"], webhooks
        info = await self.client.get(f"/reseller/getEnterprisesForReseller/{self.login.reseller_id}",
                                     headers=bearer(self.token))
        assert info.json()[0]["tenantId"] == self.tenant["tenantId"]
        return second

    async def register(self) -> dict:
        await self.create()
        payload = await self.consent("REGISTRATION")
        completed = await self.client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(self.token), json={
            "enterpriseId": self.enterprise_id, "tenantId": self.tenant["tenantId"], "givenName": "Ada", "familyName": "Admin"})
        assert completed.status_code == 200, completed.text
        self.credentials = completed.json()["entAPICredentialInfo"]
        self.msal_object = payload["msalAuthenticationResult"]
        return completed.json()
