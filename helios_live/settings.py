"""Typed, frozen settings read from `HELIOS_*` environment variables, grouped per component.

A variable's name is `HELIOS_<GROUP>_<FIELD>` (`HELIOS_RISK_MAX_DRAWDOWN` is `risk.max_drawdown`)
or `HELIOS_<FIELD>` for the few top-level ones. Keyword arguments take the same flat names
(`HeliosSettings(risk_max_drawdown=0.1)`), so a test or a caller overrides exactly what an
operator would set. Each group is checked with the rules of the component it configures: a
value the component would refuse stops start-up here, naming its variable.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from helios_core.errors import ConfigurationError
from helios_core.pairs import QUOTES, normalise_pair
from helios_core.risk.limits import Limits
from helios_core.risk.price_guard import GuardConfig
from helios_core.risk.sizing import SizingConfig
from helios_core.timeframes import Timeframe
from helios_core.trading.fills import FillModel

SAMPLE_PAIRS = ("BTCPERP", "ETHBTC", "LTCBTC", "XMRBTC", "ADABTC", "XRPETH")
VALR_PAIRS = ("BTCZAR", "ETHZAR", "SOLZAR")
# A pair is a base currency and then one of these (BTCZAR, BTCUSDT, ETHBTC, BTCPERP, ...).
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_DISTINCT = 6  # refuses aaaa..., abab...; a random hex token of 16 has fewer once in 50,000
COMMON_WORDS = (
    "changeme",
    "changethis",
    "password",
    "passwd",
    "secret",
    "token",
    "admin",
    "helios",
    "letmein",
    "qwerty",
    "123456",
    "abcdef",
)
GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
LONGEST_S = 1e9  # ~31 years: a longer duration is a typo, and a clock plus it overflows a datetime


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1), parsed: `127.evil.example` is a name."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_weakness(token: str) -> str | None:
    """Why `token` would be guessed, quoting none of it (the message reaches the logs)."""
    if any(char.isspace() for char in token):
        return "contains whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"is shorter than {MIN_TOKEN_LENGTH} characters"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"has fewer than {MIN_TOKEN_DISTINCT} different characters"
    if any(word in token.lower() for word in COMMON_WORDS):
        return "contains a common word or sequence (changeme, password, secret, token, admin, 123456, ...)"
    return None


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _pair(text: str) -> str:
    symbol = normalise_pair(text)
    quote = next((quote for quote in QUOTES if symbol.endswith(quote)), "")
    base = symbol.removesuffix(quote) if quote else ""
    if len(base) < 2 or base == quote:
        raise ValueError(f"{text!r} is not a pair: a base currency and then one of {', '.join(QUOTES)}")
    return symbol


def _pairs(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_pair(p) for p in value))


def _some(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("at least one pair is required")
    return value


# "btc-zar, ETHZAR" in a variable: a tuple of canonical pair names, each once.
PairList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split), AfterValidator(_pairs)]
SomePairs = Annotated[PairList, AfterValidator(_some)]


def _json_object(value: object) -> object:
    """A variable's JSON parsed here, not by the settings source, so that a bad one is refused
    naming its variable; keyword arguments pass mappings through."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f'must be a JSON object such as {{"BTCZAR": "majors"}}: {exc}') from exc


def _built(group: str, build: Any, names: Mapping[str, str]) -> None:
    """Build a component's own configuration; its refusal names the variable behind the field."""
    try:
        build()
    except ValueError as exc:
        field = str(exc).split(" ", 1)[0]
        variable = f"HELIOS_{group}_{names.get(field, field)}".upper()
        raise ValueError(f"{variable}: {exc}") from exc


class Group(BaseModel):
    # A non-finite number (`inf`, `nan`) is never a setting: the components would compare with it, or
    # multiply by it, without failing.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _origins(value: tuple[str, ...]) -> tuple[str, ...]:
    for origin in value:
        scheme, separator, authority = origin.partition("://")
        if scheme not in ("http", "https") or not separator or not authority or "/" in authority:
            raise ValueError(f"{origin!r} is not an origin such as https://desk.example:8443 (no path, no '*')")
    return value


class ApiSettings(Group):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: SecretStr = SecretStr("")  # the operator's bearer token
    viewer_token: SecretStr = SecretStr("")  # a bearer token that reads but cannot act
    rate_per_min: int = Field(default=600, ge=1, le=1_000_000)  # requests per client and per principal
    login_rate_per_min: int = Field(default=10, ge=1, le=10_000)  # login attempts per client and per user name
    # Origins allowed to call the API from a browser page (CORS); none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split), AfterValidator(_origins)] = ()
    # Addresses of reverse proxies whose X-Forwarded-For is believed (`helios live serve`); none by
    # default: the client is the socket's peer.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)] = ()


class UiSettings(Group):
    # Lines of `name role argon2-hash`, mode 0600 or 0400; written by `helios-live users add`.
    users_file: Path | None = None
    session_secret: SecretStr = SecretStr("")  # signs session cookies; empty: a new one each start
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    secure_cookie: bool = False  # Secure cookies even when requests arrive over plain http (a TLS proxy)


class HttpSettings(Group):
    timeout_s: float = Field(default=10.0, gt=0, le=3600)
    max_retries: int = Field(default=5, ge=0, le=20)


class ValrSettings(Group):
    base_url: str = "https://api.valr.com"
    api_key: SecretStr = SecretStr("")
    api_secret: SecretStr = SecretStr("")
    # A file of HELIOS_VALR_API_KEY=... / HELIOS_VALR_API_SECRET=... lines, mode 0600 (refused otherwise).
    secrets_file: Path | None = None
    subaccount_id: str = ""
    account_ws_url: str = "wss://api.valr.com/ws/account"
    order_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # LIVE's optional ceilings on openings, in the quote currency (exits are never capped).
    max_order_notional: float | None = Field(default=None, gt=0)
    max_day_notional: float | None = Field(default=None, gt=0)
    reconcile_s: float = Field(default=60.0, ge=5, le=86_400)
    status_poll_s: float = Field(default=5.0, ge=0.5, le=600)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def credentials(self) -> bool:
        return bool(self.api_key.get_secret_value() and self.api_secret.get_secret_value()) or bool(self.secrets_file)


class LabelSettings(Group):
    timeframe: str = "5m"
    candles: int = Field(default=12, ge=1, le=10_000)
    up: float = Field(default=0.02, gt=0, lt=1)
    down: float = Field(default=0.02, gt=0, lt=1)

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        return str(Timeframe.parse(value))


class BarrierSettings(Group):
    k_up: float = Field(default=2.0, gt=0, le=100)
    k_down: float = Field(default=2.0, gt=0, le=100)


class ModelSettings(Group):
    preset: Literal["small", "base", "large"] = "small"
    window: int = Field(default=16, ge=1, le=1024)


class TrainSettings(Group):
    pairs: PairList = ()
    days: int = Field(default=90, ge=1, le=36_500)
    max_epochs: int = Field(default=20, ge=1, le=10_000)
    folds: int = Field(default=3, ge=1, le=20)


class GateSettings(Group):
    min_balanced_accuracy: float = Field(default=0.40, ge=0, le=1)
    max_ece: float = Field(default=0.15, ge=0, le=1)
    min_sharpe: float = Field(default=0.0, ge=-100, le=100)  # the walk-forward folds' mean
    max_drawdown: float = Field(default=0.25, gt=0, le=1)  # the worst fold's


class RetrainSettings(Group):
    min_new_rows: int = Field(default=10_000, ge=1)


class LiveSettings(Group):
    """The live service's stream, candles, clock and engine (docs/live.md)."""

    pairs: SomePairs = VALR_PAIRS
    ws_url: str = "wss://api.valr.com/ws/trade"
    candles: Literal["trades", "buckets"] = "trades"
    clock: Literal["system", "exchange"] = "system"
    autostart: bool = True
    close_grace_s: float = Field(default=2.0, ge=0, le=60)
    queue_size: int = Field(default=10_000, ge=10, le=10_000_000)
    backfill_trades_max_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    warmup_days: int = Field(default=4, ge=1, le=30)
    min_confidence: float = Field(default=0.55, ge=0, le=1)
    model_poll_s: float = Field(default=5.0, gt=0, le=LONGEST_S)
    health_s: float = Field(default=5.0, gt=0, le=LONGEST_S)
    max_candle_age_s: float = Field(default=300.0, ge=60, le=LONGEST_S)
    # An async step of the decision chain past this is a recorded denial; the execution step is
    # never cut short (an order half sent is worse than a slow one).
    step_deadline_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value


class TradingSettings(Group):
    capital: float = Field(default=100_000.0, gt=0, le=1e15)


class RiskSettings(Group):
    """Tier 3 sizing and the Tier 5 limits (docs/trading.md); fractions of equity."""

    garch_days: int = Field(default=30, ge=1, le=365)
    refit_s: float = Field(default=4 * 3600.0, gt=0, le=LONGEST_S)
    fit_process: bool = True
    fractional_kelly: float = Field(default=0.25, gt=0, le=1)
    reward_ratio: float = Field(default=2.0, gt=0, le=1000)
    max_leverage: float = Field(default=3.0, ge=1, le=10)
    max_hold_s: float = Field(default=86_400.0, gt=0, le=LONGEST_S)
    max_drawdown: float = Field(default=0.15, gt=0, lt=1)
    daily_loss: float = Field(default=0.05, gt=0, lt=1)
    max_open_positions: int = Field(default=10, ge=1, le=10_000)
    max_position: float = Field(default=0.20, gt=0, le=1)
    max_sector_exposure: float = Field(default=0.60, gt=0, le=1)
    max_correlation: float = Field(default=0.90, gt=0, le=1)
    max_portfolio_leverage: float = Field(default=3.0, ge=1, le=10)
    sectors: Annotated[dict[str, str], NoDecode, BeforeValidator(_json_object)] = Field(default_factory=dict)

    @field_validator("sectors")
    @classmethod
    def _sectors(cls, value: dict[str, str]) -> dict[str, str]:
        return {normalise_pair(pair): sector for pair, sector in value.items()}

    def limits(self) -> Limits:
        return Limits(
            max_drawdown=self.max_drawdown,
            daily_loss=self.daily_loss,
            max_open_positions=self.max_open_positions,
            max_position=self.max_position,
            max_sector_exposure=self.max_sector_exposure,
            max_correlation=self.max_correlation,
            max_leverage=self.max_portfolio_leverage,
        )

    def sizing(self, min_confidence: float) -> SizingConfig:
        return SizingConfig(
            fractional_kelly=self.fractional_kelly,
            reward_risk=self.reward_ratio,
            min_confidence=min_confidence,
            max_position=self.max_position,
            max_hold_s=self.max_hold_s,
            max_leverage=self.max_leverage,
        )

    @model_validator(mode="after")
    def _components(self) -> RiskSettings:
        _built("risk", self.limits, {"max_leverage": "max_portfolio_leverage"})
        _built("risk", lambda: self.sizing(0.55), {"reward_risk": "reward_ratio"})
        return self


class PaperSettings(Group):
    taker_fee: float = Field(default=0.0035, ge=0, lt=0.1)
    maker_fee: float = Field(default=0.0018, gt=-0.01, lt=0.1)
    slippage_bps: float = Field(default=5.0, ge=0, le=1000)
    book_max_age_s: float = Field(default=10.0, gt=0, le=LONGEST_S)

    def fill_model(self) -> FillModel:
        return FillModel(self.taker_fee, self.maker_fee, self.slippage_bps, self.book_max_age_s)

    @model_validator(mode="after")
    def _components(self) -> PaperSettings:
        _built("paper", self.fill_model, {})
        return self


class GuardSettings(Group):
    """The price guard (docs/live.md): how far a price may jump before it is quarantined."""

    max_jump: float = Field(default=0.03, gt=0, lt=1)
    sigmas: float = Field(default=10.0, gt=0, lt=1000)
    confirm_ticks: int = Field(default=3, ge=1, le=100)

    def config(self) -> GuardConfig:
        return GuardConfig(self.max_jump, self.sigmas, self.confirm_ticks)


class LedgerSettings(Group):
    """While the database is unreachable, writes wait in a spool on local disk (docs/live.md)."""

    spool_max: int = Field(default=1000, ge=0, le=1_000_000)  # decisions; 0: no spool
    retry_s: float = Field(default=30.0, gt=0, le=LONGEST_S)


APPROVAL_GRACE_S = 0.5  # the approval step's own cut-off after the approver's deadline


class LlmSettings(Group):
    """Tier 4, the approval step (docs/approval.md). `approver` "auto" is Claude when
    `ANTHROPIC_API_KEY` is set and the deterministic rules when it is not."""

    approver: Literal["auto", "claude", "rule_based", "recorded", "pass_through"] = "auto"
    model: str = "claude-sonnet-4-5"
    base_url: str = ""  # the Messages API's address; empty: the SDK's default
    max_tokens: int = Field(default=512, ge=64, le=8192)
    deadline_s: float = Field(default=8.0, gt=0, le=120)  # the whole call, its retries included
    failure_policy: Literal["reject", "neural_only"] = "reject"
    circuit_failures: int = Field(default=3, ge=1, le=100)  # in a row, then the circuit opens
    circuit_cooldown_s: float = Field(default=300.0, gt=0, le=LONGEST_S)
    call_max_usd: float = Field(default=0.05, ge=0, le=100)
    day_max_usd: float = Field(default=5.0, ge=0, le=100_000)
    price_tolerance: float = Field(default=0.005, gt=0, lt=1)  # a move while waiting that re-sizes
    recorded_url: str = ""  # the ledger a `recorded` approver replays; empty: this service's own

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class PortfolioSettings(Group):
    snapshot_s: float = Field(default=60.0, gt=0, le=LONGEST_S)


class SurveillanceSettings(Group):
    """The surveillance tier (docs/surveillance.md): what it watches, how often, and what it does
    to entries. `run`: "off" (the default), "in-process" (the live service runs the monitors),
    or "ledger" (`helios surveil` runs them; the live service reads the active events from the
    ledger every `follow_s`)."""

    run: Literal["off", "in-process", "ledger"] = "off"
    follow_s: float = Field(default=15.0, ge=1, le=3600)
    hyperliquid_url: str = "https://api.hyperliquid.xyz"
    hyperliquid_ws_url: str = "wss://api.hyperliquid.xyz/ws"
    binance_url: str = "https://api.binance.com"
    coinbase_url: str = "https://api.exchange.coinbase.com"
    valr_url: str = "https://api.valr.com"
    assets: Annotated[tuple[str, ...], NoDecode] = ("BTC", "ETH", "SOL")
    # Addresses whose fills are watched for liquidations (Hyperliquid's API gives fills per user).
    users: Annotated[tuple[str, ...], NoDecode] = ()
    vault: str = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"  # HLP
    fx: str = "USDTZAR"  # the rate that crosses a USD reference into ZAR on VALR
    oracle_s: float = Field(default=60.0, ge=1, le=86_400)
    liquidations_s: float = Field(default=180.0, ge=1, le=86_400)
    vault_s: float = Field(default=300.0, ge=1, le=86_400)
    deadline_s: float = Field(default=20.0, gt=0, le=600)
    warning_pct: float = Field(default=0.25, gt=0)
    high_pct: float = Field(default=0.5, gt=0)
    critical_pct: float = Field(default=1.0, gt=0)
    max_age_s: float = Field(default=120.0, gt=0)
    quorum: int = Field(default=2, ge=1, le=10)
    sustained_s: float = Field(default=30.0, ge=0)
    cascade_count: int = Field(default=5, ge=1)
    cascade_notional: float = Field(default=10_000.0, ge=0)
    cascade_window_s: float = Field(default=300.0, gt=0)
    high_size_factor: float = Field(default=0.5, ge=0, le=1)  # a HIGH event scales entries by this
    retention_days: int = Field(default=30, ge=1, le=3650)
    spool_max: int = Field(default=100_000, ge=0)  # rows waiting while the ledger is unreachable

    @field_validator("assets", "users", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return _split(value)

    @model_validator(mode="after")
    def _levels(self) -> SurveillanceSettings:
        if not self.warning_pct < self.high_pct < self.critical_pct:
            raise ValueError("warning_pct < high_pct < critical_pct is required")
        return self


class AllocationSettings(Group):
    """Tier 5 allocation (docs/trading.md): the optimiser's inputs (batch side), the entry cap and
    drift rebalancing (live side). Weights are gross exposure over equity."""

    enabled: bool = True  # the entry cap and rebalancing follow the newest targets when there are any
    window_days: int = Field(default=90, ge=2, le=3650)  # daily returns in the covariance
    min_returns: int = Field(default=10, ge=2, le=3650)  # fewer: the stated fallback rule
    prior_days: int = Field(default=30, ge=1, le=3650)  # the volume-proxy prior's average
    risk_aversion: float = Field(default=2.5, gt=0, le=100)  # delta
    tau: float = Field(default=0.025, gt=0, le=1)
    max_weight: float = Field(default=0.40, gt=0, le=1)  # per pair
    objective: Literal["max_sharpe", "min_volatility", "max_utility"] = "max_sharpe"
    risk_free_rate: float = Field(default=0.05, ge=0, le=1)  # annual; daily = /365
    cost: float = Field(default=0.0035, ge=0, lt=1)  # per unit of turnover (VALR's taker fee)
    # The turnover's cost is spread over this many days of the new targets' expected return:
    # they stand at least until the weekly pass, not for the one day a daily recomputation lasts.
    cost_days: int = Field(default=7, ge=1, le=365)
    view_hours: float = Field(default=24.0, gt=0, le=24 * 30)  # predictions averaged into a view
    band: float = Field(default=0.05, ge=0, le=1)  # an entry may take a pair to target + band
    drift: float = Field(default=0.05, gt=0, le=1)  # the daily check trims what is above target + drift
    weekly_drift: float = Field(default=0.01, gt=0, le=1)  # Monday's pass: the tighter threshold
    check_hour: int = Field(default=1, ge=0, le=23)  # UTC hour of the daily check: after the asset's 00:15 run
    refresh_s: float = Field(default=300.0, ge=1, le=86_400)  # the live service reads new targets
    emergency: Literal["HIGH", "CRITICAL"] = "HIGH"  # the lowest security-event severity that trims


Severity = Literal["INFO", "WARNING", "CRITICAL"]


def _alert_url(value: SecretStr) -> SecretStr:
    """A channel's URL carries its credential: https, or http to this machine only (a test's fake)."""
    url = value.get_secret_value()
    if not url:
        return value
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if scheme == "https" and host:
        return value
    if scheme == "http" and is_loopback(host):
        return value
    raise ValueError("must be an https:// URL (http:// only to a loopback address)")


AlertUrl = Annotated[SecretStr, AfterValidator(_alert_url)]


class AlertSettings(Group):
    """Alerts (docs/alerts.md): each channel is off until its URL (or bot token, or SMTP host) is
    set, and takes the alerts at or above its own severity floor."""

    throttle_s: float = Field(default=300.0, ge=0, le=LONGEST_S)  # a condition's next alert after its recovery
    reminder_s: float = Field(default=0.0, ge=0, le=LONGEST_S)  # 0: a firing condition is sent once
    check_s: float = Field(default=10.0, ge=1, le=3600)  # the timer that reads the engine's state
    stream_down_s: float = Field(default=300.0, gt=0, le=LONGEST_S)
    retries: int = Field(default=3, ge=0, le=10)  # after the first try
    backoff_s: float = Field(default=1.0, ge=0, le=60)  # doubling: 1, 2, 4 s
    timeout_s: float = Field(default=5.0, gt=0, le=60)  # per try
    webhook_url: AlertUrl = SecretStr("")
    webhook_secret: SecretStr = SecretStr("")  # signs the body: X-Helios-Signature: sha256=<hmac>
    webhook_min_severity: Severity = "INFO"
    slack_url: AlertUrl = SecretStr("")
    slack_min_severity: Severity = "WARNING"
    discord_url: AlertUrl = SecretStr("")
    discord_min_severity: Severity = "WARNING"
    telegram_token: SecretStr = SecretStr("")
    telegram_chat_id: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    telegram_min_severity: Severity = "WARNING"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""
    smtp_to: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)] = ()
    smtp_min_severity: Severity = "CRITICAL"

    @field_validator("telegram_base_url")
    @classmethod
    def _telegram_base(cls, value: str) -> str:
        _alert_url(SecretStr(value))
        return value.rstrip("/")

    @model_validator(mode="after")
    def _complete(self) -> AlertSettings:
        if self.telegram_token.get_secret_value() and not self.telegram_chat_id:
            raise ValueError("HELIOS_ALERTS_TELEGRAM_CHAT_ID is required with HELIOS_ALERTS_TELEGRAM_TOKEN")
        if self.smtp_host and not (self.smtp_from and self.smtp_to):
            raise ValueError(
                "HELIOS_ALERTS_SMTP_FROM and HELIOS_ALERTS_SMTP_TO are required with HELIOS_ALERTS_SMTP_HOST"
            )
        if self.smtp_username and not self.smtp_starttls and not is_loopback(self.smtp_host):
            raise ValueError(
                "HELIOS_ALERTS_SMTP_USERNAME without HELIOS_ALERTS_SMTP_STARTTLS would send the password in clear"
            )
        return self


GROUPS = (
    "api",
    "ui",
    "ledger",
    "http",
    "valr",
    "label",
    "barrier",
    "model",
    "train",
    "gate",
    "retrain",
    "live",
    "trading",
    "risk",
    "paper",
    "portfolio",
    "guard",
    "llm",
    "surveillance",
    "allocation",
    "alerts",
)


class HeliosSettings(BaseSettings):
    """Everything configurable, with embedded defaults that need no services."""

    model_config = SettingsConfigDict(
        env_prefix="HELIOS_",
        env_nested_delimiter="_",
        env_nested_max_split=1,  # HELIOS_RISK_MAX_DRAWDOWN is risk.max_drawdown, not risk.max.drawdown
        frozen=True,
        extra="forbid",
    )

    home: Path = Path(".helios")
    database_url: str = ""
    pairs: SomePairs = SAMPLE_PAIRS + VALR_PAIRS
    timeframes: Annotated[tuple[str, ...], NoDecode] = ("1m", "5m", "15m")
    source: Literal["file", "valr"] = "file"
    file_dir: Path = Path("data/sample")
    history_start: date = date(2018, 1, 1)
    reference_pair: str = "BTCZAR"
    environment: Literal["development", "production"] = "development"
    api: ApiSettings = ApiSettings()
    ui: UiSettings = UiSettings()
    http: HttpSettings = HttpSettings()
    valr: ValrSettings = ValrSettings()
    label: LabelSettings = LabelSettings()
    barrier: BarrierSettings = BarrierSettings()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    gate: GateSettings = GateSettings()
    retrain: RetrainSettings = RetrainSettings()
    live: LiveSettings = LiveSettings()
    trading: TradingSettings = TradingSettings()
    risk: RiskSettings = RiskSettings()
    paper: PaperSettings = PaperSettings()
    portfolio: PortfolioSettings = PortfolioSettings()
    guard: GuardSettings = GuardSettings()
    ledger: LedgerSettings = LedgerSettings()
    llm: LlmSettings = LlmSettings()
    surveillance: SurveillanceSettings = SurveillanceSettings()
    allocation: AllocationSettings = AllocationSettings()
    alerts: AlertSettings = AlertSettings()
    # The SDK's own variable, unprefixed: the one a user of Claude already has set.
    anthropic_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="ANTHROPIC_API_KEY")

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: Any) -> Any:
        """`risk_max_drawdown=...` as `risk={"max_drawdown": ...}`: the variable's own name."""
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        flat: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            group, _, field = key.partition("_")
            if key not in cls.model_fields and group in GROUPS and field:
                flat.setdefault(group, {})[field] = value
            else:
                out[key] = value
        for group, fields in flat.items():
            current = out.get(group, {})
            base = current.model_dump() if isinstance(current, BaseModel) else dict(current)
            out[group] = {**base, **fields}
        return out

    @field_validator("timeframes", mode="before")
    @classmethod
    def _split_timeframes(cls, value: object) -> object:
        return _split(value)

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parsed = sorted(Timeframe.parse(t) for t in value)
        if not parsed:
            raise ValueError("at least one timeframe is required")
        return tuple(str(t) for t in parsed)

    @field_validator("reference_pair")
    @classmethod
    def _reference(cls, value: str) -> str:
        return normalise_pair(value) if value.strip() else ""

    @model_validator(mode="after")
    def _cross_checks(self) -> HeliosSettings:
        # A trading API must not run on a guessable token; only a developer's loopback service may
        # run without one (docs/live.md). A token that is set is always held to the rule: with one,
        # the API stops checking that its callers are local.
        token = self.api.token.get_secret_value()
        secrets = {
            "HELIOS_API_TOKEN": token,
            "HELIOS_API_VIEWER_TOKEN": self.api.viewer_token.get_secret_value(),
            "HELIOS_UI_SESSION_SECRET": self.ui.session_secret.get_secret_value(),
        }
        for name, value in secrets.items():
            weakness = token_weakness(value) if value else None
            if weakness is not None:
                raise ValueError(f"{name} {weakness}; {GENERATE_HINT}")
        if token and secrets["HELIOS_API_VIEWER_TOKEN"] == token:
            raise ValueError("HELIOS_API_VIEWER_TOKEN must differ from HELIOS_API_TOKEN: a viewer must not act")
        if not self.authenticated and not (self.environment == "development" and is_loopback(self.api.host)):
            raise ValueError(
                f"HELIOS_API_TOKEN must be a secret of at least {MIN_TOKEN_LENGTH} characters (or"
                " HELIOS_API_VIEWER_TOKEN or HELIOS_UI_USERS_FILE set) unless"
                " HELIOS_ENVIRONMENT=development and HELIOS_API_HOST is a loopback address"
            )
        unknown = sorted(set(self.risk.sectors) - set(self.live.pairs) - set(self.pairs))
        if unknown:
            raise ValueError(f"HELIOS_RISK_SECTORS: {unknown} are pairs of neither HELIOS_LIVE_PAIRS nor HELIOS_PAIRS")
        _built("live", lambda: self.sizing, {})
        if self.llm.deadline_s + APPROVAL_GRACE_S >= self.live.step_deadline_s:
            raise ValueError(
                f"HELIOS_LLM_DEADLINE_S must be {APPROVAL_GRACE_S:g} s below HELIOS_LIVE_STEP_DEADLINE_S: the"
                " approver answers by its own deadline, with its failure policy, before the chain cuts it short"
            )
        return self

    @property
    def authenticated(self) -> bool:
        """Whether callers must authenticate: false only in development mode (docs/live.md)."""
        api = self.api
        return bool(api.token.get_secret_value() or api.viewer_token.get_secret_value() or self.ui.users_file)

    @property
    def approver(self) -> str:
        """The approver that runs: "auto" resolved by whether a Claude key is set."""
        if self.llm.approver != "auto":
            return self.llm.approver
        return "claude" if self.anthropic_api_key.get_secret_value() else "rule_based"

    @property
    def sizing(self) -> SizingConfig:
        """Tier 3's configuration: the risk group with the signal's confidence floor."""
        return self.risk.sizing(self.live.min_confidence)

    @property
    def resolved_database_url(self) -> str:
        """`HELIOS_DATABASE_URL`, or SQLite under `HELIOS_HOME`."""
        return self.database_url or f"sqlite:///{self.home.resolve() / 'helios.db'}"

    @property
    def lake_root(self) -> Path:
        return self.home / "lake"

    @property
    def models_root(self) -> Path:
        return self.home / "models"

    @property
    def spool_path(self) -> Path:
        """The ledger spool of this database: one file per ledger URL, so that two services
        sharing a home never land each other's writes."""
        from sqlalchemy.engine import make_url  # the ledger's own URL parser, only where needed

        # Without its password: a rotated password must not strand what waits in the spool.
        url = make_url(self.resolved_database_url).render_as_string(hide_password=True)
        return self.home / "spool" / f"ledger-{hashlib.sha256(url.encode()).hexdigest()[:16]}.sqlite"

    def replace(self, **flat: Any) -> HeliosSettings:
        """These settings with some changed, by their flat names (`live_pairs=...`), validated again."""
        return type(self).model_validate({**self.model_dump(), **flat})


def load_settings() -> HeliosSettings:
    """Read settings from the environment; a bad value fails naming its variable."""
    try:
        return HeliosSettings()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid configuration: {problems(exc)}") from exc
    except SettingsError as exc:  # a group given whole as a variable (HELIOS_RISK='{...'), not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        variable = f"HELIOS_{field[1].upper()}: " if field else ""
        raise ConfigurationError(f"invalid configuration: {variable}{exc}") from exc


def problems(exc: ValidationError) -> str:
    """Each error with the variable it came from: `HELIOS_RISK_MAX_DRAWDOWN: ...`."""
    out = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
        named = message.startswith("HELIOS_") or not loc  # a component's refusal names its own variable
        out.append(message if named else f"HELIOS_{'_'.join(loc).upper()}: {message}")
    return "; ".join(out)
