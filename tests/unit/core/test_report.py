"""The backtest report page: self-contained, escaped, with every figure the JSON beside it holds."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from helios_core.evaluation.report import MAX_POINTS, format_value, render_html, write_report
from tests.report_support import backtest_report

HOSTILE = "</script><script>alert(1)</script>"


class _Page(HTMLParser):
    """The tags, attributes and script bodies of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script" and self.scripts and not self.scripts[-1][1]:
            self.scripts[-1] = (self.scripts[-1][0], data)
        else:
            self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _embedded(page: str) -> Any:
    (attrs, body), _ = _parse(page).scripts
    assert attrs == {"type": "application/json", "id": "report-data"}
    return json.loads(body)


def _row(page: str, metric: str) -> list[str]:
    match = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', page)
    assert match, metric
    return re.findall(r"<td[^>]*>(.*?)</td>", match.group(1))


def test_the_page_references_nothing_outside_itself() -> None:
    page = render_html(backtest_report())

    tags = _parse(page).tags
    assert "http://" not in page and "https://" not in page and "//" not in page
    assert not [attrs for tag, attrs in tags if tag == "script" and "src" in attrs]
    assert not [tag for tag, _ in tags if tag in ("link", "img", "iframe", "object", "embed", "base")]
    assert "@import" not in page and "url(" not in page
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'") and "unsafe" not in csp


def test_a_hostile_pair_name_or_note_stays_text() -> None:
    report = backtest_report(pairs=("BTCZAR", HOSTILE))
    report["notes"].append(HOSTILE + " <!-- <script>")

    page = render_html(report)

    parsed = _parse(page)
    assert [attrs.get("type") for attrs, _ in parsed.scripts] == ["application/json", None]
    assert HOSTILE not in page and "<!--" not in page
    assert HOSTILE in "".join(parsed.text)  # shown, as text
    assert _embedded(page)["pairs"] == ["BTCZAR", HOSTILE]
    assert [a["data-pair"] for t, a in parsed.tags if t == "figure" and a.get("data-chart") == "price"] == [
        "BTCZAR",
        HOSTILE,
    ]


def test_undefined_figures_show_n_a() -> None:
    report = backtest_report()
    report["metrics"]["overall"]["sharpe"] = None
    del report["baselines"]["buy_and_hold"]["cagr"]

    page = render_html(report)

    assert _row(page, "sharpe")[0] == "n/a"
    assert _row(page, "cagr")[1] == "n/a"
    assert _row(page, "calmar") == ["n/a"] * 4


def test_the_table_formats_percentages_durations_and_money() -> None:
    report = backtest_report()
    overall = report["metrics"]["overall"]
    overall.update(total_return=-0.0193, max_drawdown_duration_s=23 * 86400 + 7 * 3600 + 59, final_equity=9807.123)

    page = render_html(report)

    assert _row(page, "total_return")[0] == "-1.93%"
    assert _row(page, "max_drawdown_duration_s")[0] == "23d 7h"
    assert _row(page, "final_equity")[0] == "9,807.12"
    assert [format_value(v, "duration") for v in (42, 3600, 5400, 90061)] == ["42s", "1h", "1h 30m", "1d 1h"]
    assert format_value(float("nan"), "pct") == "n/a"


@pytest.mark.parametrize(
    ("hold", "random", "headline"),
    [
        (False, False, "The model does not beat buy-and-hold or the random-entry baseline."),
        (True, False, "The model beats buy-and-hold but does not beat the random-entry baseline."),
        (False, True, "The model beats the random-entry baseline but does not beat buy-and-hold."),
        (True, True, "The model beats buy-and-hold and the random-entry baseline."),
    ],
)
def test_the_verdict_says_plainly_which_baselines_the_model_beats(hold: bool, random: bool, headline: str) -> None:
    report = backtest_report()
    report["verdict"].update(beats_buy_and_hold=hold, beats_random=random)

    page = render_html(report)

    assert f'<p class="headline">{headline}</p>' in page
    assert report["verdict"]["summary"] in page


def test_a_long_series_is_thinned_for_drawing_and_keeps_its_spike() -> None:
    report = backtest_report()
    n = 105_120  # a year of 5m candles
    t = [1_640_995_200 + 300 * i for i in range(n)]
    model = [10_000.0 + (i % 97) for i in range(n)]
    model[54_321] = 25_000.0
    report["equity"] = {"t": t, "model": model, "buy_and_hold": [10_000.0] * n, "random_median": [None] * n}
    report["prices"]["BTCZAR"] = {"t": t, "close": [700_000.0 - i for i in range(n)]}

    drawn = _embedded(render_html(report))

    equity, price = drawn["equity"], drawn["prices"]["BTCZAR"]
    assert len(equity["t"]) <= MAX_POINTS + 2 and len(price["t"]) <= MAX_POINTS + 2
    assert max(equity["model"]) == 25_000.0 and min(equity["model"]) == 10_000.0
    assert equity["t"][0] == t[0] and equity["t"][-1] == t[-1]
    assert price["close"][0] == 700_000.0 and price["close"][-1] == 700_000.0 - (n - 1)


def test_a_series_longer_than_its_time_axis_is_refused() -> None:
    report = backtest_report()
    report["drawdown"]["model"] = [*report["drawdown"]["model"], 0.0]

    with pytest.raises(ValueError, match=r"drawdown.model has 541 points, drawdown.t has 540"):
        render_html(report)


def test_write_report_writes_the_page_and_the_json_it_shows(tmp_path: Path) -> None:
    report = backtest_report()

    html_path, json_path = write_report(report, tmp_path / "out", stem="run-1")

    assert (html_path.name, json_path.name) == ("run-1.html", "run-1.json")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    assert html_path.read_text(encoding="utf-8") == render_html(report)


def test_a_nan_figure_writes_nothing(tmp_path: Path) -> None:
    report = backtest_report()
    report["metrics"]["overall"]["sharpe"] = float("nan")

    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_report(report, tmp_path)

    assert list(tmp_path.iterdir()) == []
