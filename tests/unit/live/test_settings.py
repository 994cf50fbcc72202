from pathlib import Path

import pytest

from helios_core.errors import ConfigurationError
from helios_live.settings import SAMPLE_PAIRS, VALR_PAIRS, is_loopback, load_settings


def test_embedded_defaults_need_no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HELIOS_HOME", "HELIOS_DATABASE_URL", "HELIOS_PAIRS", "HELIOS_SOURCE"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.home == Path(".helios")
    assert settings.source == "file"
    assert settings.resolved_database_url.startswith("sqlite:///") and settings.resolved_database_url.endswith(
        ".helios/helios.db"
    )
    assert settings.timeframes == ("1m", "5m", "15m")


def test_comma_lists_are_parsed_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOS_PAIRS", "btc-zar, ETHZAR,BTCZAR")
    monkeypatch.setenv("HELIOS_TIMEFRAMES", "15m,1m")
    settings = load_settings()
    assert settings.pairs == ("BTCZAR", "ETHZAR")
    assert settings.timeframes == ("1m", "15m")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HELIOS_SOURCE", "binance"),
        ("HELIOS_HTTP_TIMEOUT_S", "-1"),
        ("HELIOS_PAIRS", "B$"),
        ("HELIOS_TIMEFRAMES", "7m"),
        ("HELIOS_VALR_BASE_URL", "ftp://x"),
        ("HELIOS_HISTORY_START", "yesterday"),
    ],
)
def test_invalid_configuration_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=var):
        load_settings()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HELIOS_RISK_MAX_SECTOR_EXPOSURE", "5"),  # the portfolio guard's limit is a share of equity
        ("HELIOS_RISK_REWARD_RATIO", "inf"),  # sizing needs finite odds
        ("HELIOS_RISK_MAX_HOLD_S", "inf"),
        ("HELIOS_LIVE_MIN_CONFIDENCE", "0"),  # the sizing floor must be a probability above 0
        ("HELIOS_PAPER_TAKER_FEE", "0.5"),
        ("HELIOS_LIVE_CLOSE_GRACE_S", "-1"),
    ],
)
def test_a_value_a_component_would_refuse_stops_start_up_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)

    with pytest.raises(ConfigurationError, match=var) as raised:
        load_settings()
    assert str(raised.value).count("HELIOS_") == 1  # that variable, named once


def test_grouped_settings_keep_their_variable_names_and_keyword_arguments_take_the_same_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELIOS_RISK_MAX_DRAWDOWN", "0.1")
    monkeypatch.setenv("HELIOS_LIVE_PAIRS", "btc-zar,ETHZAR")
    monkeypatch.setenv("HELIOS_RISK_SECTORS", '{"btc-zar": "majors"}')
    settings = load_settings()

    assert settings.risk.max_drawdown == 0.1 and settings.live.pairs == ("BTCZAR", "ETHZAR")
    assert settings.risk.sectors == {"BTCZAR": "majors"} and settings.risk.limits().max_drawdown == 0.1
    changed = settings.replace(risk_max_drawdown=0.2, live_close_grace_s=3.0)
    assert (changed.risk.max_drawdown, changed.live.close_grace_s, changed.live.pairs) == (
        0.2,
        3.0,
        ("BTCZAR", "ETHZAR"),
    )
    assert settings.risk.max_drawdown == 0.1  # frozen: a change is a new object
    with pytest.raises(ValueError, match=r"risk\.no_such_thing"):
        settings.replace(risk_no_such_thing=1)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HELIOS_TRADING_CAPITAL", "inf"),
        ("HELIOS_TRADING_CAPITAL", "nan"),
        ("HELIOS_TRADING_CAPITAL", "1e308"),  # finite, and still no account
        ("HELIOS_HTTP_TIMEOUT_S", "1e400"),  # parsed as inf
        ("HELIOS_LABEL_UP", "nan"),
        ("HELIOS_BARRIER_K_UP", "inf"),
        ("HELIOS_GATE_MAX_ECE", "nan"),
        ("HELIOS_LIVE_MODEL_POLL_S", "inf"),
        ("HELIOS_LIVE_HEALTH_S", "1e300"),
        ("HELIOS_RISK_REFIT_S", "-inf"),
        ("HELIOS_RISK_MAX_HOLD_S", "1e300"),
        ("HELIOS_RISK_MAX_LEVERAGE", "nan"),
        ("HELIOS_PAPER_SLIPPAGE_BPS", "nan"),
        ("HELIOS_PAPER_BOOK_MAX_AGE_S", "inf"),
        ("HELIOS_PORTFOLIO_SNAPSHOT_S", "inf"),
        ("HELIOS_LIVE_PAIRS", "NOPE"),
        ("HELIOS_LIVE_PAIRS", ""),
        ("HELIOS_LIVE_PAIRS", " , "),
        ("HELIOS_LIVE_PAIRS", "BTCBTC"),
        ("HELIOS_LIVE_PAIRS", "XZAR"),
        ("HELIOS_PAIRS", "BTCZAR,NOPE"),
        ("HELIOS_TRAIN_PAIRS", "ABCD"),
        ("HELIOS_RISK_SECTORS", '{"DOGEZAR": "memes"}'),
        ("HELIOS_RISK_SECTORS", '{"B$": "x"}'),
    ],
)
def test_each_bad_value_stops_start_up_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)

    with pytest.raises(ConfigurationError, match=var) as raised:
        load_settings()
    assert str(raised.value).startswith(f"invalid configuration: {var}") and "\n" not in str(raised.value)


def test_every_pair_the_project_uses_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    used = [*SAMPLE_PAIRS, *VALR_PAIRS, "BTCUSDT", "XRPZAR", "USDTZAR", "ETHUSDC", "BTCEUR", "BTCUSD"]
    monkeypatch.setenv("HELIOS_PAIRS", ",".join(used))
    monkeypatch.setenv("HELIOS_LIVE_PAIRS", "btc-usdt, XRP/ZAR")
    monkeypatch.setenv("HELIOS_RISK_SECTORS", '{"btc-usdt": "majors", "ETHBTC": "alts"}')

    settings = load_settings()

    assert settings.pairs == tuple(used) and settings.live.pairs == ("BTCUSDT", "XRPZAR")
    assert settings.risk.sectors == {"BTCUSDT": "majors", "ETHBTC": "alts"}  # a live pair, or one of HELIOS_PAIRS


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("aaaaaaaaaaaaaaaa", "different characters"),
        (" " * 16, "whitespace"),
        ("abababababababababab", "different characters"),
        ("Zq8 kW3m Lp7v Rt5x", "whitespace"),
        ("Zq8kW3m\tLp7vRt5x", "whitespace"),
        ("short-Zq8kW3", "shorter than 16"),
        ("Zq8kW3mLp7-changeme", "common word"),
        ("my-PASSWORD-Zq8kW3", "common word"),
        ("Zq8kW3mLp7v-secret", "common word"),
        ("Zq8kW3mLp7v-token", "common word"),
        ("admin-Zq8kW3mLp7v", "common word"),
        ("helios-Zq8kW3mLp7v", "common word"),
        ("Zq8kW3mLp7v123456", "common word"),
        ("qwertyZq8kW3mLp7v", "common word"),
    ],
)
@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_weak_token_is_refused_in_one_line_that_quotes_none_of_it(
    monkeypatch: pytest.MonkeyPatch, token: str, why: str, environment: str
) -> None:
    monkeypatch.setenv("HELIOS_API_TOKEN", token)
    monkeypatch.setenv("HELIOS_ENVIRONMENT", environment)  # a token that is set is always held to the rule

    with pytest.raises(ConfigurationError, match=f"HELIOS_API_TOKEN .*{why}") as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message and token not in message


def test_a_strong_token_is_accepted_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOS_API_TOKEN", "Zq8kW3mLp7vRt5xN")
    monkeypatch.setenv("HELIOS_ENVIRONMENT", "production")
    monkeypatch.setenv("HELIOS_API_HOST", "0.0.0.0")  # noqa: S104 -- allowed with a strong token

    assert load_settings().api.token.get_secret_value() == "Zq8kW3mLp7vRt5xN"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("127.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("127.1", False),
        ("0.0.0.0", False),  # noqa: S104 -- a case under test
        ("[::1]", False),  # a bind address, not a Host header
        ("", False),
    ],
)
def test_is_loopback_parses_the_address(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_lookalike_loopback_host_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOS_API_HOST", "127.evil.example")

    with pytest.raises(ConfigurationError, match="HELIOS_API_TOKEN must be a secret"):
        load_settings()
