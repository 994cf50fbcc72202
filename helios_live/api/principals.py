"""Who is calling: a principal, its role, and how it authenticated (docs/live.md, "Security")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "operator"]
Via = Literal["token", "session", "loopback"]
ROLES: tuple[Role, ...] = ("viewer", "operator")


@dataclass(frozen=True, slots=True)
class Principal:
    """`viewer` reads; `operator` reads and acts. `via` is `token` (a bearer token), `session` (the
    UI's cookie) or `loopback` (development mode, where every local caller is this operator)."""

    name: str
    role: Role
    via: Via

    @property
    def operator(self) -> bool:
        return self.role == "operator"


DEVELOPER = Principal("local", "operator", "loopback")
