"""Parse an Open Collective transactions CSV export into ``OCTransaction`` rows.

Reference §4: both header styles (raw field keys, or human labels with ``useFieldNames=1``), any
column order, unknown columns ignored; amounts are **signed decimals in major units** of the
host currency, converted exactly to minor units with ``Decimal`` (never a float); a trailing
``Warning: totalCount is N and limit was M`` line means the export is incomplete. Errors name the
line and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from fundcircle.errors import ValidationError
from fundcircle.integrations.opencollective import OCTransaction
from fundcircle.ledger.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR

#: ids are stored as BIGINT
_MAX_ID = 2**63 - 1

#: human label (``useFieldNames``) -> raw key; reference §4 table
LABEL_TO_KEY: dict[str, str] = {
    "Effective Date & Time": "effectiveDate", "Date & Time": "datetime", "Date": "date",
    "Transaction ID": "legacyId", "Transaction Public ID": "publicId", "Transaction GraphQL ID": "id",
    "Description": "description", "Credit/Debit": "type", "Kind": "kind", "Group ID": "group",
    "Amount Single Column": "netAmount", "Gross Amount": "amount", "Currency": "currency",
    "Original Currency Amount": "displayAmount", "Is Reverse": "isReverse", "Is Reversed": "isReversed",
    "Reverse Transaction ID": "reverseLegacyId", "Reverse Kind": "reverseKind", "Is Refund": "isRefund",
    "Is Refunded": "isRefunded", "Account Handle": "accountSlug", "Account Name": "accountName",
    "Opposite Account Handle": "oppositeAccountSlug", "Opposite Account Name": "oppositeAccountName",
    "Payment Processor": "paymentMethodService", "Payment Method": "paymentMethodType",
    "Contribution Memo": "orderMemo", "Expense Type": "expenseType", "Expense Tags": "expenseTags",
    "Expense Payout Method Type": "payoutMethodType", "Merchant ID": "merchantId",
    "Expense ID": "expenseLegacyId", "Expense Public ID": "expensePublicId", "Expense GraphQL ID": "expenseId",
    "Contribution ID": "orderLegacyId", "Contribution GraphQL ID": "orderId",
    "Payment Processor Fee": "paymentProcessorFee", "Host Fee": "hostFee", "Platform Fee": "platformFee",
    "Balance": "balance", "Short Transaction ID": "shortId", "Short Group ID": "shortGroup",
}
KNOWN_KEYS = frozenset(LABEL_TO_KEY.values()) | {"refundKind", "taxAmount", "shortRefundId", "creditAmount",
                                                 "debitAmount"}

_REQUIRED = ("type", "kind", "group", "currency")


class CsvFormatError(ValidationError):
    """The file is not a usable Open Collective transactions export; the message names line and column."""


@dataclass
class ParsedCsv:
    rows: list[OCTransaction]
    #: "keys" (raw field names) or "labels" (useFieldNames)
    header_style: str
    columns: list[str]
    #: rows of other accounts that were left out (an export of a host shows its collectives too)
    skipped_other_accounts: int = 0
    notes: list[str] = field(default_factory=list)


def _minor(text: str, currency: str, *, line: int, column: str) -> int:
    try:
        if not text.isascii():  # Decimal would read other scripts' digits; OC writes ASCII
            raise InvalidOperation
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise CsvFormatError(f"line {line}, column {column}: {text!r} is not a number") from None
    if not value.is_finite():
        raise CsvFormatError(f"line {line}, column {column}: {text!r} is not a number")
    if value.adjusted() > 20:  # far beyond MAX_AMOUNT_MINOR; scaleb would overflow the context at 1e999999999
        raise CsvFormatError(f"line {line}, column {column}: {text} {currency} is larger than fundcircle handles")
    scaled = value.scaleb(CURRENCY_EXPONENTS[currency])
    if scaled != scaled.to_integral_value():
        raise CsvFormatError(f"line {line}, column {column}: {text} {currency} has more decimals than {currency} has")
    # checked before int(): "1e999999999" would be a billion-digit integer, and the database a 500
    if abs(scaled) > MAX_AMOUNT_MINOR:
        raise CsvFormatError(f"line {line}, column {column}: {text} {currency} is larger than fundcircle handles")
    return int(scaled)


def _minor_fast(text: str, currency: str, exp: int, *, line: int, column: str) -> int:
    """``_minor`` for the usual shape (``-250``, ``12.5``) with integer arithmetic; anything else
    (grouping commas, exponents) goes through Decimal. Exact either way."""
    whole, _dot, frac = text.partition(".")
    negative = whole.startswith("-")
    digits = whole[1:] if negative else whole
    if not (digits.isdigit() and digits.isascii() and (not frac or (frac.isdigit() and frac.isascii()))) \
            or len(digits) > 15:  # long ones: Decimal's path checks the size
        return _minor(text, currency, line=line, column=column)
    if len(frac) > exp:
        if frac[exp:].strip("0"):
            raise CsvFormatError(f"line {line}, column {column}: {text} {currency} has more decimals than "
                                 f"{currency} has")
        frac = frac[:exp]
    value = int(digits) * 10**exp + (int(frac.ljust(exp, "0")) if exp else 0)
    if value > MAX_AMOUNT_MINOR:
        raise CsvFormatError(f"line {line}, column {column}: {text} {currency} is larger than fundcircle handles")
    return -value if negative else value


def _when(text: str, *, line: int, column: str) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CsvFormatError(f"line {line}, column {column}: {text!r} is not a date") from None
    # OC exports UTC without a zone suffix
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _int_or_none(text: str, *, line: int, column: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise CsvFormatError(f"line {line}, column {column}: {text!r} is not a whole number") from None
    if abs(value) > _MAX_ID:
        raise CsvFormatError(f"line {line}, column {column}: {text!r} is larger than an id can be")
    return value


def normalise_header(header: Iterable[str]) -> tuple[list[str], str]:
    """Raw keys for a header row (either style), and which style it was. Unknown columns map to
    themselves and are ignored later; a column named twice (e.g. ``amount`` and "Gross Amount") fails."""
    keys: list[str] = []
    labels = raw = 0
    for position, cell in enumerate(header, start=1):
        name = cell.strip().lstrip("\ufeff").strip()
        if name in LABEL_TO_KEY:
            key, labels = LABEL_TO_KEY[name], labels + 1
        elif name in KNOWN_KEYS:
            key, raw = name, raw + 1
        else:
            key = name
        if key in keys and key in KNOWN_KEYS:
            raise CsvFormatError(f"line 1: the column {name!r} (column {position}) repeats another column")
        keys.append(key)
    return keys, "labels" if labels > raw else "keys"


def parse_transactions_csv(data: str | bytes, *, account_slug: str | None = None) -> ParsedCsv:
    """Parse an OC transactions CSV. ``account_slug`` keeps only that account's rows when the export
    has an account column. Raises CsvFormatError naming the line and column."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CsvFormatError("the file is not UTF-8 text (export it again from Open Collective)") from None
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError("the file is empty") from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: {exc}") from None
    keys, style = normalise_header(header)
    missing = [k for k in _REQUIRED if k not in keys]
    if not ({"netAmount", "amount"} & set(keys)):
        missing.append("amount or netAmount")
    if not ({"legacyId", "publicId", "id"} & set(keys)):
        missing.append("legacyId, publicId or id")
    if missing:
        raise CsvFormatError(f"line 1: the export lacks the column(s) {', '.join(missing)}; export the "
                             f"transactions again with the default fields")
    index = {k: i for i, k in enumerate(keys)}
    label_of = {k: header[i].strip().lstrip("\ufeff") for k, i in index.items()}
    amount_key = "amount" if "amount" in index else "netAmount"
    width = len(keys)
    # column positions (None when the export lacks the column); the row loop is the hot path at
    # 100,000 rows, so it reads cells by position instead of through a helper
    i_type, i_kind, i_group, i_cur, i_amount = (index[k] for k in ("type", "kind", "group", "currency", amount_key))
    i_fee, i_account, i_opposite = index.get("paymentProcessorFee"), index.get("accountSlug"), index.get(
        "oppositeAccountSlug")
    i_legacy, i_public, i_id = index.get("legacyId"), index.get("publicId"), index.get("id")
    i_when = index.get("effectiveDate", index.get("datetime", index.get("date")))
    i_refund, i_refunded, i_desc = index.get("isRefund"), index.get("isRefunded"), index.get("description")
    i_exp_id, i_exp_public, i_exp_legacy = index.get("expenseId"), index.get("expensePublicId"), index.get(
        "expenseLegacyId")
    rows: list[OCTransaction] = []
    when_cache: dict[str, dt.datetime | None] = {}
    skipped = 0
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not record:
                continue
            if record[0].startswith("Warning:"):
                raise CsvFormatError(f"line {line}: the export is incomplete ({record[0].strip()}); export "
                                     f"again with all rows (fetchAll=1)")
            if len(record) != width:
                if not any(c.strip() for c in record):
                    continue
                raise CsvFormatError(f"line {line}: {len(record)} cells, but the header has {width} columns")
            account = record[i_account].strip() if i_account is not None else ""
            if account_slug and account and account != account_slug:
                skipped += 1
                continue
            currency = record[i_cur].strip().upper()
            exp = CURRENCY_EXPONENTS.get(currency)
            if exp is None:
                if not any(c.strip() for c in record):
                    continue
                raise CsvFormatError(f"line {line}, column {label_of['currency']}: unsupported currency {currency!r}")
            type_ = record[i_type].strip().upper()
            if type_ != "CREDIT" and type_ != "DEBIT":
                raise CsvFormatError(f"line {line}, column {label_of['type']}: {record[i_type]!r} is neither "
                                     f"CREDIT nor DEBIT")
            text = record[i_amount].strip()
            if not text:
                raise CsvFormatError(f"line {line}, column {label_of[amount_key]}: the amount is empty")
            amount = _minor_fast(text, currency, exp, line=line, column=label_of[amount_key])
            fee = 0
            if i_fee is not None and record[i_fee].strip():
                fee = abs(_minor_fast(record[i_fee].strip(), currency, exp, line=line,
                                      column=label_of["paymentProcessorFee"]))
                if amount_key == "netAmount":  # flattened: net = gross − fee on the collective's side
                    amount += fee
            group = record[i_group].strip()
            if not group:
                raise CsvFormatError(f"line {line}, column {label_of['group']}: the group is empty")
            legacy = _int_or_none(record[i_legacy], line=line, column=label_of["legacyId"]) if i_legacy is not None \
                else None
            public = record[i_public].strip() if i_public is not None else ""
            oc_id = record[i_id].strip() if i_id is not None else ""
            if legacy is None and not public and not oc_id:
                raise CsvFormatError(f"line {line}: the row has no transaction id")
            when = None
            if i_when is not None:  # rows of one group share their timestamp: parse each text once
                stamp = record[i_when]
                when = when_cache.get(stamp)
                if when is None:
                    when = when_cache[stamp] = _when(stamp, line=line, column=label_of.get("effectiveDate", "date"))
            tx = OCTransaction(
                id=oc_id or None, public_id=public or None, legacy_id=legacy, group=group, type=type_,
                kind=record[i_kind].strip().upper(),
                is_refund=i_refund is not None and record[i_refund].strip().upper() in ("REFUND", "TRUE", "1"),
                is_refunded=i_refunded is not None and record[i_refunded].strip().upper() in ("REFUNDED", "TRUE", "1"),
                amount_minor=amount, currency=currency, created_at=when, account_slug=account,
                opposite_slug=record[i_opposite].strip() if i_opposite is not None else "",
                expense_id=(record[i_exp_id].strip() or None) if i_exp_id is not None else None,
                expense_public_id=(record[i_exp_public].strip() or None) if i_exp_public is not None else None,
                expense_legacy_id=_int_or_none(record[i_exp_legacy], line=line, column=label_of["expenseLegacyId"])
                if i_exp_legacy is not None else None,
                description=record[i_desc].strip() if i_desc is not None else "")
            rows.append(tx)
            if fee:
                # a flattened export folds the processor fee into the row; unfold it into the fee
                # row an unflattened export would have had, so both shapes reconcile the same
                rows.append(OCTransaction(
                    id=None, public_id=f"{tx.ref}:fee", legacy_id=None, group=tx.group, type="DEBIT",
                    kind="PAYMENT_PROCESSOR_FEE", is_refund=False, is_refunded=False, amount_minor=-fee,
                    currency=currency, created_at=when, account_slug=tx.account_slug, opposite_slug="",
                    expense_id=tx.expense_id, expense_public_id=tx.expense_public_id,
                    expense_legacy_id=tx.expense_legacy_id, description="Payment processor fee"))
    except csv.Error as exc:
        raise CsvFormatError(f"line {line}: {exc}") from None
    notes = [f"{skipped} rows of other accounts left out"] if skipped else []
    return ParsedCsv(rows=rows, header_style=style, columns=keys, skipped_other_accounts=skipped, notes=notes)
