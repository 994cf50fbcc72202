"""The alerting service: severity routing, throttling of a flapping condition, every rule firing
and recovering, deliveries recorded in the ledger (later, when the ledger was the problem), and
the kernel that runs it. Time is a number the tests move; channels are in-memory inboxes (the
channels' own protocols are tested against local servers in test_alert_channels.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from helios_live.alerts.alert import Alert, AlertSeverity
from helios_live.alerts.build import build_alerts, channels
from helios_live.alerts.channels import DeliveryError
from helios_live.alerts.delivery import Policy
from helios_live.alerts.recorder import Recorder
from helios_live.alerts.rules import RULES, Conditions, Readings
from helios_live.alerts.service import Alerts
from helios_live.alerts.throttle import Throttle
from helios_live.clock import TestClock
from helios_live.kernel.alerting import readings
from helios_live.kernel.kernel import Kernel
from helios_live.kernel.model_watch import rolled_back_to
from helios_live.ledger import Ledger
from helios_live.ledger.alerts import AlertDelivery
from helios_live.ledger.store import LedgerError
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings
from tests.alert_support import AT, Inbox, Sleeps
from tests.live_support import in_process, live_settings

T0 = AT.timestamp()
HEALTHY = Readings(
    running=True,
    stream_problem="",
    stream_silent_s=1.0,
    ledger_error="",
    drawdown=0.01,
    max_drawdown=0.15,
    daily_return=0.0,
    daily_loss=0.05,
    circuit="closed",
    spent_usd=1.0,
    day_max_usd=10.0,
)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _alerts(*inboxes: Inbox, throttle_s: float = 300.0, reminder_s: float = 0.0) -> tuple[Alerts, Clock, list[Any]]:
    """The service on `inboxes`, its clock, and the ALERT engine events it records."""
    clock, events = Clock(), []

    async def record(kind: str, pair: str | None = None, **detail: Any) -> None:
        events.append((kind, detail))

    alerts = Alerts(
        inboxes or (Inbox(),), Throttle(throttle_s, reminder_s), Conditions(300.0), Policy(), sleep=Sleeps()
    )
    alerts.bind(clock, record, None)
    return alerts, clock, events


async def _settle(alerts: Alerts) -> None:
    while alerts._tasks:
        await asyncio.gather(*alerts._tasks)


def test_each_channel_gets_the_alerts_at_or_above_its_floor_and_their_recoveries() -> None:
    every, warnings, critical = (
        Inbox("all"),
        Inbox("warn", AlertSeverity.WARNING),
        Inbox("crit", AlertSeverity.CRITICAL),
    )
    alerts, _, events = _alerts(every, warnings, critical)

    async def run() -> None:
        alerts.on_event("MODEL_REFUSED", None, {"version": "v9", "reason": "feature set 3 != 4"})  # WARNING
        alerts.on_event("EMERGENCY_STOP", None, {"reason": "operator", "closed_positions": ["k1"]})  # CRITICAL
        alerts.on_event("EMERGENCY_STOP_CLEARED", None, {"reason": "ok"})
        await _settle(alerts)

    asyncio.run(run())

    assert (
        every.seen
        == warnings.seen
        == [
            ("model_refused", "model", "FIRING"),
            ("emergency_stop", "engine", "FIRING"),
            ("emergency_stop", "engine", "RESOLVED"),
        ]
    )
    assert critical.seen == [("emergency_stop", "engine", "FIRING"), ("emergency_stop", "engine", "RESOLVED")]
    fired, resolved = critical.alerts
    assert fired.alert_id == resolved.alert_id and fired.severity is AlertSeverity.CRITICAL
    assert "operator" in fired.message and "1 position(s) closed" in fired.message
    # every alert is an engine event too, naming the channels it went to
    assert [(d["rule"], d["state"], d["channels"]) for _, d in events] == [
        ("model_refused", "FIRING", ["all", "warn"]),
        ("emergency_stop", "FIRING", ["all", "warn", "crit"]),
        ("emergency_stop", "RESOLVED", ["all", "warn", "crit"]),
    ]
    assert {kind for kind, _ in events} == {"ALERT"}


def test_a_flapping_condition_sends_one_alert_and_one_recovery() -> None:
    inbox = Inbox()
    alerts, clock, _ = _alerts(inbox, throttle_s=300.0)
    down = replace(HEALTHY, ledger_error="OperationalError: could not connect")

    async def run() -> None:
        for step, state in enumerate([down, HEALTHY, down, HEALTHY, down, HEALTHY]):
            clock.t = T0 + 10 * step
            await alerts.check(state)
        await _settle(alerts)
        clock.t = T0 + 400  # past the window, healthy: nothing more to say
        await alerts.check(HEALTHY)
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == [("ledger_unreachable", "ledger", "FIRING"), ("ledger_unreachable", "ledger", "RESOLVED")]


def test_a_condition_that_comes_back_within_the_window_and_stays_is_sent_when_the_window_ends() -> None:
    inbox = Inbox()
    alerts, clock, _ = _alerts(inbox, throttle_s=300.0)
    down = replace(HEALTHY, drawdown=0.2)

    async def run() -> list[tuple[str, str, str]]:
        for t, state in [(0, down), (10, HEALTHY), (20, down), (200, down)]:
            clock.t = T0 + t
            await alerts.check(state)
        await _settle(alerts)
        held = list(inbox.seen)
        clock.t = T0 + 311  # the recovery at +10 opened the window: it ends at +310
        await alerts.check(down)
        await _settle(alerts)
        return held

    held = asyncio.run(run())

    assert held == [("drawdown_limit", "portfolio", "FIRING"), ("drawdown_limit", "portfolio", "RESOLVED")]
    assert inbox.seen[2:] == [("drawdown_limit", "portfolio", "FIRING")]
    assert inbox.alerts[2].alert_id != inbox.alerts[0].alert_id  # a new episode


def test_a_condition_that_stays_firing_is_sent_once_and_reminded_only_when_asked() -> None:
    quiet, reminded = Inbox(), Inbox()
    once, clock, _ = _alerts(quiet)
    again, clock2, _ = _alerts(reminded, reminder_s=3600.0)
    down = replace(HEALTHY, circuit="open")

    async def run() -> None:
        for t in range(0, 7300, 10):
            clock.t = clock2.t = T0 + t
            await once.check(down)
            await again.check(down)
        await _settle(once)
        await _settle(again)

    asyncio.run(run())

    assert quiet.seen == [("llm_circuit_open", "approval", "FIRING")]
    assert [a.reminder for a in reminded.alerts] == [False, True, True]
    assert len({a.alert_id for a in reminded.alerts}) == 1 and "still firing" in reminded.alerts[1].title


EVENT_RULES = [
    ("emergency_stop", ("EMERGENCY_STOP", {"reason": "drawdown 16% reached the 15% hard stop"}),
     ("EMERGENCY_STOP_CLEARED", {"reason": "operator"})),
    ("model_refused", ("MODEL_REFUSED", {"version": "v2", "reason": "sha256 mismatch"}),
     ("MODEL_LOADED", {"version": "v3", "previous": "v1"})),
    ("surveillance_critical",
     ("SECURITY_EVENT", {"event_id": "ev-1", "type": "oracle_deviation", "venue": "hyperliquid", "asset": "BTC",
                         "severity": "CRITICAL", "score": 97.0, "pairs": ["BTCZAR"]}),
     ("SECURITY_EVENT_ENDED", {"event_id": "ev-1", "type": "oracle_deviation", "venue": "hyperliquid",
                               "asset": "BTC", "severity": "CRITICAL", "score": 12.0, "pairs": ["BTCZAR"]})),
    ("reconciliation_mismatch",
     ("RECONCILIATION_MISMATCH", {"reconciliation": 4, "mismatches": [{"key": "o1", "detail": "unknown order o1"}]}),
     ("RECONCILIATION_ACKNOWLEDGED", {"reconciliation": 4, "by": "ops", "note": "manual trade"})),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "fire", "clear"), EVENT_RULES, ids=[r[0] for r in EVENT_RULES])
def test_an_event_rule_fires_on_its_event_and_recovers_on_the_one_that_ends_it(
    rule: str, fire: tuple[str, dict[str, Any]], clear: tuple[str, dict[str, Any]]
) -> None:
    inbox = Inbox()
    alerts, _, _ = _alerts(inbox)

    async def run() -> None:
        alerts.on_event(fire[0], None, fire[1])
        alerts.on_event(fire[0], None, fire[1])  # the same condition again: no second alert
        alerts.on_event(clear[0], None, clear[1])
        await _settle(alerts)

    asyncio.run(run())

    assert [(r, s) for r, _, s in inbox.seen] == [(rule, "FIRING"), (rule, "RESOLVED")]
    assert inbox.alerts[0].severity is RULES[rule]


def test_a_security_event_below_critical_alerts_nobody() -> None:
    inbox = Inbox()
    alerts, _, _ = _alerts(inbox)

    async def run() -> None:
        alerts.on_event("SECURITY_EVENT", None, {"event_id": "ev-2", "severity": "HIGH", "type": "vault"})
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == []


def test_a_rollback_is_one_notice_per_window() -> None:
    inbox = Inbox()
    alerts, clock, _ = _alerts(inbox)
    rollback = {"version": "v1", "previous": "v2", "reason": "rollback from v2"}

    async def run() -> None:
        alerts.on_event("MODEL_ROLLED_BACK", None, rollback)
        clock.t += 60
        alerts.on_event("MODEL_ROLLED_BACK", None, rollback)
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == [("model_rolled_back", "v1", "FIRING")]
    assert "from v2 to v1" in inbox.alerts[0].message


TIMER_RULES = [
    ("ledger_unreachable", {"ledger_error": "LedgerError: ledger sqlite:///x is unreachable"}),
    ("drawdown_limit", {"drawdown": 0.15}),
    ("daily_loss_limit", {"daily_return": -0.051}),
    ("llm_circuit_open", {"circuit": "half_open"}),
    ("llm_spend_cap", {"spent_usd": 10.0}),
]


@pytest.mark.parametrize(("rule", "firing"), TIMER_RULES, ids=[r[0] for r in TIMER_RULES])
def test_a_timer_rule_fires_while_its_reading_is_past_the_limit_and_recovers(rule: str, firing: dict[str, Any]) -> None:
    inbox = Inbox()
    alerts, clock, _ = _alerts(inbox)

    async def run() -> None:
        await alerts.check(HEALTHY)
        clock.t += 10
        await alerts.check(replace(HEALTHY, **firing))
        clock.t += 10
        await alerts.check(replace(HEALTHY, **firing))
        clock.t += 10
        await alerts.check(HEALTHY)
        await _settle(alerts)

    asyncio.run(run())

    assert [(r, s) for r, _, s in inbox.seen] == [(rule, "FIRING"), (rule, "RESOLVED")]


def test_the_stream_alerts_once_it_has_been_down_over_five_minutes_and_recovers_when_back() -> None:
    inbox = Inbox()
    alerts, clock, _ = _alerts(inbox)
    down = replace(HEALTHY, stream_problem="stream not connected", stream_silent_s=None)

    async def run() -> list[tuple[str, str, str]]:
        for t in range(0, 301, 10):  # down from +0: exactly 300 s is not yet "over five minutes"
            clock.t = T0 + t
            await alerts.check(down)
        await _settle(alerts)
        before = list(inbox.seen)
        clock.t = T0 + 310
        await alerts.check(down)
        clock.t = T0 + 320
        await alerts.check(HEALTHY)
        await _settle(alerts)
        return before

    before = asyncio.run(run())

    assert before == []
    assert inbox.seen == [("stream_down", "stream", "FIRING"), ("stream_down", "stream", "RESOLVED")]
    assert "down for 310 s: stream not connected" in inbox.alerts[0].message


def test_a_silent_stream_counts_its_silence_from_its_last_message() -> None:
    alerts, _, _ = _alerts(inbox := Inbox())

    async def run() -> None:  # first seen down now, but silent for 290 s already
        await alerts.check(replace(HEALTHY, stream_problem="stream silent for 290 s", stream_silent_s=301.0))
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == [("stream_down", "stream", "FIRING")]


def test_a_stopped_engine_reports_no_stream_outage() -> None:
    alerts, _, _ = _alerts(inbox := Inbox())

    async def run() -> None:
        await alerts.check(
            replace(HEALTHY, running=False, stream_problem="stream not connected", stream_silent_s=900.0)
        )
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == []


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'helios.db'}")
    ledger.migrate()
    return ledger


def test_the_ledger_unreachable_alert_goes_out_and_its_record_lands_once_the_ledger_is_back(tmp_path: Path) -> None:
    ledger, inbox, clock = _ledger(tmp_path), Inbox(), Clock()
    executor = ThreadPoolExecutor(1)
    down = {"now": True}

    def write(rows: list[AlertDelivery]) -> int:
        if down["now"]:
            raise LedgerError("ledger sqlite:///helios.db is unreachable: disk I/O error")
        return ledger.record_alert_deliveries(rows)

    async def writes(rows: list[AlertDelivery]) -> int:
        return await asyncio.get_running_loop().run_in_executor(executor, write, rows)

    alerts = Alerts([inbox], Throttle(300.0), Conditions(300.0), Policy(), sleep=Sleeps())
    recorder = Recorder(writes, lambda: True)
    alerts.bind(clock, None, recorder)

    async def run() -> int:
        await alerts.check(replace(HEALTHY, ledger_error="LedgerError: disk I/O error"))
        await _settle(alerts)
        waiting = len(recorder.pending)
        down["now"] = False
        clock.t += 10
        await alerts.check(HEALTHY)  # the recovery, and the flush of what waited
        await _settle(alerts)
        await alerts.close()
        return waiting

    waiting = asyncio.run(run())
    executor.shutdown()

    assert inbox.seen == [("ledger_unreachable", "ledger", "FIRING"), ("ledger_unreachable", "ledger", "RESOLVED")]
    assert waiting == 1 and not recorder.pending
    rows = ledger.alert_deliveries(rule="ledger_unreachable").items
    assert [(r["state"], r["outcome"], r["channel"], r["attempts"]) for r in rows] == [
        ("RESOLVED", "DELIVERED", "inbox", 1),
        ("FIRING", "DELIVERED", "inbox", 1),
    ]
    assert rows[1]["raised_at"] == AT and rows[0]["alert_id"] == rows[1]["alert_id"]


def test_the_kernel_alerts_an_emergency_stop_and_records_the_delivery_and_the_alert(tmp_path: Path) -> None:
    inbox, ops = Inbox(), TestClock(T0)
    settings = live_settings(tmp_path)
    base = in_process(settings)
    alerts = Alerts([inbox], Throttle(300.0), Conditions(300.0), Policy(), check_s=10.0, sleep=Sleeps())
    # No health timer: its HEALTH event would be a write that succeeds, ending the outage this test fakes.
    kernel = Kernel(
        settings, base.ledger, base.registry, base.clock, base.client, ops_clock=ops, health=False, alerts=alerts
    )

    async def run() -> tuple[Readings, list[tuple[str, str, str]]]:
        await kernel.start(connect=False)
        await kernel.set_emergency_stop(True, "operator: test")
        await _settle(alerts)
        read = readings(kernel)
        # The writer's view of an outage (the database itself stays up: the rows land meanwhile).
        kernel.ledger_writer.health.fail(LedgerError("ledger sqlite:///x is unreachable"))
        await ops.advance_to(T0 + 10)  # the "alerts" timer on the ops clock
        await _settle(alerts)
        during = list(inbox.seen)
        kernel.ledger_writer.health.ok()
        await ops.advance_to(T0 + 20)
        await _settle(alerts)
        await kernel.close()
        return read, during

    read, during = asyncio.run(run())

    assert read.running and (read.drawdown, read.max_drawdown, read.daily_loss) == (0.0, 0.15, 0.05)
    assert read.circuit == "closed" and read.spent_usd is None  # the rule-based approver spends nothing
    assert during == [("emergency_stop", "engine", "FIRING"), ("ledger_unreachable", "ledger", "FIRING")]
    assert "operator: test" in inbox.alerts[0].message
    assert inbox.seen[2:] == [("ledger_unreachable", "ledger", "RESOLVED")] and inbox.closed
    rows = kernel.ledger.alert_deliveries().items
    assert [(r["rule"], r["state"], r["outcome"], r["severity"]) for r in reversed(rows)] == [
        ("emergency_stop", "FIRING", "DELIVERED", "CRITICAL"),
        ("ledger_unreachable", "FIRING", "DELIVERED", "CRITICAL"),
        ("ledger_unreachable", "RESOLVED", "DELIVERED", "CRITICAL"),
    ]
    events = kernel.ledger.events(kind="ALERT").items
    assert [e["detail"]["rule"] for e in reversed(events)] == [
        "emergency_stop",
        "ledger_unreachable",
        "ledger_unreachable",
    ]
    assert events[-1]["detail"]["channels"] == ["inbox"]


def test_a_rollback_in_the_registry_is_told_apart_from_a_promotion(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    registry._record("promote", "v1", previous=None, reason="first")
    registry._record("promote", "v2", previous="v1", reason="better")

    promoted = rolled_back_to(registry, "v2")
    registry._record("rollback", "v1", previous="v2", reason="rollback from v2")

    assert promoted is None
    assert rolled_back_to(registry, "v1") == "rollback from v2"
    assert rolled_back_to(registry, "v2") is None


def test_the_settings_build_a_channel_for_each_one_configured_with_its_floor() -> None:
    settings = HeliosSettings(
        alerts_webhook_url="https://hooks.example.org/helios",
        alerts_slack_url="https://hooks.slack.com/services/T/B/X",
        alerts_telegram_token="123:abc",  # noqa: S106 -- a fake bot token
        alerts_telegram_chat_id="-1001",
        alerts_smtp_host="smtp.example.org",
        alerts_smtp_from="helios@example.org",
        alerts_smtp_to="ops@example.org, oncall@example.org",
    ).alerts

    built = channels(settings)

    assert {c.name: c.min_severity for c in built} == {
        "webhook": AlertSeverity.INFO,
        "slack": AlertSeverity.WARNING,
        "telegram": AlertSeverity.WARNING,
        "email": AlertSeverity.CRITICAL,
    }
    assert "services/T/B/X" not in repr(built) and "123:abc" not in repr(built)
    assert isinstance(settings.slack_url, SecretStr) and "hooks.slack.com" not in str(settings)
    assert channels(HeliosSettings().alerts) == []  # nothing configured: logged and recorded as events only
    assert build_alerts(HeliosSettings().alerts).policy == Policy(3, 1.0, 5.0)


@pytest.mark.parametrize(
    ("flat", "refusal"),
    [
        ({"alerts_slack_url": "http://hooks.slack.com/services/T/B/X"}, "https://"),
        ({"alerts_telegram_token": "123:abc"}, "HELIOS_ALERTS_TELEGRAM_CHAT_ID"),
        ({"alerts_smtp_host": "smtp.example.org"}, "HELIOS_ALERTS_SMTP_FROM"),
        (
            {
                "alerts_smtp_host": "smtp.example.org",
                "alerts_smtp_from": "a@b",
                "alerts_smtp_to": "c@d",
                "alerts_smtp_username": "u",
                "alerts_smtp_starttls": False,
            },
            "in clear",
        ),
    ],  # fmt: skip
)
def test_a_channel_configured_unsafely_or_in_part_is_refused(flat: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ValidationError, match=refusal):
        HeliosSettings(**flat)


class Broken(Inbox):
    """A channel whose service is down (every try fails, a retry could help), or never answers."""

    def __init__(self, name: str, hang: bool = False) -> None:
        super().__init__(name)
        self.hang, self.tries = hang, 0

    async def send(self, alert: Alert) -> None:
        self.tries += 1
        if self.hang:
            await asyncio.Event().wait()
        raise DeliveryError(f"{self.name}: HTTP 503", retry=True)


def test_a_failing_channel_delays_no_other_and_its_failure_is_recorded() -> None:
    inbox, broken, records = Inbox(), Broken("broken"), []

    async def write(rows: list[AlertDelivery]) -> None:
        records.extend(rows)

    sleeps = Sleeps()
    alerts = Alerts([broken, inbox], Throttle(300.0), Conditions(300.0), Policy(), sleep=sleeps)
    alerts.bind(Clock(), None, Recorder(write, lambda: True))

    async def run() -> None:
        alerts.on_event("EMERGENCY_STOP", None, {"reason": "operator"})
        await _settle(alerts)

    asyncio.run(run())

    assert inbox.seen == [("emergency_stop", "engine", "FIRING")] and broken.tries == 4
    assert sleeps.waits == [1.0, 2.0, 4.0]
    assert sorted((r.channel, r.outcome, r.attempts, r.error) for r in records) == [
        ("broken", "FAILED", 4, "broken: HTTP 503"),
        ("inbox", "DELIVERED", 1, None),
    ]


def test_closing_never_waits_longer_than_its_grace_for_a_channel_that_hangs() -> None:
    hung = Broken("hung", hang=True)
    alerts = Alerts([hung], Throttle(300.0), Conditions(300.0), Policy(timeout_s=3600.0), close_grace_s=0.05)
    alerts.bind(Clock(), None, None)

    async def run() -> None:
        alerts.on_event("EMERGENCY_STOP", None, {"reason": "operator"})
        await asyncio.sleep(0)
        await alerts.close()

    asyncio.run(run())

    assert hung.tries == 1 and hung.closed and not alerts._tasks


def test_writes_that_hang_count_as_an_unreachable_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = in_process(live_settings(tmp_path))
    assert readings(kernel).ledger_error == ""
    backlog = "3 ledger write(s) queued, the oldest waiting 45 s"
    checks = {**kernel.health_checks(), "ledger_backlog": backlog}
    monkeypatch.setattr(kernel, "health_checks", lambda: checks)
    assert kernel.ledger_writer.health.failing == 0  # nothing failed: the database just does not answer
    assert readings(kernel).ledger_error == backlog
