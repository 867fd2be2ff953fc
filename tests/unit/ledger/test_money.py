"""Money: integer minor units, mixed currencies refused, exact parse/format at the edges."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundcircle.errors import ValidationError
from fundcircle.ledger.money import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT_MINOR,
    CurrencyMismatch,
    Money,
    exponent,
    format_amount,
    format_money,
    parse_amount,
)


def test_mixed_currencies_are_refused_in_arithmetic_and_comparison() -> None:
    eur, usd = Money(100, "EUR"), Money(100, "USD")
    for op in (lambda: eur + usd, lambda: eur - usd, lambda: eur < usd, lambda: eur >= usd):
        with pytest.raises(CurrencyMismatch):
            op()
    assert eur + Money(5, "EUR") == Money(105, "EUR")
    assert -eur == Money(-100, "EUR")


def test_money_refuses_floats_bools_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "EUR")
    with pytest.raises(ValidationError):
        Money(1, "XXX")


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1,234.50", "EUR", 123450),
    ("1234,5", "EUR", 123450),
    ("1 234", "EUR", 123400),
    ("1'234.05", "CHF", 123405),
    ("0.01", "EUR", 1),
    ("1500", "JPY", 1500),
    ("1.234", "KWD", 1234),
    ("\u00a012.30 ", "EUR", 1230),
])
def test_parse_amount_accepts_common_spellings(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(("text", "currency"), [
    ("", "EUR"), ("  ", "EUR"), ("1.2345", "EUR"), ("0.001", "EUR"), ("1.5", "JPY"), ("abc", "EUR"), ("1e3", "EUR"),
    ("NaN", "EUR"), ("١٢٣", "EUR"), ("-5", "EUR"), ("1" * 16, "EUR"), ("12\x00", "EUR"),
    (str(MAX_AMOUNT_MINOR), "EUR"),
])
def test_parse_amount_refuses_with_a_clear_error(text: str, currency: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(text, currency)


def test_parse_amount_allows_negative_only_when_asked() -> None:
    assert parse_amount("-5.10", "EUR", allow_negative=True) == -510


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (123450, "EUR", "1,234.50"), (-5, "EUR", "-0.05"), (0, "EUR", "0.00"), (1500, "JPY", "1,500"),
    (1234, "KWD", "1.234"), (-100000, "JPY", "-100,000"),
])
def test_format_amount_is_exact(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text


def test_format_money_appends_the_code() -> None:
    assert format_money(-250, "EUR") == "-2.50 EUR"
    assert str(Money(1500, "JPY")) == "1,500 JPY"


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency), currency) == minor
    assert parse_amount(format_amount(minor, currency, grouping=False), currency) == minor


def test_exponent_of_unknown_currency_is_a_validation_error() -> None:
    assert exponent("KWD") == 3
    with pytest.raises(ValidationError):
        exponent("EURO")


def test_migration_currency_snapshot_matches_money_table() -> None:
    """The currency table is seeded by migration 0002 from a frozen copy; they must agree, or an
    exponent would differ between Python formatting and the database."""
    path = Path(__file__).resolve().parents[3] / "migrations" / "versions" / "20261121_0002_ledger.py"
    spec = importlib.util.spec_from_file_location("ledger_migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CURRENCIES == CURRENCY_EXPONENTS


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1,000", "JPY", 1000), ("1.000", "ISK", 1000), ("1,000,000", "EUR", 100_000_000),
    ("1.234,50", "EUR", 123450), ("1.500", "EUR", 150000), ("0,500", "EUR", 50), ("1,234", "KWD", 1234),
    ("12.345.678,9", "EUR", 1234567890),
])
def test_parse_amount_grouping_versus_decimal_separator(text: str, currency: str, minor: int) -> None:
    """A three-digit tail after one separator is grouping unless the currency has three decimals:
    found by the round-trip property ("1,000" ISK parsed as 1)."""
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text", ["1,00,000", "1.2.3", "1,234.5.6", "12,34,56.00", ",5", "1,"])
def test_parse_amount_refuses_malformed_grouping(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(text, "EUR")
