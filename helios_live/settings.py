"""Typed, frozen settings read from `HELIOS_*` environment variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from helios_core.errors import ConfigurationError
from helios_core.pairs import normalise_pair
from helios_core.timeframes import Timeframe

SAMPLE_PAIRS = ("BTCPERP", "ETHBTC", "LTCBTC", "XMRBTC", "ADABTC", "XRPETH")
VALR_PAIRS = ("BTCZAR", "ETHZAR", "SOLZAR")
WEAK_TOKENS = frozenset({"changethis", "changeme", "secret", "token", "password", "admin", "helios"})


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class HeliosSettings(BaseSettings):
    """Everything configurable, with embedded defaults that need no services."""

    model_config = SettingsConfigDict(env_prefix="HELIOS_", frozen=True, extra="forbid")

    home: Path = Path(".helios")
    database_url: str = ""
    pairs: Annotated[tuple[str, ...], NoDecode] = SAMPLE_PAIRS + VALR_PAIRS
    timeframes: Annotated[tuple[str, ...], NoDecode] = ("1m", "5m", "15m")
    source: Literal["file", "valr"] = "file"
    file_dir: Path = Path("data/sample")
    valr_base_url: str = "https://api.valr.com"
    http_timeout_s: float = Field(default=10.0, gt=0)
    http_max_retries: int = Field(default=5, ge=0, le=20)
    history_start: date = date(2018, 1, 1)
    reference_pair: str = "BTCZAR"
    label_timeframe: str = "5m"
    label_candles: int = Field(default=12, ge=1, le=10_000)
    label_up: float = Field(default=0.02, gt=0, lt=1)
    label_down: float = Field(default=0.02, gt=0, lt=1)
    barrier_k_up: float = Field(default=2.0, gt=0)
    barrier_k_down: float = Field(default=2.0, gt=0)
    model_preset: Literal["small", "base", "large"] = "small"
    model_window: int = Field(default=16, ge=1, le=1024)
    train_pairs: Annotated[tuple[str, ...], NoDecode] = ()
    train_days: int = Field(default=90, ge=1)
    train_max_epochs: int = Field(default=20, ge=1)
    train_folds: int = Field(default=3, ge=1, le=20)
    gate_min_balanced_accuracy: float = Field(default=0.40, ge=0, le=1)
    gate_max_ece: float = Field(default=0.15, ge=0, le=1)
    retrain_min_new_rows: int = Field(default=10_000, ge=1)
    # The live service (helios_live): docs/live.md explains each one.
    environment: Literal["development", "production"] = "development"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_token: SecretStr = SecretStr("")
    live_pairs: Annotated[tuple[str, ...], NoDecode] = VALR_PAIRS
    live_ws_url: str = "wss://api.valr.com/ws/trade"
    live_candles: Literal["trades", "buckets"] = "trades"
    live_clock: Literal["system", "exchange"] = "system"
    live_autostart: bool = True
    live_close_grace_s: float = Field(default=2.0, ge=0, le=60)
    live_queue_size: int = Field(default=10_000, ge=10)
    live_backfill_trades_max_minutes: int = Field(default=120, ge=1)
    live_warmup_days: int = Field(default=4, ge=1, le=30)
    live_min_confidence: float = Field(default=0.55, ge=0, le=1)
    live_model_poll_s: float = Field(default=5.0, gt=0)
    # Trading: Tier 3 sizing, Tier 5 limits, the paper account (docs/trading.md).
    trading_capital: float = Field(default=100_000.0, gt=0)
    valr_api_key: SecretStr = SecretStr("")
    valr_api_secret: SecretStr = SecretStr("")
    risk_garch_days: int = Field(default=30, ge=1, le=365)
    risk_refit_s: float = Field(default=4 * 3600.0, gt=0)
    risk_fit_process: bool = True
    risk_fractional_kelly: float = Field(default=0.25, gt=0, le=1)
    risk_reward_ratio: float = Field(default=2.0, gt=0)
    risk_max_leverage: float = Field(default=3.0, ge=1, le=10)
    risk_max_hold_s: float = Field(default=86_400.0, gt=0)
    risk_max_drawdown: float = Field(default=0.15, gt=0, lt=1)
    risk_daily_loss: float = Field(default=0.05, gt=0, lt=1)
    risk_max_open_positions: int = Field(default=10, ge=1)
    risk_max_position: float = Field(default=0.20, gt=0, le=1)
    risk_max_sector_exposure: float = Field(default=0.60, gt=0, le=10)
    risk_max_correlation: float = Field(default=0.90, gt=0, le=1)
    risk_max_portfolio_leverage: float = Field(default=3.0, gt=0, le=10)
    risk_sectors: dict[str, str] = Field(default_factory=dict)
    paper_taker_fee: float = Field(default=0.0035, ge=0, lt=0.1)
    paper_maker_fee: float = Field(default=0.0018, gt=-0.01, lt=0.1)
    paper_slippage_bps: float = Field(default=5.0, ge=0, le=1000)
    paper_book_max_age_s: float = Field(default=10.0, gt=0)
    portfolio_snapshot_s: float = Field(default=60.0, gt=0)

    @field_validator("pairs", "timeframes", "train_pairs", "live_pairs", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one pair is required")
        return tuple(dict.fromkeys(normalise_pair(p) for p in value))

    @field_validator("train_pairs", "live_pairs")
    @classmethod
    def _pair_list(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalise_pair(p) for p in value))

    @field_validator("risk_sectors")
    @classmethod
    def _sectors(cls, value: dict[str, str]) -> dict[str, str]:
        return {normalise_pair(pair): sector for pair, sector in value.items()}

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

    @field_validator("label_timeframe")
    @classmethod
    def _label_timeframe(cls, value: str) -> str:
        return str(Timeframe.parse(value))

    @field_validator("valr_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("live_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @model_validator(mode="after")
    def _token(self) -> HeliosSettings:
        # A trading API must not run on a guessable token; only a developer's loopback
        # service may run without one (docs/live.md).
        token = self.api_token.get_secret_value()
        weak = not token or token.lower() in WEAK_TOKENS or len(token) < 16
        if weak and not (self.environment == "development" and is_loopback(self.api_host)):
            raise ValueError(
                "HELIOS_API_TOKEN must be a secret of at least 16 characters unless HELIOS_ENVIRONMENT=development"
                " and HELIOS_API_HOST is a loopback address"
            )
        return self

    @property
    def exchange_credentials(self) -> bool:
        return bool(self.valr_api_key.get_secret_value() and self.valr_api_secret.get_secret_value())

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


def load_settings() -> HeliosSettings:
    """Read settings from the environment; a bad value fails naming its variable."""
    try:
        return HeliosSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"HELIOS_{str(err['loc'][0]).upper()}: {err['msg']}" if err["loc"] else err["msg"] for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc
