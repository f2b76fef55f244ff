"""What the job engine takes as read for REMEMBER_SECONDS (jobs/runtime._remembered: DBOS's latest-version question and
its queues' settings). Threads read at once in a worker (its queue threads and its items): a read that began before
another must never leave its older answer in place of the other's, whichever ends last. A fake clock and events
order the threads; nothing here depends on timing."""

import threading

import pytest

from teamsvoice.jobs import runtime


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    clock = [500.0]
    monkeypatch.setattr(runtime, "_monotonic", lambda: clock[0])
    return clock


def test_an_answer_is_kept_for_its_time_and_none_is_not_kept(now: list[float]) -> None:
    stored = {"q": 1}
    asked: list[str] = []

    def read(key: str) -> int | None:
        asked.append(key)
        return stored.get(key)

    remembered = runtime._remembered(read)
    assert remembered("q") == 1
    stored["q"] = 2
    now[0] += runtime.REMEMBER_SECONDS - 0.01
    assert remembered("q") == 1 and asked == ["q"]
    now[0] += 0.01
    assert remembered("q") == 2 and asked == ["q", "q"]
    assert remembered("missing") is None and remembered("missing") is None
    assert asked.count("missing") == 2  # not found: asked again each time
    asked.clear()
    assert remembered("q", **{}) == 2 and asked == []  # no keyword given: remembered
    with_options = runtime._remembered(lambda key, **options: asked.append(key) or key)
    assert with_options("k", fresh=True) == "k" and with_options("k", fresh=True) == "k"
    assert asked == ["k", "k"]  # a call with keyword arguments always reads


def test_a_read_that_began_first_and_ends_last_does_not_replace_the_later_ones_answer(now: list[float]) -> None:
    stored = {"q": "before"}
    slow_reading, slow_may_end = threading.Event(), threading.Event()

    def read(key: str) -> str:
        answer = stored[key]
        if threading.current_thread().name == "slow":  # read the old value, then held until the other has stored
            slow_reading.set()
            assert slow_may_end.wait(10)
        return answer

    remembered = runtime._remembered(read)
    answers: list[str] = []
    slow = threading.Thread(target=lambda: answers.append(remembered("q")), name="slow")
    slow.start()
    assert slow_reading.wait(10)
    stored["q"] = "after"  # an operator's change, read by a later caller
    assert remembered("q") == "after"
    slow_may_end.set()
    slow.join(10)
    assert answers == ["before"]  # the slow caller gets what it read
    stored["q"] = "later still"
    assert remembered("q") == "after"  # the later read's answer is the one remembered
