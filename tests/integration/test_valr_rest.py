"""The VALR REST source against a local server speaking VALR's format on loopback."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from helios_core.candles import validate_candles, validate_trades
from helios_core.errors import SourceError, TemporaryError
from helios_core.timeframes import Timeframe
from helios_live.data.recorded import Recorded
from helios_live.venues.valr.rest import ValrRestSource
from helios_live.venues.valr.simulator.rest import ValrRestServer, serving
from tests.conftest import sample

DAY = (datetime(2022, 1, 5, tzinfo=UTC), datetime(2022, 1, 6, tzinfo=UTC))
LATER = lambda: datetime(2030, 1, 1, tzinfo=UTC)  # noqa: E731 -- a clock long after the data


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    btc = validate_candles(sample("BTC-PERP_1m_2021-12-31_2022-02-01.parquet"), Timeframe.parse("1m"), "btc")
    trades = sample("XRP-ETH_trades_2019-10.parquet")
    xrp = validate_candles(sample("XRP-ETH_1m_2019-10.parquet"), Timeframe.parse("1m"), "xrp")
    return Recorded(candles={"BTCZAR": btc, "XRPETH": xrp}, trades={"XRPETH": trades})


@pytest.fixture
def server(recorded: Recorded) -> Iterator[ValrRestServer]:
    with serving(recorded) as srv:
        yield srv


def source(server: ValrRestServer, **kwargs: object) -> tuple[ValrRestSource, list[float]]:
    sleeps: list[float] = []
    options: dict[str, object] = {"clock": LATER, "sleep": sleeps.append, "max_retries": 3, "backoff_s": 0.01} | kwargs
    return ValrRestSource(server.url, **options), sleeps  # type: ignore[arg-type]


def test_a_day_is_paginated_300_buckets_at_a_time_and_equals_the_recording(
    server: ValrRestServer, recorded: Recorded
) -> None:
    client, _ = source(server)
    batch = client.fetch_candles("BTCZAR", *DAY)
    expected = recorded.candles["BTCZAR"]
    expected = expected.loc[(expected["ts"] >= pd.Timestamp(DAY[0])) & (expected["ts"] < pd.Timestamp(DAY[1]))]
    assert len(server.requests) == 5  # ceil(1440 / 300)
    pd.testing.assert_frame_equal(batch.candles, expected.reset_index(drop=True))
    assert batch.complete_until == pd.Timestamp(DAY[1])


def test_the_open_bucket_is_not_returned(server: ValrRestServer) -> None:
    client, _ = source(server, clock=lambda: datetime(2022, 1, 5, 12, 0, 30, tzinfo=UTC))
    batch = client.fetch_candles("BTCZAR", *DAY)
    assert batch.candles["ts"].iloc[-1] == pd.Timestamp("2022-01-05T11:59:00Z")
    assert batch.complete_until == pd.Timestamp("2022-01-05T12:00:00Z")


def test_429_honours_retry_after_and_5xx_backs_off(server: ValrRestServer) -> None:
    server.faults.statuses = [429, 503, 500]
    server.faults.retry_after_s = 2.5
    client, sleeps = source(server)
    batch = client.fetch_candles("BTCZAR", *DAY)
    assert len(batch.candles) == 1440
    assert sleeps == [2.5, 0.02, 0.04]  # Retry-After, then exponential backoff


def test_persistent_server_errors_give_up_with_a_temporary_error(server: ValrRestServer) -> None:
    server.faults.statuses = [502] * 10
    client, sleeps = source(server)
    with pytest.raises(TemporaryError, match=r"server error 502; gave up after 4 attempts"):
        client.fetch_candles("BTCZAR", *DAY)
    assert len(sleeps) == 3


def test_timeouts_are_retried_then_reported(server: ValrRestServer) -> None:
    server.faults.stall_s = 0.5
    client, _ = source(server, timeout_s=0.1, max_retries=1)
    with pytest.raises(TemporaryError, match="timed out"):
        client.fetch_candles("BTCZAR", *DAY)


def test_client_errors_fail_at_once_with_the_servers_message(server: ValrRestServer) -> None:
    client, sleeps = source(server)
    with pytest.raises(
        SourceError, match=r"GET .*/v1/public/NOPEZAR/buckets.* failed with 400: Currency pair NOPEZAR is not supported"
    ):
        client.fetch_candles("NOPEZAR", *DAY)
    assert sleeps == []


def test_a_malformed_page_names_the_request(server: ValrRestServer) -> None:
    server.faults.malformed_pages = 1
    client, _ = source(server)
    with pytest.raises(SourceError, match=r"GET .*buckets\?periodSeconds=60&startTime=1641340800.* not JSON"):
        client.fetch_candles("BTCZAR", *DAY)


def test_an_empty_answer_is_an_error_naming_the_request(server: ValrRestServer) -> None:
    client, _ = source(server)
    with pytest.raises(SourceError, match=r"buckets: empty answer for BTCZAR in \[2023-01-01"):
        client.fetch_candles("BTCZAR", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))


def test_5m_and_15m_buckets_are_supported(server: ValrRestServer) -> None:
    client, _ = source(server, period_seconds=900)
    batch = client.fetch_candles("BTCZAR", *DAY)
    assert len(batch.candles) == 96 and str(batch.timeframe) == "15m"


def test_trade_history_pages_backwards_and_comes_back_in_time_order(server: ValrRestServer, recorded: Recorded) -> None:
    client, _ = source(server)
    start, end = datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 11, 6, tzinfo=UTC)
    trades = client.fetch_trades("XRPETH", start, end)
    expected = validate_trades(recorded.trades["XRPETH"], "x")
    expected = expected.loc[(expected["ts"] >= pd.Timestamp(start)) & (expected["ts"] < pd.Timestamp(end))].reset_index(
        drop=True
    )
    assert trades is not None and len(trades) > 100  # more than one page
    pd.testing.assert_frame_equal(trades, expected)


def test_reference_candles_rebuilt_from_trade_history_equal_the_buckets(server: ValrRestServer) -> None:
    client, _ = source(server)
    start, end = datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 12, tzinfo=UTC)
    buckets = client.fetch_candles("XRPETH", start, end).candles
    rebuilt = client.reference_candles("XRPETH", start, end)
    assert rebuilt is not None and len(rebuilt) == len(buckets) > 500
    columns = ["ts", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(rebuilt[columns], buckets[columns], check_exact=False, rtol=1e-12)
    assert rebuilt["buy_volume"].notna().all() and buckets["buy_volume"].isna().all()
