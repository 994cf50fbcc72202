"""Text the API accepts from a client: no control characters (NUL included) and no lone
surrogates. No field needs one, PostgreSQL refuses NUL in text, and neither database can store a
lone surrogate: letting them through turns a bad request into a 500."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

REFUSED = frozenset({"Cc", "Cs"})  # Unicode categories: control characters, surrogates


def has_control(text: str) -> bool:
    return any(unicodedata.category(char) in REFUSED for char in text)


def _printable(text: str) -> str:
    if has_control(text):
        raise ValueError("control characters are not allowed")
    return text


Text = Annotated[str, AfterValidator(_printable)]
