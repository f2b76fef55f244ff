"""Imports every model so that `Base.metadata` is complete (for Alembic and tests)."""

from teamsvoice.core.db import Base
from teamsvoice.domain.consent.models import ActionRequest, EnterpriseConsent, WebhookDelivery
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, OAuthToken, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.calling.models import (
    CallAppServiceAccount, CallingJob, CallingJobResult, DirectRoute, PbxLocation, PbxUser, TeamsAppTemplate,
)
from teamsvoice.domain.fusion.models import (
    FusionGroupFilter, FusionMsTeamsAdmin, FusionNumber, FusionSession, FusionSubscription, FusionTenant, FusionUser,
    FusionLocation, FusionNumberLocation, FusionUserProfile, FusionWizardRun,
)
from teamsvoice.jobs.models import JobExecutor
from teamsvoice.domain.security.models import LoginThrottle
from teamsvoice.domain.voice_state.models import (
    DriftDelivery, DriftEvent, DriftWebhook, NumberQuarantine, TenantDriftSettings, VoiceApplyJob,
)
from teamsvoice.domain.teams_users.models import (
    FusionBulkItem, FusionBulkJob, FusionResourceAccount, FusionTemplate, FusionUserLicences,
)

__all__ = [
    "ActionRequest",
    "ApiClient",
    "CallAppServiceAccount",
    "CallingJob",
    "CallingJobResult",
    "DirectRoute",
    "DriftDelivery",
    "DriftEvent",
    "DriftWebhook",
    "NumberQuarantine",
    "TenantDriftSettings",
    "VoiceApplyJob",
    "PbxLocation",
    "PbxUser",
    "TeamsAppTemplate",
    "Base",
    "Enterprise",
    "FusionBulkItem",
    "FusionBulkJob",
    "FusionGroupFilter",
    "FusionMsTeamsAdmin",
    "FusionLocation",
    "FusionNumber",
    "FusionNumberLocation",
    "FusionSession",
    "FusionSubscription",
    "FusionTenant",
    "FusionUser",
    "FusionUserProfile",
    "FusionResourceAccount",
    "FusionTemplate",
    "FusionUserLicences",
    "FusionWizardRun",
    "LoginThrottle",
    "JobExecutor",
    "EnterpriseConsent",
    "OAuthToken",
    "PbxType",
    "PortalUser",
    "Reseller",
    "SbcGateway",
    "TeamsVoiceUser",
    "WebhookDelivery",
]
from teamsvoice.domain.audit.models import AuditEntry  # noqa: E402,F401  (issue 13: the audit log)
import teamsvoice.domain.audit  # noqa: E402,F401  (installs the audit recorder's hooks)
from teamsvoice.microsoft.budget import BudgetBucket  # noqa: E402,F401  (issue 12: the shared Microsoft budget)
