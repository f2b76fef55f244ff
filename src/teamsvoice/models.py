"""Imports every model so that `Base.metadata` is complete (for Alembic and tests)."""

from teamsvoice.core.db import Base
from teamsvoice.domain.consent.models import ActionRequest, EnterpriseConsent, WebhookDelivery
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, OAuthToken, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.domain.provisioning.models import TeamsVoiceUser

__all__ = [
    "ActionRequest",
    "ApiClient",
    "Base",
    "Enterprise",
    "EnterpriseConsent",
    "OAuthToken",
    "PbxType",
    "PortalUser",
    "Reseller",
    "SbcGateway",
    "TeamsVoiceUser",
    "WebhookDelivery",
]
