"""Dependencies shared by both API families: the container and the unit of work (the request's one
transaction: committed when the handler returns, rolled back when it raises; see `core.db.transaction`)."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.api.throttling import client_address
from teamsvoice.container import Container
from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction, transaction
from teamsvoice.core.limits import parse_json
from teamsvoice.core.logging import request_id_var
from teamsvoice.core.security import token_digest
from teamsvoice.domain.audit import context as audit
from teamsvoice.domain.audit.service import record_call_if_silent


def container_of(request: Request) -> Container:
    """The app's container. The request's own dependencies (the unit of work, the callers) read it here rather
    than through `ContainerDep`: every node of a route's dependency graph costs FastAPI a resolution per request
    (a sub-dependency is walked again wherever it is named, even when its value is cached)."""
    return request.app.state.container


async def get_container(request: Request) -> Container:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request
    return container_of(request)


class _Caller(Protocol):
    @property
    def expires_at(self) -> datetime | None: ...


C = TypeVar("C", bound=_Caller)


async def cached_caller(container: Container, family: str, token: str, resolve: Callable[[], Awaitable[C]]) -> C:
    """The caller a bearer token names: from this process's credential cache (`core/credential_cache.py`: by
    the token's digest, for TEAMSVOICE_CREDENTIAL_CACHE_SECONDS and never past the token's expiry), else
    `resolve()`d (the family's check against the database, which raises on a bad token) and kept."""
    cache = container.credentials
    digest = token_digest(token)
    caller = cache.get(family, digest)
    if caller is None:
        generation = cache.generation()  # before reading: a change committed meanwhile leaves it unstored
        caller = await resolve()
        if caller.expires_at is not None:
            cache.put(family, digest, caller, generation=generation,
                      token_lifetime_seconds=(caller.expires_at - utcnow()).total_seconds())
    return caller


log = logging.getLogger("teamsvoice.api")


async def start_swept(start: Callable[[], Awaitable[None]]) -> None:
    """Starts work the request committed and that the workers' sweep also starts should this fail (the module's
    `resume_unstarted`, every TEAMSVOICE_JOB_ORPHAN_SWEEP_SECONDS): a failure to enqueue (the job engine's database
    busy or away) is logged, and the request answers what it committed. Raised, it answered 500 for a job recorded,
    which then ran all the same: the client told no sent it again."""
    try:
        await start()
    except Exception:  # noqa: BLE001 - committed: the sweep starts it; the answer stays the truth
        log.warning("work committed could not be enqueued; the workers' sweep starts it", exc_info=True)


@dataclass
class UnitOfWork:
    """The request's session; hooks registered with `after_commit` (job enqueues) run once it committed."""

    session: AsyncSession
    _after_commit: list[tuple[Callable[[], Awaitable[None]], bool]] = field(default_factory=list)

    def after_commit(self, hook: Callable[[], Awaitable[None]], *, swept: bool = False) -> None:
        """`swept`: the hook starts work the commit recorded and a workers' sweep starts too (`start_swept`); else
        its failure is the request's (a 500: nothing recorded says what it was to start)."""
        self._after_commit.append((hook, swept))

    async def end_transaction(self) -> None:
        """Commits what the request wrote so far before Microsoft is asked (or a job awaited); see
        `core.db.end_transaction`. The request's own commit still runs when the handler returns."""
        await end_transaction(self.session)


def audit_scope(request: Request) -> audit.AuditScope:
    """The request as the audit log sees it; the auth dependencies name the actor (audit.identify)."""
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    # The family by the path's first segments: the scope's path has them as the URL would (no URL built).
    return audit.AuditScope(family=audit.family_of_path(request.scope["path"]), source=f"{request.method} {route}",
                            request_id=request_id_var.get(), source_ip=client_address(request),
                            method=request.method, route=route)


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    container = container_of(request)
    scope = audit_scope(request)
    token = audit.open_scope(scope)
    try:
        with audit.submitting(scope):  # jobs this request enqueues act on behalf of its caller
            async with transaction(container.sessions) as session:
                uow = UnitOfWork(session)
                yield uow
                await record_call_if_silent(session)  # every write of ours is in the audit log (domain/audit)
            for hook, swept in uow._after_commit:
                await (start_swept(hook) if swept else hook())
    finally:
        audit.close_scope(token)


async def read_json(request: Request) -> Any:
    """The body of a route that reads it itself, whatever its content type, as JSON (an empty body is null), with
    core.limits.parse_json's rules and 400s."""
    return parse_json(await request.body() or b"null")


ContainerDep = Annotated[Container, Depends(get_container)]
# scope="function": commit happens before the response is sent, so a failed commit is never reported as success.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]
