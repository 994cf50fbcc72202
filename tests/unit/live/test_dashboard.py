"""The dashboard at /ui, server side: every page and fragment renders over a ledger that traded,
the controls take a confirmation step and act, the static files match their manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from helios_live.api.app import create_app
from helios_live.ledger.alerts import AlertDelivery
from helios_live.web import stream
from helios_live.web.pages import PAGES, STATIC
from tests.live_support import start_trading, trading_kernel


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The service over a kernel that has traded 40 minutes of BTC-PERP in its own loop: positions
    (one may still be open), predictions, decisions, candles in memory."""
    kernel, live = trading_kernel(tmp_path_factory.mktemp("dashboard"))
    app = create_app(kernel.settings, kernel)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.portal.call(start_trading, kernel, live, 40)
        assert kernel.ledger.positions(limit=10).items
        yield test_client


def test_the_static_files_are_those_of_the_manifest() -> None:
    listed = dict(reversed(line.split("  ", 1)) for line in (STATIC / "SHA256SUMS").read_text().splitlines())
    present = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file() and p.name != "SHA256SUMS"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name


def test_every_page_and_fragment_renders_with_no_inline_script(client: TestClient) -> None:
    for name in PAGES:
        page = client.get("/ui" if name == "overview" else f"/ui/pages/{name}")
        part = client.get(f"/ui/fragments/{name}")
        assert page.status_code == 200 and part.status_code == 200, (name, page.text[-500:], part.text[-500:])
        assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text
        assert f'data-fragment="/ui/fragments/{name}"' in page.text
    assert client.get("/ui/pages/nothing").status_code == 404


def test_the_overview_shows_the_account_the_tiers_and_the_controls(client: TestClient) -> None:
    text = client.get("/ui").text
    for figure in ("equity", "daily_pnl", "total_pnl", "drawdown", "sharpe_30d", "mode", "status"):
        assert f'data-figure="{figure}"' in text
    for tier in ("tier1", "tier2", "tier3", "tier4", "tier5"):
        assert f'data-tier="{tier}"' in text
    assert 'data-control="emergency-stop"' in text and 'data-control="tier-off-tier4"' in text
    assert 'data-control="tier-off-tier1"' not in text  # never switched off


def test_positions_decisions_and_the_chart_carry_the_trades(client: TestClient) -> None:
    positions = client.get("/ui/fragments/positions").text
    assert 'data-status="OPEN"' in positions or 'data-status="CLOSED"' in positions
    decisions = client.get("/ui/fragments/decisions").text
    assert 'id="funnel"' in decisions and "execution" in decisions
    data = client.get("/ui/data/chart/BTCPERP").json()
    times = {c["time"] for c in data["candles"]}
    assert len(data["candles"]) > 1000 and data["markers"]
    assert all(m["time"] in times for m in data["markers"])  # each marker on a candle
    assert any(m["shape"] in ("arrowUp", "arrowDown") for m in data["markers"])
    assert client.get("/ui/chart/NOPE").status_code == 404


def test_a_control_asks_first_then_acts(client: TestClient) -> None:
    ask = client.post("/ui/actions/emergency-stop", data={})
    assert ask.status_code == 200 and 'name="confirmed" value="yes"' in ask.text
    assert not client.get("/api/autonomous-engine/status").json()["emergency_stop_active"]
    done = client.post("/ui/actions/emergency-stop", data={"confirmed": "yes"})
    assert done.status_code == 200 and 'data-outcome="done"' in done.text
    assert client.get("/api/autonomous-engine/status").json()["emergency_stop_active"]
    refused = client.post("/ui/actions/tier-off", data={"confirmed": "yes", "target": "tier3"})
    assert refused.status_code == 409 and "cannot be switched off" in refused.text
    assert client.post("/ui/actions/launch-rockets", data={}).status_code == 404


def test_alert_deliveries_over_rest_and_on_the_overview(client: TestClient) -> None:
    at = datetime(2022, 1, 1, 19, 30, tzinfo=UTC)
    delivery = AlertDelivery(
        "a-1", "stream_down", "BTCPERP", "CRITICAL", "FIRING", "slack", 3, "DELIVERED", None, "<b>down</b>", at, at
    )
    client.app.state.ledger.record_alert_deliveries([delivery])  # type: ignore[attr-defined]
    items = client.get("/api/alerts", params={"rule": "stream_down"}).json()["items"]
    assert [(i["rule"], i["channel"], i["attempts"], i["outcome"]) for i in items] == [
        ("stream_down", "slack", 3, "DELIVERED")
    ]
    assert client.get("/api/alerts", params={"channel": "email"}).json()["items"] == []
    overview = client.get("/ui/fragments/overview").text
    assert 'data-alert="stream_down"' in overview
    assert "&lt;b&gt;down&lt;/b&gt;" in overview and "<b>down</b>" not in overview  # ledger text is escaped


def test_the_event_stream_tells_the_page_what_changed_and_ends_by_itself(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "LIFETIME_S", 1.0)
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.2)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    lines = []
    with client.stream("GET", "/ui/stream") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            lines.append(line)
            if line.startswith("retry:"):
                client.portal.call(engine.broadcaster.publish, {"type": "position", "secret": "not sent"})  # type: ignore[union-attr]
    assert 'data: {"type": "position"}' in lines and ": heartbeat" in lines  # the stream ended: the loop did
    assert not any("not sent" in line for line in lines)


def test_a_backtest_report_is_served_sandboxed_and_nothing_outside_the_backtests(client: TestClient) -> None:
    home = client.app.state.settings.home  # type: ignore[attr-defined]
    run = home / "backtests" / "v1" / "2022-01-01_2022-01-02"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<html><body>report</body></html>")
    (run / "report.json").write_text('{"summary": {"total_return": 0.012, "trades": 3}}')
    (home / "secret.html").write_text("not a report")
    listed = client.get("/ui/fragments/backtests").text
    assert "v1/2022-01-01_2022-01-02" in listed and "total_return" in listed
    report = client.get("/ui/backtests/report/v1/2022-01-01_2022-01-02")
    assert report.status_code == 200 and "report" in report.text
    assert report.headers["content-security-policy"].startswith("sandbox")
    for probe in ("%2e%2e", "%2e%2e/%2e%2e", "v1/%2e%2e/%2e%2e", "..%2f..", "%2fetc"):
        assert client.get(f"/ui/backtests/report/{probe}").status_code == 404, probe
    for probe in ("..", "../..", "v1/../.."):  # the client resolves these itself: never to the file
        assert "not a report" not in client.get(f"/ui/backtests/report/{probe}").text
