"""One user's change (or read) sent with the same change of other users in one Microsoft call (a group commit).

Graph takes some changes for many users in one call: a voice routing policy grant (`policy/userAssignments`,
many users per call) and a licence assignment (`assignLicense` inside a `$batch` of 20); and any requests, up to
20, in one `$batch` (`GraphClient.batched`: a bulk item's reads of its user and voice state, its number's start).
A bulk job's items each ask for one user. A `Coalescer` lets such a one-user change join the open batch of its key
(the tenant and what the change is); the change that finds no call of its key on its way sends its batch at once,
with every change that joined meanwhile, and later ones join the next batch, sent when that call returns. So a
one-user change alone is sent at once (no waiting for company), and a bulk job's changes, arriving faster than
one call spends waiting for the tenant's budget and on the wire, share calls: one round trip per batch. Only
changes of the same job share calls (`budget.current_job`): a one-user change is never held behind a call of a
bulk job's batch.

`send(members)` sends one batch and answers, per member, its failure (an exception) or its answer (what `join`
returns to it: a read's body; a change that succeeded needs none, and a member missing from the Mapping is
answered None). When it raises instead, the failure is every member's, except a refusal (a DomainError that is not
a transient UpstreamError) of a shared call: each member is then sent again alone, so that a refusal (an
unknown user, say) is only its own member's. A transient failure is every member's, and each retries as its
job does. A sender that is cancelled leaves its batch unsent; a member still waiting sends it.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from teamsvoice.core.errors import DomainError
from teamsvoice.microsoft.budget import current_job

Send = Callable[[list[str]], Awaitable[Mapping[str, Any]]]  # per member: its failure (an exception) or its answer


@dataclass
class _Batch:
    members: list[str] = field(default_factory=list)
    answers: Mapping[str, Any] | None = None  # None: not sent yet


class Coalescer:
    def __init__(self) -> None:
        self._open: dict[tuple[Hashable, ...], _Batch] = {}
        self._locks: dict[tuple[Hashable, ...], asyncio.Lock] = {}
        self._members: dict[tuple[Hashable, ...], int] = {}  # members joined and not yet answered, per key

    async def join(self, key: tuple[Hashable, ...] | None, member: str, send: Send, *, limit: int) -> Any:
        """Sends `member`'s change with its key's batch (at most `limit` members per call); raises its failure,
        else answers its answer (None when `send` gave none). Without a key it is sent alone."""
        if key is None:
            return _answer(await _send([member], send), member)
        # Per event loop (`serve` runs requests and jobs on two) and per job (budget.current_job): a one-user change
        # never waits for a call of a bulk job's batch, which may queue a second for the tenant's budget.
        scoped = (id(asyncio.get_running_loop()), current_job.get(), *key)
        batch = self._open.get(scoped)
        if batch is None or len(batch.members) >= limit:
            batch = self._open[scoped] = _Batch()
        batch.members.append(member)
        self._members[scoped] = self._members.get(scoped, 0) + 1
        try:
            async with self._locks.setdefault(scoped, asyncio.Lock()):  # one call of a key on its way at a time
                if batch.answers is None:  # not sent yet: this member sends it for all that joined
                    if self._open.get(scoped) is batch:
                        del self._open[scoped]
                    batch.answers = await _send(list(dict.fromkeys(batch.members)), send)
        finally:
            self._members[scoped] -= 1
            if not self._members[scoped]:  # the key's last member: nothing of it is kept (a job's keys end with it)
                del self._members[scoped]
                self._locks.pop(scoped, None)
                self._open.pop(scoped, None)
        return _answer(batch.answers, member)


def _answer(answers: Mapping[str, Any], member: str) -> Any:
    answer = answers.get(member)
    if isinstance(answer, BaseException):
        raise answer
    return answer


async def _send(members: list[str], send: Send) -> Mapping[str, Any]:
    try:
        return await send(members)
    except Exception as exc:
        refusal = isinstance(exc, DomainError) and not getattr(exc, "retryable", False)
        if len(members) == 1 or not refusal:
            return {member: exc for member in members}
    answers: dict[str, Any] = {}
    for member in members:
        try:
            answers.update(await send([member]))
        except Exception as exc:
            answers[member] = exc
    return answers


COALESCER = Coalescer()  # the process's: every tenant connection's changes meet here
