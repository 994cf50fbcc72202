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
