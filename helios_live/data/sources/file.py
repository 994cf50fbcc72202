"""Candles or trades from Parquet/CSV files (the schemas of the sample data).

A directory is scanned for `<PAIR>_*.parquet|csv`; the pair is the part before the first
underscore (`BTC-PERP_1m_...` -> `BTCPERP`). A file holds candles if it has an `open`
column, trades if it has `price` and `quantity`. A file is a closed recording: its history
is final up to the end of its last candle (or of the minute of its last trade). Where a pair
has both, the lake is built from the trades and the candle file is the reference that the
`candles_match_reference` check compares it with.

Every file must lie in plausible dates (`check_plausible_dates`): a file dated 1970 or
next century is a misread one (epoch seconds taken for milliseconds, a wrong year) and is
refused naming it, before anything downstream sees its days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from helios_core.candles import (
    check_alignment,
    check_plausible_dates,
    coerce_timestamps,
    trades_to_candles,
    validate_candles,
    validate_trades,
)
from helios_core.errors import DataValidationError, SourceError
from helios_core.pairs import normalise_pair
from helios_core.timeframes import CANONICAL, Timeframe
from helios_live.data.sources.base import CandleBatch

ONE_MINUTE = Timeframe.parse("1m")
_SUFFIXES = (".parquet", ".csv")


@dataclass
class _Loaded:
    timeframe: Timeframe
    candles: pd.DataFrame
    complete_from: pd.Timestamp
    complete_until: pd.Timestamp
    origin: str


def read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file; a broken file raises DataValidationError naming it."""
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any reader failure means a malformed file
        raise DataValidationError(f"{path}: cannot read as {path.suffix[1:]}: {exc}") from exc


def file_kind(frame: pd.DataFrame) -> str:
    if "open" in frame.columns:
        return "candles"
    if {"price", "quantity"} <= set(frame.columns):
        return "trades"
    return "unknown"


def infer_timeframe(path: Path, stamps: pd.Series) -> Timeframe:
    """The timeframe named in the file name, else the smallest step between candles."""
    for token in path.stem.split("_"):
        if token in CANONICAL:
            return Timeframe.parse(token)
    # No canonical timeframe is finer than a minute: an off-minute open is a bad row, and
    # naming it beats reporting the odd step it makes.
    check_alignment(stamps, ONE_MINUTE, str(path))
    steps = stamps.diff().dt.total_seconds()
    if not (steps > 0).any():
        raise DataValidationError(f"{path}: cannot infer the timeframe of a single candle; name it in the file")
    seconds = int(steps[steps > 0].min())
    if str(Timeframe(seconds)) not in CANONICAL:
        row = int((steps == seconds).to_numpy().argmax())
        raise DataValidationError(
            f"{path}: data row {row + 1} (ts={stamps.iloc[row]}): the smallest step between candles is"
            f" {seconds} s, no canonical timeframe {CANONICAL}; name the timeframe in the file name"
        )
    return Timeframe(seconds)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FileSource:
    """A `MarketDataSource` over local files; files are read once and cached.

    `clock` is the wall clock that bounds plausible dates (nothing later than tomorrow).
    """

    name = "file"

    def __init__(
        self,
        directory: Path | None = None,
        files: dict[str, list[Path]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._clock = clock
        self._files: dict[str, list[Path]] = {}
        if directory is not None:
            if not directory.is_dir():
                raise SourceError(f"file source directory does not exist: {directory}")
            for path in sorted(directory.iterdir()):
                if path.suffix in _SUFFIXES and "_" in path.stem:
                    pair = normalise_pair(path.stem.split("_")[0])
                    self._files.setdefault(pair, []).append(path)
        for pair, paths in (files or {}).items():
            self._files[normalise_pair(pair)] = [Path(p) for p in paths]
        self._candles: dict[str, _Loaded] = {}
        self._trades: dict[str, pd.DataFrame | None] = {}

    @property
    def pairs(self) -> list[str]:
        return sorted(self._files)

    def _paths(self, pair: str) -> list[Path]:
        if pair not in self._files:
            raise SourceError(f"file source has no file for pair {pair}; it has {self.pairs}")
        return self._files[pair]

    def _by_kind(self, pair: str, kind: str) -> list[tuple[Path, pd.DataFrame]]:
        found = []
        for path in self._paths(pair):
            frame = read_table(path)
            detected = file_kind(frame)
            if detected == "unknown":
                raise DataValidationError(f"{path}: neither candles (ts, open, ...) nor trades (ts, price, quantity)")
            if detected == kind:
                self._check_dates(path, frame)
                found.append((path, frame))
        return found

    def _check_dates(self, path: Path, frame: pd.DataFrame) -> None:
        if "ts" not in frame.columns:
            raise DataValidationError(f"{path}: missing column ts; found {list(frame.columns)}")
        stamps = coerce_timestamps(frame["ts"], str(path))
        integer = pd.api.types.is_integer_dtype(frame["ts"])
        check_plausible_dates(stamps, str(path), pd.Timestamp(self._clock()), integer)

    def trades(self, pair: str) -> pd.DataFrame | None:
        """All validated trades of `pair`, or None if it has no trades file."""
        if pair not in self._trades:
            found = self._by_kind(pair, "trades")
            self._trades[pair] = (
                pd.concat([validate_trades(frame, str(path)) for path, frame in found]).sort_values("ts", kind="stable")
                if found
                else None
            )
        return self._trades[pair]

    def _recorded_candles(self, pair: str) -> _Loaded | None:
        found = self._by_kind(pair, "candles")
        if len(found) > 1:
            raise SourceError(f"pair {pair} has several candle files {[str(p) for p, _ in found]}; keep one")
        if not found:
            return None
        path, frame = found[0]
        where = str(path)
        timeframe = infer_timeframe(path, coerce_timestamps(frame["ts"], where))
        candles = validate_candles(frame, timeframe, where)
        if candles.empty:
            raise DataValidationError(f"{where}: no candles")
        end = candles["ts"].iloc[-1] + timeframe.duration
        return _Loaded(timeframe, candles, candles["ts"].iloc[0], end, where)

    def _load(self, pair: str) -> _Loaded:
        # Trades win over a candle file: candles built from them carry trade counts and
        # taker buy volume, and the candle file then serves as the independent reference.
        if pair in self._candles:
            return self._candles[pair]
        trades = self.trades(pair)
        if trades is not None and not trades.empty:
            end = trades["ts"].iloc[-1].floor("1min") + ONE_MINUTE.duration
            candles = trades_to_candles(trades, ONE_MINUTE, end)
            begin = trades["ts"].iloc[0].floor("1min")
            loaded = _Loaded(ONE_MINUTE, candles, begin, end, f"{self._paths(pair)[0]} (trades -> 1m)")
        else:
            recorded = self._recorded_candles(pair)
            if recorded is None:
                raise SourceError(f"pair {pair} has neither candles nor trades in {self._paths(pair)}")
            loaded = recorded
        self._candles[pair] = loaded
        return loaded

    def coverage(self, pair: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The span `[first candle open, end of final history)` the files hold for `pair`."""
        loaded = self._load(pair)
        return loaded.complete_from, loaded.complete_until

    def fetch_candles(self, pair: str, start: datetime, end: datetime) -> CandleBatch:
        loaded = self._load(pair)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        ts = loaded.candles["ts"]
        window = loaded.candles.loc[(ts >= lo) & (ts < hi)].reset_index(drop=True)
        return CandleBatch(
            pair, loaded.timeframe, window, max(lo, loaded.complete_from), min(hi, loaded.complete_until), loaded.origin
        )

    def reference_candles(self, pair: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """The recorded 1m candle file, when the lake's candles were built from trades."""
        if not self._load(pair).origin.endswith("(trades -> 1m)"):
            return None
        recorded = self._recorded_candles(pair)
        if recorded is None or recorded.timeframe != ONE_MINUTE:
            return None
        ts = recorded.candles["ts"]
        return recorded.candles.loc[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))].reset_index(drop=True)
