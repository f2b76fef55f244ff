"""Wire format of the calling services (spec 002, 003, vendor-notes 1.1/1.2/1.12, and our own designs): the
request bodies, parsed into the domain's drafts, and the answers, rendered from the domain's objects."""

from typing import Annotated, Any

from pydantic import AfterValidator, StrictBool, StrictInt, StrictStr

from teamsvoice.api.connecttoteams.wire import Id, Strict, TenantId
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import Long, Name, name_problem, shown
from teamsvoice.domain.calling.jobs import JobProgress
from teamsvoice.domain.calling.models import DirectRoute, PbxLocation, TeamsAppTemplate
from teamsvoice.domain.calling.pbx import CALL_POLICY_FIELDS, LOCATION_FLAGS, ConfiguredUser, LocationDraft, UserDraft
from teamsvoice.domain.calling.routing import Check, Readiness
from teamsvoice.domain.calling.sms import SmsConfig
from teamsvoice.domain.calling.unified_app import app_version
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning.service import Reconciled
from teamsvoice.domain.sbc.service import RegistrationDrift, RegistrationReport, UserRegistration

TIMESTAMP = "%Y-%m-%d %H:%M:%S"


class CallPolicyInfo(Strict):
    callPolicyCNAM: StrictStr | None = None
    callPolicyName: StrictStr | None = None
    forwardedCallsCallerId: StrictStr | None = None


class ConfigureUserBody(Strict):
    """enterprise/configureUser and valet/configureValetUser (spec 003 Part III, spec 002 Part II)."""

    pbxCallPolicyInfo: CallPolicyInfo | None = None
    authenticationResult: dict[str, Any] | None = None
    userType: StrictStr | None = None
    directRouteId: Id
    useTeamsVoicemail: StrictBool | None = None
    password: StrictStr
    rePassword: StrictStr | None = None
    pbxAuthUserId: StrictStr
    pbxLocation: StrictStr | StrictInt  # a name, or an id (`repository.location_by_reference`: a name past the ids')
    pbxUserId: StrictStr
    phoneNumber: StrictStr
    portalLoginName: StrictStr | None = None
    portalPassword: StrictStr | None = None
    teamsUserId: StrictStr | None = None
    teamUserId: StrictStr | None = None  # the spelling of the vendor's "Required Fields" list
    useEnterpriseDialPlan: StrictBool | None = None
    tenantID: TenantId | None = None
    loginID: StrictStr | None = None
    sipAutoProvisioningEnabled: StrictBool | None = None
    useAudioConferenceVRP: StrictBool | None = None
    userTag: StrictStr | None = None

    def to_draft(self, kind: str) -> UserDraft:
        return UserDraft(
            kind=kind, teams_user_id=self.teamsUserId or self.teamUserId or "", direct_route_id=self.directRouteId,
            password=self.password, re_password=self.rePassword, pbx_auth_user_id=self.pbxAuthUserId,
            pbx_user_id=self.pbxUserId, pbx_location=str(self.pbxLocation), phone_number=self.phoneNumber,
            portal_login_name=self.portalLoginName, portal_password=self.portalPassword, user_type=self.userType,
            user_tag=self.userTag, login_id=self.loginID,
            call_policy=self.pbxCallPolicyInfo.model_dump() if self.pbxCallPolicyInfo else None,
            options={k: bool(getattr(self, k)) for k in ("useTeamsVoicemail", "useEnterpriseDialPlan",
                                                          "sipAutoProvisioningEnabled", "useAudioConferenceVRP")},
        )


class CallPolicy(Strict):
    callPolicyName: StrictStr | None = None
    callPolicyCNAM: StrictStr | None = None
    forwardedCallsCallerId: StrictStr | None = None


# A PBX type's name is a VARCHAR(100) (`orgs.models.PbxType.pbx_name`): longer text, or a control character, names
# no type (the 400 of the domain's lookup quoted it whole).
PBX_TYPE_NAME_MAX = 100


def _pbx_type_name_rule(value: str) -> str:
    problem = name_problem(value, PBX_TYPE_NAME_MAX)
    if problem:
        raise ValidationFailed(f"pbxType: '{shown(value)}' is no PBX type's name ({problem}); send a PBX type's name "
                               "or id (/pbx/getPBXTypesByResellerId)")
    return value


class PbxLocationBody(Strict):
    """POST /pbx/configurePBX (our design): the fields of getBasicPBXLocationDetailsForEnterprise; `id`
    present updates that location, absent creates (or updates the one with the same pbxLocation name)."""

    id: Id | None = None
    enterpriseId: Id | None = None
    tenantId: TenantId | None = None
    pbxLocation: Name
    # Spec 003 answers a location's type by its name; getPBXTypesByResellerId gives each type's id (a number, as
    # newEnterprise's `pbxId`): either names it, the id as a number or as text (`pbx._pbx_type`).
    pbxType: Annotated[StrictStr, AfterValidator(_pbx_type_name_rule)] | Id
    canonicalPbxSIPDomain: StrictStr
    pbxLabel: Name | None = None
    proxyDomainPort: Long = 0
    presencePackageType: StrictStr = "call-info"
    regExpiresValue: Long = 0
    callPolicy: CallPolicy | None = None
    apiAccessEnabled: StrictBool = False
    apiIntegrationEnabled: StrictBool = False
    topologyHiding: StrictBool = False
    oldStyleHold: StrictBool = False
    metaSwitchSubscriptionCompatibility: StrictBool = False
    sipWaitForAlegAck: StrictBool = False
    enforceCodecsOnInbound: StrictBool = False
    rejectCalling: StrictBool = False
    acceptsEncodedFeatureCode: StrictBool = False
    convertHistoryInfoToDiversion: StrictBool = False
    escapeRequestUri: StrictBool = False
    enableMWIEvents: StrictBool = False

    def to_draft(self) -> LocationDraft:
        return LocationDraft(
            pbx_location=self.pbxLocation, pbx_type=str(self.pbxType), canonical_pbx_sip_domain=self.canonicalPbxSIPDomain,
            pbx_label=self.pbxLabel, proxy_domain_port=self.proxyDomainPort,
            presence_package_type=self.presencePackageType, reg_expires_value=self.regExpiresValue,
            call_policy=self.callPolicy.model_dump() if self.callPolicy else None,
            flags={k: getattr(self, k) for k in LOCATION_FLAGS},
        )


class TeamsAppTemplateBody(Strict):
    """POST /reseller/saveOrUpdateTeamsApplicationTemplate (vendor-notes 1.2)."""

    enterpriseId: Id
    resellerId: Long | None = None  # (compared with the enterprise's: another one is a 400)
    name: Name
    bIconFileName: StrictStr | None = None
    oIconFileName: StrictStr | None = None
    portalURL: StrictStr
    ssoURL: StrictStr | None = None
    type: StrictStr = "UNIFIED"
    portalTabName: StrictStr | None = None
    brandingImageInBytes: StrictStr
    outlineImageInBytes: StrictStr
    turnOffCard: StrictBool | None = None
    turnOffVMCard: StrictBool | None = None
    showCard: StrictBool | None = None
    showVMCard: StrictBool | None = None
    tenantID: TenantId | None = None
    teamName: StrictStr | None = None  # its limit is Teams' (unified_app.TEMPLATE_TEXTS), checked at save


# --- answers ----------------------------------------------------------------------------------------


def render_route(route: DirectRoute, region: str | None = None) -> dict[str, Any]:
    return {
        "directRouteId": route.id, "enterpriseId": route.enterprise_id, "sbcGatewayId": route.sbc_gateway_id,
        "sbcGatewayRegion": region, "tenantId": route.tenant_id, "pstnGatewayFqdn": route.gateway_fqdn,
        "sipSignalingPort": route.sip_port, "pstnUsage": route.pstn_usage, "voiceRoute": route.voice_route,
        "numberPattern": route.number_pattern, "voiceRoutingPolicy": route.voice_routing_policy,
        "provisionedOn": route.provisioned_at.strftime(TIMESTAMP),
    }


def render_check(check: Check) -> dict[str, Any]:
    return {"check": check.name, "passed": check.passed, "required": check.required, "detail": check.detail,
            "fix": check.fix}


def render_readiness(readiness: Readiness) -> dict[str, Any]:
    """verifyTenantForDirectRouting's fields from the readiness (the caller adds whose tenant it is)."""
    return {"pstnGatewayFqdn": readiness.plan.fqdn if readiness.plan else None, "ready": readiness.ready,
            "checks": [render_check(c) for c in readiness.checks]}


def render_job_result(result: dict[str, Any]) -> dict[str, Any]:
    """A user's stored result (`calling/workflows.user_result`) in getSyncJobStatus' field names."""
    body: dict[str, Any] = {"userPrincipalName": result.get("user_principal_name"), "status": result.get("status")}
    body |= {name: result[name] for name in ("changes", "error") if name in result}
    return body


def render_published_app(app: dict[str, Any] | None) -> dict[str, Any] | None:
    """The published app a Unified App job stored (`unified_app.PublishedApp.stored()`)."""
    if app is None:
        return None
    return {"teamsAppId": app.get("app_id"), "action": app.get("action"), "version": app.get("version")}


def render_job(progress: JobProgress) -> dict[str, Any]:
    """getSyncJobStatus (teamsvoice's design): the job, its counts per status and `processed` (of all its results)
    and the page of its per-user results asked for (all of them unless the job has more than a page)."""
    job = progress.job
    counts: dict[str, int] = {}
    for status, count in progress.counts.items():
        counts[status or "?"] = counts.get(status or "?", 0) + count
    return {
        "jobId": job.job_key, "type": job.kind, "enterpriseId": job.enterprise_id, "status": job.status,
        "total": job.total, "processed": progress.processed, "counts": counts,
        "results": [render_job_result(result) for result in progress.results],
        "app": render_published_app(job.detail.get("app")), "error": job.error,
        "createdOn": job.created_at.strftime(TIMESTAMP),
        "finishedOn": job.finished_at.strftime(TIMESTAMP) if job.finished_at else None,
    }


def render_location(location: PbxLocation, pbx_type_name: str | None) -> dict[str, Any]:
    """A PBX location in getBasicPBXLocationDetailsForEnterprise's shape (spec 003), in its field order."""
    body: dict[str, Any] = {
        "id": location.id,
        "canonicalPbxSIPDomain": location.canonical_pbx_sip_domain,
        "proxyDomainPort": location.proxy_domain_port,
        "pbxLocation": location.pbx_location,
    }
    body |= {k: location.flags.get(k, False) for k in ("apiAccessEnabled", "apiIntegrationEnabled", "topologyHiding")}
    body |= {
        "pbxType": pbx_type_name,
        "pbxLabel": location.pbx_label,
        "presencePackageType": location.presence_package_type,
        "callPolicy": {k: location.call_policy.get(k) for k in CALL_POLICY_FIELDS},
        "oldStyleHold": location.flags.get("oldStyleHold", False),
        "metaSwitchSubscriptionCompatibility": location.flags.get("metaSwitchSubscriptionCompatibility", False),
        "regExpiresValue": location.reg_expires_value,
    }
    body |= {k: location.flags.get(k, False) for k in (
        "sipWaitForAlegAck", "enforceCodecsOnInbound", "rejectCalling", "acceptsEncodedFeatureCode",
        "convertHistoryInfoToDiversion", "escapeRequestUri", "enableMWIEvents")}
    body["links"] = []
    return body


def render_pbx_user(configured: ConfiguredUser, location: PbxLocation) -> dict[str, Any]:
    """configureUser / configureValetUser's answer (teamsvoice's design)."""
    user = configured.user
    return {
        "id": user.id, "teamsUserId": user.teams_user_id, "userType": user.user_type,
        "phoneNumber": user.phone_number, "pbxLocation": location.pbx_location, "pbxLocationId": location.id,
        "directRouteId": user.direct_route_id if user.direct_route_id is not None else -1,
        "pbxUserId": user.pbx_user_id, "pbxAuthUserId": user.pbx_auth_user_id, "valet": user.kind == "VALET",
        "changed": configured.changed, "syncRequired": configured.sync_required,
    }


def render_template(template: TeamsAppTemplate, enterprise: Enterprise) -> dict[str, Any]:
    """saveOrUpdateTeamsApplicationTemplate's answer: the template without its images, with `appVersion`."""
    return {"id": template.id, "enterpriseId": enterprise.id, "resellerId": enterprise.reseller_id,
            "tenantID": enterprise.tenant_id, "type": template.app_type, **template.settings,
            "teamsAppExternalId": template.external_id, "appVersion": app_version(template)}


def render_sms_config(config: SmsConfig) -> dict[str, Any]:
    """getEnterpriseSMSConfig's answer (teamsvoice's design)."""
    return {"enterpriseId": config.enterprise_id, "smsEnabled": config.sms_enabled,
            "secureSMSEnabled": config.secure_sms_enabled,
            "smsNumbers": [{"phoneNumber": n.phone_number, "teamsUserId": n.user_principal_name, "source": n.source,
                            "assigned": True} for n in config.numbers]}


def render_reconciled(outcome: Reconciled) -> dict[str, Any]:
    """A user's outcome in Teams (enable/disableCallingForUser, updateUserDetails, syncTeamsRegistrations)."""
    if outcome.error is not None:
        return {"userPrincipalName": outcome.user_principal_name, "status": outcome.status, "error": outcome.error}
    return {"userPrincipalName": outcome.user_principal_name, "status": outcome.status, "changes": outcome.changes}


def render_registrations(report: RegistrationReport) -> dict[str, Any]:
    """getSbcRegistrations (teamsvoice's design; also `teamsvoice sbc status --json`): each PBX user's registration
    and the drift between teamsvoice and the SBC, from `sbc/service.RegistrationReport`."""
    return {"sbcAttached": report.sbc_attached, "sbc": report.sbc, "reachable": report.reachable,
            "message": report.message, "users": [_render_registration(u) for u in report.users],
            "drift": [_render_drift(d) for d in report.drift]}


def _render_registration(row: UserRegistration) -> dict[str, Any]:
    user, held = row.user, row.held
    return {"id": user.pbx_user, "enterpriseId": user.enterprise_id, "teamsUserId": user.teams_user_id,
            "pbxUserId": user.pbx_user_id, "pbxLocation": user.pbx_location, "registration": row.state,
            "proxy": held.proxy if held else None, "nextRegisterIn": held.refresh_in if held else None,
            "upToDate": held.matches if held else None}


def _render_drift(drift: RegistrationDrift) -> dict[str, Any]:
    if drift.registration is not None:  # held by the SBC for a user teamsvoice no longer has
        return {"registration": drift.registration, "kind": drift.kind, "number": drift.number, "detail": drift.detail}
    return {"teamsUserId": drift.teams_user_id, "kind": drift.kind, "detail": drift.detail}
