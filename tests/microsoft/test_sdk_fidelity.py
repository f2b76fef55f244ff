"""Fidelity checked by code no one here wrote: Microsoft's msal, azure-identity and msgraph-sdk, unmodified,
against the emulator over HTTPS. Only their documented configuration points are used: the authority host,
instance discovery off, the CA to trust, and the Graph base URL of the request adapter."""

import asyncio
import io
import json
import ssl
import uuid
import zipfile
from collections.abc import AsyncIterator

import httpx
import msal
import pytest
import requests
from azure.identity import AuthorizationCodeCredential, ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options.headers_inspection_handler_option import HeadersInspectionHandlerOption
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
from msgraph.generated.app_catalogs.teams_apps.item.teams_app_item_request_builder import TeamsAppItemRequestBuilder
from msgraph.generated.app_catalogs.teams_apps.teams_apps_request_builder import TeamsAppsRequestBuilder
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_update_number.update_number_post_request_body import (
    UpdateNumberPostRequestBody,
)
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.long_running_operation_status import LongRunningOperationStatus
from msgraph.generated.models.teams_app import TeamsApp
from msgraph.generated.models.teams_app_definition import TeamsAppDefinition
from msgraph.generated.models.teams_app_distribution_method import TeamsAppDistributionMethod
from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation
from msgraph.generated.teams.item.installed_apps.item.upgrade.upgrade_post_request_body import UpgradePostRequestBody
from msgraph.generated.teams.item.installed_apps.item.upgrade.upgrade_request_builder import UpgradeRequestBuilder
from msgraph.generated.users.item.teamwork.installed_apps.item.user_scope_teams_app_installation_item_request_builder import (
    UserScopeTeamsAppInstallationItemRequestBuilder,
)
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
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent

from tests.microsoft.support import (
    APPLICATION_PERMISSIONS, REDIRECT_URI, MsEmulator, RegisteredApp, SeededTenant, admin_consent, seed_tenant,
)
from tests.support.emulated import TEAMS_PHONE_USERS

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The users licensed for Teams Phone, the ones a number may be given to.
TEAMS_PHONE = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
    query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter=TEAMS_PHONE_USERS))


@pytest.fixture(scope="module")
def fidelity_tenant(ms_emulator: MsEmulator, app: RegisteredApp) -> SeededTenant:
    """130 users (so $top=50 takes three pages), Teams Phone for most of them (a number needs it) and a Phone
    System virtual-user SKU with no seats."""
    seeded = seed_tenant(ms_emulator, "fidelity.example", users=130, licences=[
        {"skuPartNumber": "ENTERPRISEPACK", "units": 200}, {"skuPartNumber": "MCOEV", "units": 200},
        {"skuPartNumber": "PHONESYSTEM_VIRTUALUSER", "units": 0},
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
    client, http = _client(ms_emulator, credential, SENT)
    yield client
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
    await graph.groups.by_group_id(group.id).members.by_directory_object_id(user.id).ref.delete()
    assert user.id not in [m.id for m in (await graph.groups.by_group_id(group.id).members.get()).value or []]


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


async def test_sdk_lists_directory_roles_and_their_members(graph: GraphServiceClient,
                                                          fidelity_tenant: SeededTenant) -> None:
    """The tenant's activated roles in one answer, and a role's members: the seeded admin holds Global
    Administrator (role template 62e90394-...), which the Fusion users list shows as its `roles`."""
    roles = (await graph.directory_roles.get()).value
    global_admin = next(r for r in roles if r.role_template_id == "62e90394-69f5-4237-9190-012177145e10")
    assert global_admin.display_name == "Global Administrator"
    members = (await graph.directory_roles.by_directory_role_id(global_admin.id).members.get()).value
    admin = await graph.users.by_user_id(fidelity_tenant.admin).get()
    assert [m.id for m in members] == [admin.id]
    with pytest.raises(ODataError) as unknown:
        await graph.directory_roles.by_directory_role_id(str(uuid.uuid4())).members.get()
    assert unknown.value.response_status_code == 404


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
    users = (await graph.users.get(request_configuration=TEAMS_PHONE)).value
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


# --- Teams apps: the catalog (delegated, as Graph requires) and per-user installations ---------------------


def _package(manifest_id: str, version: str) -> bytes:
    manifest = {"manifestVersion": "1.16", "id": manifest_id, "version": version,
                "name": {"short": "SDK Voice", "full": "SDK Voice for Teams"},
                "description": {"short": "Calling", "full": "Calling through the SDK"}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
    return buffer.getvalue()


def _client(ms_emulator: MsEmulator, credential: object, sent: list[tuple[str, str]]) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """msgraph-sdk with its default middleware on an httpx client that notes each request it sends."""
    async def note(request: httpx.Request) -> None:
        sent.append((request.method, request.url.path))

    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ms_emulator.ca)),
                                 event_hooks={"request": [note]}), host=ms_emulator.url)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{ms_emulator.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter), http


SENT: list[tuple[str, str]] = []  # every request the SDK clients of this module sent (see the last test)


@pytest.fixture(scope="module")
def apps_app(ms_emulator: MsEmulator, fidelity_tenant: SeededTenant) -> tuple[RegisteredApp, str]:
    """An app that may install Teams apps for users (application) and manage the catalog (delegated), with
    the Global Administrator's consent and the authorization code it came back with."""
    app = RegisteredApp(str(uuid.uuid4()), f"secret-{uuid.uuid4()}")
    response = ms_emulator.admin.post("/_admin/applications", json={
        "appId": app.client_id, "displayName": "sdk-fidelity-apps", "clientSecret": app.secret,
        "redirectUris": [REDIRECT_URI], "delegatedPermissions": ["AppCatalog.ReadWrite.All"],
        "applicationPermissions": [*APPLICATION_PERMISSIONS, "AppCatalog.Read.All",
                                   "TeamsAppInstallation.ReadWriteForUser.All"],
    })
    assert response.status_code == 201, response.text
    return app, admin_consent(ms_emulator, fidelity_tenant, app, scope="AppCatalog.ReadWrite.All")


@pytest.fixture(scope="module")
async def delegated_graph(ms_emulator: MsEmulator, apps_app: tuple[RegisteredApp, str],
                          fidelity_tenant: SeededTenant) -> AsyncIterator[GraphServiceClient]:
    """The consent's authorization code, redeemed for a delegated token by azure-identity."""
    app, code = apps_app
    credential = AuthorizationCodeCredential(
        fidelity_tenant.tenant_id, app.client_id, code, REDIRECT_URI, client_secret=app.secret,
        authority=ms_emulator.url, connection_verify=str(ms_emulator.ca))
    client, http = _client(ms_emulator, credential, SENT)
    yield client
    await http.aclose()
    credential.close()


@pytest.fixture(scope="module")
async def apps_graph(ms_emulator: MsEmulator, apps_app: tuple[RegisteredApp, str],
                     fidelity_tenant: SeededTenant) -> AsyncIterator[GraphServiceClient]:
    app = apps_app[0]
    credential = ClientSecretCredential(fidelity_tenant.tenant_id, app.client_id, app.secret,
                                        authority=ms_emulator.url, disable_instance_discovery=True,
                                        connection_verify=str(ms_emulator.ca))
    client, http = _client(ms_emulator, credential, SENT)
    yield client
    await http.aclose()
    credential.close()


async def _zip_post(graph: GraphServiceClient, builder: object, package: bytes, model: type) -> object:
    """The catalog takes a Teams app package (application/zip), which the SDK's generated post (a JSON body)
    cannot carry: the builder's own request information, with the package as its stream content, sent
    through the SDK's request adapter and parsed into the SDK's model."""
    info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)  # type: ignore[attr-defined]
    info.headers.try_add("Accept", "application/json")
    info.set_stream_content(package, "application/zip")
    return await graph.request_adapter.send_async(info, model, {"XXX": ODataError})


async def test_sdk_publishes_updates_installs_upgrades_and_removes_a_teams_app(
        delegated_graph: GraphServiceClient, apps_graph: GraphServiceClient, fidelity_tenant: SeededTenant) -> None:
    manifest_id = str(uuid.uuid4())
    catalog = delegated_graph.app_catalogs.teams_apps
    published = await _zip_post(delegated_graph, catalog, _package(manifest_id, "1.0.0"), TeamsApp)
    assert isinstance(published, TeamsApp) and published.external_id == manifest_id
    assert published.distribution_method == TeamsAppDistributionMethod.Organization
    with pytest.raises(ODataError) as duplicate:
        await _zip_post(delegated_graph, catalog, _package(manifest_id, "1.0.1"), TeamsApp)
    assert duplicate.value.response_status_code == 409
    with pytest.raises(ODataError) as app_only:  # publishing takes a delegated token, as in Graph
        await _zip_post(apps_graph, apps_graph.app_catalogs.teams_apps, _package(str(uuid.uuid4()), "1.0.0"), TeamsApp)
    assert app_only.value.response_status_code == 403

    chosen = TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetRequestConfiguration(
        query_parameters=TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetQueryParameters(
            filter=f"externalId eq '{manifest_id}'", expand=["appDefinitions"]))
    found = (await apps_graph.app_catalogs.teams_apps.get(request_configuration=chosen)).value
    assert [a.id for a in found] == [published.id] and found[0].app_definitions[0].version == "1.0.0"

    item = delegated_graph.app_catalogs.teams_apps.by_teams_app_id(published.id)
    updated = await _zip_post(delegated_graph, item.app_definitions, _package(manifest_id, "1.1.0"), TeamsAppDefinition)
    assert isinstance(updated, TeamsAppDefinition) and updated.version == "1.1.0" and updated.teams_app_id == published.id
    expanded = TeamsAppItemRequestBuilder.TeamsAppItemRequestBuilderGetRequestConfiguration(
        query_parameters=TeamsAppItemRequestBuilder.TeamsAppItemRequestBuilderGetQueryParameters(expand=["appDefinitions"]))
    got = await apps_graph.app_catalogs.teams_apps.by_teams_app_id(published.id).get(request_configuration=expanded)
    assert [d.version for d in got.app_definitions] == ["1.0.0", "1.1.0"]

    # Installing for a user: the SDK's own installation model, bound to the catalog app with @odata.bind.
    user = (await apps_graph.users.get()).value[7]
    installed_apps = apps_graph.users.by_user_id(user.id).teamwork.installed_apps
    binding = UserScopeTeamsAppInstallation(additional_data={
        "teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{published.id}"})
    assert binding.odata_type == "#microsoft.graph.userScopeTeamsAppInstallation"
    installation = await installed_apps.post(binding)
    assert installation is not None and installation.id
    with pytest.raises(ODataError) as twice:
        await installed_apps.post(binding)
    assert twice.value.response_status_code == 409
    with_definition = UserScopeTeamsAppInstallationItemRequestBuilder.UserScopeTeamsAppInstallationItemRequestBuilderGetRequestConfiguration(
        query_parameters=UserScopeTeamsAppInstallationItemRequestBuilder.UserScopeTeamsAppInstallationItemRequestBuilderGetQueryParameters(
            expand=["teamsAppDefinition", "teamsApp"]))
    one = installed_apps.by_user_scope_teams_app_installation_id(installation.id)
    fetched = await one.get(request_configuration=with_definition)
    assert fetched.teams_app.id == published.id and fetched.teams_app_definition.version == "1.1.0"

    # A newer definition, then upgrade. This SDK version generates `upgrade` for team and chat installations
    # only; its builder and body model are pointed at the user installation's documented URL.
    await _zip_post(delegated_graph, item.app_definitions, _package(manifest_id, "1.2.0"), TeamsAppDefinition)
    base = apps_graph.request_adapter.base_url
    await UpgradeRequestBuilder(apps_graph.request_adapter, {}).with_url(
        f"{base}/users/{user.id}/teamwork/installedApps/{installation.id}/upgrade").post(UpgradePostRequestBody())
    assert (await one.get(request_configuration=with_definition)).teams_app_definition.version == "1.2.0"
    listed = await installed_apps.get()
    assert installation.id in [i.id for i in listed.value]

    await one.delete()
    assert installation.id not in [i.id for i in (await installed_apps.get()).value]
    await item.delete()
    with pytest.raises(ODataError) as gone:
        await apps_graph.app_catalogs.teams_apps.by_teams_app_id(published.id).get()
    assert gone.value.response_status_code == 404


# --- the number assignment operation, and $batch ---------------------------------------------------------


async def test_sdk_reads_the_number_assignment_operation(apps_graph: GraphServiceClient) -> None:
    """assignNumber answers 202 with the operation's URL in Location; the SDK's operations builder reads it."""
    target = (await apps_graph.users.get(request_configuration=TEAMS_PHONE)).value[9]
    number = f"+3223{uuid.uuid4().int % 10**6:06d}"
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    assignments = apps_graph.admin.teams.telephone_number_management.number_assignments
    config = RequestConfiguration(options=[inspect])
    await assignments.microsoft_graph_teams_administration_assign_number.post(AssignNumberPostRequestBody(
        telephone_number=number, assignment_target_id=target.id, number_type=NumberType.DirectRouting,
        assignment_category=AssignmentCategory.Primary), request_configuration=config)
    location = next(iter(inspect.response_headers.get("location")))
    operation_id = location.rstrip("/").rsplit("/", 1)[-1].removeprefix("operations('").removesuffix("')")
    operations = apps_graph.admin.teams.telephone_number_management.operations
    # The Location as sent (the key in parentheses), read with the SDK's operation builder; then by its id.
    operation = await operations.by_telephone_number_long_running_operation_id(operation_id).with_url(location).get()
    assert operation.id == operation_id
    for _ in range(100):
        operation = await operations.by_telephone_number_long_running_operation_id(operation_id).get()
        if operation.status not in (LongRunningOperationStatus.NotStarted, LongRunningOperationStatus.Running):
            break
        await asyncio.sleep(0.1)
    assert operation.id == operation_id and operation.status == LongRunningOperationStatus.Succeeded, operation
    assert number in [a.telephone_number for a in (await assignments.get()).value or []]

    # updateNumber (the SDK's namespace-qualified action) is an operation too.
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    await assignments.microsoft_graph_teams_administration_update_number.post(UpdateNumberPostRequestBody(
        telephone_number=number, reverse_number_lookup_options=["skipInternalVoip"]),
        request_configuration=RequestConfiguration(options=[inspect]))
    updated = next(iter(inspect.response_headers.get("location")))
    for _ in range(100):
        operation = await operations.by_telephone_number_long_running_operation_id("x").with_url(updated).get()
        if operation.status not in (LongRunningOperationStatus.NotStarted, LongRunningOperationStatus.Running):
            break
        await asyncio.sleep(0.1)
    assert operation.status == LongRunningOperationStatus.Succeeded, operation
    with pytest.raises(ODataError) as refused:  # a property updateNumber does not have
        await assignments.microsoft_graph_teams_administration_update_number.post(UpdateNumberPostRequestBody(
            telephone_number=number, additional_data={"assignmentTargetId": target.id}))
    assert refused.value.response_status_code == 400
    with pytest.raises(ODataError) as unknown:
        await operations.by_telephone_number_long_running_operation_id(str(uuid.uuid4())).get()
    assert unknown.value.response_status_code == 404


async def test_sdk_batches_requests_with_its_batch_request_content(apps_graph: GraphServiceClient,
                                                                  fidelity_tenant: SeededTenant) -> None:
    """msgraph-core's BatchRequestContent built from the SDK's own request information (a create with the SDK's
    User model, reads by id and by UPN), sent with the client's batch builder, answers parsed by
    BatchResponseContent."""
    admin = await apps_graph.users.by_user_id(fidelity_tenant.admin).get()
    await apps_graph.users.get()  # as in any session: the client's shared path parameters now hold the base URL
    base = apps_graph.request_adapter.base_url
    upn = f"batch.{uuid.uuid4().hex[:8]}@{fidelity_tenant.domain}"
    create = BatchRequestItem(request_information=apps_graph.users.to_post_request_information(User(
        account_enabled=True, display_name="Batch User", mail_nickname=upn.split("@")[0], user_principal_name=upn,
        password_profile=PasswordProfile(password="Batch-Passw0rd!x9", force_change_password_next_sign_in=False))))
    # This msgraph-core keeps the request's absolute URL in the batch item (msgraph-sdk-python#1015,
    # msgraph-sdk-python-core#1116); Graph refuses a batch url that is not relative with 400, so does the emulator.
    assert create.url.startswith(base)
    with pytest.raises(APIError) as absolute:
        await apps_graph.batch.post(batch_request_content=BatchRequestContent({create.id: create}))
    assert absolute.value.response_status_code == 400
    me = BatchRequestItem(request_information=apps_graph.users.by_user_id(admin.id).to_get_request_information())
    by_upn = BatchRequestItem(request_information=apps_graph.users.by_user_id(fidelity_tenant.admin).to_get_request_information())
    missing = BatchRequestItem(request_information=apps_graph.users.by_user_id(str(uuid.uuid4())).to_get_request_information())
    after_missing = BatchRequestItem(request_information=apps_graph.organization.to_get_request_information())
    # It also writes the dependency as `depends_on`; Graph reads only `dependsOn` and ignores other keys, so the
    # request is not held back by its failed "dependency" (the emulator does the same).
    after_missing.set_depends_on([missing])
    items = (create, me, by_upn, missing, after_missing)
    for item in items:  # the workaround SDK users apply: the url relative to the version
        item.url = item.url.removeprefix(base)
    answer = await apps_graph.batch.post(batch_request_content=BatchRequestContent({i.id: i for i in items}))
    assert isinstance(answer, BatchResponseContent)
    assert answer.get_response_by_id(create.id).status == 201
    # Graph sends a JSON answer's body as a JSON object; this msgraph-core reads item bodies as base64 bytes
    # only (a JSON body comes back None), so what the reads found is checked through statuses and headers.
    assert answer.get_response_by_id(me.id).status == 200
    assert answer.get_response_by_id(me.id).content_type == "application/json"
    assert answer.get_response_by_id(by_upn.id).status == 200  # the SDK percent-encodes the UPN's '@' in batch urls
    assert answer.get_response_by_id(missing.id).status == 404
    assert answer.get_response_by_id(after_missing.id).status == 200
    created = await apps_graph.users.by_user_id(upn).get()
    assert created.display_name == "Batch User"
    await apps_graph.users.by_user_id(created.id).delete()


# --- every Graph operation the emulator serves went through the SDK above ----------------------------------


def _served_operations() -> dict[object, list[tuple[str, object]]]:
    """Each Graph operation the emulator serves (a handler), with its routes: one operation may answer to
    several spellings (a plain and a namespace-qualified action name, a key as segment or in parentheses)."""
    from starlette.routing import Route

    from m365_emulator.graph import apps, batch, directory, teams

    served: dict[object, list[tuple[str, object]]] = {}
    for module in (apps, batch, directory, teams):
        for route in module.router.routes:
            assert isinstance(route, Route)
            for method in sorted((route.methods or set()) - {"HEAD"}):
                served.setdefault(route.endpoint, []).append((method, route))
    return served


def test_every_graph_operation_of_the_emulator_is_exercised_through_the_sdk(request: pytest.FixtureRequest) -> None:
    """Runs last (file order): the requests the SDK clients of this module sent, matched to the emulator's
    routes. A route added to the emulator's Graph without an SDK test here fails this."""
    from starlette.routing import Match

    module_tests = [item for item in request.session.items if item.module is request.module]
    if module_tests[-1].name != request.node.name or len(module_tests) < 14:
        pytest.skip("needs the whole module (it checks what the other tests sent)")
    sent = set(SENT)

    def hit(method: str, route: object) -> bool:
        return any(m == method and route.matches({"type": "http", "method": m, "path": p})[0] == Match.FULL  # type: ignore[attr-defined]
                   for m, p in sent)

    missing = [" | ".join(f"{m} {r.path}" for m, r in routes)  # type: ignore[attr-defined]
               for routes in _served_operations().values() if not any(hit(m, r) for m, r in routes)]
    assert missing == [], "\n".join(missing)
