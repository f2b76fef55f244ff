"""Console routes: sign in, customers, tenant (subscription) page, users grid, bulk CSV, jobs, audit log.

Scoping is the Fusion API's own: tenants and subscriptions resolve through `domain/fusion/scope.py` with the
staff member's principal (anything outside it is "not found"), enterprises through the ConnecttoTeams
repository. Routes commit before calling Microsoft, as the API routes do.
"""

import io
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import FormData
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.api.connecttoteams.enterprise import callback_url
from teamsvoice.api import throttling
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.teamsvoice.deps import CHANGE_ROLE as VOICE_CHANGE, READ_ROLE as VOICE_READ
from teamsvoice.container import Container
from teamsvoice.api.fusion import users_wire  # the users grid lists what the Fusion API lists
from teamsvoice.api.teamsvoice import paging as audit_paging  # the audit log's pages are the API's
from teamsvoice.console import activity, auth
from teamsvoice.console.last_checks import READINESS
from teamsvoice.console.rendering import page, templates
from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import transaction
from teamsvoice.core.spreadsheet import csv_writer
from teamsvoice.core.errors import AuthenticationFailed, DomainError, NotFound, PermissionDenied, TooManyRequests, ValidationFailed
from teamsvoice.core.limits import check_name, whole_number
from teamsvoice.domain.audit import context as audit_context
from teamsvoice.domain.audit import service as audit
from teamsvoice.domain.audit.recorder import Owner
from teamsvoice.domain.consent import repository as consents, service as consent
from teamsvoice.domain.consent.actions import ACTION_TYPES
from teamsvoice.domain.fusion import licences, numbers, onboarding, repository_onboarding, tenants
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.inventory import repository as inventory
from teamsvoice.domain.jobs import catalogue
from teamsvoice.domain.fusion.scope import SubscriptionAccess, org_uuid, subscription_in_scope, tenant_in_scope
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.security.throttle import login_attempt
from teamsvoice.domain.teams_users import bulk, service, workflows
from teamsvoice.domain.teams_users.bulk_csv import COLUMNS, TEMPLATE, preview_rows, results_csv
from teamsvoice.domain.teams_users.models import FusionBulkJob
from teamsvoice.domain.tenant_voice.readiness import check_tenant_readiness
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift
from teamsvoice.jobs.fusion_wizard import enqueue_wizard
from teamsvoice.microsoft.voice_state import tenant_voice

router = APIRouter(prefix="/console", include_in_schema=False)
_MST = "tenants.instance.subscriptions.instance.msteams"
GRID_PAGE = 50
CUSTOMERS_PAGE = 100  # customers (Fusion tenants) per page of the Customers page
SUBSCRIPTIONS_SHOWN = 100  # the Customers page shows each customer's first subscriptions (oldest first), this many
ENTERPRISES_PAGE = 100  # ConnecttoTeams enterprises per page of the Customers page
JOBS_PAGE = 50  # bulk jobs per page of the Jobs page
OTHER_JOBS = catalogue.LIMIT  # the Jobs page's other jobs: the newest of each kind (narrowed by kind and status)
BULK_HISTORY = f"{_MST}.users.bulk.jobs"  # the role of the Fusion API's bulk job history: who sees bulk jobs
# The role each kind of job is read with: the console shows a login jobs of a kind (the Tenant page the wizard's steps
# and errors, the enterprise page its consent webhook deliveries) only holding it; a ConnecttoTeams login's level holds
# them all. A kind an API reads: the role the API reads it with (the Fusion API's bulk job history, GET msteams/wizard
# and GET msteams/resource_accounts; teamsvoice's GET .../apply/{id}, api/teamsvoice/deps.READ_ROLE). A kind no
# Fusion route reads: the closest read role (README, "Provider console": who sees what). A consent webhook delivery
# tells a customer's consent, which a Fusion subscription gets through its onboarding wizard (wizard.read); a drift
# event delivery carries the drift teamsvoice's API reads with READ_ROLE; a Teams sync (or refresh) ends in its users'
# sync state, which the Fusion API shows in GET msteams/users (users.list).
READ_ROLES = {"bulk": BULK_HISTORY, "wizard": f"{_MST}.wizard.read", "webhook": f"{_MST}.wizard.read",
              "resource-account": f"{_MST}.resource_accounts.list", "voice-apply": VOICE_READ,
              "drift-webhook": VOICE_READ, "sync": f"{_MST}.users.list"}
# Records no Fusion route reads, outside the Jobs page: a ConnecttoTeams enterprise's page (its consents) is read as
# one Fusion tenant is (GET tenants/{uuid}); its consent link is made as the Fusion wizard makes one (wizard.run); the
# audit log as teamsvoice's API reads it (api/teamsvoice/audit.py: READ_ROLE).
ENTERPRISE_ROLE = "tenants.instance.read"
CONSENT_LINK_ROLE = f"{_MST}.wizard.run"
AUDIT_ROLE = VOICE_READ
# The Tenant page's readiness and drift cards: the role of the Fusion API's GET msteams/status (its readiness) and of
# teamsvoice's drift and plan (api/teamsvoice/deps.READ_ROLE). The Customers page's subscriptions' onboarding state
# and Microsoft tenant as well: GET msteams/status answers both (its status and msTenantId).
CARDS_ROLE = STATUS_ROLE = f"{_MST}.status.read"
# The Customers page, as the Fusion API's GET tenants; the Jobs page, and a job's retry or cancel from it, as well.
CUSTOMERS_ROLE = JOBS_ROLE = "tenants.list"
# A customer's subscriptions (the Customers page's rows of them, the Tenant page), as the Fusion API's GET
# tenants/{uuid}/subscriptions lists them. The Customers page's ConnecttoTeams enterprises (their Microsoft tenants
# and consents) are shown with the role their own page asks for (ENTERPRISE_ROLE).
SUBSCRIPTIONS_ROLE = "tenants.instance.subscriptions.list"
# A subscription's number counts (the Customers page's, the Tenant page's): the role of the Fusion API's GET
# subscription, which answers them (its phoneNumbers).
NUMBERS_ROLE = "tenants.instance.subscriptions.instance.read"
# The Tenant page's tabs and the role of the page each opens (its route requires it): the users grid (and its CSV) as
# the Fusion API's GET msteams/users, the bulk CSV page (its preview and run) as PUT msteams/users/bulk.
USERS_ROLE = f"{_MST}.users.list"
BULK_ROLE = f"{_MST}.users.bulk"
TENANT_TABS = (("Users", "/users", USERS_ROLE), ("Bulk CSV", "/bulk", BULK_ROLE))
# The main menu's pages (base.html): a login is offered those its roles open.
MENU = (("Customers", "/console/customers", CUSTOMERS_ROLE), ("Jobs", "/console/jobs", JOBS_ROLE),
        ("Audit log", "/console/audit", AUDIT_ROLE))
ITEMS_PAGE = 100  # a bulk job's items per page of its job page
PREVIEW_ROWS = 200  # a bulk CSV preview lists at most this many rows with errors, and as many ready ones
PICKER_SIZE = 200


def main_menu(staff: auth.Staff) -> list[tuple[str, str]]:
    return [(label, href) for label, href, role in MENU if staff.fusion.holds(role)]


def tenant_tabs(staff: auth.Staff) -> list[tuple[str, str]]:
    """The Tenant page's tabs (`_tenant_tabs.html`) a login is offered: those whose page its roles open."""
    return [(label, path) for label, path, role in TENANT_TABS if staff.fusion.holds(role)]


templates.env.globals["main_menu"] = main_menu
templates.env.globals["tenant_tabs"] = tenant_tabs


async def form_of(request: Request, container: Container) -> FormData:
    """The request's form, read once. A field may be as large as the request body may be (the body limit bounds it:
    larger for the bulk CSV's routes), not Starlette's 1 MiB per field: the bulk CSV's Run posts the previewed file
    back in one field, and a 10,000-row file is more than that."""
    return await request.form(max_part_size=container.settings.max_bulk_request_body_bytes)


async def current_staff(request: Request, uow: UnitOfWorkDep, container: ContainerDep) -> auth.Staff:
    staff = await auth.staff_for_cookie(uow.session, container.keyring, request.cookies.get(auth.COOKIE))
    request.state.staff = staff  # (an error page shows the navigation too: rendering.render_message)
    audit_context.identify(name=staff.username, login_family=staff.family, login_id=staff.login_id, reseller_id=staff.reseller_id)
    if request.method == "POST":
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            form = await form_of(request, container)
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        auth.check_csrf(staff.csrf, sent)
    return staff


StaffDep = Annotated[auth.Staff, Depends(current_staff)]


def _require(staff: auth.Staff, role: str) -> None:
    if not staff.fusion.holds(role):
        raise PermissionDenied(f"Your login lacks the right to do this (role {role})")


async def _access(uow: UnitOfWorkDep, staff: auth.Staff, uuid: str, sub_id: int, role: str) -> SubscriptionAccess:
    _require(staff, role)
    return await subscription_in_scope(uow.session, staff.fusion, uuid, sub_id)


def _may_read(staff: auth.Staff, kind: str) -> bool:
    """Whether the console shows `staff` jobs of `kind` (READ_ROLES)."""
    role = READ_ROLES.get(kind)
    return role is None or staff.fusion.holds(role)


def _number_counts(counts: tuple[int, int, int] | None) -> dict[str, int] | None:
    """A subscription's numbers counted (total, free, assigned) as its pages show them; None: not read (NUMBERS_ROLE)."""
    if counts is None:
        return None
    total, free, assigned = counts
    return {"total": total, "free": free, "assigned": assigned}


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def _secure(request: Request, container: ContainerDep) -> bool:
    return request.url.scheme == "https" or (container.settings.public_url or "").startswith("https://")


# --- signing in -----------------------------------------------------------------------------------------


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/customers", status_code=303)


def safe_next(value: str) -> str:
    """Where a sign-in may send the staff member back to: a console page of this site, never elsewhere."""
    if (value.startswith("/console/") and not value.startswith("/console/login") and "\\" not in value
            and not urlsplit(value).netloc and len(value) <= 2000 and value.isprintable()):
        return value
    return ""


def login_url(back_to: str) -> str:
    target = safe_next(back_to)
    return "/console/login" + (f"?{urlencode({'next': target})}" if target else "")


@router.get("/login")
async def login_form(request: Request, container: ContainerDep, next: str = "") -> Response:  # noqa: A002 - the query's name
    # The browser's login token, if it has one: a sign-in form open in another tab (sent there when its session
    # ended) must still work; a new token at each form made every form but the last one loaded answer 403.
    held = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or ""
    token = held if auth.LOGIN_TOKEN.fullmatch(held) else auth.secrets.token_urlsafe(24)
    response = page(request, "login.html", {"csrf": token, "error": None, "next": safe_next(next)})
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request, container), path="/console")
    return response


@router.post("/login")
async def login(request: Request, uow: UnitOfWorkDep, container: ContainerDep,
                username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:  # noqa: A002
    auth.check_csrf(request.cookies.get(auth.LOGIN_CSRF_COOKIE) or "", csrf_token)
    try:
        # Throttled like the APIs' logins (failures counted per account and per client address).
        async with login_attempt(container.sessions, uow.session, throttling.policy(container.settings), family="console",
                                 account=username, address=throttling.client_address(request)):
            login = await auth.sign_in(uow.session, username, password)
        await audit.record_sign_in(uow.session, family=login.family, login_id=login.login_id, username=username.strip(),
                                   reseller_id=login.reseller_id)
    except (AuthenticationFailed, TooManyRequests) as exc:
        # The form again, with the reason in words; the same answer for an unknown user and a bad password.
        status = 429 if isinstance(exc, TooManyRequests) else 401
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return page(request, "login.html", {"csrf": csrf_token, "error": exc.message, "username": username,
                                            "next": safe_next(next)}, status=status, headers=headers)
    response = RedirectResponse(safe_next(next) or "/console/customers", status_code=303)
    response.set_cookie(auth.COOKIE, auth.new_cookie(container.keyring, login), max_age=auth.SESSION_TTL_SECONDS,
                        httponly=True, samesite="strict", secure=_secure(request, container), path="/console")
    return response  # (the login token stays: the other tabs' forms sign in too)


@router.post("/logout")
async def logout(staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    await auth.sign_out(uow.session, staff)
    await audit.record_action(uow.session, Owner(staff.reseller_id), action="login.sign_out", aggregate="login",
                              object_id=staff.login_id, label=staff.username, before=None, after=None)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/console")
    return response


# --- customers ------------------------------------------------------------------------------------------


async def _subscription_rows(uow: UnitOfWorkDep, staff: auth.Staff, found: list[Any],
                             shown: dict[str, bool]) -> list[dict[str, Any]]:
    """Each tenant of the page with its first SUBSCRIPTIONS_SHOWN subscriptions' rows, in a statement per kind of
    read whatever the number of rows: the subscriptions with their enterprises, their latest wizard runs and their
    numbers' counts. The tenants are the caller's (`tenants.list_tenants`), so their subscriptions are in its scope as
    `subscription_in_scope` finds them. Each part only if `shown` (`_customer_parts`), not read otherwise: without
    SUBSCRIPTIONS_ROLE the tenants alone."""
    if not shown["subscriptions"]:
        return [{"tenant": t, "subscriptions": []} for t in found]
    session = uow.session
    subscriptions = await fusion_repository.subscriptions_with_enterprises(session, [t.id for t in found],
                                                                           SUBSCRIPTIONS_SHOWN)
    ids = [subscription.id for subscription, _enterprise in subscriptions]
    onboarding_read = shown["status"] or shown["consent_links"]
    runs = await repository_onboarding.latest_wizard_runs(session, ids) if onboarding_read else {}
    counts = await inventory.count_numbers_of(session, ids) if shown["numbers"] else {}
    by_tenant: dict[int, list[dict[str, Any]]] = {t.id: [] for t in found}
    tenant_of = {t.id: t for t in found}
    for subscription, enterprise in subscriptions:
        row: dict[str, Any] = {"subscription": subscription, "numbers": _number_counts(counts.get(subscription.id))}
        if onboarding_read:
            access = SubscriptionAccess(staff.fusion, tenant_of[subscription.fusion_tenant_id], subscription, enterprise)
            run = runs.get(subscription.id)
            state = onboarding.status_of(access, run)
            if shown["status"]:
                row |= {"ms_tenant": access.ms_tenant_id, "state": state}
            if shown["consent_links"] and run and state != "onboarded":
                row["consent_url"] = run.consent_url
        by_tenant[subscription.fusion_tenant_id].append(row)
    return [{"tenant": t, "subscriptions": by_tenant[t.id]} for t in found]


def _customer_parts(staff: auth.Staff) -> dict[str, bool]:
    """Which parts of the Customers page `staff` is shown, each as the API reading it allows: a customer's
    subscriptions (SUBSCRIPTIONS_ROLE), and of them their onboarding state and Microsoft tenant (STATUS_ROLE), the
    consent link of a wizard run waiting for consent (READ_ROLES["wizard"], as GET msteams/wizard answers it) and their
    number counts (NUMBERS_ROLE); the ConnecttoTeams enterprises (ENTERPRISE_ROLE)."""
    holds = staff.fusion.holds
    subscriptions = holds(SUBSCRIPTIONS_ROLE)
    return {"subscriptions": subscriptions, "status": subscriptions and holds(STATUS_ROLE),
            "consent_links": subscriptions and _may_read(staff, "wizard"),
            "numbers": subscriptions and holds(NUMBERS_ROLE), "enterprises": holds(ENTERPRISE_ROLE)}


async def _enterprise_rows(uow: UnitOfWorkDep, staff: auth.Staff, backing: set[int], search: str | None,
                           page_number: int) -> tuple[list[dict[str, Any]], int, int, int]:
    """A page of the ConnecttoTeams enterprises in the staff member's scope that are not a Fusion subscription's
    (Direct Routing only, or backing one of the page's subscriptions) with their consents granted and missing, the
    page's number (the last page past it), how many pages there are and how many enterprises."""
    async def read(number: int) -> tuple[list[tuple[Enterprise, list[Any]]], int]:
        return await orgs.enterprises_page_with_consents(
            uow.session, staff.ctt, leaving_out=backing, name_contains=search, offset=(number - 1) * ENTERPRISES_PAGE,
            limit=ENTERPRISES_PAGE)

    found, total = await read(page_number)
    pages = _pages(total, ENTERPRISES_PAGE)
    if page_number > pages:
        page_number = pages
        found, total = await read(page_number)
    wanted = {a.consent_name for a in ACTION_TYPES.values() if a.consent_name}
    rows = []
    for enterprise, granted_consents in found:
        granted = [c.consent_name for c in granted_consents]
        rows.append({"enterprise": enterprise, "consents": granted, "missing": sorted(wanted - set(granted))})
    return rows, page_number, pages, total


@router.get("/customers")
async def customers(request: Request, staff: StaffDep, uow: UnitOfWorkDep, q: str = "",
                    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
                    enterprise_page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """The customers a page at a time (CUSTOMERS_PAGE), how many there are, and links to the other pages; below them
    the ConnecttoTeams enterprises a page at a time (ENTERPRISES_PAGE). The same statements however many rows. Each
    part only to a login holding its role (`_customer_parts`); the page says which role a part left out needs."""
    _require(staff, CUSTOMERS_ROLE)
    parent = org_uuid(staff.reseller_id) if staff.fusion.level == "system" else None
    search = q.strip() or None
    query = tenants.TenantQuery(search, "name", "asc", parent)
    found, total = await tenants.list_tenants(uow.session, staff.fusion, query, (page_number - 1) * CUSTOMERS_PAGE,
                                              CUSTOMERS_PAGE)
    pages = _pages(total, CUSTOMERS_PAGE)
    if page_number > pages:  # past the last page (an old link, a number typed): the last page
        page_number = pages
        found, total = await tenants.list_tenants(uow.session, staff.fusion, query, (pages - 1) * CUSTOMERS_PAGE,
                                                  CUSTOMERS_PAGE)
    shown = _customer_parts(staff)
    fusion_rows = await _subscription_rows(uow, staff, found, shown)
    backing = {row["subscription"].enterprise_id for entry in fusion_rows for row in entry["subscriptions"]}
    # The enterprises only with their role (ENTERPRISE_ROLE): not read without it
    enterprises, enterprise_page, enterprise_pages, enterprise_total = (
        await _enterprise_rows(uow, staff, backing, search, enterprise_page) if shown["enterprises"] else ([], 1, 1, 0))
    # Each pager's links keep the search and the other list's page
    keep = {"q": q} if q else {}
    context = {"staff": staff, "q": q, "tenants": fusion_rows, "total": total, "enterprises": enterprises,
               "shown": shown, "subscriptions_role": SUBSCRIPTIONS_ROLE, "status_role": STATUS_ROLE,
               "numbers_role": NUMBERS_ROLE, "enterprises_role": ENTERPRISE_ROLE,
               "page": page_number, "pages": pages,
               "query_string": urlencode(keep | ({"enterprise_page": enterprise_page} if enterprise_page > 1 else {})),
               "enterprise_page": enterprise_page, "enterprise_pages": enterprise_pages,
               "enterprise_total": enterprise_total,
               "enterprise_query_string": urlencode(keep | ({"page": page_number} if page_number > 1 else {}))}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "customer-results":
        return page(request, "_customer_results.html", context)
    return page(request, "customers.html", context)


@router.post("/customers")
async def create_customer(request: Request, staff: StaffDep, uow: UnitOfWorkDep,
                          name: Annotated[str, Form()] = "", subscription: Annotated[str, Form()] = "",
                          users: Annotated[str, Form()] = "0") -> Response:
    _require(staff, "tenants.create")
    _require(staff, "tenants.instance.subscriptions.create")
    if not name.strip():
        raise ValidationFailed("Customer name: enter the customer's name")
    check_name("Customer name", name.strip())  # the Fusion API's rule for the same names (they were stored as sent)
    check_name("Subscription name", subscription.strip())
    count = whole_number(users.strip())
    if count is None:
        raise ValidationFailed(f"Teams users: enter a whole number from 0 to {licences.MAX_LICENCES}")
    licences.check_count(count, "Teams users")
    owner = None if staff.fusion.level != "system" else {"type": "reseller", "uuid": org_uuid(staff.reseller_id)}
    tenant = await tenants.create_tenant(uow.session, staff.fusion, name=name.strip(), billing_id=None, markup=None, owner=owner)
    created = await tenants.create_subscription(uow.session, tenant, name=subscription.strip() or "Teams calling",
                                                billing_id=None, ms_teams_users=count, sip_trunk_channels=0)
    target = f"/console/tenants/{tenant.uuid}/subscriptions/{created.id}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.get("/enterprises/{enterprise_id}")
async def enterprise_page(request: Request, enterprise_id: int, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    _require(staff, ENTERPRISE_ROLE)
    enterprise = await orgs.get_enterprise(uow.session, staff.ctt, enterprise_id)
    if enterprise is None:
        raise NotFound(f"Enterprise {enterprise_id} not found")
    return page(request, "enterprise.html", await _enterprise_context(uow, staff, enterprise, link=None))


async def _enterprise_context(uow: UnitOfWorkDep, staff: auth.Staff, enterprise: Enterprise, link: str | None) -> dict[str, Any]:
    reseller = await uow.session.get(Reseller, enterprise.reseller_id)
    # Its webhook deliveries, and the consent link's form, only with their roles (READ_ROLES, CONSENT_LINK_ROLE)
    deliveries = (await activity.webhook_deliveries(uow.session, staff.ctt, enterprise.id)
                  if _may_read(staff, "webhook") else None)
    granted = [c for c in await consents.consents_of(uow.session, enterprise.id)]
    return {"staff": staff, "enterprise": enterprise, "consents": granted, "deliveries": deliveries,
            "actions": sorted(ACTION_TYPES), "redirects": (reseller.registered_redirect_urls if reseller else []) or [],
            "link": link, "deliveries_role": READ_ROLES["webhook"], "link_role": CONSENT_LINK_ROLE,
            "may_link": staff.fusion.holds(CONSENT_LINK_ROLE)}


@router.post("/enterprises/{enterprise_id}/consent-link")
async def consent_link(request: Request, enterprise_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                       container: ContainerDep, action_type: Annotated[str, Form()] = "",
                       redirect_url: Annotated[str, Form()] = "") -> Response:
    _require(staff, ENTERPRISE_ROLE)
    _require(staff, CONSENT_LINK_ROLE)
    enterprise = await orgs.get_enterprise(uow.session, staff.ctt, enterprise_id)
    if enterprise is None:
        raise NotFound(f"Enterprise {enterprise_id} not found")
    settings = container.settings
    url = await consent.create_action_url(  # (by id too: a name another enterprise in scope has was a 409)
        uow.session, staff.ctt, container.connector, container.keyring, action_type=action_type,
        enterprise_name=enterprise.enterprise_name, enterprise_id=enterprise.id, redirect_url=redirect_url,
        callback_url=callback_url(container, request), ttl_seconds=settings.consent_state_ttl_seconds,
        allow_loopback=settings.allow_loopback_redirects)
    if request.headers.get("hx-request"):
        return page(request, "_consent_link.html", {"link": url, "action": action_type})
    # Without JavaScript the form posts here as a page: the enterprise's page with the link in it.
    return page(request, "enterprise.html", await _enterprise_context(uow, staff, enterprise, link=url) | {"action": action_type})


# --- tenant (subscription) --------------------------------------------------------------------------------


def _sub_url(access: SubscriptionAccess) -> str:
    return f"/console/tenants/{access.tenant.uuid}/subscriptions/{access.subscription.id}"


@router.get("/tenants/{uuid}")
async def tenant_page(uuid: str, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    _require(staff, SUBSCRIPTIONS_ROLE)
    tenant = await tenant_in_scope(uow.session, staff.fusion, uuid)
    subscriptions, _ = await tenants.list_subscriptions(uow.session, tenant, None, 0, 1)
    if not subscriptions:
        raise NotFound(f"Tenant {tenant.name} has no subscription yet")
    return RedirectResponse(f"/console/tenants/{uuid}/subscriptions/{subscriptions[0].id}", status_code=303)


async def _onboarding_context(uow: UnitOfWorkDep, staff: auth.Staff, access: SubscriptionAccess) -> dict[str, Any]:
    run = onboarding.current_run(access, await onboarding.latest_run(uow.session, access.subscription.id))
    admin = await onboarding.get_admin(uow.session, access)
    return {"staff": staff, "access": access, "base": _sub_url(access), "state": onboarding.status_of(access, run),
            "run": run, "admin_username": admin.ms_username if admin is not None else None,
            # the wizard's steps, errors and consent link, and the form, only with the Fusion API's roles for them
            "wizard_read": _may_read(staff, "wizard"), "wizard_run": staff.fusion.holds(f"{_MST}.wizard.run")}


@router.get("/tenants/{uuid}/subscriptions/{sub_id}")
async def subscription_page(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    access = await _access(uow, staff, uuid, sub_id, SUBSCRIPTIONS_ROLE)
    # The number inventory card only with its role (NUMBERS_ROLE), as the Fusion API's GET subscription answers it
    counts = await numbers.count_numbers(uow.session, sub_id) if staff.fusion.holds(NUMBERS_ROLE) else None
    jobs = (await bulk.list_jobs(uow.session, access, None, 0, 10))[0] if _may_read(staff, "bulk") else None
    # The readiness and drift cards only with their role: the readiness as last checked (asks Microsoft nothing)
    cards = access.ms_tenant_id is not None and staff.fusion.holds(CARDS_ROLE)
    return page(request, "subscription.html", {
        **await _onboarding_context(uow, staff, access),
        "numbers": _number_counts(counts), "numbers_role": NUMBERS_ROLE,
        "jobs": None if jobs is None else [bulk.job_summary(j) for j in jobs], "history_role": BULK_HISTORY,
        "cards": cards, "cards_role": CARDS_ROLE,
        "checked": READINESS.last(access, access.ms_tenant_id) if cards and access.ms_tenant_id else None})


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/onboarding")
async def onboarding_card(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    """The onboarding card of the tenant page (polled while the wizard runs)."""
    access = await _access(uow, staff, uuid, sub_id, READ_ROLES["wizard"])
    context = await _onboarding_context(uow, staff, access)
    if context["state"] == "onboarded" and request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Refresh": "true"})  # linked: the whole page (its Users tab...)
    return page(request, "_onboarding.html", context)


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/onboarding")
async def run_onboarding(uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep, container: ContainerDep,
                         ms_username: Annotated[str, Form()] = "", ms_password: Annotated[str, Form()] = "") -> Response:
    """The customer's Teams administrator (stored as the Fusion API's POST msteams/admins stores it), then the
    onboarding wizard, as POST msteams/wizard runs it; the tenant page follows its steps."""
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.wizard.run")
    admin = await onboarding.get_admin(uow.session, access)
    username = ms_username.strip()
    if ms_password or admin is None or admin.ms_username != username.lower():
        _require(staff, f"{_MST}.admins.update")
        if not ms_password:
            raise ValidationFailed("Password: enter the Teams administrator's password")
        await onboarding.set_admin(uow.session, container.keyring, access, check_name("Teams administrator", username),
                                   ms_password)
    run_id = (await onboarding.start_wizard(uow.session, access)).id
    uow.after_commit(lambda: enqueue_wizard(run_id), swept=True)
    return RedirectResponse(_sub_url(access), status_code=303)


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/readiness")
async def readiness(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                    container: ContainerDep) -> Response:
    """The readiness card's Check now: the tenant's readiness asked of Microsoft (3 to 5 requests), remembered with
    its time (console/last_checks.py) for the Tenant page to show until asked again."""
    access = await _access(uow, staff, uuid, sub_id, CARDS_ROLE)
    tenant_id = access.require_ms_tenant()
    await uow.end_transaction()  # Microsoft is called with no transaction open
    began = utcnow()
    checked = READINESS.remember(access, tenant_id, await check_tenant_readiness(container.connector, tenant_id), began)
    return _card(request, staff, access, "Readiness", "_readiness.html", {"checked": checked, "base": _sub_url(access)})


def _card(request: Request, staff: auth.Staff, access: SubscriptionAccess, heading: str, fragment: str,
          context: dict[str, Any]) -> Response:
    """A card the tenant page loads into itself (htmx); without JavaScript its link opens it as a page of its own."""
    if request.headers.get("hx-request"):
        return page(request, fragment, context)
    return page(request, "card_page.html", context | {"staff": staff, "access": access, "base": _sub_url(access),
                                                      "heading": heading, "fragment": fragment})


# The tenant page's drift card lists the tenant's oldest open drift events, this many (and says how many more).
VOICE_EVENTS_SHOWN = 100
# The plan its Plan now shows lists the first differences, this many (and says how many more: the API and CLI list all).
PLAN_SHOWN = 200


async def _drift_overview(uow: UnitOfWorkDep, staff: auth.Staff, access: SubscriptionAccess) -> tuple[str, dict[str, Any]]:
    """The subscription's Microsoft tenant and its stored drift state, under the card's rules: the tenant linked, its
    enterprise one the staff member's ConnecttoTeams scope sees (else "not found"). Reads that enterprise only."""
    tenant_id = access.require_ms_tenant()
    overview = await drift.tenant_overview(uow.session, staff.ctt, access.subscription.enterprise_id)
    if overview is None:
        raise NotFound(f"Subscription {access.subscription.id} has no linked Microsoft tenant")
    return tenant_id, overview


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/voice-state")
async def voice_state(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    """Drift state as stored (drift settings, last scan, the open drift events: the oldest VOICE_EVENTS_SHOWN and
    their count), and a Plan now button for the plan. Loaded into the tenant page after it shows: asks Microsoft
    nothing, and reads this tenant's rows only."""
    access = await _access(uow, staff, uuid, sub_id, CARDS_ROLE)
    tenant_id, overview = await _drift_overview(uow, staff, access)
    events = await drift.first_open_events(uow.session, access.subscription.enterprise_id, tenant_id, VOICE_EVENTS_SHOWN)
    return _card(request, staff, access, "Drift and plan", "_voice_state.html",
                 {"overview": overview, "events": events, "more_events": max(0, overview["openDrift"] - len(events)),
                  "tenant_id": tenant_id, "base": _sub_url(access)})


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/voice-state/plan")
async def voice_plan(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                     container: ContainerDep) -> Response:
    """The plan: what apply would change in Teams (read from Microsoft, changes nothing), with the direct routing
    configuration teamsvoice keeps; the first PLAN_SHOWN differences listed. Only when asked (the drift card's Plan
    now): it reads the whole tenant from Microsoft. The drift card's rights."""
    access = await _access(uow, staff, uuid, sub_id, CARDS_ROLE)
    tenant_id, _ = await _drift_overview(uow, staff, access)
    plan, plan_error, routing = None, None, None
    try:  # (current_plan ends the transaction before it calls Microsoft)
        desired, found = await applying.current_plan(uow.session, access.enterprise,
                                                     tenant_voice(container.connector.connect(tenant_id)))
        plan = {"empty": found.empty, "counts": found.counts(), "total": len(found.differences),
                "differences": [d.wire() for d in found.differences[:PLAN_SHOWN]]}
        plan["hidden"] = plan["total"] - len(plan["differences"])
        routing = desired.routing
    except DomainError as exc:  # Microsoft's refusal or outage, in words
        plan_error = exc.message
    return _card(request, staff, access, "Plan", "_voice_plan.html",
                 {"plan": plan, "plan_error": plan_error, "routing": routing, "tenant_id": tenant_id})


# --- users grid -----------------------------------------------------------------------------------------


async def _grid_rows(session: AsyncSession, access: SubscriptionAccess, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = await service.records_for(session, access, [u["msTeams"]["id"] for u in users])
    rows = []
    for user in users:
        record = records.get(user["msTeams"]["id"])
        rows.append({**user["msTeams"], "number": record.phone_number if record else None,
                     "policy": record.voice_routing_policy if record else None,
                     "status": service.sync_status(record) if record else "not configured",
                     "sync_error": (record.last_sync_detail or {}).get("error") if record and record.last_sync_status == "FAILED" else None})
    return rows


async def _free_numbers(session: AsyncSession, access: SubscriptionAccess) -> list[str]:
    free, _ = await numbers.list_numbers(session, access, search=None, offset=0, limit=PICKER_SIZE, free_only=True)
    return [n.e164 for n in free]


# What a change in the grid says once done, when the page is loaded again after it (a form posted without JavaScript
# is answered with a redirect to the grid: `?done=` names one of these, never words of the request's own)
DONE = {"number": "Number assigned", "policy": "Policy changed", "disabled": "Calling disabled; number freed"}


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/users")
async def users_grid(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                     container: ContainerDep, q: str = "", have_number: str = "", next: str = "",  # noqa: A002
                     done: str = "") -> Response:
    access = await _access(uow, staff, uuid, sub_id, USERS_ROLE)
    if have_number not in ("", "yes", "no"):
        raise ValidationFailed("Has a number: choose yes, no or any")
    connection = container.connector.connect(access.require_ms_tenant())
    await uow.end_transaction()
    filters = service.UserFilters(have_number=have_number or None)
    listed = await users_wire.users_page(uow.session, access, connection, container.keyring, page_size=GRID_PAGE,
                                         next_token=next or None, search=q.strip() or None, group=None, filters=filters)
    context = {"staff": staff, "access": access, "base": _sub_url(access), "q": q, "have_number": have_number,
               "rows": await _grid_rows(uow.session, access, listed["users"]), "next": listed.get("next"), "paged": bool(next),
               "free": await _free_numbers(uow.session, access), "csrf": staff.csrf, "done_message": DONE.get(done)}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "grid-body":
        return page(request, "_user_rows.html", context)
    return page(request, "users.html", context)


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/users.csv")
async def export_users(uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep, container: ContainerDep) -> Response:
    access = await _access(uow, staff, uuid, sub_id, USERS_ROLE)
    connection = container.connector.connect(access.require_ms_tenant())
    await uow.end_transaction()
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["upn", "displayName", "country", "number", "vrp", "licenses", "voiceEnabled"])
    next_token: str | None = None
    while True:
        listed = await users_wire.users_page(uow.session, access, connection, container.keyring, page_size=500,
                                             next_token=next_token, search=None, group=None, filters=service.UserFilters())
        for row in await _grid_rows(uow.session, access, listed["users"]):
            writer.writerow([row["userPrincipalName"], row["displayName"] or "", row["location"] or "", row["number"] or "",
                             row["policy"] or "", " ".join(l["skuPartNumber"] for l in row["licenses"]), row["voiceEnabled"]])
        next_token = listed.get("next")
        if not next_token:
            break
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="users-{sub_id}.csv"'})


async def _update_user(request: Request, uow: UnitOfWorkDep, container: ContainerDep, access: SubscriptionAccess,
                       staff: auth.Staff, ms_user_id: str, update: service.UserUpdate, done: str, code: str) -> Response:
    connection = container.connector.connect(access.require_ms_tenant())
    await uow.end_transaction()  # Microsoft is called with no transaction open
    user = await service.directory_user(connection.directory_admin, ms_user_id)
    await service.apply_update(container.sessions, access, connection, user, update)
    if not request.headers.get("hx-request"):  # a form posted without JavaScript: the grid again, saying it is done
        return RedirectResponse(f"{_sub_url(access)}/users?{urlencode({'done': code})}", status_code=303)
    # The change is made: a failure of this read, only to name the row's licences, is no failure of it (a row
    # without them, saying so, where the change answered an error before).
    try:
        skus = await service.sku_map(connection.directory_admin)
        licences, voice, unread = service.render_licences(user, skus), service.voice_enabled(user, skus), None
    except DomainError:
        licences, voice = None, None
        unread = "Licences not shown: Microsoft did not answer. Reload the page to see them."
    entry = {"msTeams": {"id": user.id, "userPrincipalName": user.user_principal_name, "displayName": user.display_name,
                         "location": user.usage_location, "licenses": licences, "voiceEnabled": voice}}
    async with transaction(container.sessions) as session:
        fresh = await subscription_in_scope(session, access.principal, access.tenant.uuid, access.subscription.id)
        rows = await _grid_rows(session, fresh, [entry])
        free = await _free_numbers(session, fresh)
    return page(request, "_user_row.html", {"row": rows[0], "base": _sub_url(access), "free": free,
                                            "staff": None, "csrf": staff.csrf, "done": done, "unread": unread})


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/users/{ms_user_id}/number")
async def assign_number(request: Request, uuid: str, sub_id: int, ms_user_id: str, staff: StaffDep,
                        uow: UnitOfWorkDep, container: ContainerDep, number: Annotated[str, Form()] = "") -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.instance.phone_number.update")
    if not number.strip():
        raise ValidationFailed("Number: pick a free number of this subscription")
    update = service.parse_changes({"phone_number": number.strip()}, {"phone_number": "phoneNumber"})
    return await _update_user(request, uow, container, access, staff, ms_user_id, update,
                              f"Number {update.phone_number} assigned", "number")


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/users/{ms_user_id}/policy")
async def change_policy(request: Request, uuid: str, sub_id: int, ms_user_id: str, staff: StaffDep,
                        uow: UnitOfWorkDep, container: ContainerDep, vrp: Annotated[str, Form()] = "") -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.instance.vrp.update")
    update = service.parse_changes({"vrp": vrp.strip() or None})
    return await _update_user(request, uow, container, access, staff, ms_user_id, update,
                              f"Policy set to {update.vrp}" if update.vrp else "Policy removed", "policy")


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/users/{ms_user_id}/disable")
async def disable_calling(request: Request, uuid: str, sub_id: int, ms_user_id: str, staff: StaffDep,
                          uow: UnitOfWorkDep, container: ContainerDep) -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.instance.phone_number.update")
    update = service.parse_changes({"phone_number": None})
    return await _update_user(request, uow, container, access, staff, ms_user_id, update, DONE["disabled"], "disabled")


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/users/{ms_user_id}/disable")
async def confirm_disable(request: Request, uuid: str, sub_id: int, ms_user_id: str, staff: StaffDep,
                          uow: UnitOfWorkDep, container: ContainerDep) -> Response:
    """Without JavaScript, the grid's Disable asks here first (with it, the browser's confirm asks)."""
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.instance.phone_number.update")
    record = (await service.records_for(uow.session, access, [ms_user_id])).get(ms_user_id)
    connection = container.connector.connect(access.require_ms_tenant())
    await uow.end_transaction()
    user = await service.directory_user(connection.directory_admin, ms_user_id)
    return page(request, "confirm_disable.html", {"staff": staff, "access": access, "base": _sub_url(access), "rid": user.id,
                                                  "upn": user.user_principal_name, "number": record.phone_number if record else None})


# --- bulk CSV -------------------------------------------------------------------------------------------


@router.get("/bulk-template.csv")
async def bulk_template(_staff: StaffDep) -> Response:
    return Response(TEMPLATE, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="bulk-template.csv"'})


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/bulk")
async def bulk_page(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    access = await _access(uow, staff, uuid, sub_id, BULK_ROLE)
    return page(request, "bulk.html", {"staff": staff, "access": access, "base": _sub_url(access), "columns": COLUMNS})


async def _csv_text(upload: UploadFile | None, text: str) -> str:
    if upload is not None and upload.filename:
        raw = await upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("CSV file: must be UTF-8 text") from None
    return text


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/bulk/preview")
async def bulk_preview(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                       file: Annotated[UploadFile | None, File()] = None, csv_text: Annotated[str, Form()] = "",
                       name: Annotated[str, Form()] = "") -> Response:
    access = await _access(uow, staff, uuid, sub_id, BULK_ROLE)
    access.require_ms_tenant()
    htmx = bool(request.headers.get("hx-request"))
    try:
        text = await _csv_text(file, csv_text)
        rows = await preview_rows(uow.session, access, text)
    except DomainError as exc:
        if not htmx:
            raise
        # In the preview's place: an earlier file's preview (and its Run button) must not stay beside this error.
        return page(request, "_flash.html", {"message": exc.message, "error": True})
    bad = [r for r in rows if r["errors"]]
    shown = sorted(bad[:PREVIEW_ROWS] + [r for r in rows if not r["errors"]][:PREVIEW_ROWS], key=lambda r: r["line"])
    context = {"base": _sub_url(access), "rows": shown, "hidden": len(rows) - len(shown), "csv_text": text,
               "csrf": staff.csrf, "name": name.strip() or "Console CSV import", "valid": len(rows) - len(bad),
               "invalid": len(bad), "fragment": htmx}
    if htmx:
        return page(request, "_bulk_preview.html", context)
    # Without JavaScript the form posts here as a page: the bulk page with its preview.
    return page(request, "bulk.html", context | {"staff": staff, "access": access, "columns": COLUMNS, "preview": True})


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/bulk/run")
async def bulk_run(request: Request, uuid: str, sub_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                   container: ContainerDep) -> Response:
    form = await form_of(request, container)  # (not Form() parameters: FastAPI would read it with the 1 MiB limit)
    csv_text, name = (value if isinstance(value := form.get(key), str) else "" for key in ("csv_text", "name"))
    access = await _access(uow, staff, uuid, sub_id, BULK_ROLE)
    rows = await preview_rows(uow.session, access, csv_text)
    items = [r["item"] for r in rows if not r["errors"]]
    if not items:
        raise ValidationFailed("Nothing to run: every row has errors")
    job = await bulk.create_job(uow.session, access, name.strip() or "Console CSV import", items)
    job_key, job_id = job.job_key, job.id
    uow.after_commit(lambda: workflows.enqueue_bulk(job_key, job_id), swept=True)
    target = f"{_sub_url(access)}/jobs/{job_id}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# --- jobs -----------------------------------------------------------------------------------------------


async def _job_context(uow: UnitOfWorkDep, container: ContainerDep, access: SubscriptionAccess, job: FusionBulkJob,
                       staff: auth.Staff | None, items_page: int = 1) -> dict[str, Any]:
    """One page of the job's items (ITEMS_PAGE), so that a job of thousands is not sent whole at every poll."""
    pages = max(1, -(-job.total_count // ITEMS_PAGE))
    items_page = min(max(1, items_page), pages)
    first = (items_page - 1) * ITEMS_PAGE  # items are numbered from 0 in the job's order (their position)
    items = []
    async for item in bulk.items(container.sessions, job.id, page=ITEMS_PAGE, after=first - 1):
        items.append(bulk.item_view(item))
        if len(items) == ITEMS_PAGE:
            break
    return {"staff": staff, "access": access, "base": _sub_url(access), "job": bulk.job_summary(job),
            "final": job.status in bulk.FINAL, "items": items, "items_page": items_page, "items_pages": pages,
            "first_item": first + 1, "last_item": first + len(items)}


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/jobs/{job_id}")
async def job_page(request: Request, uuid: str, sub_id: int, job_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                   container: ContainerDep, items: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.bulk.jobs.details")
    job = await bulk.job_in_scope(uow.session, access, job_id)
    context = await _job_context(uow, container, access, job, staff, items)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "job-progress":
        return page(request, "_job_progress.html", context)
    return page(request, "job.html", context)


async def _job_changed(request: Request, uow: UnitOfWorkDep, container: ContainerDep, access: SubscriptionAccess,
                       job: FusionBulkJob, staff: auth.Staff, back: str) -> Response:
    """After Cancel or Retry: the job's progress (htmx, on the job page), else back to the page the form was on."""
    if request.headers.get("hx-request"):
        return page(request, "_job_progress.html", await _job_context(uow, container, access, job, staff))
    target = back if back in ("/console/jobs", f"{_sub_url(access)}/jobs/{job.id}") else f"{_sub_url(access)}/jobs/{job.id}"
    return RedirectResponse(target, status_code=303)


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/jobs/{job_id}/cancel")
async def cancel_job(request: Request, uuid: str, sub_id: int, job_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                     container: ContainerDep, back: Annotated[str, Form()] = "") -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.bulk")
    job = await bulk.job_in_scope(uow.session, access, job_id)
    await catalogue.cancel(uow.session, staff.ctt.reseller_scope, f"bulk:{job.id}")  # the one rule for every kind
    await uow.end_transaction()
    return await _job_changed(request, uow, container, access, job, staff, back)


@router.post("/tenants/{uuid}/subscriptions/{sub_id}/jobs/{job_id}/retry")
async def retry_job(request: Request, uuid: str, sub_id: int, job_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                    container: ContainerDep, back: Annotated[str, Form()] = "") -> Response:
    """The job's failed and cancelled items run again (domain/jobs/catalogue.py, as the CLI does)."""
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.bulk")
    job = await bulk.job_in_scope(uow.session, access, job_id)
    _retried, enqueue = await catalogue.retry(uow.session, staff.ctt.reseller_scope, f"bulk:{job.id}")
    await uow.end_transaction()
    await enqueue()  # committed first: a crash before this is resumed as a new job's
    return await _job_changed(request, uow, container, access, job, staff, back)


@router.get("/tenants/{uuid}/subscriptions/{sub_id}/jobs/{job_id}/results.csv")
async def job_results(uuid: str, sub_id: int, job_id: int, staff: StaffDep, uow: UnitOfWorkDep,
                      container: ContainerDep) -> Response:
    access = await _access(uow, staff, uuid, sub_id, f"{_MST}.users.bulk.jobs.details")
    job = await bulk.job_in_scope(uow.session, access, job_id)

    async def stream() -> AsyncIterator[str]:
        async for chunk in results_csv(bulk.items(container.sessions, job.id)):
            yield chunk

    return StreamingResponse(stream(), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="bulk-{job.job_id}-results.csv"'})


@router.get("/jobs")
async def jobs(request: Request, staff: StaffDep, uow: UnitOfWorkDep, kind: str = "", status: str = "",
               page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    """Bulk jobs of every subscription the staff member may see, newest first, a page at a time (JOBS_PAGE), to a
    login holding the Fusion API's role for bulk job history; and their other durable work, the newest OTHER_JOBS of
    each kind, narrowed to one kind or status on request. A kind is listed only to a login holding the role its API
    reads it with (READ_ROLES); the page names the kinds left out and their roles."""
    _require(staff, JOBS_ROLE)
    rows: list[dict[str, Any]] | None = None
    total = pages = 0
    if _may_read(staff, "bulk"):
        listed, total = await catalogue.bulk_history(uow.session, staff.fusion, (page_number - 1) * JOBS_PAGE,
                                                     JOBS_PAGE)
        pages = _pages(total, JOBS_PAGE)
        if page_number > pages:  # past the last page (an old link, a number typed): the last page
            page_number = pages
            listed, total = await catalogue.bulk_history(uow.session, staff.fusion, (pages - 1) * JOBS_PAGE, JOBS_PAGE)
        rows = [{"job": bulk.job_summary(job), "tenant": tenant, "subscription": subscription,
                 "base": f"/console/tenants/{tenant.uuid}/subscriptions/{subscription.id}"}
                for job, subscription, tenant in listed]
    hidden = [name for name in catalogue.KINDS if name != "bulk" and not _may_read(staff, name)]
    shown = [name for name in catalogue.KINDS if name != "bulk" and name not in hidden]
    other: list[catalogue.Job] = []
    cut = False
    if kind not in hidden:  # (a hidden kind asked for by name: none of it, and the page says why)
        other, cut = await catalogue.listing(uow.session, staff.ctt.reseller_scope, kind=kind or None,
                                             status=status or None, limit=OTHER_JOBS, leave_out=("bulk", *hidden))
    filters = {"kind": kind, "status": status}
    return page(request, "jobs.html", {
        "staff": staff, "rows": rows, "total": total, "page": page_number, "pages": pages, "history_role": BULK_HISTORY,
        "other": other, "cut": cut, "other_limit": OTHER_JOBS, "filters": filters,
        "kinds": {name: catalogue.KINDS[name] for name in shown},
        "hidden": [(catalogue.KINDS[name], READ_ROLES[name]) for name in hidden],
        "statuses": sorted({s for name in shown for s in catalogue.STATUSES[name]}),
        "query_string": urlencode({k: v for k, v in filters.items() if v})})


# The role each kind of job is retried or cancelled with: its API's (a kind no Fusion route starts: the role of the
# Fusion route nearest it, as READ_ROLES: the wizard's for a consent webhook, teamsvoice's CHANGE_ROLE for the drift
# webhook, POST msteams/sync for a Teams sync).
_JOB_ROLES = {"bulk": f"{_MST}.users.bulk", "wizard": f"{_MST}.wizard.run", "webhook": f"{_MST}.wizard.run",
              "resource-account": f"{_MST}.resource_accounts.update", "voice-apply": VOICE_CHANGE,
              "drift-webhook": VOICE_CHANGE, "sync": f"{_MST}.sync"}


@router.post("/jobs/{kind}/{job_id}/{action}")
async def job_action(kind: str, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], action: str, staff: StaffDep,
                     uow: UnitOfWorkDep) -> Response:
    """Retry or cancel a job of any kind other than bulk (domain/jobs/catalogue.py decides and says why not);
    scoped like the page, and to a login the page opens to (JOBS_ROLE): another reseller's job is "not found"."""
    _require(staff, JOBS_ROLE)
    if action not in ("retry", "cancel"):
        raise NotFound(f"No such action: {action}")
    if kind in READ_ROLES:  # a kind the page shows only with its read role is not acted on without it either
        _require(staff, READ_ROLES[kind])
    if kind in _JOB_ROLES:  # and the role its API route asks to start it (an apply's: teamsvoice's own API's)
        _require(staff, _JOB_ROLES[kind])
    ref = f"{kind}:{job_id}"
    if action == "retry":
        _job, follow = await catalogue.retry(uow.session, staff.ctt.reseller_scope, ref)
    else:
        _job, follow = await catalogue.cancel(uow.session, staff.ctt.reseller_scope, ref)
    if follow is not None:
        uow.after_commit(follow)  # enqueued (or stopped) once the change is committed
    return RedirectResponse("/console/jobs", status_code=303)


# --- audit log ------------------------------------------------------------------------------------------

AUDIT_PAGE = 50


def _audit_query(actor: str, tenant: str, action: str, since: str, until: str) -> audit.AuditQuery:
    return audit.make_query(actor=actor, tenant=tenant, action=action, since=since, until=until)


@router.get("/audit")
async def audit_page(request: Request, staff: StaffDep, uow: UnitOfWorkDep, container: ContainerDep, actor: str = "",
                     tenant: str = "", action: str = "", since: str = "", until: str = "",
                     cursor: Annotated[str | None, Query(max_length=audit_paging.MAX_CURSOR_LENGTH)] = None) -> Response:
    """Who changed what for the staff member's customers (its node and the resellers below it), newest first; to a
    login holding AUDIT_ROLE (the CSV and an entry's page too)."""
    _require(staff, AUDIT_ROLE)
    query = _audit_query(actor, tenant, action, since, until)
    # Keyset pages, as GET /api/teamsvoice/v1/audit's (their cursors): the log counted on the first page only.
    found = await audit_paging.audit_page(uow.session, container.keyring, staff.ctt.reseller_scope, query, limit=AUDIT_PAGE,
                                          cursor=cursor)
    pages = max(1, -(-found.total // AUDIT_PAGE))
    filters = {"actor": actor, "tenant": tenant, "action": action, "since": since, "until": until}
    query_string = urlencode({k: v for k, v in filters.items() if v})
    return page(request, "audit.html", {
        "staff": staff, "filters": filters, "entries": [(e, audit.changes(e)) for e in found.entries], "total": found.total,
        "page": min(pages, found.shown // AUDIT_PAGE + 1), "pages": pages, "query_string": query_string,
        "older": found.next, "newer": found.previous})


@router.get("/audit.csv")
async def audit_csv(staff: StaffDep, uow: UnitOfWorkDep, actor: str = "", tenant: str = "", action: str = "",
                    since: str = "", until: str = "") -> Response:
    _require(staff, AUDIT_ROLE)
    text = await audit.entries_csv(uow.session, staff.ctt.reseller_scope, _audit_query(actor, tenant, action, since, until))
    return Response(text, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@router.get("/audit/{entry_id}")
async def audit_entry(request: Request, entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)], staff: StaffDep, uow: UnitOfWorkDep) -> Response:
    _require(staff, AUDIT_ROLE)
    entry = await audit.entry_in_scope(uow.session, staff.ctt.reseller_scope, entry_id)
    return page(request, "audit_entry.html", {"staff": staff, "entry": entry, "changes": audit.changes(entry)})
