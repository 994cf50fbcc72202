"""The UI's users: a file of `name role hash` lines, the hash argon2id (argon2-cffi's defaults).

The file holds password hashes, so it is treated as a secret: refused unless only its owner
can read it (mode 0600 or 0400), as the VALR secrets file is. `helios-live users add` writes it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from helios_core.errors import ConfigurationError
from helios_live.api.principals import ROLES, Principal, Role
from helios_live.private_file import read_private

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs what a wrong password does.
_ABSENT = _hasher.hash("no such user: the answer is the same either way")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    hash: str


def load_users(path: Path) -> dict[str, User]:
    """The users in `path` by name; ConfigurationError when the file is unsafe or malformed."""
    text = read_private(path, "UI users file")
    users: dict[str, User] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if (
            len(parts) != 3
            or parts[1] not in ROLES
            or not NAME.fullmatch(parts[0])
            or not parts[2].startswith("$argon2")
        ):
            raise ConfigurationError(
                f"UI users file {path}, line {number}: expected `name viewer|operator $argon2id$...`"
            )
        users[parts[0]] = User(parts[0], cast(Role, parts[1]), parts[2])
    return users


def verify(users: dict[str, User], name: str, password: str) -> Principal | None:
    """The user's principal when `password` is theirs; None otherwise, in about the same time."""
    user = users.get(name)
    try:
        _hasher.verify(user.hash if user else _ABSENT, password)
    except (VerificationError, InvalidHashError):
        return None
    return Principal(user.name, user.role, "session") if user else None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if any(char in "\r\n" for char in password):
        return "the password must be one line"
    return None


def add_user(path: Path, name: str, role: Role, password: str) -> bool:
    """Write `name` with `role` and the hash of `password` into `path` (created 0600), replacing
    any line of the same name; whether the user existed."""
    if not NAME.fullmatch(name):
        raise ConfigurationError(f"{name!r} is not a user name: letters, digits and . _ @ - (64 at most)")
    problem = password_problem(password)
    if problem is not None:
        raise ConfigurationError(problem)
    users = load_users(path) if path.exists() else {}
    existed = name in users
    users[name] = User(name, role, _hasher.hash(password))
    text = "".join(f"{user.name} {user.role} {user.hash}\n" for user in users.values())
    # mkstemp: a new file of its own (O_EXCL), 0600 before a byte is written, so the hashes are
    # never readable by others, nor written through a link someone left in the folder.
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return existed
