"""A second entry on a pair that holds a position (or an opening still waiting for its fill) is
denied as that, before the portfolio limits, and the correlation limit never reads the pair
against itself."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from helios_core.decision import Context, Denied, Prediction
from helios_core.risk.sizing import Sizing
from helios_core.trading.enums import PositionSide, TradingMode
from helios_core.trading.fills import FillModel
from helios_core.trading.position import Execution
from helios_live.execution.paper import PaperExecutionClient
from helios_live.ledger import Ledger
from helios_live.ledger.writer import LedgerWriter
from helios_live.trading.desk import Desk
from helios_live.trading.steps import Guard
from helios_live.trading.trader import TradingConfig
from tests.live_support import start_trading, trading_kernel
from tests.unit.live.test_desk import Venue

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
FILLS = FillModel(taker_fee=0.001, slippage_bps=10.0, book_max_age_s=10.0)
SIZING = Sizing(0.1, 0.05, 0.05, 0.05, 0.2, 0.05, 1.0, 0.02, 0.04, 86400.0, True, "")


def _desk(tmp_path: Path) -> Desk:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    desk = Desk(
        TradingConfig(capital=100_000.0, fills=FILLS),
        ("BTCZAR", "ETHZAR"),
        LedgerWriter(ledger, ThreadPoolExecutor(1)),
        lambda pair: None,
        lambda event: None,
    )
    for pair in ("BTCZAR", "ETHZAR"):
        desk.account.mark(pair, 100.0, NOW)
    return desk


def _context(pair: str) -> Context:
    prediction = Prediction("BUY", (0.8, 0.1, 0.1), 0.8, "hash")
    context = Context(pair, prediction, "v1", 100.0, False, True, now=NOW, key=f"{pair}-next")
    context.sizing = SIZING
    return context


def test_a_second_entry_on_a_pair_with_an_open_position_is_denied_as_that(tmp_path: Path) -> None:
    desk = _desk(tmp_path)
    desk.connect(TradingMode.PAPER, PaperExecutionClient(desk, FILLS))
    opened = asyncio.run(desk.open("BTCZAR-1", "BTCZAR", PositionSide.LONG, 5_000.0, 1.0, 0.02, 0.04, NOW))
    assert isinstance(opened, Execution)

    context = _context("BTCZAR")
    verdict = Guard(desk)(context)

    assert verdict == Denied("portfolio", "position_open: BTCZAR already has an open position (key BTCZAR-1)")
    assert context.check is not None and not context.check.passed
    assert context.check.violations == (verdict.reason,)
    # Another pair is not held: the limits decide it, and they pass.
    assert Guard(desk)(_context("ETHZAR")).approved


def test_an_opening_still_waiting_for_its_fill_counts_as_held(tmp_path: Path) -> None:
    desk = _desk(tmp_path)
    venue = Venue()
    desk.connect(TradingMode.PAPER, venue)  # takes the order, fills only when told

    placed = asyncio.run(desk.open("BTCZAR-1", "BTCZAR", PositionSide.LONG, 5_000.0, 1.0, 0.02, 0.04, NOW))

    assert placed is None and not desk.account.positions
    assert desk.holding("BTCZAR") == "BTCZAR-1" and desk.holding("ETHZAR") is None
    verdict = Guard(desk)(_context("BTCZAR"))
    assert verdict.reason == "position_open: BTCZAR already has an open position (key BTCZAR-1)"


def test_in_the_kernel_later_entries_on_the_held_pair_say_position_open(tmp_path: Path) -> None:
    kernel, live = trading_kernel(tmp_path)

    async def run() -> None:
        await start_trading(kernel, live, 40)
        await kernel.close()

    asyncio.run(run())
    positions = kernel.ledger.positions(limit=100).items
    assert positions
    keys = {p["key"] for p in positions}
    denied = [
        p["steps"][-1]
        for p in kernel.ledger.predictions(limit=1000).items
        if p["steps"][-1]["step"] == "portfolio" and not p["steps"][-1]["approved"]
    ]
    assert denied, "the model leans BUY: entries come while a position is open"
    for verdict in denied:
        assert verdict["reason"].startswith("position_open: BTCPERP already has an open position (key ")
        assert verdict["reason"].removesuffix(")").rsplit("key ", 1)[1] in keys
        assert "BTCPERP vs BTCPERP" not in verdict["reason"]
