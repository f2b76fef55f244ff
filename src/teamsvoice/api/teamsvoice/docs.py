"""OpenAPI documentation of teamsvoice's own API (/api/teamsvoice/v1): request and response models of its
routes. Envelopes and common responses are the ConnecttoTeams family's (`api/connecttoteams/docs.py`); the voice
state routes take a token of either family (`EITHER_TOKEN`, with `body` for those that also document a body).
These models document; the routes keep parsing their bodies as they do."""

from typing import Any

from pydantic import Field

from teamsvoice.api.connecttoteams.docs import MICROSOFT, SpringError, ok
from teamsvoice.api.docs import EITHER_TOKEN, Closed, Doc, answer, ref, request_body, schema

__all__ = ["EITHER_TOKEN", "MICROSOFT", "SpringError", "answer", "ok", "schema"]


def body(model: Any, *, required: bool = True, example: Any = None) -> dict[str, Any]:
    """`openapi_extra` of a voice state route with a JSON body: the body and either family's token."""
    return request_body(model, required=required, example=example) | EITHER_TOKEN

TENANT = "27b418d0-b197-483d-a0b8-da90407a92c4"


class TenantOverview(Doc):
    tenantId: str
    enterpriseId: int
    enterpriseName: str
    openDrift: int
    autoApply: bool
    lastScanAt: str | None
    lastScanError: str | None


class Plan(Doc):
    tenantId: str
    empty: bool
    counts: dict[str, int]
    differences: list[dict[str, Any]]


class ApplyRequest(Closed):
    adopt: list[Any] | None = Field(default=None, description="Differences (ids from the plan) where Microsoft's "
                                                              "value becomes the desired one")
    converge: bool = Field(default=True, description="false: adopt only, start no job")


class ApplyAccepted(Doc):
    tenantId: str
    adopted: list[dict[str, Any]]
    jobId: int | None
    status: str | None


class ApplyJob(Doc):
    jobId: int
    tenantId: str
    status: str
    trigger: str
    differences: Any
    results: Any
    failed: int
    error: str | None
    createdAt: str
    finishedAt: str | None


class VoiceStateDocument(Doc):
    """The export format (`version` 1): gateways, PSTN usages, voice routes and policies, and users."""

    version: int
    tenantId: str
    gateways: list[dict[str, Any]]
    pstnUsages: list[str]
    voiceRoutes: list[dict[str, Any]]
    voiceRoutingPolicies: list[dict[str, Any]]
    users: list[dict[str, Any]]


class RestoreRequest(Doc):
    document: VoiceStateDocument
    renameDomain: dict[str, str] | None = Field(default=None, description="`{from, to}`: the replacement tenant's "
                                                                          "domain")


class Restored(Doc):
    tenantId: str
    users: int
    notRestored: list[str]


class OffboardRequest(Closed):
    deleteUser: bool = Field(default=False, description="true deletes the account; false disables it")


class Offboarded(Doc):
    userPrincipalName: str
    numberFreed: str | None
    quarantineSeconds: int
    account: str = Field(examples=["disabled"])


class Reconciliation(Doc):
    findings: list[dict[str, Any]]
    unreachable: list[dict[str, Any]]
    next: str | None = Field(description="The next page's `cursor`; null on the last page")


# The header of a page of teamsvoice's own lists that has a next one (api/teamsvoice/paging.py).
NEXT_LINK = {"Link": 'The next page, `<URL>; rel="next"` (RFC 8288): the same query with its `cursor`; absent on the '
                     'last page'}


class DriftEvent(Doc):
    eventId: int
    tenantId: str
    enterpriseId: int
    kind: str
    action: str
    firstSeenAt: str
    lastSeenAt: str
    resolvedAt: str | None


class ScanStarted(Doc):
    scanId: str
    tenants: int


class DriftSettingsRequest(Closed):
    autoApply: bool


class DriftSettings(Doc):
    tenantId: str
    autoApply: bool


class WebhookRequest(Closed):
    url: str = Field(min_length=1, description="https URL receiving the signed drift events")


class Webhook(Doc):
    url: str
    secret: str = Field(description="The signing secret, shown once")
    signature: str


EXAMPLE_DOCUMENT = {"version": 1, "tenantId": TENANT,
                    "gateways": [{"fqdn": "sbc1.contoso.com", "sipSignalingPort": 5061, "enabled": True}],
                    "pstnUsages": ["Contoso-Usage"],
                    "voiceRoutes": [{"identity": "Contoso-Route", "numberPattern": ".*",
                                     "gateways": ["sbc1.contoso.com"], "pstnUsages": ["Contoso-Usage"],
                                     "priority": 1}],
                    "voiceRoutingPolicies": [{"identity": "Contoso-VRP", "pstnUsages": ["Contoso-Usage"]}],
                    "users": [{"userPrincipalName": "thomas.anderson@contoso.com", "phoneNumber": "+31302861233",
                               "voiceRoutingPolicy": "Contoso-VRP", "callingEnabled": True}]}


class AuditEntry(Doc):
    id: int
    at: str
    family: str | None
    actor: str | None
    source: str | None
    action: str = Field(examples=["teams_user.update"])
    aggregate: str | None
    objectId: str | None
    before: Any
    after: Any


class AuditPage(Doc):
    total: int = Field(description="How many entries match, counted on the first page (without `cursor`) and carried "
                                   "by the cursor to the next ones")
    offset: int = Field(description="How many entries the pages before this one showed")
    limit: int
    next: str | None = Field(description="The next page's `cursor` (older entries); null on the last page")
    entries: list[AuditEntry]


def audit_answers() -> dict[int | str, Any]:
    """JSON by default, CSV with `format=csv` (one status, two media types)."""
    return {200: {"description": "The entries (newest first): JSON, or CSV with `format=csv`",
                  "content": {"application/json": {"schema": ref(AuditPage)},
                              "text/csv": {"schema": {"type": "string"}}},
                  "headers": answer("", headers=NEXT_LINK)["headers"]}}
