"""The backtest report: one self-contained HTML page and the JSON it was drawn from.

The page works offline: no external script, style, font or image; a Content-Security-Policy
that allows only its own inline script and style (by hash) and no fetch of any kind. The tables
are rendered here; the charts are drawn into inline SVG by a small script from the report data
embedded as JSON, long series thinned first (min and max per bucket, so spikes survive).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_POINTS = 2000  # per drawn line: a year of 5m candles is 105k points, a chart is ~900 px wide

# (key, label, format): the metric keys of helios_core.evaluation.metrics, in table order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration_s", "Max drawdown duration", "duration"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy (per trade)", "money"),
    ("exposure", "Exposure", "pct"),
    ("turnover", "Turnover", "times"),
    ("trades", "Trades", "count"),
    ("avg_holding_s", "Average holding", "duration"),
    ("fees", "Fees", "money"),
    ("final_equity", "Final equity", "money"),
)
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page that needs nothing but a browser (see the module docstring).

    Raises ValueError where a series' length differs from its time axis or a figure is NaN or
    infinite (the JSON written beside the page cannot hold those: undefined figures are None).
    """
    data = json.dumps(_for_drawing(report), allow_nan=False, sort_keys=True, separators=(",", ":"))
    # "<" only occurs inside JSON strings, where \u003c means the same: no "</script" or "<!--".
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    pairs = [str(p) for p in report.get("pairs", [])]
    body = "\n".join(
        [
            _header(report, pairs),
            _verdict(report.get("verdict") or {}),
            _metrics_table(report.get("metrics") or {}, report.get("baselines") or {}),
            _per_pair_table((report.get("metrics") or {}).get("per_pair") or {}),
            _approval(report.get("approval")),
            _allocation(report.get("allocation")),
            _charts(report, pairs),
            _notes(report.get("notes") or []),
        ]
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(report.get('title') or 'Backtest report')}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n"
        f'<script type="application/json" id="report-data">{data}</script>\n'
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_report(report: Mapping[str, Any], directory: Path, stem: str = "report") -> tuple[Path, Path]:
    """Write `<stem>.html` and `<stem>.json` (the full report, series unthinned) under `directory`.

    Both are rendered before either is written, so a report that cannot be rendered writes nothing.
    """
    page = render_html(report)
    text = json.dumps(report, sort_keys=True, allow_nan=False, indent=1) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    html_path, json_path = directory / f"{stem}.html", directory / f"{stem}.json"
    html_path.write_text(page, encoding="utf-8")
    json_path.write_text(text, encoding="utf-8")
    return html_path, json_path


def format_value(value: Any, kind: str) -> str:
    """A figure as the page shows it: "n/a" for None (or NaN), fractions as percentages,
    seconds as "3d 4h", money with two decimals, ratios with two."""
    if value is None or isinstance(value, bool):
        return "n/a"
    if not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    formats: dict[str, Callable[[float], str]] = {
        "pct": lambda v: f"{v * 100:,.2f}%",
        "ratio": lambda v: f"{v:,.2f}",
        "money": lambda v: f"{v:,.2f}",
        "times": lambda v: f"{v:,.2f}\N{MULTIPLICATION SIGN}",
        "count": lambda v: f"{v:,.0f}",
        "duration": _duration,
    }
    formatter = formats.get(kind)
    return formatter(value) if formatter else f"{value:,.4g}"


def _duration(seconds: float) -> str:
    s = round(seconds)
    sign, s = ("-" if s < 0 else ""), abs(s)
    for i, (name, size) in enumerate(_UNITS[:-1]):
        if s >= size:
            major, rest = divmod(s, size)
            minor_name, minor_size = _UNITS[i + 1]
            minor = rest // minor_size
            return f"{sign}{major}{name} {minor}{minor_name}" if minor else f"{sign}{major}{name}"
    return f"{sign}{s}s"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return str(value)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC" if moment.hour or moment.minute else "%Y-%m-%d")


def _header(report: Mapping[str, Any], pairs: Sequence[str]) -> str:
    fill = report.get("fill_model") or {}
    fill_text = (
        f"taker fee {format_value(fill.get('taker_fee'), 'pct')}, "
        f"slippage {format_value(fill.get('slippage_bps'), 'ratio')} bps, fills at {fill.get('fills', 'n/a')}"
    )
    rows = (
        ("Model", report.get("model", "n/a")),
        ("Pairs", ", ".join(pairs) or "n/a"),
        ("Period", f"{_when(report.get('start', 'n/a'))} to {_when(report.get('end', 'n/a'))}"),
        ("Timeframe", report.get("timeframe", "n/a")),
        ("Fill model", fill_text),
    )
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    title = _e(report.get("title") or "Backtest report")
    return f'<header class="card"><h1>{title}</h1><dl class="meta">{items}</dl></header>'


def _verdict(verdict: Mapping[str, Any]) -> str:
    hold, rand = bool(verdict.get("beats_buy_and_hold")), bool(verdict.get("beats_random"))
    if hold and rand:
        state, line = "pass", "The model beats buy-and-hold and the random-entry baseline."
    elif hold:
        state, line = "mixed", "The model beats buy-and-hold but does not beat the random-entry baseline."
    elif rand:
        state, line = "mixed", "The model beats the random-entry baseline but does not beat buy-and-hold."
    else:
        state, line = "fail", "The model does not beat buy-and-hold or the random-entry baseline."
    summary = verdict.get("summary")
    detail = f'<p class="summary">{_e(summary)}</p>' if summary else ""
    return f'<section class="card verdict {state}" id="verdict"><p class="headline">{line}</p>{detail}</section>'


def _metrics_table(metrics: Mapping[str, Any], baselines: Mapping[str, Any]) -> str:
    random = baselines.get("random_entry") or {}
    columns = (
        ("Model", metrics.get("overall") or {}),
        ("Buy and hold", baselines.get("buy_and_hold") or {}),
        ("Random entry, median", random.get("median") or {}),
        ("Random entry, p95", random.get("p95") or {}),
    )
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name, _ in columns)
    rows = []
    for key, label, kind in _metric_rows(*(figures for _, figures in columns)):
        cells = "".join(_cell(figures.get(key), kind) for _, figures in columns)
        rows.append(f'<tr data-metric="{_e(key)}"><th scope="row">{_e(label)}</th>{cells}</tr>')
    runs = f"{format_value(random.get('runs'), 'count')} runs, seed {format_value(random.get('seed'), 'count')}"
    return (
        f'<section class="card"><h2>Metrics</h2><p class="sub">Random entry: {_e(runs)}; '
        "p95 is the 95th percentile over the runs.</p>"
        f'<div class="scroll"><table class="metrics"><thead><tr><th scope="col">Metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


APPROVAL_ROWS = (
    ("trades", "Trades", "count"),
    ("total_return", "Total return", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("win_rate", "Win rate", "pct"),
)


def _approval(section: Mapping[str, Any] | None) -> str:
    """Tier 4 against no Tier 4 and against random vetoes at its own rate (only when compared)."""
    if not section:
        return ""
    draws = section["random_veto"]["draws"]
    columns = (
        (f"With {section.get('approver') or 'the approver'}", section["with"]),
        ("Without the step", section["without"]),
        (f"Random veto, mean of {draws}", section["random_veto"]["mean"]),
    )
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name, _ in columns)
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th>{"".join(_cell(figures.get(key), kind) for _, figures in columns)}</tr>'
        for key, label, kind in APPROVAL_ROWS
    )
    reached = format_value(section["decisions_reaching_approval"], "count")
    rate = (
        f"{format_value(section['veto_rate'], 'pct')} of {reached} decisions vetoed"
        f" ({format_value(section['failsafe'], 'count')} by the failure policy)"
    )
    return (
        '<section class="card" id="approval"><h2>Tier 4: does the approver add value?</h2>'
        f'<p class="verdict-line">{_e(section["summary"])}</p><p class="sub">{_e(rate)}.</p>'
        f'<div class="scroll"><table class="approval"><thead><tr><th scope="col">Metric</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _allocation(section: Mapping[str, Any] | None) -> str:
    """Tier 5 allocation against the same backtest without it (only when compared)."""
    if not section:
        return ""
    columns = (("With the allocation", section["with"]), ("Without it", section["without"]))
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name, _ in columns)
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th>{"".join(_cell(figures.get(key), kind) for _, figures in columns)}</tr>'
        for key, label, kind in APPROVAL_ROWS
    )
    rebalances = ", ".join(f"{reason} {count}" for reason, count in section["rebalances"].items()) or "none"
    latest = section.get("latest_targets") or {}
    weights = ", ".join(f"{pair} {format_value(w, 'pct')}" for pair, w in sorted(latest.items())) or "none"
    detail = f"Rebalances: {rebalances}; trim orders {section['trim_orders']}. Latest targets: {weights}."
    return (
        '<section class="card" id="allocation"><h2>Tier 5: does the allocation add value?</h2>'
        f'<p class="verdict-line">{_e(section["summary"])}</p><p class="sub">{_e(detail)}</p>'
        f'<div class="scroll"><table class="approval"><thead><tr><th scope="col">Metric</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _per_pair_table(per_pair: Mapping[str, Mapping[str, Any]]) -> str:
    if not per_pair:
        return '<section class="card"><h2>Per pair</h2><p class="empty">No per-pair figures.</p></section>'
    head = "".join(f'<th scope="col">{_e(pair)}</th>' for pair in per_pair)
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th>{"".join(_cell(f.get(key), kind) for f in per_pair.values())}</tr>'
        for key, label, kind in _metric_rows(*per_pair.values())
    )
    return (
        '<section class="card"><h2>Per pair</h2><div class="scroll"><table class="per-pair">'
        f'<thead><tr><th scope="col">Metric</th>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>'
    )


def _metric_rows(*tables: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    known = {key for key, _, _ in METRICS}
    extra = sorted({key for table in tables for key in table} - known)
    return [*METRICS, *((key, key.replace("_", " ").capitalize(), "number") for key in extra)]


def _cell(value: Any, kind: str) -> str:
    text = format_value(value, kind)
    return f'<td class="na">{text}</td>' if text == "n/a" else f"<td>{_e(text)}</td>"


def _figure(kind: str, size: tuple[int, int], label: str, pair: str | None = None) -> str:
    attr = "" if pair is None else f' data-pair="{_e(pair)}"'
    return (
        f'<figure data-chart="{kind}"{attr}><svg viewBox="0 0 {size[0]} {size[1]}" role="img" '
        f'aria-label="{_e(label)}"></svg></figure>'
    )


def _legend(*keys: tuple[str, str]) -> str:
    return '<p class="legend">' + "".join(f'<span class="key {c}">{_e(t)}</span>' for c, t in keys) + "</p>"


def _charts(report: Mapping[str, Any], pairs: Sequence[str]) -> str:
    wide, square = (960, 300), (480, 340)
    calibration = report.get("calibration") or {}
    ece = format_value(calibration.get("ece"), "pct")
    n = format_value(calibration.get("n"), "count")
    prices = "".join(
        f"<h3>{_e(pair)}</h3>{_figure('price', wide, f'{pair} close price with trades', pair)}" for pair in pairs
    )
    trade_keys = _legend(("long", "long entry"), ("short", "short entry"), ("exit", "exit"))
    outcome_keys = _legend(("win", "winning trade"), ("loss", "losing trade"))
    return (
        '<section class="card"><h2>Equity</h2>'
        + _legend(("model", "model"), ("hold", "buy and hold"), ("random", "random entry, median"))
        + _figure("equity", wide, "equity curves")
        + '</section><section class="card"><h2>Drawdown</h2>'
        + _figure("drawdown", (960, 220), "model drawdown from the running peak")
        + f'</section><section class="card"><h2>Prices and trades</h2><div class="legends">{trade_keys}'
        + f"{outcome_keys}</div>{prices or '<p class=empty>No pairs.</p>'}</section>"
        + '<div class="split"><section class="card"><h2>Monthly returns</h2>'
        + _figure("monthly", (640, 340), "model return per calendar month (UTC)")
        + '</section><section class="card"><h2>Calibration</h2>'
        + f'<p class="sub">Expected calibration error {_e(ece)} over {_e(n)} predictions.</p>'
        + _figure("calibration", square, "reliability diagram")
        + '</section></div><p class="sub">Times are UTC.</p>'
    )


def _notes(notes: Sequence[Any]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(note)}</li>" for note in notes)
    return f'<section class="card notes"><h2>Notes</h2><ul>{items}</ul></section>'


def _for_drawing(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with its series thinned to at most ~MAX_POINTS points per line."""
    out = dict(report)
    if report.get("equity"):
        out["equity"] = _thin(report["equity"], "equity")
    if report.get("drawdown"):
        out["drawdown"] = _thin(report["drawdown"], "drawdown")
    out["prices"] = {pair: _thin(s, f"prices.{pair}") for pair, s in (report.get("prices") or {}).items()}
    return out


def _thin(columns: Mapping[str, Any], name: str, limit: int = MAX_POINTS) -> dict[str, Any]:
    """Keep, in each of ~limit / (2 * lines) equal buckets, the points holding each line's min and max."""
    t = list(columns.get("t") or [])
    lines = {k: list(v) for k, v in columns.items() if k != "t"}
    for key, values in lines.items():
        if len(values) != len(t):
            raise ValueError(f"{name}.{key} has {len(values)} points, {name}.t has {len(t)}")
    if len(t) <= limit or not lines:
        return {"t": t, **lines}
    buckets = max(1, limit // (2 * len(lines)))
    keep = {0, len(t) - 1}
    for b in range(buckets):
        lo, hi = b * len(t) // buckets, (b + 1) * len(t) // buckets
        for values in lines.values():
            present = [i for i in range(lo, hi) if values[i] is not None]
            if present:
                keep.update((min(present, key=values.__getitem__), max(present, key=values.__getitem__)))
            else:
                keep.add(lo)  # a bucket with no value stays a gap in the line
    index = sorted(keep)
    return {"t": [t[i] for i in index], **{k: [v[i] for i in index] for k, v in lines.items()}}


_CSS = """
:root{color-scheme:light;--fg:#1f2937;--muted:#6b7280;--rule:#e5e7eb;--bg:#f5f6f8;--card:#fff;
--model:#2563eb;--hold:#d97706;--random:#6b7280;--win:#15803d;--loss:#dc2626;--price:#374151}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:20px 20px 40px}
h1{font-size:22px;margin:0 0 10px}h2{font-size:16px;margin:0 0 8px}h3{font-size:13px;margin:14px 0 2px}
.card{background:var(--card);border:1px solid var(--rule);border-radius:8px;padding:16px 18px;margin:14px 0}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}
.meta dt{color:var(--muted)}.meta dd{margin:0}
.verdict{border-left:6px solid var(--hold);background:#fffbeb}
.verdict.pass{border-left-color:var(--win);background:#f0fdf4}
.verdict.fail{border-left-color:var(--loss);background:#fef2f2}
.headline{font-size:18px;font-weight:650;margin:0}.summary{margin:6px 0 0}
.sub{color:var(--muted);margin:0 0 8px;font-size:13px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid var(--rule);text-align:right;white-space:nowrap}
th:first-child{text-align:left}thead th{color:var(--muted);font-weight:600;font-size:12px}
tbody th{font-weight:500}.metrics td:nth-child(2){font-weight:650}.na{color:var(--muted)}
.per-pair{width:auto;min-width:50%}
figure{margin:0}figure svg{display:block;width:100%;height:auto}
.legends{display:flex;gap:4px 24px;flex-wrap:wrap}
.legend{display:flex;gap:4px 16px;flex-wrap:wrap;margin:0 0 4px;color:var(--muted);font-size:12px}
.key::before{content:"";display:inline-block;width:16px;height:3px;margin-right:6px;vertical-align:middle}
.key.model::before{background:var(--model)}.key.hold::before{background:var(--hold)}
.key.random::before{background:repeating-linear-gradient(90deg,var(--random) 0 5px,transparent 5px 8px)}
.key.long::before,.key.short::before,.key.exit::before{width:0;height:0;margin-right:4px}
.key.long::before{content:"\\25B2";width:auto;height:auto}.key.short::before{content:"\\25BC";width:auto;height:auto}
.key.exit::before{content:"\\25CF";width:auto;height:auto}
.key.win::before{background:var(--win);height:10px;width:10px}.key.loss::before{background:var(--loss);height:10px;width:10px}
.split{display:grid;grid-template-columns:4fr 3fr;gap:0 14px}
@media (max-width:860px){.split{grid-template-columns:1fr}}
.empty{color:var(--muted);text-align:center;padding:28px;border:1px dashed var(--rule);border-radius:6px;margin:0}
.notes ul{margin:0;padding-left:20px}
svg text{font-size:11px;fill:var(--muted)}
.ylab{text-anchor:end;dominant-baseline:middle}.xlab,.barlab{text-anchor:middle}
.xlab.end{text-anchor:end}.xlab.start{text-anchor:start}.title{text-anchor:middle;fill:var(--fg)}
.grid{stroke:#eef0f3}.axis,.tick,.zero{stroke:#9ca3af}
.line{fill:none;stroke-width:1.6;stroke-linejoin:round}
.line.model{stroke:var(--model)}.line.hold{stroke:var(--hold)}.line.random{stroke:var(--random);stroke-dasharray:5 3}
.line.price{stroke:var(--price);stroke-width:1.2}.line.dd{stroke:var(--loss);stroke-width:1.2}
.area{fill:var(--loss);fill-opacity:.14}
.trade{--c:var(--random)}.trade.win{--c:var(--win)}.trade.loss{--c:var(--loss)}
.entry,.exit{fill:var(--c);stroke:#fff;stroke-width:1}.link{stroke:var(--c);stroke-dasharray:2 2}
.bar.win{fill:var(--win)}.bar.loss{fill:var(--loss)}
.hist{fill:#e5e7eb}.diagonal{stroke:#9ca3af;stroke-dasharray:4 4}.dot{fill:var(--model);stroke:#fff}
"""

_JS = r"""
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const DAY = 86400, MARGIN = { l: 70, r: 16, t: 12, b: 26 };
  const ok = (v) => typeof v === "number" && Number.isFinite(v);
  const iso = (t) => new Date(t * 1000).toISOString();
  const xy = (px, py) => px.toFixed(1) + "," + py.toFixed(1);
  const when = (t) => (ok(t) ? iso(t).slice(0, 16).replace("T", " ") : "open");

  function el(parent, name, attrs, text) {
    const node = document.createElementNS(parent.namespaceURI, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, typeof v === "number" ? v.toFixed(1) : v);
    if (text !== undefined) node.textContent = text;
    return parent.appendChild(node);
  }
  function plot(fig, margin) {
    const svg = fig.querySelector("svg"), box = svg.viewBox.baseVal, m = margin || MARGIN;
    return { svg, left: m.l, right: box.width - m.r, top: m.t, bottom: box.height - m.b };
  }
  const scale = ([d0, d1], r0, r1) => (v) => r0 + ((v - d0) * (r1 - r0)) / (d1 - d0);
  function extent(arrays, pad) {
    let lo = Infinity, hi = -Infinity;
    for (const a of arrays) for (const v of a) if (ok(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo > hi) return null;
    const p = hi > lo ? (hi - lo) * (pad === undefined ? 0.04 : pad) : Math.abs(lo) * 0.05 || 1;
    return [lo - p, hi + p];
  }
  function ticks([lo, hi], n) {
    const raw = (hi - lo) / (n || 5), mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
    const step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag, out = [];
    for (let i = Math.ceil(lo / step); i * step <= hi; i++) out.push(i * step);
    return { values: out, step };
  }
  function number(step, k, suffix) {
    const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step * k) + 1e-9)));
    const opts = { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return (v) => (Math.abs(v) < step / 2 ? 0 : v * k).toLocaleString("en-US", opts) + suffix;
  }
  const plain = (step) => number(step, 1, "");
  const percent = (step) => number(step, 100, "%");
  const pct = (v) => (ok(v) ? (v * 100).toFixed(1) + "%" : "n/a");

  const STEPS = [60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, DAY, 2 * DAY, 7 * DAY, 14 * DAY];
  function timeTicks([lo, hi]) {
    const span = hi - lo, step = STEPS.find((s) => span / s <= 7), out = [];
    if (step) {
      for (let i = Math.ceil(lo / step); i * step <= hi; i++) out.push(i * step);
      if (step >= DAY) return out.map((t) => [t, iso(t).slice(0, 10)]);
      return out.map((t) => [t, span > DAY ? iso(t).slice(5, 16).replace("T", " ") : iso(t).slice(11, 16)]);
    }
    const every = [1, 2, 3, 6, 12, 24, 60].find((m) => span / (m * 30.44 * DAY) <= 7) || 120;
    const first = new Date(lo * 1000);
    for (let m = first.getUTCFullYear() * 12 + first.getUTCMonth(); ; m++) {
      const t = Date.UTC(Math.floor(m / 12), m % 12, 1) / 1000;
      if (t > hi) break;
      if (t >= lo && m % every === 0) out.push(t);
    }
    return out.map((t) => [t, iso(t).slice(0, every >= 12 ? 4 : 7)]);
  }
  function axes(p, xs, ys) {
    for (const [py, label] of ys) {
      el(p.svg, "line", { class: "grid", x1: p.left, x2: p.right, y1: py, y2: py });
      el(p.svg, "text", { class: "ylab", x: p.left - 6, y: py }, label);
    }
    for (const [px, label] of xs) {
      el(p.svg, "line", { class: "tick", x1: px, x2: px, y1: p.bottom, y2: p.bottom + 4 });
      const edge = px > p.right - 30 ? " end" : px < p.left + 30 ? " start" : "";
      el(p.svg, "text", { class: "xlab" + edge, x: px, y: p.bottom + 16 }, label);
    }
    el(p.svg, "line", { class: "axis", x1: p.left, x2: p.right, y1: p.bottom, y2: p.bottom });
  }
  function timeFrame(fig, tArrays, yArrays, format, yDomain) {
    const p = plot(fig), xd = extent(tArrays, 0), yd = yDomain || extent(yArrays);
    const x = scale(xd, p.left, p.right), y = scale(yd, p.bottom, p.top), yt = ticks(yd), fmt = format(yt.step);
    axes(p, timeTicks(xd).map(([t, s]) => [x(t), s]), yt.values.map((v) => [y(v), fmt(v)]));
    return { p, x, y };
  }
  function linePath(ts, ys, x, y) {
    let d = "", pen = false;
    for (let i = 0; i < ts.length; i++) {
      if (!ok(ys[i]) || !ok(ts[i])) { pen = false; continue; }
      d += (pen ? "L" : "M") + xy(x(ts[i]), y(ys[i]));
      pen = true;
    }
    return d;
  }
  function empty(fig) {
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = "No data";
    fig.querySelector("svg").replaceWith(note);
    return "empty";
  }

  function equity(fig) {
    const e = data.equity || {}, t = e.t || [];
    const lines = [["model", "model"], ["buy_and_hold", "hold"], ["random_median", "random"]]
      .filter(([k]) => (e[k] || []).some(ok));
    if (!t.some(ok) || !lines.length) return empty(fig);
    const { p, x, y } = timeFrame(fig, [t], lines.map(([k]) => e[k]), plain);
    for (const [k, cls] of lines.reverse()) el(p.svg, "path", { class: "line " + cls, d: linePath(t, e[k], x, y) });
  }
  function drawdown(fig) {
    const dd = data.drawdown || {}, t = dd.t || [], v = (dd.model || []).map((a) => (ok(a) ? -a : 0));
    if (!t.some(ok) || !(dd.model || []).some(ok)) return empty(fig);
    const worst = Math.min(...v.filter(ok));
    const { p, x, y } = timeFrame(fig, [t], [], percent, [worst < 0 ? worst * 1.08 : -0.01, 0]);
    const line = linePath(t, v, x, y), ends = [x(t[0]), x(t[t.length - 1]), y(0)].map((n) => n.toFixed(1));
    el(p.svg, "path", { class: "area", d: `M${ends[0]},${ends[2]}L${line.slice(1)}L${ends[1]},${ends[2]}Z` });
    el(p.svg, "path", { class: "line dd", d: line });
  }
  function price(fig) {
    const pair = fig.dataset.pair, s = (data.prices || {})[pair] || {}, t = s.t || [], close = s.close || [];
    if (!t.some(ok) || !close.some(ok)) return empty(fig);
    const trades = (data.trades || []).filter((tr) => tr.pair === pair && ok(tr.opened_at) && ok(tr.entry_price));
    const closed = (tr) => ok(tr.closed_at) && ok(tr.exit_price);
    const times = trades.flatMap((tr) => [tr.opened_at, tr.closed_at]);
    const prices = trades.flatMap((tr) => [tr.entry_price, tr.exit_price]);
    const { p, x, y } = timeFrame(fig, [t, times], [close, prices], plain);
    el(p.svg, "path", { class: "line price", d: linePath(t, close, x, y) });
    for (const tr of trades) {
      const outcome = !ok(tr.pnl) || tr.pnl === 0 ? "flat" : tr.pnl > 0 ? "win" : "loss";
      const g = el(p.svg, "g", { class: "trade " + outcome });
      el(g, "title", {}, `${tr.side} ${pair} ${when(tr.opened_at)} at ${tr.entry_price} to ` +
        `${when(tr.closed_at)} at ${tr.exit_price}: P&L ${ok(tr.pnl) ? tr.pnl.toFixed(2) : "n/a"} (${tr.reason})`);
      const x0 = x(tr.opened_at), y0 = y(tr.entry_price), up = tr.side !== "SHORT" ? 1 : -1;
      if (closed(tr)) el(g, "line", { class: "link", x1: x0, y1: y0, x2: x(tr.closed_at), y2: y(tr.exit_price) });
      const tip = y0 - 7 * up, base = y0 + 4 * up;
      el(g, "path", { class: "entry " + (up > 0 ? "long" : "short"),
        d: `M${xy(x0, tip)}L${xy(x0 + 6, base)}L${xy(x0 - 6, base)}Z` });
      if (closed(tr)) el(g, "circle", { class: "exit", cx: x(tr.closed_at), cy: y(tr.exit_price), r: 3.5 });
    }
  }
  function monthly(fig) {
    const rows = (data.monthly_returns || []).filter((r) => r && r.month);
    if (!rows.some((r) => ok(r.return))) return empty(fig);
    const p = plot(fig), yd = extent([rows.map((r) => r.return), [0]], 0.12);
    const y = scale(yd, p.bottom, p.top), yt = ticks(yd), fmt = percent(yt.step);
    const band = (p.right - p.left) / rows.length, every = Math.ceil(rows.length / 10);
    const xs = rows.map((r, i) => [p.left + band * (i + 0.5), r.month]).filter((_, i) => i % every === 0);
    axes(p, xs, yt.values.map((v) => [y(v), fmt(v)]));
    rows.forEach((r, i) => {
      if (!ok(r.return)) return;
      const top = y(Math.max(r.return, 0)), h = Math.max(Math.abs(y(r.return) - y(0)), 1);
      const width = Math.min(band * 0.7, 48);
      const bar = el(p.svg, "rect", { class: "bar " + (r.return >= 0 ? "win" : "loss"),
        x: p.left + band * (i + 0.5) - width / 2, y: top, width, height: h });
      el(bar, "title", {}, `${r.month}: ${pct(r.return)}`);
      if (rows.length <= 12) {
        el(p.svg, "text", { class: "barlab", x: p.left + band * (i + 0.5), y: r.return >= 0 ? top - 4 : top + h + 12 },
          pct(r.return));
      }
    });
    el(p.svg, "line", { class: "zero", x1: p.left, x2: p.right, y1: y(0), y2: y(0) });
  }
  function calibration(fig) {
    const bins = ((data.calibration || {}).bins || [])
      .filter((b) => b && b.count > 0 && ok(b.mean_confidence) && ok(b.accuracy))
      .sort((a, b) => a.mean_confidence - b.mean_confidence);
    if (!bins.length) return empty(fig);
    const p = plot(fig, { l: 56, r: 16, t: 12, b: 40 });
    const x = scale([0, 1], p.left, p.right), y = scale([0, 1], p.bottom, p.top), grid = [0, 0.2, 0.4, 0.6, 0.8, 1];
    axes(p, grid.map((v) => [x(v), pct(v).replace(".0", "")]), grid.map((v) => [y(v), pct(v).replace(".0", "")]));
    el(p.svg, "text", { class: "title", x: (p.left + p.right) / 2, y: p.bottom + 34 }, "mean confidence");
    el(p.svg, "text", { class: "title", x: 14, y: (p.top + p.bottom) / 2,
      transform: `rotate(-90 14 ${((p.top + p.bottom) / 2).toFixed(1)})` }, "accuracy");
    const most = Math.max(...bins.map((b) => b.count)), hist = (b) => y((0.25 * b.count) / most);
    for (const b of bins) {
      if (ok(b.lo) && ok(b.hi) && b.hi > b.lo) {
        const top = hist(b), left = x(b.lo) + 1;
        el(p.svg, "rect", { class: "hist", x: left, width: x(b.hi) - left - 1, y: top, height: p.bottom - top });
      }
    }
    el(p.svg, "line", { class: "diagonal", x1: x(0), y1: y(0), x2: x(1), y2: y(1) });
    el(p.svg, "polyline", { class: "line model",
      points: bins.map((b) => xy(x(b.mean_confidence), y(b.accuracy))).join(" ") });
    for (const b of bins) {
      const dot = el(p.svg, "circle", { class: "dot", cx: x(b.mean_confidence), cy: y(b.accuracy),
        r: 3 + 4 * Math.sqrt(b.count / most) });
      el(dot, "title", {}, `${pct(b.lo)} to ${pct(b.hi)}: ${b.count} predictions, ` +
        `mean confidence ${pct(b.mean_confidence)}, accuracy ${pct(b.accuracy)}`);
    }
  }

  const DRAW = { equity, drawdown, price, monthly, calibration };
  let handled = 0;
  for (const fig of document.querySelectorAll("figure[data-chart]")) {
    try {
      fig.dataset.state = DRAW[fig.dataset.chart](fig) || "drawn";
    } catch (err) {
      console.error(`chart ${fig.dataset.chart} failed:`, err);
      fig.dataset.state = "failed";
    }
    handled += 1;
  }
  document.body.dataset.count = String(handled);
  document.body.dataset.charts = "drawn";
})();
"""


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


_CSP = f"default-src 'none'; script-src '{_hash(_JS)}'; style-src '{_hash(_CSS)}'; base-uri 'none'; form-action 'none'"
