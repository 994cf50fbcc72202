"""De-duplication and throttling per condition, keyed by (rule, subject); time is an argument.

- A condition that begins is sent at once, unless its last message (a recovery) went out less
  than `window_s` ago: then it waits, and goes out when the window ends if it still holds.
- A condition that holds is not sent again (with `reminder_s`, once more every `reminder_s`).
- A condition that ends after its alert went out sends its recovery at once; one that ends
  while it waited sends nothing.

So a condition flapping within the window sends one alert and one recovery, and one that
settles in the firing state is heard of again when the window ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from helios_live.alerts.alert import State

Key = tuple[str, str]


@dataclass(slots=True)
class _Condition:
    firing: bool
    sent: State | None = None  # the last state sent
    sent_at: float = 0.0


class Throttle:
    def __init__(self, window_s: float, reminder_s: float = 0.0) -> None:
        self.window_s, self.reminder_s = window_s, reminder_s
        self._conditions: dict[Key, _Condition] = {}
        self._notices: dict[Key, float] = {}

    def observe(self, key: Key, firing: bool, now: float) -> State | None:
        """The condition as seen now: the state to send now, if any."""
        condition = self._conditions.get(key)
        if condition is None:
            if not firing:
                return None
            condition = self._conditions[key] = _Condition(firing)
        condition.firing = firing
        if not firing:
            if condition.sent == "FIRING":
                return self._sent(condition, "RESOLVED", now)
            return None
        if condition.sent == "FIRING":
            return None
        if condition.sent is None or now - condition.sent_at >= self.window_s:
            return self._sent(condition, "FIRING", now)
        return None  # a recovery went out within the window: held (flapping)

    def due(self, now: float) -> list[tuple[Key, bool]]:
        """Alerts whose window has ended while the condition still holds, and reminders: each
        key with whether it is a reminder."""
        out = []
        for key, condition in self._conditions.items():
            if not condition.firing:
                continue
            if condition.sent != "FIRING" and now - condition.sent_at >= self.window_s:
                self._sent(condition, "FIRING", now)
                out.append((key, False))
            elif condition.sent == "FIRING" and self.reminder_s and now - condition.sent_at >= self.reminder_s:
                self._sent(condition, "FIRING", now)
                out.append((key, True))
        return out

    def notice(self, key: Key, now: float) -> bool:
        """A one-off event (a rollback): whether to send it, at most once per window per key."""
        last = self._notices.get(key)
        if last is not None and now - last < self.window_s:
            return False
        self._notices[key] = now
        return True

    @staticmethod
    def _sent(condition: _Condition, state: State, now: float) -> State:
        condition.sent, condition.sent_at = state, now
        return state
