"""GET /api/performance and the analytics gauges on /metrics, from marts published as Parquet in
a tmp home: a ledger's figures, another ledger's, none before the first build, an unknown ledger,
nulls as null (never NaN), and the files read again only when they change."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from helios_live.api.app import create_app
from helios_live.data.analytics import BUILT_AT, analytics_dir
from tests.live_support import live_settings

BUILT = "2026-12-05T17:03:18+00:00"
BUILT_S = 1796490198.0  # BUILT as Unix time
END = date(2026, 12, 4)
NAN = float("nan")
TOKEN = "Vb7nQ2xL9kT4mR8wZ1cP-perf"  # noqa: S105 -- a test secret (a tokenless service answers loopback hosts only)
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PERFORMANCE = pa.schema(
    [
        ("ledger", pa.string()),
        ("period", pa.string()),
        ("window_days", pa.int32()),
        ("as_of", pa.date32()),
        ("days", pa.int64()),
        ("total_return", pa.float64()),
        ("sharpe", pa.float64()),
        ("sortino", pa.float64()),
        ("var_95", pa.float64()),
        ("var_99", pa.float64()),
        ("max_drawdown", pa.float64()),
        ("equity", pa.float64()),
        ("trades", pa.int64()),
        ("win_rate", pa.float64()),
        ("profit_factor", pa.float64()),
        ("net_pnl", pa.float64()),
    ]
)
GO_LIVE = pa.schema(
    [
        ("ledger", pa.string()),
        ("window_start", pa.date32()),
        ("window_end", pa.date32()),
        ("position", pa.int32()),
        ("criterion", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.decimal128(12, 2)),
        ("comparison", pa.string()),
        ("observations", pa.int64()),
        ("observed", pa.string()),
        ("passed", pa.bool_()),
        ("note", pa.string()),
    ]
)


def perf(ledger: str, period: str, window: int | None, **figures: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ledger": ledger, "period": period, "window_days": window, "as_of": END, "days": 30, "total_return": 0.02,
        "sharpe": 1.5, "sortino": 2.0, "var_95": 0.01, "var_99": 0.02, "max_drawdown": 0.05, "equity": 102_000.0,
        "trades": 12, "win_rate": 0.5, "profit_factor": 1.25, "net_pnl": 2_000.0,
    }  # fmt: skip
    return row | figures


def criterion(
    ledger: str, position: int, name: str, value: float | None, passed: bool | None, **more: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ledger": ledger, "window_start": date(2026, 11, 5), "window_end": END, "position": position,
        "criterion": name, "value": value, "threshold": Decimal("0.55"), "comparison": ">", "observations": 100,
        "observed": "scored predictions", "passed": passed, "note": None,
    }  # fmt: skip
    return row | more


PERF_ROWS = [
    perf("live", "30d", 30, sharpe=1.25, var_99=NAN),  # NaN: written as a float, read back as null
    perf("live", "7d", 7, total_return=0.004, sharpe=None, days=7, profit_factor=None),
    perf("live", "all", None, total_return=0.031, days=90),
    perf("demo", "30d", 30, sharpe=-0.75, win_rate=0.25),
]
GO_LIVE_ROWS = [
    criterion("live", 2, "win_rate", 0.5, False, threshold=Decimal("0.50")),
    criterion("live", 1, "accuracy", 0.6, True),
    criterion("live", 3, "sharpe", None, None, note="fewer than 2 daily returns"),
    criterion("live", 4, "go_live", 1.0, False, threshold=Decimal("4.00"), comparison=">=", note="failed: win_rate"),
    criterion("demo", 1, "accuracy", 0.7, True),
    criterion("demo", 2, "go_live", 4.0, True, threshold=Decimal("4.00"), comparison=">="),
]


def publish(home: Path, name: str, rows: list[dict[str, Any]], schema: pa.Schema) -> Path:
    folder = analytics_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema.with_metadata({BUILT_AT: BUILT}))
    path = folder / f"{name}.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(live_settings(tmp_path, api_token=TOKEN))) as test_client:
        yield test_client


@pytest.fixture
def built(tmp_path: Path, client: TestClient) -> TestClient:
    publish(tmp_path, "mart_performance", PERF_ROWS, PERFORMANCE)
    publish(tmp_path, "mart_go_live", GO_LIVE_ROWS, GO_LIVE)
    return client


def test_the_live_ledger_s_figures_by_default(built: TestClient) -> None:
    response = built.get("/api/performance", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert (body["ledger"], body["detail"], body["ledgers"]) == ("live", None, ["demo", "live"])
    assert body["built_at"].startswith("2026-12-05T17:03:18")
    assert [r["period"] for r in body["performance"]] == ["7d", "30d", "all"]
    week, month, everything = body["performance"]
    assert week["total_return"] == 0.004 and week["days"] == 7 and week["trades"] == 12
    assert (week["sharpe"], week["profit_factor"]) == (None, None)
    assert month["sharpe"] == 1.25 and month["var_95"] == 0.01 and month["var_99"] is None  # NaN -> null
    assert month["as_of"] == "2026-12-04" and month["window_days"] == 30
    assert everything["window_days"] is None and everything["total_return"] == 0.031
    go_live = body["go_live"]
    assert go_live["passed"] is False
    assert (go_live["window_start"], go_live["window_end"]) == ("2026-11-05", "2026-12-04")
    assert [c["criterion"] for c in go_live["criteria"]] == ["accuracy", "win_rate", "sharpe"]  # by position
    accuracy, win_rate, sharpe = go_live["criteria"]
    assert accuracy == {
        "ledger": "live", "window_start": "2026-11-05", "window_end": "2026-12-04", "position": 1,
        "criterion": "accuracy", "value": 0.6, "threshold": 0.55, "comparison": ">", "observations": 100,
        "observed": "scored predictions", "passed": True, "note": None,
    }  # fmt: skip
    assert (win_rate["threshold"], win_rate["passed"]) == (0.5, False)
    assert (sharpe["value"], sharpe["passed"], sharpe["note"]) == (None, None, "fewer than 2 daily returns")


def test_another_ledger_by_name(built: TestClient) -> None:
    body = built.get("/api/performance", params={"ledger": "demo"}, headers=AUTH).json()

    assert body["ledger"] == "demo" and body["detail"] is None
    (month,) = body["performance"]
    assert (month["period"], month["sharpe"], month["win_rate"]) == ("30d", -0.75, 0.25)
    assert body["go_live"]["passed"] is True
    assert [(c["criterion"], c["value"]) for c in body["go_live"]["criteria"]] == [("accuracy", 0.7)]


def test_no_analytics_built_is_an_empty_answer_that_says_why(client: TestClient) -> None:
    response = client.get("/api/performance", headers=AUTH)

    assert response.status_code == 200
    assert response.json() == {
        "ledger": "live",
        "built_at": None,
        "detail": response.json()["detail"],
        "ledgers": [],
        "performance": [],
        "go_live": {"passed": None, "window_start": None, "window_end": None, "criteria": []},
    }
    assert "no analytics built yet" in response.json()["detail"]


def test_an_unknown_ledger_lists_the_ledgers_there_are(built: TestClient) -> None:
    response = built.get("/api/performance", params={"ledger": "backtest.nope"}, headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["detail"] == "no analytics for ledger 'backtest.nope'; the marts hold ['demo', 'live']"
    assert body["ledgers"] == ["demo", "live"] and body["performance"] == [] and body["go_live"]["criteria"] == []
    assert body["go_live"]["passed"] is None


def test_an_unreadable_mart_is_a_detail_not_an_error(tmp_path: Path, client: TestClient) -> None:
    folder = analytics_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "mart_performance.parquet").write_bytes(b"not parquet")

    response = client.get("/api/performance", headers=AUTH)
    assert response.status_code == 200
    assert "cannot be read" in response.json()["detail"] and response.json()["performance"] == []
    assert client.get("/metrics", headers=AUTH).status_code == 200


def test_the_files_are_read_again_only_when_they_change(tmp_path: Path, built: TestClient) -> None:
    cache = built.app.state.analytics  # type: ignore[attr-defined]
    first = cache.read()
    assert cache.read() is first  # unchanged: the cached rows

    path = publish(tmp_path, "mart_performance", [perf("live", "30d", 30, sharpe=3.5)], PERFORMANCE)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new mtime however coarse the clock

    (month,) = built.get("/api/performance", headers=AUTH).json()["performance"]
    assert month["sharpe"] == 3.5


def samples(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = client.get("/metrics", headers=AUTH).text
    return {
        f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
        for f in text_string_to_metric_families(text)
    }


def test_the_figures_are_gauges_and_nulls_are_absent(built: TestClient) -> None:
    found = samples(built)

    assert found["helios_analytics_built_timestamp_seconds"] == {(): BUILT_S}
    sharpe = found["helios_performance_sharpe"]
    assert sharpe == {
        (("ledger", "live"), ("period", "30d")): 1.25,
        (("ledger", "live"), ("period", "all")): 1.5,
        (("ledger", "demo"), ("period", "30d")): -0.75,
    }  # live 7d is null: absent
    assert found["helios_performance_return"][(("ledger", "live"), ("period", "7d"))] == 0.004
    assert (("ledger", "live"), ("period", "30d")) not in found["helios_performance_var_99"]  # NaN: absent
    assert found["helios_performance_var_95"][(("ledger", "live"), ("period", "30d"))] == 0.01
    assert found["helios_performance_max_drawdown"][(("ledger", "demo"), ("period", "30d"))] == 0.05
    assert found["helios_performance_win_rate"][(("ledger", "demo"), ("period", "30d"))] == 0.25
    assert len(found["helios_performance_profit_factor"]) == 3  # live 7d is null
    assert not any(math.isnan(v) for family in found.values() for v in family.values())

    def key(ledger: str, name: str) -> tuple[tuple[str, str], ...]:
        return (("criterion", name), ("ledger", ledger))

    value, passed = found["helios_go_live_value"], found["helios_go_live_passed"]
    assert value[key("live", "accuracy")] == 0.6 and value[key("live", "go_live")] == 1.0
    assert value[key("demo", "go_live")] == 4.0 and key("live", "sharpe") not in value
    assert passed == {
        key("live", "accuracy"): 1.0,
        key("live", "win_rate"): 0.0,
        key("live", "go_live"): 0.0,
        key("demo", "accuracy"): 1.0,
        key("demo", "go_live"): 1.0,
    }  # live sharpe: no verdict, absent


def test_no_analytics_exports_no_figures(client: TestClient) -> None:
    found = samples(client)

    assert found["helios_analytics_built_timestamp_seconds"] == {}
    assert found["helios_performance_sharpe"] == {} and found["helios_go_live_passed"] == {}
    assert found["helios_engine_running"] == {(): 0.0}  # the engine's own figures are unaffected


def test_the_analytics_metrics_pass_promtool(built: TestClient) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not installed (Debian's prometheus package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: it must be there)")
        pytest.skip(message)
    exposition = built.get("/metrics", headers=AUTH).content
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, check=False)  # noqa: S603
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
