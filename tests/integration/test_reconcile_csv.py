"""Parsing Open Collective transactions CSV exports: both header styles, any column order, signed
major-unit decimals to exact minor units, and errors that name the line and the column."""

from __future__ import annotations

import random

import pytest

from fundcircle.ledger.reconcile.csv_import import CsvFormatError, parse_transactions_csv

RAW = ("effectiveDate,legacyId,description,type,kind,group,netAmount,currency,accountSlug,oppositeAccountSlug,"
       "expenseLegacyId,expensePublicId,isRefund,isRefunded\n"
       "2026-11-02T10:00:00,101,Grant: tools,DEBIT,EXPENSE,g-1,-250,EUR,circle,payee,5001,ex_a,,REFUNDED\n"
       "2026-11-02T10:00:00,102,Processor fee,DEBIT,PAYMENT_PROCESSOR_FEE,g-1,-1.2,EUR,circle,wise,5001,ex_a,,\n"
       "2026-11-03T09:30:00,103,Refund of Grant: tools,CREDIT,EXPENSE,g-2,250.00,EUR,circle,payee,5001,ex_a,REFUND,\n"
       "2026-11-04,104,Donation,CREDIT,CONTRIBUTION,g-3,12.5,EUR,circle,donor,,,,\n"
       "2026-11-04,105,Other collective,CREDIT,CONTRIBUTION,g-4,99,EUR,someone-else,donor,,,,\n")

LABELS = {"effectiveDate": "Effective Date & Time", "legacyId": "Transaction ID", "description": "Description",
          "type": "Credit/Debit", "kind": "Kind", "group": "Group ID", "netAmount": "Amount Single Column",
          "currency": "Currency", "accountSlug": "Account Handle", "oppositeAccountSlug": "Opposite Account Handle",
          "expenseLegacyId": "Expense ID", "expensePublicId": "Expense Public ID", "isRefund": "Is Refund",
          "isRefunded": "Is Refunded"}


def _rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().split("\n")]


def _shuffled_labels(text: str, seed: int) -> str:
    rows = _rows(text)
    order = list(range(len(rows[0])))
    random.Random(seed).shuffle(order)
    header = [LABELS[rows[0][i]] for i in order]
    return "\ufeff" + "\n".join(",".join(r) for r in [header] + [[row[i] for i in order] for row in rows[1:]]) + "\n"


def _key(t):  # type: ignore[no-untyped-def]
    return (t.ref, t.group, t.type, t.kind, t.amount_minor, t.currency, t.is_refund, t.is_refunded,
            t.expense_legacy_id, t.expense_public_id, t.created_at)


def test_raw_keys() -> None:
    parsed = parse_transactions_csv(RAW, account_slug="circle")
    assert parsed.header_style == "keys" and parsed.skipped_other_accounts == 1
    assert [(t.ref, t.amount_minor) for t in parsed.rows] == [("101", -25000), ("102", -120), ("103", 25000),
                                                               ("104", 1250)]
    assert parsed.rows[0].is_refunded and parsed.rows[2].is_refund
    assert parsed.rows[3].created_at is not None and parsed.rows[3].created_at.tzinfo is not None


@pytest.mark.parametrize("seed", range(5))
def test_labels_in_any_column_order_give_the_same_rows(seed: int) -> None:
    parsed = parse_transactions_csv(_shuffled_labels(RAW, seed).encode(), account_slug="circle")
    assert parsed.header_style == "labels"
    assert list(map(_key, parsed.rows)) == list(map(_key, parse_transactions_csv(RAW, account_slug="circle").rows))


def test_zero_decimal_currency_and_flattened_fees() -> None:
    text = ("datetime,legacyId,type,kind,group,netAmount,paymentProcessorFee,currency\n"
            "2026-11-02T10:00:00,7,DEBIT,EXPENSE,g,-5030,-30,JPY\n")
    rows = parse_transactions_csv(text).rows
    # net −5,030 = gross −5,000 and a fee of 30, unfolded into the fee row an unflattened export has
    assert [(t.kind, t.amount_minor, t.currency) for t in rows] == [("EXPENSE", -5000, "JPY"),
                                                                   ("PAYMENT_PROCESSOR_FEE", -30, "JPY")]


@pytest.mark.parametrize(("cell", "message"), [
    ("-12.345", "line 2, column netAmount: -12.345 EUR has more decimals"),
    ("ten", "line 2, column netAmount: 'ten' is not a number"),
    ("", "line 2, column netAmount: the amount is empty"),
])
def test_bad_amounts_name_line_and_column(cell: str, message: str) -> None:
    text = f"legacyId,type,kind,group,netAmount,currency\n1,DEBIT,EXPENSE,g,{cell},EUR\n"
    with pytest.raises(CsvFormatError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_transactions_csv(text)


def test_missing_columns_unknown_currency_incomplete_export() -> None:
    with pytest.raises(CsvFormatError, match="lacks the column"):
        parse_transactions_csv("legacyId,type,kind,currency,amount\n1,DEBIT,EXPENSE,EUR,-1\n")
    with pytest.raises(CsvFormatError, match="line 2, column Currency: unsupported currency 'XXX'"):
        parse_transactions_csv("Transaction ID,Credit/Debit,Kind,Group ID,Gross Amount,Currency\n1,DEBIT,EXPENSE,g,-1,XXX\n")
    with pytest.raises(CsvFormatError, match="line 3: the export is incomplete"):
        parse_transactions_csv("legacyId,type,kind,group,amount,currency\n1,DEBIT,EXPENSE,g,-1,EUR\n"
                               "Warning: totalCount is 1200 and limit was 1000\n")
    with pytest.raises(CsvFormatError, match="repeats another column"):
        parse_transactions_csv("amount,Gross Amount,type,kind,group,currency,legacyId\n")
    with pytest.raises(CsvFormatError, match="neither CREDIT nor DEBIT"):
        parse_transactions_csv("legacyId,type,kind,group,amount,currency\n1,SIDEWAYS,EXPENSE,g,-1,EUR\n")
    with pytest.raises(CsvFormatError, match="empty"):
        parse_transactions_csv("")


@pytest.mark.parametrize(("row", "message"), [
    ("1,CREDIT,CONTRIBUTION,g,99999999999999999999999,EUR", "larger than fundcircle handles"),
    ("1,CREDIT,CONTRIBUTION,g,1e999999999,EUR", "larger than fundcircle handles"),
    ("1,CREDIT,CONTRIBUTION,g,100000000000.01,EUR", "larger than fundcircle handles"),
    ("1,CREDIT,CONTRIBUTION,g," + "9" * 5000 + ",EUR", "larger than fundcircle handles"),
    ("99999999999999999999999,CREDIT,CONTRIBUTION,g,5,EUR", "larger than an id can be"),
])
def test_numbers_beyond_what_the_database_stores_are_refused_by_line(row: str, message: str) -> None:
    # these reached the database before (BIGINT overflow: a 500 on the treasurer's CSV upload)
    with pytest.raises(CsvFormatError, match=f"line 2, column .*{message}"):
        parse_transactions_csv(f"legacyId,type,kind,group,amount,currency\n{row}\n")
