"""`helios backtest`: a registered model through the kernel over days of the lake's candles."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from helios_core.errors import ConfigurationError, HeliosError
from helios_core.pairs import normalise_pair
from helios_dagster.allocation.backtest import backtest_allocator
from helios_dagster.summaries import allocation_lines, approval_lines, backtest_lines
from helios_live.backtest.run import run_backtest
from helios_live.data.lake import Lake
from helios_live.models.registry import Registry
from helios_live.settings import HeliosSettings


@dataclass(frozen=True)
class BacktestRequest:
    start: str  # YYYY-MM-DD, UTC
    end: str  # YYYY-MM-DD, inclusive
    model: str = ""  # "" = ACTIVE
    pairs: str = ""  # "P1,P2"; "" = the model's training pairs
    out: Path | None = None
    seed: int = 0
    runs: int = 50
    compare_approval: int = 0  # random-veto draws of the Tier 4 comparison; 0: none
    allocation: bool = False  # Tier 5 allocation on, compared with the same run without it


def _days(request: BacktestRequest) -> tuple[date, date]:
    try:
        first, last = date.fromisoformat(request.start), date.fromisoformat(request.end)
    except ValueError as exc:
        raise ConfigurationError(f"--start/--end must be YYYY-MM-DD: {exc}") from exc
    if last < first:
        raise ConfigurationError(f"--end {last} is before --start {first}")
    return first, last


def run(settings: HeliosSettings, request: BacktestRequest, progress: Callable[[str], None]) -> Iterator[str]:
    """Run the backtest (progress lines as it goes) and yield the summary's lines."""
    registry = Registry(settings.models_root)
    version = request.model or registry.active()
    if not version:
        raise HeliosError("no ACTIVE model: pass --model VERSION (see `helios model list`)")
    bundle = registry.get(version)
    first, last = _days(request)
    pairs = [normalise_pair(p) for p in request.pairs.split(",") if p.strip()] or list(bundle.meta.get("pairs", []))
    if not pairs:
        raise ConfigurationError(f"{version} names no training pairs: pass --pairs")
    out = request.out or settings.home / "backtests" / version / f"{first}_{last}"
    if out.exists() and any(out.iterdir()):
        raise HeliosError(f"{out} exists already: pass --out DIR for a new folder, or delete it")
    created = not out.exists()
    progress(f"backtesting {version} on {','.join(pairs)} over {first} .. {last} (UTC) into {out}")
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    try:
        result = run_backtest(
            settings, model_version=version, pairs=pairs, start=start, end=end, out_dir=out,
            lake=Lake(settings.lake_root), seed=request.seed, random_runs=request.runs, progress=progress,
            compare_approval=request.compare_approval,
            allocating=backtest_allocator if request.allocation else None,
        )  # fmt: skip
    except HeliosError:
        if created:
            shutil.rmtree(out, ignore_errors=True)  # ours and unfinished: the same command may be run again
        raise
    yield from backtest_lines(result.report)
    if "approval" in result.report:
        yield from approval_lines(result.report["approval"])
    if "allocation" in result.report:
        yield from allocation_lines(result.report["allocation"])
    yield f"report: {result.html} (data: {result.json}; ledger: {result.ledger})"
