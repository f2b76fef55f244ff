"""Dependencies shared by both API families: the container and the unit of work."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.container import Container


def get_container(request: Request) -> Container:
    return request.app.state.container


@dataclass
class UnitOfWork:
    """The request's session; hooks registered with `after_commit` (job enqueues) run once it committed."""

    session: AsyncSession
    _after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def after_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._after_commit.append(hook)


async def unit_of_work(container: Annotated[Container, Depends(get_container)]) -> AsyncIterator[UnitOfWork]:
    async with container.sessions() as session:
        uow = UnitOfWork(session)
        try:
            yield uow
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        for hook in uow._after_commit:
            await hook()


ContainerDep = Annotated[Container, Depends(get_container)]
# scope="function": commit happens before the response is sent, so a failed commit is never reported as success.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]
