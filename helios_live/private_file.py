"""A file that holds secrets (VALR credentials, the UI's password hashes): read only when no one
but its owner can read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from helios_core.errors import ConfigurationError


def read_private(path: Path, what: str) -> str:
    """The text of `path`; ConfigurationError, naming it as `what`, when it is missing, readable
    by its group or others (mode 0600 or 0400 only), or owned by another user."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = oct(stat.S_IMODE(info.st_mode))
        raise ConfigurationError(f"{what} {path} has mode {mode}: make it 0600 (chmod 600 {path})")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigurationError(f"{what} {path} belongs to another user")
    return path.read_text()
