"""The CallApp service account (vendor-notes 1.12): `callappservice@<domain>` in the tenant, made once."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.security import Keyring, new_token
from teamsvoice.domain.calling import repository
from teamsvoice.domain.calling.common import CALLAPP_CONSENT, require_consents, require_registered, require_service
from teamsvoice.domain.calling.models import CallAppServiceAccount
from teamsvoice.domain.provisioning.service import ProvisioningAccess

SERVICE_ACCOUNT_NAME = "callappservice"
PASSWORD_PURPOSE = "callapp-service-account"


@dataclass(frozen=True)
class ServiceAccountOutcome:
    user_principal_name: str
    microsoft_user_id: str
    created: bool


async def require_callapp(session: AsyncSession, access: ProvisioningAccess) -> None:
    require_registered(access.enterprise)
    require_service(access.enterprise, "CALLAPP")
    await require_consents(session, access.enterprise, (CALLAPP_CONSENT,))


async def configure_service_account(session: AsyncSession, keyring: Keyring, access: ProvisioningAccess) -> ServiceAccountOutcome:
    await require_callapp(session, access)
    enterprise = access.enterprise
    known = await repository.callapp_account_of(session, enterprise.id)
    await end_transaction(session)  # before calling Microsoft
    directory = access.connection.service_users
    organization = await access.connection.directory.organization()
    domain = next((d["name"] for d in organization.get("verifiedDomains", []) if d.get("isDefault")), None) \
        or enterprise.tenant_domain
    upn = f"{SERVICE_ACCOUNT_NAME}@{domain}"
    existing = await directory.find(upn)
    password: str | None = None
    created = False
    if existing is None:
        password = new_token(24) + "!A1"
        existing = await directory.create({
            "accountEnabled": True, "displayName": "CallApp Service (do not delete)",
            "mailNickname": SERVICE_ACCOUNT_NAME, "userPrincipalName": upn,
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False},
        })
        created = True
    elif known is None or known.microsoft_user_id != existing["id"]:
        # The account exists but its password is not ours (made before, or by hand): take it over.
        password = new_token(24) + "!A1"
        await directory.set_password(existing["id"], password)
    if password is not None:
        if known is None:
            known = CallAppServiceAccount(enterprise_id=enterprise.id)
            session.add(known)
        known.user_principal_name, known.microsoft_user_id = upn, existing["id"]
        known.password_encrypted = keyring.encrypt(password, purpose=PASSWORD_PURPOSE)
        await session.flush()
    return ServiceAccountOutcome(upn, existing["id"], created)
