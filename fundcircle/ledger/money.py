"""Money as integer minor units with an ISO 4217 currency. Decimal text is parsed and formatted
only at the edges (forms, exports, CLI) using the currency's exponent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from fundcircle.errors import ValidationError

#: ISO 4217 exponents of the currencies a circle may use. Changing an exponent later would
#: silently rescale history, so this list only ever grows.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "MXN": 2, "BRL": 2, "INR": 2, "ZAR": 2, "SGD": 2,
    "HKD": 2, "JPY": 0, "KRW": 0, "ISK": 0, "KWD": 3, "BHD": 3, "TND": 3,
}

#: Largest amount we accept from a person in any one field (10^13 minor units = 100 billion
#: EUR): far beyond any grant, well inside BIGINT, and it keeps typos like 1e30 out.
MAX_AMOUNT_MINOR = 10**13


class CurrencyMismatch(ValidationError):
    """Arithmetic or comparison across two currencies."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise ValidationError(f"unsupported currency {currency!r}",
                              field_errors={"currency": ["unsupported currency"]}) from None


@dataclass(frozen=True, order=False)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("Money.amount_minor must be an int")
        exponent(self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor >= other.amount_minor

    def __str__(self) -> str:
        return format_money(self.amount_minor, self.currency)


_AMOUNT_RE = re.compile(r"^[+-]?\d{1,15}(\.\d+)?$")
_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(\d{3})*$")


def _ungroup(int_part: str, sep: str) -> str | None:
    """``int_part`` without its thousands separators, or None if the groups are not 1-3 then 3s."""
    groups = int_part.split(sep)
    head = groups[0].lstrip("+-")
    if not (1 <= len(head) <= 3 and head.isdigit()) or any(len(g) != 3 or not g.isdigit() for g in groups[1:]):
        return None
    return "".join(groups)


def _normalize(cleaned: str, exp: int) -> str | None:
    """One decimal point and no grouping, or None when the separators make no sense.

    - both "," and "." present: the rightmost is the decimal separator ("1.234,50", "1,234.50");
    - one kind, several times: thousands grouping ("1,000,000", "1.000.000");
    - one separator followed by exactly three digits, in a currency with fewer than three decimals
      and a non-zero integer part: thousands grouping ("1,000" JPY is 1000, "1.500" EUR is 1500.00);
      otherwise it is the decimal separator ("1234,5", "0,500", "1.234" KWD).
    """
    commas, dots = cleaned.count(","), cleaned.count(".")
    if commas and dots:
        dec = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        group = "." if dec == "," else ","
        int_part, _, frac = cleaned.rpartition(dec)
        if dec in int_part:
            return None
        ungrouped = _ungroup(int_part, group)
        return None if ungrouped is None else f"{ungrouped}.{frac}"
    sep = "," if commas else "." if dots else ""
    if not sep:
        return cleaned
    if cleaned.count(sep) > 1:
        return _ungroup(cleaned, sep)
    head, _, frac = cleaned.partition(sep)
    if len(frac) == 3 and exp < 3 and head.lstrip("+-").lstrip("0") and frac.isdigit():
        return _ungroup(cleaned, sep)
    return f"{head}.{frac}"


def parse_amount(text: str, currency: str, *, field: str = "amount", allow_negative: bool = False) -> int:
    """Parse "1,234.50" / "1.234,50" / "1234,5" / "1 234" into minor units of ``currency``; clear errors.

    Thousands separators (space, apostrophe, comma or dot as explained in ``_normalize``) are
    accepted; more decimals than the currency has is an error, never a rounding.
    """
    raw = (text or "").strip().replace("\u00a0", " ")
    if not raw:
        raise ValidationError(f"{field}: enter an amount", field_errors={field: ["Enter an amount."]})
    exp = exponent(currency)
    cleaned = _normalize(raw.replace(" ", "").replace("'", ""), exp) if raw.isascii() else None
    if cleaned is None or not _AMOUNT_RE.match(cleaned):
        raise ValidationError(f"{field}: {raw!r} is not an amount",
                              field_errors={field: ["Enter a number such as 1250 or 1250.50."]})
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        raise ValidationError(f"{field}: {raw!r} is not an amount", field_errors={field: ["Not a number."]}) from None
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        unit = "whole units" if exp == 0 else f"{exp} decimal place{'s' if exp > 1 else ''}"
        raise ValidationError(f"{field}: {currency} amounts have at most {unit}",
                              field_errors={field: [f"{currency} amounts have at most {unit}."]})
    minor = int(scaled)
    if minor < 0 and not allow_negative:
        raise ValidationError(f"{field}: must not be negative", field_errors={field: ["Must not be negative."]})
    if abs(minor) > MAX_AMOUNT_MINOR:
        raise ValidationError(f"{field}: amount is too large", field_errors={field: ["That amount is too large."]})
    return minor


def format_amount(amount_minor: int, currency: str, *, grouping: bool = True) -> str:
    """Minor units as decimal text ("1,234.50"); exact, no float."""
    exp = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**exp)
    whole_text = f"{whole:,}" if grouping else str(whole)
    return f"{sign}{whole_text}.{frac:0{exp}d}" if exp else f"{sign}{whole_text}"


def format_money(amount_minor: int, currency: str) -> str:
    return f"{format_amount(amount_minor, currency)} {currency}"
