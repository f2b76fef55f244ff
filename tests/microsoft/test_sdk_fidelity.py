"""Fidelity checked by code no one here wrote: Microsoft's msal, azure-identity and msgraph-sdk, unmodified,
against the emulator over HTTPS. Only their documented configuration points are used: the authority host,
instance discovery off, the CA to trust, and the Graph base URL of the request adapter."""

import ssl
import uuid
from collections.abc import AsyncIterator

import httpx
import msal
import pytest
import requests
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphServiceClient
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_assign.assign_post_request_body import (
    AssignPostRequestBody,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_unassign.unassign_post_request_body import (
    UnassignPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (
    AssignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_unassign_number.unassign_number_post_request_body import (
    UnassignNumberPostRequestBody,
)
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.teams_administration.assignment_category import AssignmentCategory
from msgraph.generated.models.teams_administration.number_type import NumberType
from msgraph.generated.models.group import Group
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.teams_administration.teams_policy_user_assignment import TeamsPolicyUserAssignment
from msgraph.generated.models.user import User
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import AssignLicensePostRequestBody
from msgraph.generated.users.count.count_request_builder import CountRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from tests.microsoft.support import MsEmulator, RegisteredApp, SeededTenant, admin_consent, seed_tenant

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def fidelity_tenant(ms_emulator: MsEmulator, app: RegisteredApp) -> SeededTenant:
    """130 users (so $top=50 takes three pages) and a Phone System virtual-user SKU with no seats."""
    seeded = seed_tenant(ms_emulator, "fidelity.example", users=130, licences=[
        {"skuPartNumber": "ENTERPRISEPACK", "units": 200}, {"skuPartNumber": "PHONESYSTEM_VIRTUALUSER", "units": 0},
    ])
    admin_consent(ms_emulator, seeded, app)
    return seeded


def msal_app(ms_emulator: MsEmulator, app: RegisteredApp, tenant: SeededTenant) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override `verify`
    session.verify = str(ms_emulator.ca)
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=app.secret, authority=f"{ms_emulator.url}/{tenant.tenant_id}",
        http_client=session, instance_discovery=False,
    )


def test_msal_gets_and_caches_an_app_only_token(ms_emulator: MsEmulator, app: RegisteredApp,
                                                fidelity_tenant: SeededTenant) -> None:
    client = msal_app(ms_emulator, app, fidelity_tenant)
    first = client.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_type"].lower() == "bearer" and first["token_source"] == "identity_provider"
    again = client.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert again["access_token"] == first["access_token"] and again["token_source"] == "cache"
    wrong = msal.ConfidentialClientApplication(
        app.client_id, client_credential="wrong-secret", authority=f"{ms_emulator.url}/{fidelity_tenant.tenant_id}",
        http_client=client.http_client, instance_discovery=False,
    ).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert wrong.get("error") == "invalid_client"


@pytest.fixture(scope="module")
async def graph(ms_emulator: MsEmulator, app: RegisteredApp, fidelity_tenant: SeededTenant) -> AsyncIterator[GraphServiceClient]:
    credential = ClientSecretCredential(
        fidelity_tenant.tenant_id, app.client_id, app.secret, authority=ms_emulator.url,
        disable_instance_discovery=True, connection_verify=str(ms_emulator.ca),
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ms_emulator.ca))), host=ms_emulator.url,
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{ms_emulator.url}/v1.0"
    yield GraphServiceClient(request_adapter=adapter)
    await http.aclose()
    credential.close()


async def test_sdk_lists_users_across_pages(graph: GraphServiceClient) -> None:
    config = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=50, select=["id", "userPrincipalName"]),
    )
    page = await graph.users.get(request_configuration=config)
    ids, pages = [], 0
    while page is not None:
        pages += 1
        ids += [user.id for user in page.value or []]
        page = await graph.users.with_url(page.odata_next_link).get() if page.odata_next_link else None
    assert pages == 3 and len(ids) == len(set(ids)) == 131


async def test_sdk_gets_a_user_and_sees_the_seat_error(graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    user = await graph.users.by_user_id(fidelity_tenant.admin).get()
    assert user is not None and user.user_principal_name == fidelity_tenant.admin and user.id
    skus = {sku.sku_part_number: sku for sku in (await graph.subscribed_skus.get()).value}
    virtual = skus["PHONESYSTEM_VIRTUALUSER"]
    assert virtual.prepaid_units.enabled == 0
    body = AssignLicensePostRequestBody(add_licenses=[AssignedLicense(sku_id=virtual.sku_id, disabled_plans=[])],
                                        remove_licenses=[])
    with pytest.raises(ODataError) as refused:
        await graph.users.by_user_id(user.id).assign_license.post(body)
    assert refused.value.response_status_code == 400
    assert refused.value.error.code == "Request_BadRequest"
    assert "does not have any available licenses" in refused.value.error.message
    enterprise = AssignLicensePostRequestBody(
        add_licenses=[AssignedLicense(sku_id=skus["ENTERPRISEPACK"].sku_id, disabled_plans=[])], remove_licenses=[])
    if skus["ENTERPRISEPACK"].sku_id not in [l.sku_id for l in (await graph.users.by_user_id(user.id).get()).assigned_licenses or []]:
        assigned = await graph.users.by_user_id(user.id).assign_license.post(enterprise)
        assert assigned.id == user.id


async def test_sdk_adds_a_group_member(graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    group = (await graph.groups.get()).value[0]
    user = (await graph.users.get()).value[3]
    members = await graph.groups.by_group_id(group.id).members.get()
    if user.id in [m.id for m in members.value or []]:
        await graph.groups.by_group_id(group.id).members.by_directory_object_id(user.id).ref.delete()
    reference = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user.id}")
    await graph.groups.by_group_id(group.id).members.ref.post(reference)
    members = await graph.groups.by_group_id(group.id).members.get()
    assert user.id in [m.id for m in members.value or []]
    with pytest.raises(ODataError) as duplicate:
        await graph.groups.by_group_id(group.id).members.ref.post(reference)
    assert duplicate.value.response_status_code == 400
    missing = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{uuid.uuid4()}")
    with pytest.raises(ODataError) as absent:
        await graph.groups.by_group_id(group.id).members.ref.post(missing)
    assert absent.value.response_status_code == 404


async def test_sdk_reads_teams_user_configurations(graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    configurations = await graph.admin.teams.user_configurations.get()
    assert configurations.value
    admin = await graph.users.by_user_id(fidelity_tenant.admin).get()
    one = await graph.admin.teams.user_configurations.by_teams_user_configuration_id(admin.id).get()
    assert one.id == admin.id and one.user_principal_name == fidelity_tenant.admin
    assert one.is_enterprise_voice_enabled in (True, False)


async def test_sdk_creates_updates_and_deletes_a_user_with_its_own_models(graph: GraphServiceClient,
                                                                         fidelity_tenant: SeededTenant) -> None:
    """The SDK's models carry `@odata.type` (an instance annotation Graph accepts in request bodies)."""
    upn = f"sdk.{uuid.uuid4().hex[:8]}@{fidelity_tenant.domain}"
    user = User(account_enabled=True, display_name="SDK User", mail_nickname=upn.split("@")[0], user_principal_name=upn,
                usage_location="BE", password_profile=PasswordProfile(password="Sdk-Passw0rd!x9",
                                                                      force_change_password_next_sign_in=True))
    assert user.odata_type == "#microsoft.graph.user"
    created = await graph.users.post(user)
    assert created is not None and created.id and created.user_principal_name == upn
    await graph.users.by_user_id(created.id).patch(User(display_name="SDK User renamed", usage_location="NL"))
    chosen = UserItemRequestBuilder.UserItemRequestBuilderGetRequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["displayName", "usageLocation"]))
    got = await graph.users.by_user_id(created.id).get(request_configuration=chosen)
    assert got.display_name == "SDK User renamed" and got.usage_location == "NL"
    with pytest.raises(ODataError) as wrong_type:  # a body of another type is refused, as Graph does
        await graph.users.by_user_id(created.id).patch(Group(display_name="not a user"))
    assert wrong_type.value.response_status_code == 400
    memberships = await graph.users.by_user_id(created.id).member_of.get()
    assert memberships is not None and memberships.value == []
    details = await graph.users.by_user_id(created.id).license_details.get()
    assert details is not None and details.value == []
    await graph.users.by_user_id(created.id).delete()
    with pytest.raises(ODataError) as gone:
        await graph.users.by_user_id(created.id).get()
    assert gone.value.response_status_code == 404


async def test_sdk_reads_the_organization_domains_and_a_group(graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    organization = (await graph.organization.get()).value[0]
    assert organization.id == fidelity_tenant.tenant_id
    domains = (await graph.domains.get()).value
    assert fidelity_tenant.domain in [d.id for d in domains]
    domain = await graph.domains.by_domain_id(fidelity_tenant.domain).get()
    assert domain.id == fidelity_tenant.domain and domain.is_verified is True
    group = (await graph.groups.get()).value[0]
    assert (await graph.groups.by_group_id(group.id).get()).display_name == group.display_name


async def test_sdk_assigns_teams_policies_by_their_qualified_action_names(graph: GraphServiceClient,
                                                                         fidelity_tenant: SeededTenant) -> None:
    """The SDK calls `.../userAssignments/microsoft.graph.teamsAdministration.assign` (the namespace-qualified
    bound action) with the SDK's own assignment models."""
    admin = await graph.users.by_user_id(fidelity_tenant.admin).get()
    # This SDK version expands getPolicyId's template without the comma between its parameters (which Graph's
    # OData syntax needs), so its builder is pointed at the documented URL; the SDK still sends and parses it.
    base = graph.request_adapter.base_url
    found = await graph.admin.teams.policy.microsoft_graph_teams_administration_get_policy_id_with_type_with_name(
        name="SdkPolicy", type="TeamsMeetingPolicy").with_url(
        f"{base}/admin/teams/policy/microsoft.graph.teamsAdministration.getPolicyId(type='TeamsMeetingPolicy',name='SdkPolicy')").get()
    policy_id = found.value[0].policy_id
    assignment = TeamsPolicyUserAssignment(user_id=admin.id, policy_type="TeamsMeetingPolicy", policy_id=policy_id)
    assignments = graph.admin.teams.policy.user_assignments
    await assignments.microsoft_graph_teams_administration_assign.post(AssignPostRequestBody(value=[assignment]))
    configuration = await graph.admin.teams.user_configurations.by_teams_user_configuration_id(admin.id).get()
    assert any(a.policy_type == "TeamsMeetingPolicy" and a.policy_assignment.policy_id == policy_id
               for a in configuration.effective_policy_assignments or []), configuration.effective_policy_assignments
    await assignments.microsoft_graph_teams_administration_unassign.post(UnassignPostRequestBody(value=[
        TeamsPolicyUserAssignment(user_id=admin.id, policy_type="TeamsMeetingPolicy")]))


async def test_sdk_assigns_and_unassigns_a_number_and_reads_the_operation(graph: GraphServiceClient,
                                                                         fidelity_tenant: SeededTenant) -> None:
    users = (await graph.users.get()).value
    target = users[5]
    number = f"+3222{uuid.uuid4().int % 10**6:06d}"
    assignments = graph.admin.teams.telephone_number_management.number_assignments
    await assignments.microsoft_graph_teams_administration_assign_number.post(AssignNumberPostRequestBody(
        telephone_number=number, assignment_target_id=target.id, number_type=NumberType.DirectRouting,
        assignment_category=AssignmentCategory.Primary))
    listed = (await assignments.get()).value
    assert number in [a.telephone_number for a in listed or []], [a.telephone_number for a in listed or []]
    await assignments.microsoft_graph_teams_administration_unassign_number.post(UnassignNumberPostRequestBody(
        telephone_number=number, number_type=NumberType.DirectRouting))
    assert number not in [a.telephone_number for a in (await assignments.get()).value or []]


async def test_sdk_counts_users_and_lists_installed_apps(graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    config = CountRequestBuilder.CountRequestBuilderGetRequestConfiguration()
    config.headers.add("ConsistencyLevel", "eventual")
    assert await graph.users.count.get(request_configuration=config) == 131
    admin = await graph.users.by_user_id(fidelity_tenant.admin).get()
    with pytest.raises(ODataError) as denied:  # this app was not granted TeamsAppInstallation permissions
        await graph.users.by_user_id(admin.id).teamwork.installed_apps.get()
    assert denied.value.response_status_code == 403 and denied.value.error.code
