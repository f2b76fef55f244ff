"""The action types of /enterprise/getActionItemUrl: what each asks Microsoft for, and what it records.

REGISTRATION .. GET_CDR_CONSENT and GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT are the vendor's names. The
consent names UserSync and Presence are the vendor's; CallApp, Contacts, CDR, CallRecording and
EnterpriseManagement (the last is what consentsByEnterprise shows) are ours where the vendor's are unknown,
as is GET_CALL_RECORDING_CONSENT.
"""

from dataclasses import dataclass

from teamsvoice.microsoft.ports import TEAMS_ADMIN_RESOURCE

# Asked for at registration and admin login, like the vendor's sample URL.
ADMIN_SCOPES = [
    "Directory.ReadWrite.All", "Directory.AccessAsUser.All", "TeamsAppInstallation.ReadWriteForUser",
    "Organization.Read.All", "User.ReadWrite.All", "TeamsUserConfiguration.Read.All",
    f"{TEAMS_ADMIN_RESOURCE}/user_impersonation",
]


@dataclass(frozen=True)
class ActionType:
    name: str
    consent_name: str | None
    scopes: tuple[str, ...]


ACTION_TYPES: dict[str, ActionType] = {
    a.name: a
    for a in (
        ActionType("REGISTRATION", None, tuple(ADMIN_SCOPES)),
        ActionType("LOGIN_ENTERPRISE_ADMIN", None, tuple(ADMIN_SCOPES)),
        ActionType("GET_USER_SYNC_CONSENT", "UserSync", ("User.ReadWrite.All", "Group.ReadWrite.All", "TeamsUserConfiguration.Read.All")),
        ActionType("GET_PRESENCE_CONSENT", "Presence", ("Presence.Read.All",)),
        ActionType("GET_CALL_APP_CONSENT", "CallApp", ("User.Read.All", "Calls.Initiate.All", "Calls.JoinGroupCall.All")),
        ActionType("GET_CONTACTS_CONSENT", "Contacts", ("Contacts.Read", "OrgContact.Read.All")),
        ActionType("GET_CDR_CONSENT", "CDR", ("CallRecords.Read.All",)),
        ActionType("GET_CALL_RECORDING_CONSENT", "CallRecording", ("Calls.AccessMedia.All", "Calls.JoinGroupCall.All")),
        ActionType(
            "GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT", "EnterpriseManagement",
            ("User.ReadWrite.All", "TeamsTelephoneNumber.ReadWrite.All", "TeamsPolicyUserAssign.ReadWrite.All"),
        ),
    )
}

# Graph scopes redeemed for the delegated token handed to the provider (one resource per token).
GRAPH_TOKEN_SCOPES = ["Directory.ReadWrite.All", "User.ReadWrite.All", "Organization.Read.All", "TeamsUserConfiguration.Read.All"]
MANAGEMENT_CONSENT = "EnterpriseManagement"
