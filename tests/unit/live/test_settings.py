from pathlib import Path

import pytest

from helios_core.errors import ConfigurationError
from helios_live.settings import load_settings


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
