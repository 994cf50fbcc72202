from datetime import UTC, datetime, timedelta

import pytest

from helios_core.errors import ConfigurationError
from helios_core.pairs import normalise_pair
from helios_core.timeframes import Timeframe


def test_parse_and_format_round_trip() -> None:
    for text in ("1m", "5m", "15m", "1h", "4h", "1d"):
        assert str(Timeframe.parse(text)) == text
    assert Timeframe.parse("15m").duration == timedelta(minutes=15)


def test_ordering_and_divisibility() -> None:
    one, five, fifteen = (Timeframe.parse(t) for t in ("1m", "5m", "15m"))
    assert one < five < fifteen
    assert five.divides(fifteen)
    assert not fifteen.divides(five)


@pytest.mark.parametrize("bad", ["2m", "5min", "", "1M"])
def test_unknown_timeframe_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown timeframe"):
        Timeframe.parse(bad)


def test_floor_uses_utc_boundaries_and_refuses_naive() -> None:
    tf = Timeframe.parse("15m")
    assert tf.floor(datetime(2024, 1, 1, 12, 14, 59, tzinfo=UTC)) == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert tf.floor(datetime(2024, 1, 1, 12, 15, tzinfo=UTC)) == datetime(2024, 1, 1, 12, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        tf.floor(datetime(2024, 1, 1, 12, 15))  # noqa: DTZ001 -- the naive value is the point of the test


def test_pair_spellings_normalise_to_one() -> None:
    assert normalise_pair("btc-zar") == normalise_pair("BTC/ZAR") == normalise_pair(" BTCZAR ") == "BTCZAR"
    with pytest.raises(ConfigurationError):
        normalise_pair("B$")
