"""Strict numbers from the wire: what an exchange sends as a decimal string or a JSON number.

Python's `float()` is too lenient for money: it reads `"3_7000"` as 37000, `" 1 "` as 1,
Arabic-Indic digits as digits, and `"1e300"` or `"inf"` as prices. A price or a quantity here is
ASCII text `float()` reads with no digit separators and no surrounding space (or a JSON number),
finite and no larger in magnitude than `MAX_ABS`. Plain string checks, not a regex: this runs
for every field of every message (four times cheaper, benchmarks/bench_stream.py).
"""

from __future__ import annotations

from typing import Any

MAX_ABS = 1e15  # no price, quantity or volume any venue quotes comes near it


def strict_number(value: Any) -> float:
    """`value` as a float; ValueError for anything else, or for a number beyond +-MAX_ABS."""
    if isinstance(value, str):
        if "_" in value or not value.isascii() or value.strip() != value:
            raise ValueError(f"{value!r} is not a plain decimal number")
        x = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            x = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"{str(value)[:20]}... is out of range") from None
    else:
        raise ValueError(f"{value!r} is not a number")
    if not -MAX_ABS <= x <= MAX_ABS:  # False for NaN too
        raise ValueError(f"{value!r} is out of range")
    return x
