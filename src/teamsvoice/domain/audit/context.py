"""Who is acting: one `AuditScope` per request (opened by the unit of work, named by the auth dependencies) or
per job step (the job, on behalf of whoever submitted it), carried in a contextvar so that every database write
made while it is open is recorded against it (domain/audit/recorder.py) without the write having to ask.

Jobs: the request runs inside `submitting(scope)`, so DBOS stores the caller as the authenticated user of any
workflow the request enqueues; inside a step `job_scope()` reads it back (with the workflow id) and
`teamsvoice.jobs.runtime.JobContext.run` carries it onto the engine's event loop."""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CONNECTTOTEAMS, FUSION, TEAMSVOICE, CONSOLE, JOB, SYSTEM = "connecttoteams", "fusion", "teamsvoice", "console", "job", "system"
CLI = "cli"

# Write routes that change nothing (vendor "get..." calls sent as POST/PUT) and the sign-in routes, whose
# entries are the sign-ins themselves (recorder.py: a new access token or session, or the console's own record).
READ_ONLY_WRITES = frozenset({
    ("PUT", "/reseller/getAuthenticatedUser"),
    ("POST", "/pbx/getBasicPBXLocationDetailsForEnterprise"),
    ("POST", "/pbx/getSBCRegistrationsForEnterprise"),
    ("POST", "/pbx/getDirectRoutesForEnterprise"),
    ("POST", "/enterprise/getEnterpriseInfoForTenant"),
    ("POST", "/sms/getEnterpriseSMSConfig/{enterpriseId}"),
    ("POST", "/console/tenants/{uuid}/subscriptions/{sub_id}/bulk/preview"),
})
SIGN_IN_ROUTES = frozenset({("POST", "/oauth/token"), ("POST", "/api/v01/auth/login"), ("POST", "/console/login")})


def family_of_path(path: str) -> str:
    if path == "/console" or path.startswith("/console/"):
        return CONSOLE
    if path.startswith("/api/v01/"):
        return FUSION
    if path.startswith("/api/teamsvoice/"):
        return TEAMSVOICE
    return CONNECTTOTEAMS


@dataclass
class Actor:
    name: str
    login_family: str | None = None  # connecttoteams or fusion: which kind of login `login_id` is
    login_id: int | None = None
    reseller_id: int | None = None
    on_behalf_of: str | None = None

    def label(self) -> str:
        return f"{self.login_family}:{self.name}" if self.login_family else self.name


@dataclass
class AuditScope:
    family: str
    source: str | None = None
    request_id: str | None = None
    source_ip: str | None = None
    actor: Actor | None = None
    method: str | None = None
    route: str | None = None
    recorded: int = field(default=0)
    submits: bool = field(default=False)  # inside `submitting`: identify() names DBOS's authenticated user too

    @property
    def is_write(self) -> bool:
        return self.method is not None and self.method not in ("GET", "HEAD", "OPTIONS")

    @property
    def needs_call_entry(self) -> bool:
        """A successful write call that changed no row of ours still leaves an entry (e.g. Microsoft-only work)."""
        key = (self.method or "", self.route or "")
        return self.is_write and self.recorded == 0 and key not in READ_ONLY_WRITES and key not in SIGN_IN_ROUTES


_scope: contextvars.ContextVar[AuditScope | None] = contextvars.ContextVar("teamsvoice_audit_scope", default=None)
# The operator of a CLI process (`teamsvoice --actor`): the actor of its writes where no request or job acts.
_operator: AuditScope | None = None


def current() -> AuditScope | None:
    return _scope.get()


def act_as_operator(name: str, source: str | None = None) -> AuditScope:
    """For the rest of this process, writes made outside a request or job are the operator's (family "cli")."""
    global _operator
    _operator = AuditScope(family=CLI, source=source, actor=Actor(name=name[:255]))
    return _operator


def stop_acting_as_operator() -> None:
    global _operator
    _operator = None


def operator() -> AuditScope | None:
    return _operator


@contextmanager
def operator_submitting() -> Iterator[None]:
    """Jobs the CLI enqueues inside this block run on behalf of its operator (DBOS's authenticated user)."""
    scope = _operator
    if scope is None or scope.actor is None:
        yield
        return
    with acting(scope), submitting(scope):
        from dbos._context import set_current_authentication

        set_current_authentication(f"{scope.family} {scope.actor.label()}"[:255], None)
        yield


def open_scope(scope: AuditScope) -> contextvars.Token[AuditScope | None]:
    return _scope.set(scope)


def close_scope(token: contextvars.Token[AuditScope | None]) -> None:
    try:
        _scope.reset(token)
    except ValueError:  # reset from another context (a dependency torn down elsewhere): nothing to undo here
        pass


@contextmanager
def acting(scope: AuditScope | None) -> Iterator[None]:
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def identify(*, name: str, login_family: str, login_id: int | None, reseller_id: int | None) -> None:
    """Called by the auth dependencies once the caller is known."""
    scope = _scope.get()
    if scope is not None:
        scope.actor = Actor(name=name, login_family=login_family, login_id=login_id, reseller_id=reseller_id)
        if scope.submits:
            from dbos._context import set_current_authentication

            set_current_authentication(f"{scope.family} {scope.actor.label()}"[:255], None)


def job_scope() -> AuditScope | None:
    """Inside a DBOS workflow or step: the job as actor, on behalf of its submitter (None outside the engine)."""
    try:
        from dbos import DBOS
        from dbos._context import get_local_dbos_context
    except ImportError:  # pragma: no cover - dbos is a dependency
        return None
    if get_local_dbos_context() is None:
        return None
    try:
        workflow_id = DBOS.workflow_id
        submitter = DBOS.authenticated_user
    except Exception:  # noqa: BLE001 - not inside a workflow
        return None
    if not workflow_id:
        return None
    return AuditScope(family=JOB, actor=Actor(name=f"job {workflow_id}"[:255], on_behalf_of=submitter))


@contextmanager
def submitting(scope: AuditScope) -> Iterator[None]:
    """While open (the whole request: its handler, the jobs a route enqueues itself and the after-commit hooks),
    jobs enqueued record the scope's actor as their submitter: DBOS's authenticated user, set by `identify`."""
    from dbos._context import DBOSContextSetAuth

    block = DBOSContextSetAuth(None, None)
    block.__enter__()
    scope.submits = True
    try:
        yield
    finally:
        scope.submits = False
        try:
            block.__exit__(None, None, None)
        except ValueError:  # torn down in another context than it was opened in: that context ends with the request
            pass
