"""VALR's signing rule against VALR's own published vectors, and the credentials' discretion."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from helios_core.errors import ConfigurationError
from helios_live.settings import HeliosSettings
from helios_live.venues.valr.pairs import PairRules, text
from helios_live.venues.valr.signing import Credentials, credentials, load_secrets_file, signature
from helios_live.venues.valr.trading import order_request

SECRET = "4961b74efac86b25cce8fbe4c9811c4c7a787b7a5996660afcc2e287ad864363"  # noqa: S105 -- a test vector, not a credential


def test_the_published_get_vector() -> None:
    assert signature(SECRET, 1558014486185, "GET", "/v1/account/balances") == (
        "9d52c181ed69460b49307b7891f04658e938b21181173844b5018b2fe783a6d4"
        "c62b8e67a03de4d099e7437ebfabe12c56233b73c6a0cc0f7ae87e05f6289928"
    )


def test_the_published_post_vector() -> None:
    body = '{"customerOrderId":"ORDER-000001","pair":"BTCUSDC","side":"BUY","quoteAmount":"80000"}'
    assert signature(SECRET, 1558017528946, "POST", "/v1/orders/market", body) == (
        "09f536e3dfdad58443f16010a97a0a21ad27486b7b8d6d4103170d885410ed77"
        "f037f1fa628474190d4f5c08ca12c1acc850901f1c2e75c6d906ec3b32b008d0"
    )


def test_verb_case_and_subaccount_are_part_of_the_signature() -> None:
    plain = signature(SECRET, 1, "get", "/v1/orders/open")
    assert plain == signature(SECRET, 1, "GET", "/v1/orders/open")
    assert plain != signature(SECRET, 1, "GET", "/v1/orders/open", subaccount="123")
    headers = Credentials("key-0123456789", SECRET, "123").headers(1, "GET", "/v1/orders/open")
    assert headers["X-VALR-SUB-ACCOUNT-ID"] == "123"
    assert headers["X-VALR-SIGNATURE"] == signature(SECRET, 1, "GET", "/v1/orders/open", subaccount="123")


def test_credentials_never_show_the_secret() -> None:
    credentials = Credentials("key-0123456789", SECRET)
    assert SECRET not in repr(credentials) and SECRET not in str(credentials)
    assert "key-0123456789" not in repr(credentials)
    assert credentials.redact(f"bad key key-0123456789 / {SECRET}") == "bad key *** / ***"
    with pytest.raises(ConfigurationError):
        Credentials("", SECRET)


def test_a_secrets_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "valr.env"
    path.write_text(f"# VALR\nHELIOS_VALR_API_KEY=key-0123456789\nHELIOS_VALR_API_SECRET='{SECRET}'\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="mode 0o644"):
        load_secrets_file(path)
    os.chmod(path, 0o600)
    assert load_secrets_file(path) == ("key-0123456789", SECRET)
    signer = credentials(HeliosSettings(valr={"secrets_file": path}).valr)
    assert signer is not None and signer.api_key == "key-0123456789"
    with pytest.raises(ConfigurationError, match="No such file"):
        load_secrets_file(tmp_path / "missing")


def test_a_secrets_file_needs_both_values(tmp_path: Path) -> None:
    path = tmp_path / "valr.env"
    path.write_text("HELIOS_VALR_API_KEY=key-0123456789\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigurationError, match="needs HELIOS_VALR_API_KEY and HELIOS_VALR_API_SECRET"):
        load_secrets_file(path)


RULES = PairRules.parse(
    {
        "symbol": "BTCZAR", "baseCurrency": "BTC", "quoteCurrency": "ZAR", "active": True,
        "minBaseAmount": "0.0001", "maxBaseAmount": "5", "minQuoteAmount": "10", "tickSize": "1",
        "baseDecimalPlaces": "8",
    }
)  # fmt: skip


def test_quantities_round_down_to_the_pairs_decimals() -> None:
    assert RULES.quantity(0.123456789) == Decimal("0.12345678")
    assert RULES.quantity(1e-9) == Decimal("0E-8")
    assert RULES.quantity(float("nan")) == 0
    assert RULES.price(1_234_567.6) == Decimal("1234568")
    assert text(Decimal("0.00120000")) == "0.0012"


def test_an_order_below_the_minimum_is_refused_with_the_reason() -> None:
    assert "below VALR's minimum 0.0001" in (RULES.refusal(Decimal("0.00005"), 1_200_000) or "")
    assert "above VALR's maximum" in (RULES.refusal(Decimal("6"), 1_200_000) or "")
    assert "notional below" in (RULES.refusal(Decimal("0.0001"), 50) or "")
    assert RULES.refusal(Decimal("0.001"), 1_200_000) is None


def test_an_order_request_is_the_json_it_signs() -> None:
    request = order_request("BTCZAR", "BUY", Decimal("0.00120000"), "k-O")
    assert request.path == "/v1/orders/market"
    assert request.body == '{"side":"BUY","pair":"BTCZAR","baseAmount":"0.0012","customerOrderId":"k-O"}'
    limit = order_request("BTCZAR", "SELL", Decimal("0.5"), "k-C", Decimal("1200000"), "IOC", post_only=False)
    assert '"timeInForce":"IOC"' in limit.body and limit.path == "/v1/orders/limit"
    with pytest.raises(ValueError, match="timeInForce"):
        order_request("BTCZAR", "SELL", Decimal("0.5"), "k-C", Decimal("1"), "DAY")
