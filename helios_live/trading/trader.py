"""The trading side's state: the configuration, the account, each pair's volatility model and
the correlations between pairs, which Tier 3 sizing and the Tier 5 guard read."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from helios_core.risk.limits import Limits
from helios_core.risk.sizing import SizingConfig
from helios_core.trading.account import Account
from helios_core.trading.fills import FillModel
from helios_live.settings import HeliosSettings
from helios_live.trading.volatility import PairVolatility, correlation


@dataclass(frozen=True)
class TradingConfig:
    capital: float = 100_000.0
    garch_window: int = 30 * 288  # 30 days of 5m returns
    sizing: SizingConfig = field(default_factory=SizingConfig)
    limits: Limits = field(default_factory=Limits)
    fills: FillModel = field(default_factory=FillModel)
    sectors: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_settings(cls, s: HeliosSettings) -> TradingConfig:
        return cls(
            capital=s.trading.capital,
            garch_window=s.risk.garch_days * 288,
            sizing=s.sizing,
            limits=s.risk.limits(),
            fills=s.paper.fill_model(),
            sectors=MappingProxyType(dict(s.risk.sectors)),
        )


class Trader:
    def __init__(self, config: TradingConfig, pairs: tuple[str, ...], account: Account | None = None) -> None:
        self.config = config
        self.account = account or Account(config.capital)
        self.vol = {p: PairVolatility(config.garch_window) for p in pairs}
        self._correlations: dict[tuple[str, str], tuple[tuple[int, int], float | None]] = {}

    @property
    def sectors(self) -> dict[str, str]:
        return dict(self.config.sectors)

    def correlation(self, a: str, b: str) -> float | None:
        """Cached until either pair has a new return: the guard asks on every decision, against
        every open position, and a 30-day correlation only moves every five minutes."""
        if a == b:
            return 1.0
        if a not in self.vol or b not in self.vol:
            return None
        seen = (self.vol[a].total, self.vol[b].total)
        cached = self._correlations.get((a, b))
        if cached is None or cached[0] != seen:
            cached = (seen, correlation(self.vol[a], self.vol[b]))
            self._correlations[(a, b)] = cached
        return cached[1]
