"""No task dies quietly: a failing task is recorded and restarted, one that keeps failing stops
the engine by its rule, a failing timer is recorded once per streak and keeps its schedule."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from helios_live.clock import TestClock, TimeEvent
from helios_live.data.recorded import buckets
from helios_live.kernel.kernel import EngineStateError
from helios_live.kernel.supervisor import Supervisor
from tests.conftest import sample
from tests.live_support import feed, in_process, live_settings, make_bundle


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.gave_up: list[str] = []

    async def record(self, kind: str, pair: str | None = None, **detail: Any) -> None:
        self.events.append((kind, detail))

    async def give_up(self, task: str) -> None:
        self.gave_up.append(task)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def test_a_failing_task_is_recorded_and_restarted_until_it_succeeds() -> None:
    recorder, errors = Recorder(), Counter[str]()
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise OSError("disk gone")

    async def run() -> None:
        supervisor = Supervisor(TestClock(start_s=0.0), recorder.record, errors, recorder.give_up)
        await asyncio.wait_for(supervisor.task("flaky", flaky, restart_s=0.001), 5)

    asyncio.run(run())

    assert runs == 3 and errors["task:flaky"] == 2
    assert recorder.kinds() == ["TASK_FAILED", "TASK_FAILED"]
    assert recorder.events[0][1]["error"] == "OSError: disk gone" and recorder.events[1][1]["failures"] == 2


def test_a_task_that_keeps_failing_is_given_up_by_the_stated_rule() -> None:
    recorder, errors = Recorder(), Counter[str]()

    async def broken() -> None:
        raise RuntimeError("bug")

    async def run() -> None:
        supervisor = Supervisor(TestClock(start_s=0.0), recorder.record, errors, recorder.give_up)
        await supervisor.task("broken", broken, restart_s=0.001, max_failures=3)

    asyncio.run(run())

    assert recorder.kinds() == ["TASK_FAILED", "TASK_FAILED", "TASK_FAILED", "TASK_GAVE_UP"]
    assert recorder.events[2][1]["restart_in_s"] is None and recorder.gave_up == ["broken"]


def test_a_task_that_ran_a_while_before_failing_starts_its_count_again() -> None:
    recorder, errors = Recorder(), Counter[str]()
    clock = TestClock(start_s=0.0)
    runs = 0

    async def long_lived() -> None:
        nonlocal runs
        runs += 1
        if runs % 2 == 0:
            await clock.advance_to(clock.timestamp() + 61)  # this run lasted more than a minute
        if runs < 6:
            raise RuntimeError("rare")

    async def run() -> None:
        supervisor = Supervisor(clock, recorder.record, errors, recorder.give_up)
        await supervisor.task("long", long_lived, restart_s=0.001, max_failures=3)

    asyncio.run(run())

    assert runs == 6 and recorder.gave_up == []  # five failures, never three in a row
    assert [d["failures"] for k, d in recorder.events if k == "TASK_FAILED"] == [1, 1, 2, 1, 2]


def test_a_failing_timer_is_recorded_once_per_streak_and_keeps_its_schedule() -> None:
    recorder, errors = Recorder(), Counter[str]()
    supervisor = Supervisor(TestClock(start_s=0.0), recorder.record, errors, recorder.give_up)
    outcomes = iter([OSError("a"), OSError("b"), None, OSError("c")])
    runs = 0

    def poll(event: TimeEvent) -> None:
        nonlocal runs
        runs += 1
        failure = next(outcomes)
        if failure is not None:
            raise failure

    clock = TestClock(start_s=0.0)
    clock.set_timer("poll", 1.0, supervisor.timer("poll", poll))
    asyncio.run(clock.advance_to(4.0))

    assert runs == 4 and errors["timer:poll"] == 3
    assert recorder.kinds() == ["TIMER_FAILED", "TIMER_RECOVERED", "TIMER_FAILED"]
    assert "poll" in clock.timer_names  # it was never stopped


def test_a_model_watcher_that_cannot_read_the_registry_is_recorded_and_keeps_polling(tmp_path: Path) -> None:
    kernel = in_process(live_settings(tmp_path))
    make_bundle(kernel.settings.models_root)
    events = buckets("BTCPERP", sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(10))
    broken = True

    def active() -> str | None:
        if broken:
            raise OSError("Input/output error: models/ACTIVE")
        return None

    async def run() -> None:
        nonlocal broken
        await kernel.start(connect=False)
        kernel.registry.active = active  # type: ignore[method-assign]
        await feed(kernel, events[:5])  # five polls fail: one recorded failure, all counted
        broken = False
        await feed(kernel, events[5:])
        await kernel.close()

    asyncio.run(run())
    kinds = [e["kind"] for e in kernel.ledger.events(limit=100).items][::-1]

    assert kinds.count("TIMER_FAILED") == 1 and kinds.count("TIMER_RECOVERED") == 1
    failed = kernel.ledger.events(kind="TIMER_FAILED", limit=1).items[0]["detail"]
    assert failed == {"timer": "model-poll", "error": "OSError: Input/output error: models/ACTIVE"}
    assert kernel.errors["timer:model-poll"] >= 4 and kernel.status == "STOPPED"


def test_a_pair_worker_that_keeps_failing_stops_the_engine_with_an_emergency_stop(tmp_path: Path) -> None:
    kernel = in_process(live_settings(tmp_path), lockstep=False)
    make_bundle(kernel.settings.models_root)

    async def run() -> None:
        await kernel.start(connect=False)
        for name, task in list(kernel.supervisor.tasks.items()):
            if name.startswith("pair-"):
                task.cancel()  # stand in for a worker loop that is itself broken

        async def broken() -> None:
            raise RuntimeError("worker bug")

        kernel.supervisor.task("pair-BTCPERP", broken, restart_s=0.001, max_failures=5)
        for _ in range(200):
            if kernel.status == "STOPPED":
                break
            await asyncio.sleep(0.01)
        await kernel.close()

    asyncio.run(run())
    kinds = [e["kind"] for e in kernel.ledger.events(limit=100).items][::-1]

    assert kinds.count("TASK_FAILED") == 5 and "TASK_GAVE_UP" in kinds
    assert kinds.index("EMERGENCY_STOP") > kinds.index("TASK_GAVE_UP") and kinds[-1] == "STOP"
    assert kernel.emergency_stop


def test_a_replay_in_lockstep_hears_that_the_engine_stopped_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    kernel = in_process(live_settings(tmp_path), lockstep=True)
    make_bundle(kernel.settings.models_root)
    events = buckets("BTCPERP", sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet").head(5))

    async def run() -> None:
        await kernel.start(connect=False)
        await feed(kernel, events[:2])
        kernel.supervisor.tasks["pair-BTCPERP"].cancel()  # the pair's worker is gone
        waiting = asyncio.ensure_future(kernel.on_event(events[2]))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # lockstep: it waits for the event to be handled
        await kernel.stop()
        with pytest.raises(EngineStateError, match="STOPPED"):
            await asyncio.wait_for(waiting, 5)
        await kernel.close()

    asyncio.run(run())
