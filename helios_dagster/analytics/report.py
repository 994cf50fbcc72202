"""The published marts as text: `helios report`, `helios analytics` and the demo print these."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from helios_live.data.analytics import Analytics

DAILY_ROWS = 10


def _pct(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}%}"


def _num(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):,.{digits}f}"


def report_lines(analytics: Analytics, ledger: str) -> Iterator[str]:
    if analytics.detail:
        yield analytics.detail
        return
    if ledger not in analytics.ledgers:
        yield f"no ledger {ledger!r} in the analytics; there are: {', '.join(analytics.ledgers) or 'none'}"
        return
    yield f"Analytics of ledger {ledger} (built {analytics.built_at:%Y-%m-%d %H:%M} UTC):" if analytics.built_at else ""
    yield from performance_lines(analytics, ledger)
    yield from daily_lines(analytics, ledger)
    yield from funnel_lines(analytics, ledger)
    yield from go_live_lines(analytics, ledger)


def performance_lines(analytics: Analytics, ledger: str) -> Iterator[str]:
    yield "  Performance (daily returns, annualised over 365 days; VaR is a day's loss):"
    yield (
        f"    {'window':<7}{'days':>5}{'return':>9}{'Sharpe':>8}{'Sortino':>9}{'VaR95':>8}{'VaR99':>8}"
        f"{'max DD':>8}{'trades':>7}{'win':>7}{'PF':>6}{'P&L':>11}"
    )
    for row in sorted(analytics.rows("mart_performance", ledger), key=lambda r: r["window_days"] or 1e9):
        yield (
            f"    {row['period']:<7}{row['days']:>5}{_pct(row['total_return']):>9}{_num(row['sharpe']):>8}"
            f"{_num(row['sortino']):>9}{_pct(row['var_95']):>8}{_pct(row['var_99']):>8}{_pct(row['max_drawdown']):>8}"
            f"{row['trades']:>7}{_pct(row['win_rate'], 0):>7}{_num(row['profit_factor']):>6}{_num(row['net_pnl']):>11}"
        )


def daily_lines(analytics: Analytics, ledger: str) -> Iterator[str]:
    rows = [r for r in analytics.rows("mart_daily_pnl", ledger) if r["pair"] == "TOTAL"]
    shown = sorted(rows, key=lambda r: str(r["day"]))[-DAILY_ROWS:]
    yield f"  Daily P&L (last {len(shown)} of {len(rows)} days):"
    yield f"    {'day':<12}{'trades':>7}{'P&L':>11}{'fees':>9}{'equity':>14}{'return':>9}{'drawdown':>10}"
    for row in shown:
        yield (
            f"    {row['day']:<12}{row['trades']:>7}{_num(row['net_pnl']):>11}{_num(row['fees']):>9}"
            f"{_num(row['equity']):>14}{_pct(row['daily_return']):>9}{_pct(row['drawdown']):>10}"
        )


def funnel_lines(analytics: Analytics, ledger: str) -> Iterator[str]:
    rows = analytics.rows("mart_decision_funnel", ledger)
    total = sum(int(r["decisions"]) for r in rows)
    yield f"  Decision funnel ({total:,} decisions; where each chain ended and why):"
    for row in sorted(rows, key=lambda r: (r["stage_order"] or 99, -int(r["decisions"]))):
        tier = row["tier_name"] or row["step"]
        yield f"    {row['step']:<13}{tier:<24}{row['decisions']:>7}  {row['reason']}"


def go_live_lines(analytics: Analytics, ledger: str) -> Iterator[str]:
    rows = sorted(analytics.rows("mart_go_live", ledger), key=lambda r: int(r["position"]))
    if not rows:
        return
    verdict = next((r for r in rows if r["criterion"] == "go_live"), None)
    window = f"{rows[0]['window_start']} .. {rows[0]['window_end']}"
    yield f"  Go-live criteria (design section 53.3) over {window}:"
    for row in rows:
        if row["criterion"] == "go_live":
            continue
        value = _num(row["value"]) if row["criterion"] == "sharpe" else _pct(row["value"], 1)
        limit = _num(row["threshold"]) if row["criterion"] == "sharpe" else _pct(row["threshold"], 0)
        state = "pass" if row["passed"] else "FAIL"
        note = f" ({row['note']})" if row["note"] else ""
        yield (
            f"    {row['criterion']:<13}{value:>9} {row['comparison']} {limit:<6} {state}"
            f"  [{row['observations']} {row['observed']}]{note}"
        )
    if verdict is not None:
        outcome = "PASS, ready to go live" if verdict["passed"] else f"not ready to go live, {verdict['note']}"
        yield f"    verdict: {outcome}"
