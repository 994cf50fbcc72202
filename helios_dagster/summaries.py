"""Plain-text and Markdown summaries of a model, a gate decision, a backtest and the
walk-forward folds, for the command line, the demo and the Dagster UI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from helios_dagster.defs.model.evidence import WalkForward

PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure"}
HOURS = {"max_drawdown_duration_s", "avg_holding_s"}
ROWS = (
    ("total_return", "total return"),
    ("cagr", "CAGR"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("calmar", "Calmar"),
    ("max_drawdown", "max drawdown"),
    ("max_drawdown_duration_s", "max drawdown (h)"),
    ("win_rate", "win rate"),
    ("profit_factor", "profit factor"),
    ("expectancy", "expectancy"),
    ("exposure", "exposure"),
    ("turnover", "turnover"),
    ("trades", "trades"),
    ("avg_holding_s", "avg holding (h)"),
    ("fees", "fees"),
    ("final_equity", "final equity"),
)


def figure(key: str, value: Any) -> str:
    """A metric as the report shows it: n/a where undefined."""
    if value is None:
        return "n/a"
    if key in PERCENT:
        return f"{value:+.2%}" if key in ("total_return", "cagr") else f"{value:.2%}"
    if key in HOURS:
        return f"{value / 3600:.1f}"
    if key == "trades":
        return f"{value:.0f}"
    return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.2f}"


def classification_lines(meta: Mapping[str, Any]) -> Iterator[str]:
    """The model's test metrics beside the baseline classifiers', and the lift over each."""
    test = meta["metrics"]["test"]
    yield f"{'':<22}{'accuracy':>9}{'bal.acc':>9}{'macro-F1':>9}{'log-loss':>9}{'ECE':>7}"
    for name, m in [("model", test["model"]), *test["baselines"].items()]:
        yield (
            f"{name:<22}{m['accuracy']:>9.3f}{m['balanced_accuracy']:>9.3f}{m['macro_f1']:>9.3f}"
            f"{m['log_loss']:>9.3f}{m['ece']:>7.3f}"
        )
    for name, lift in test["lift"].items():
        yield f"lift over {name}: balanced accuracy {lift['balanced_accuracy']:+.3f}, macro-F1 {lift['macro_f1']:+.3f}"


def decision_lines(decision: Mapping[str, Any], active: str | None) -> Iterator[str]:
    """The gate's decision, its reasons and what it could not compare."""
    version = decision["version"]
    if decision["promote"]:
        yield f"gate passed: {version} is ACTIVE"
    else:
        yield f"gate refused {version}; ACTIVE stays {active or 'unset'}. Reasons:"
        yield from (f"  - {reason}" for reason in decision["reasons"])
    yield from (f"  note: {note}" for note in decision["notes"])


def backtest_lines(report: Mapping[str, Any]) -> Iterator[str]:
    """The model's metrics beside buy-and-hold and the random-entry median and 95th percentile."""
    model, hold = report["metrics"]["overall"], report["baselines"]["buy_and_hold"]
    random = report["baselines"]["random_entry"]
    yield f"{'':<18}{'model':>12}{'buy-and-hold':>14}{'random p50':>12}{'random p95':>12}"
    for key, label in ROWS:
        cells = (model.get(key), hold.get(key), random["median"].get(key), random["p95"].get(key))
        yield f"{label:<18}" + "".join(f"{figure(key, v):>{w}}" for v, w in zip(cells, (12, 14, 12, 12), strict=True))
    yield f"random entry: {random['runs']} draws (seed {random['seed']}); {report['verdict']['summary']}"


def approval_lines(section: Mapping[str, Any]) -> Iterator[str]:
    """Tier 4 with its approver, without the step, and the random-veto draws' mean."""
    columns = (section["with"], section["without"], section["random_veto"]["mean"])
    yield f"{'':<18}{'with':>12}{'without':>12}{'random veto':>13}"
    rows = (("trades", "trades"), ("total_return", "total return"), ("sharpe", "Sharpe"))
    for key, label in (*rows, ("max_drawdown", "max drawdown"), ("win_rate", "win rate")):
        yield f"{label:<18}" + "".join(
            f"{figure(key, c.get(key)):>{w}}" for c, w in zip(columns, (12, 12, 13), strict=True)
        )
    yield section["summary"]


def allocation_lines(section: Mapping[str, Any]) -> Iterator[str]:
    """Tier 5 with the allocation and without it."""
    columns = (section["with"], section["without"])
    yield f"{'':<18}{'allocation':>12}{'without':>12}"
    rows = (("trades", "trades"), ("total_return", "total return"), ("sharpe", "Sharpe"))
    for key, label in (*rows, ("max_drawdown", "max drawdown"), ("win_rate", "win rate")):
        yield f"{label:<18}" + "".join(f"{figure(key, c.get(key)):>12}" for c in columns)
    yield section["summary"]


def last_day(end: str) -> str:
    """The last day a period ending (exclusively) at `end` covers."""
    return (datetime.fromisoformat(end) - timedelta(seconds=1)).date().isoformat()


def walk_forward_rows(evidence: WalkForward) -> Iterator[tuple[str, ...]]:
    """Header, one row per fold, then the aggregate."""
    yield ("fold", "trained on", "backtest", "Sharpe", "return", "max DD", "trades", "beats random")
    for f in evidence.folds:
        t = f.backtest
        yield (
            str(f.fold), f"{f.train[0]} .. {f.train[1]}", f"{t.start[:10]} .. {last_day(t.end)}",
            figure("sharpe", t.sharpe), figure("total_return", t.total_return), figure("max_drawdown", t.max_drawdown),
            str(t.trades), "yes" if t.beats_random else "no",
        )  # fmt: skip
    a = evidence.aggregate()
    yield (
        "all", f"mean Sharpe {figure('sharpe', a.mean_sharpe)}", f"min Sharpe {figure('sharpe', a.min_sharpe)}", "",
        figure("total_return", a.total_return), figure("max_drawdown", a.max_drawdown), str(a.trades),
        f"{a.beating_random} of {a.folds}",
    )  # fmt: skip


def walk_forward_lines(evidence: WalkForward) -> Iterator[str]:
    rows = list(walk_forward_rows(evidence))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()


def walk_forward_markdown(evidence: WalkForward) -> str:
    rows = list(walk_forward_rows(evidence))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def echo_all(echo: Callable[[str], None], lines: Iterator[str], indent: str = "  ") -> None:
    for line in lines:
        echo(f"{indent}{line}")
