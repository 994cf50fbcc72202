"""Pair symbols: one spelling everywhere (upper case, no separator, as VALR writes BTCZAR)."""

import re

from helios_core.errors import ConfigurationError

_SYMBOL = re.compile(r"^[A-Z0-9]{4,20}$")


def normalise_pair(text: str) -> str:
    """`btc-zar`, `BTC/ZAR` and `BTCZAR` all become `BTCZAR`; garbage is refused."""
    symbol = re.sub(r"[-_/ ]", "", text.strip().upper())
    if not _SYMBOL.match(symbol):
        raise ConfigurationError(f"invalid pair symbol {text!r}")
    return symbol


# The quote currencies a pair may end in, longest first where one ends another (USDT before USD).
QUOTES = ("ZAR", "USDT", "USDC", "USD", "EUR", "BTC", "ETH", "PERP")


def split_pair(symbol: str) -> tuple[str, str]:
    """(base, quote) of a canonical pair; ("", "") when it ends in no known quote."""
    quote = next((q for q in QUOTES if symbol.endswith(q)), "")
    base = symbol.removesuffix(quote) if quote else ""
    return (base, quote) if base else ("", "")
