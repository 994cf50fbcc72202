"""The backtest report in headless Chromium: it draws every chart offline, asks the network for
nothing, and logs no error."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helios_core.evaluation.report import write_report
from tests.report_support import backtest_report

pytestmark = pytest.mark.integration

KINDS = ("equity", "drawdown", "price", "monthly", "calibration")
HOSTILE = "</script><script>alert(1)</script>"

# Per SVG: the drawn shapes, and how many have a non-empty bounding box.
SHAPES = """svg => {
  const shapes = [...svg.querySelectorAll("path, polyline, rect, circle")];
  const sized = shapes.filter(s => { const b = s.getBBox(); return b.width > 0 || b.height > 0; });
  return {shapes: shapes.length, sized: sized.length};
}"""


@dataclass
class Visit:
    """An open report page, and what it tried that it should not have."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def open_report(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """Opens a report from file:// with every other request refused and recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)

    def visit(report: dict[str, Any]) -> Visit:
        html_path, _ = write_report(report, tmp_path)
        page = context.new_page()
        seen = Visit(page)

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                seen.requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("request", lambda req: None if req.url.startswith("file://") else seen.requests.append(req.url))
        page.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: seen.errors.append(str(exc)))

        def dialog(d: Any) -> None:
            seen.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.goto(html_path.as_uri())
        page.wait_for_selector('body[data-charts="drawn"]', state="attached", timeout=15_000)
        return seen

    yield visit
    context.close()


def test_every_chart_draws_offline_without_errors(open_report: Any, tmp_path: Path) -> None:
    report = backtest_report()
    report["notes"].append(HOSTILE)

    seen = open_report(report)

    page = seen.page
    assert page.evaluate("document.body.dataset.count") == str(4 + len(report["pairs"]))
    for kind in KINDS:
        figures = page.locator(f'figure[data-chart="{kind}"]')
        assert figures.count() == (len(report["pairs"]) if kind == "price" else 1), kind
        for i in range(figures.count()):
            svg = figures.nth(i).locator("svg")
            box = svg.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, kind
            shapes = svg.evaluate(SHAPES)
            assert shapes["shapes"] > 0 and shapes["sized"] > 0, (kind, shapes)
            assert figures.nth(i).get_attribute("data-state") == "drawn", kind
    for pair in report["pairs"]:
        mine = [x for x in report["trades"] if x["pair"] == pair]
        figure = page.locator(f'figure[data-chart="price"][data-pair="{pair}"]')
        assert figure.locator("path.entry").count() == len(mine), pair
        assert figure.locator("path.entry.long").count() == sum(x["side"] == "LONG" for x in mine), pair
        assert figure.locator("circle.exit").count() == len(mine), pair
    assert page.locator(".notes li").last.text_content() == HOSTILE
    assert "does not beat" in (page.locator("#verdict .headline").text_content() or "")
    assert (seen.requests, seen.errors, seen.dialogs) == ([], [], [])
    _screenshot(page, tmp_path / "report.png")


def test_charts_without_data_say_so_and_count_as_handled(open_report: Any) -> None:
    report = backtest_report()
    report["equity"] = {"t": [], "model": [], "buy_and_hold": [], "random_median": []}
    report["prices"] = {}
    report["monthly_returns"] = []
    report["calibration"] = {"bins": [], "ece": None, "n": 0}

    seen = open_report(report)

    page = seen.page
    assert page.evaluate("document.body.dataset.count") == str(4 + len(report["pairs"]))
    assert page.locator('figure[data-state="empty"] .empty').count() == 3 + len(report["pairs"])
    assert page.locator('figure[data-chart="drawdown"][data-state="drawn"] svg path').count() > 0
    assert (seen.requests, seen.errors, seen.dialogs) == ([], [], [])


def _screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("HELIOS_REPORT_SCREENSHOT")
    if extra:
        Path(extra).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, extra)
