"""`portfolio_attribution`: each UTC day's performance attribution (allocation, selection,
interaction, timing; helios_core.allocation.attribution) from the ledger and the lake's 1m
candles, written to the lake dataset `portfolio_attribution` for dbt and the reports.

One file a day, `portfolio_attribution/pair=PORTFOLIO/timeframe=1d/date=<day>.parquet`, in long
form: a `total` row, one row per `segment` (cash included) and per `pair`, and a `missing` row
for each price or volume the day lacked. Re-running a day rewrites its file."""

import math
from datetime import date
from typing import Any, Literal

import dagster as dg
import pandas as pd

from helios_core.allocation.attribution import DayAttribution, Effects, Missing, WindowAttribution
from helios_dagster.resources import LakeResource
from helios_live.allocation.attribution import attribution
from helios_live.ledger import Ledger
from helios_live.settings import load_settings

ASSET = "portfolio_attribution"
DATASET, PORTFOLIO, TIMEFRAME = "portfolio_attribution", "PORTFOLIO", "1d"
# The settings' default history_start: a paper replay over the sample data trades in 2018.
START = "2018-01-01"
COLUMNS = (
    "date",
    "benchmark",
    "level",
    "name",
    "segment",
    "weight",
    "benchmark_weight",
    "portfolio_return",
    "benchmark_return",
    "contribution",
    "allocation",
    "selection",
    "interaction",
    "timing",
    "total",
    "note",
)


class AttributionConfig(dg.Config):
    benchmark: Literal["equal", "volume"] = "equal"


def _effects(e: Effects) -> dict[str, float]:
    return {
        **dict(zip(("allocation", "selection", "interaction", "timing"), e.values(), strict=True)),
        "total": e.total,
    }


def rows(day: date, benchmark: str, attributed: DayAttribution | None, missing: list[Missing]) -> pd.DataFrame:
    """The day in long form. `weight` is the start weight (w0; the segment's or the total's
    sum), `benchmark_return` a pair's market return, `contribution` a pair's c (the total's R_p)."""
    out: list[dict[str, Any]] = []
    base = {"date": day.isoformat(), "benchmark": benchmark, "segment": "", "note": ""}
    if attributed is not None:
        held = sum(p.weight for p in attributed.pairs)
        out.append(
            {
                **base,
                "level": "total",
                "name": "portfolio",
                "weight": held,
                "benchmark_weight": 1.0,
                "portfolio_return": attributed.portfolio_return,
                "benchmark_return": attributed.benchmark_return,
                "contribution": attributed.portfolio_return,
                **_effects(attributed.totals),
            }
        )
        for s in attributed.segments:
            r_p = math.nan if s.portfolio_return is None else s.portfolio_return
            out.append(
                {
                    **base,
                    "level": "segment",
                    "name": s.segment,
                    "segment": s.segment,
                    "weight": s.portfolio_weight,
                    "benchmark_weight": s.benchmark_weight,
                    "portfolio_return": r_p,
                    "benchmark_return": s.benchmark_return,
                    **_effects(s.effects),
                }
            )
        for p in attributed.pairs:
            out.append(
                {
                    **base,
                    "level": "pair",
                    "name": p.pair,
                    "segment": p.segment,
                    "weight": p.weight,
                    "benchmark_weight": p.benchmark,
                    "benchmark_return": p.market_return,
                    "contribution": p.contribution,
                    "timing": p.timing,
                }
            )
    out.extend({**base, "level": "missing", "name": m.pair, "note": m.what} for m in missing)
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    text = ["date", "benchmark", "level", "name", "segment", "note"]
    frame[text] = frame[text].astype(str)
    numbers = [c for c in COLUMNS if c not in text]
    frame[numbers] = frame[numbers].astype(float)
    return frame


def metadata(window: WindowAttribution) -> dict[str, Any]:
    figures: dict[str, Any] = {"attributed": bool(window.days)}
    if window.days:
        (day,) = window.days
        figures |= {"portfolio_return": day.portfolio_return, "benchmark_return": day.benchmark_return}
        figures |= _effects(day.totals)
    figures["missing"] = dg.MetadataValue.json([{"pair": m.pair, "what": m.what} for m in window.missing])
    return figures


@dg.asset(
    name=ASSET,
    group_name="allocation",
    partitions_def=dg.DailyPartitionsDefinition(start_date=START, timezone="UTC"),
    description="The day's attribution (allocation, selection, interaction, timing against the benchmark) from "
    "the ledger's fills and snapshots and the lake's 1m closes, by segment and pair, into the lake.",
)
def portfolio_attribution(
    context: dg.AssetExecutionContext, config: AttributionConfig, lake: LakeResource
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    settings = load_settings()
    store = lake.lake()
    ledger = Ledger(settings.resolved_database_url)
    try:
        window = attribution(
            ledger,
            store,
            day,
            day,
            config.benchmark,
            universe=settings.live.pairs,
            capital=settings.trading.capital,
            sectors=settings.risk.sectors,
        )
    finally:
        ledger.close()
    attributed = window.days[0] if window.days else None
    store.write(DATASET, PORTFOLIO, TIMEFRAME, day, rows(day, config.benchmark, attributed, list(window.missing)), {})
    if attributed is None:
        context.log.warning(f"{day}: not attributed: {'; '.join(m.what for m in window.missing)}")
    return dg.MaterializeResult(metadata=metadata(window))


ATTRIBUTION_ASSETS = [portfolio_attribution]
