"""What a process remembers of a tenant (core/remembered.py): read once however many ask at the same time."""

import asyncio
import concurrent.futures
import threading

from teamsvoice.core.remembered import Remembered


async def test_callers_asking_together_share_one_read_and_later_ones_none() -> None:
    memory: Remembered[str] = Remembered(60.0)
    reads = 0

    async def read() -> str:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)  # on the wire: the others ask meanwhile
        return "value"

    assert await asyncio.gather(*(memory.recall("tenant", read) for _ in range(10))) == ["value"] * 10
    assert await memory.recall("tenant", read) == "value"
    assert reads == 1 and memory._reading == {}  # nothing is kept of the read once its askers are answered


async def test_a_failed_read_fails_its_caller_and_the_next_caller_reads_again() -> None:
    memory: Remembered[str] = Remembered(60.0)
    answers = [RuntimeError("Microsoft is down"), "value"]

    async def read() -> str:
        await asyncio.sleep(0.01)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    first, second = await asyncio.gather(memory.recall("tenant", read), memory.recall("tenant", read), return_exceptions=True)
    assert isinstance(first, RuntimeError) and second == "value"
    assert memory.get("tenant") == "value" and memory._reading == {}


async def test_a_forgotten_value_is_read_again() -> None:
    memory: Remembered[int] = Remembered(0.0)  # forgotten at once
    reads = iter(range(10))

    async def read() -> int:
        return next(reads)

    assert [await memory.recall("k", read) for _ in range(3)] == [0, 1, 2]


def test_expired_values_are_dropped_not_only_ignored() -> None:
    """A process that served thousands of tenants over a day keeps only what is still remembered."""
    memory: Remembered[int] = Remembered(0.0)
    for tenant in range(10 * Remembered.SWEEP_FROM):
        memory.put(tenant, tenant)
    assert len(memory._values) <= Remembered.SWEEP_FROM
    lasting: Remembered[int] = Remembered(3600.0)
    for tenant in range(3 * Remembered.SWEEP_FROM):
        lasting.put(tenant, tenant)
    assert all(lasting.get(tenant) == tenant for tenant in range(3 * Remembered.SWEEP_FROM))


def test_a_caller_on_another_event_loop_reads_for_itself() -> None:
    """`serve` runs requests and jobs on two loops: a caller on one loop is not made to wait on the other loop's read
    (an asyncio lock cannot be awaited from another loop)."""
    memory: Remembered[str] = Remembered(60.0)
    first_reading, release_first = threading.Event(), threading.Event()

    async def ask(value: str, reading: threading.Event | None = None) -> str:
        async def read() -> str:
            if reading is not None:
                reading.set()
                await asyncio.to_thread(release_first.wait, 10)
            return value
        return await memory.recall("tenant", read)

    with concurrent.futures.ThreadPoolExecutor(1) as other:
        first = other.submit(asyncio.run, ask("first", first_reading))
        assert first_reading.wait(10)
        assert asyncio.run(ask("second")) == "second"  # while the other loop's read is still on its way
        release_first.set()
        assert first.result(10) == "first"
    assert memory._reading == {}
