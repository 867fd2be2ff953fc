"""A fake Open Collective: GraphQL API v2 and the transactions CSV export over real HTTP on loopback.

Used by the tests and by the offline demo (``fundcircle up`` without an Open Collective token), so
both exercise the real client code path: ``requests`` → HTTP → JSON → graphql-core validation
against a minimal SDL with OC's names (``opencollective_schema.py``).

What it emulates (reference/open-collective-and-stripe.md §2–§5):
- ``expenses``, ``expense``, ``transactions``, ``createExpense``, ``draftExpenseAndInviteUser``,
  ``processExpense``, ``createWebhook``; ``Personal-Token`` and ``Authorization: Bearer`` auth;
  unknown token → ``Unauthorized``; a token whose user has 2FA but no "advanced privileges" →
  ``2FA_REQUIRED`` on create/process; a non-admin token sees ``reference``/``customData`` as null.
- Expense statuses and transitions (create → PENDING, APPROVE, PAY → PAID or PROCESSING for bank
  payouts, MARK_AS_UNPAID → markAsUnPaidStatus, HOLD/RELEASE toggle ``onHold`` …); invalid
  transitions are errors. Validation errors as ``ValidationFailed``.
- **No idempotency**: every ``createExpense`` inserts.
- The ledger: CREDIT/DEBIT pairs sharing a ``group``, debits negative; PAY writes an EXPENSE pair and
  a PAYMENT_PROCESSOR_FEE pair when a fee was given; MARK_AS_UNPAID writes a new group with the
  reversed EXPENSE pair (``isRefund``; originals flagged ``isRefunded``) and a PAYMENT_PROCESSOR_COVER
  pair instead of reversing the fee. Contributions: CONTRIBUTION + fee pairs (``add_funds``).
- Listing rules: default status exclusion (DRAFT, SPAM), on-hold exclusion with a status list,
  READY_TO_PAY exclusivity, ``customData`` containment (admin + account filter), fuzzy
  ``searchTerm``, ``dateFrom``/``dateTo``, offset pagination with OC's defaults and caps.
- 429 with a fractional ``Retry-After``, ``X-RateLimit-*`` headers and OC's non-GraphQL body;
  faults on demand (5xx, slow answers, dropped connections, "commit then time out/drop").
- Webhooks: one unsigned JSON POST per activity, no retries, redirects not followed.
- ``GET /v2/<slug>/transactions.csv`` with raw-key or label headers (``useFieldNames=1``), signed
  major-unit decimals, and the ``Warning:`` overflow line.

State can live in a JSON file (``state_path``) so the demo's fake survives restarts and the
dashboard's "re-check" sees what the demo seeded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import GraphQLError, build_schema, graphql_sync, parse
from graphql.language import FieldNode, OperationDefinitionNode

from fundcircle.integrations.fakes.opencollective_schema import SDL

log = logging.getLogger(__name__)

FAKE_TOKEN = "fake-oc-personal-token"

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NOT_LISTED_BY_DEFAULT = {"DRAFT", "SPAM"}

# action -> (statuses it may start from, resulting status or None when it depends on params)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "APPROVE": (frozenset({"PENDING", "INCOMPLETE"}), "APPROVED"),
    "UNAPPROVE": (frozenset({"APPROVED", "ERROR"}), "PENDING"),
    "REQUEST_RE_APPROVAL": (frozenset({"APPROVED", "ERROR"}), "PENDING"),
    "REJECT": (frozenset({"PENDING", "INCOMPLETE", "APPROVED", "UNVERIFIED"}), "REJECTED"),
    "MARK_AS_INCOMPLETE": (frozenset({"PENDING", "APPROVED", "ERROR"}), "INCOMPLETE"),
    "MARK_AS_SPAM": (frozenset({"PENDING", "REJECTED", "INCOMPLETE", "UNVERIFIED"}), "SPAM"),
    "SCHEDULE_FOR_PAYMENT": (frozenset({"APPROVED"}), "SCHEDULED_FOR_PAYMENT"),
    "UNSCHEDULE_PAYMENT": (frozenset({"SCHEDULED_FOR_PAYMENT"}), "APPROVED"),
    "PAY": (frozenset({"APPROVED", "SCHEDULED_FOR_PAYMENT"}), None),
    "MARK_AS_UNPAID": (frozenset({"PAID"}), None),
    "DECLINE_INVITED_EXPENSE": (frozenset({"DRAFT"}), "INVITE_DECLINED"),
    "HOLD": (frozenset({"PENDING", "APPROVED", "ERROR", "INCOMPLETE"}), None),
    "RELEASE": (frozenset({"PENDING", "APPROVED", "ERROR", "INCOMPLETE"}), None),
}

WEBHOOK_TYPE_OF_ACTION = {
    "APPROVE": "collective.expense.approved", "UNAPPROVE": "collective.expense.unapproved",
    "REQUEST_RE_APPROVAL": "collective.expense.reApprovalRequested", "REJECT": "collective.expense.rejected",
    "MARK_AS_INCOMPLETE": "collective.expense.incomplete", "MARK_AS_SPAM": "collective.expense.spam",
    "SCHEDULE_FOR_PAYMENT": "collective.expense.scheduledForPayment", "MARK_AS_UNPAID": "collective.expense.unpaid",
    "HOLD": "collective.expense.putOnHold", "RELEASE": "collective.expense.releasedFromHold",
    "DECLINE_INVITED_EXPENSE": "collective.expense.invite.declined",
}

#: CSV columns the fake exports: raw key -> label (reference §4 table)
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("effectiveDate", "Effective Date & Time"), ("legacyId", "Transaction ID"),
    ("publicId", "Transaction Public ID"), ("description", "Description"), ("type", "Credit/Debit"),
    ("kind", "Kind"), ("group", "Group ID"), ("amount", "Gross Amount"), ("netAmount", "Amount Single Column"),
    ("currency", "Currency"), ("isRefund", "Is Refund"), ("isRefunded", "Is Refunded"),
    ("accountSlug", "Account Handle"), ("oppositeAccountSlug", "Opposite Account Handle"),
    ("paymentMethodService", "Payment Processor"), ("expenseType", "Expense Type"),
    ("expenseLegacyId", "Expense ID"), ("expensePublicId", "Expense Public ID"), ("expenseId", "Expense GraphQL ID"),
)


class _OCError(GraphQLError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code, "id": str(uuid.uuid4())})


def _long_id() -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(8)) for _ in range(4))


def _public_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_iso(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _major(cents: int) -> str:
    """OC cents as CSV major units: signed, no trailing zeros (``-250``, ``12.5``)."""
    text = format((Decimal(cents) / 100).normalize(), "f")
    return text


@dataclass
class Fault:
    """One injected fault: ``op`` is a root field name (``createExpense``) or ``*``.

    Modes: ``http_500``/``http_502``/``http_503`` (not executed), ``rate_limit`` (429, not executed),
    ``drop`` (connection closed, not executed), ``slow`` (sleep ``delay_s``, then execute and answer),
    ``commit_then_timeout`` (execute, then sleep ``delay_s`` before answering: the client times out
    although OC did the work), ``commit_then_drop`` (execute, then close the connection unanswered).
    """

    op: str
    mode: str
    times: int = 1
    delay_s: float = 2.0
    retry_after: str = "0.05"


@dataclass
class _TokenInfo:
    admin_of: tuple[str, ...] = ("*",)
    two_factor: bool = False
    preauthorized_2fa: bool = True

    def is_admin(self, slug: str) -> bool:
        return "*" in self.admin_of or slug in self.admin_of


@dataclass
class _Ctx:
    token: _TokenInfo | None
    token_text: str


class FakeOpenCollective:
    """The fake server. ``start()`` binds 127.0.0.1 on a free port (or ``port``) and returns its URL."""

    def __init__(self, *, state_path: str | Path | None = None, port: int = 0,
                 rate_limit_per_minute: int | None = None, auto_create_payees: bool = False,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.state_path = Path(state_path) if state_path else None
        self.port = port
        self.rate_limit_per_minute = rate_limit_per_minute
        self.auto_create_payees = auto_create_payees
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests_by_op: dict[str, int] = {}
        self.webhook_deliveries: list[dict[str, Any]] = []
        self._windows: dict[str, deque[float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.schema = build_schema(SDL)
        self._wire_types()
        self.state: dict[str, Any] = self._empty_state()
        if self.state_path and self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())

    # -- state --------------------------------------------------------------------------------

    @staticmethod
    def _empty_state() -> dict[str, Any]:
        return {"version": 1, "next_legacy": {"account": 1000, "expense": 5000, "transaction": 90000},
                "accounts": {}, "tokens": {}, "expenses": [], "transactions": [], "webhooks": []}

    def save(self) -> None:
        if self.state_path is None:
            return
        with self.lock:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, sort_keys=True))
            os.replace(tmp, self.state_path)

    def _next(self, kind: str) -> int:
        value = self.state["next_legacy"][kind]
        self.state["next_legacy"][kind] = value + 1
        return int(value)

    def add_account(self, slug: str, *, name: str = "", type_: str = "COLLECTIVE", currency: str = "EUR",
                    grant_allowed: bool = True) -> dict[str, Any]:
        with self.lock:
            if slug not in self.state["accounts"]:
                self.state["accounts"][slug] = {
                    "id": _long_id(), "publicId": _public_id("acc_"), "legacyId": self._next("account"),
                    "slug": slug, "name": name or slug.replace("-", " ").title(), "type": type_,
                    "currency": currency, "grant_allowed": grant_allowed}
                self.save()
            return self.state["accounts"][slug]

    def add_token(self, token: str = FAKE_TOKEN, *, admin_of: Iterable[str] = ("*",), two_factor: bool = False,
                  preauthorized_2fa: bool = True) -> str:
        with self.lock:
            self.state["tokens"][token] = {"admin_of": list(admin_of), "two_factor": two_factor,
                                           "preauthorized_2fa": preauthorized_2fa}
            self.save()
        return token

    def inject(self, op: str, mode: str, *, times: int = 1, delay_s: float = 2.0, retry_after: str = "0.05") -> None:
        with self.lock:
            self.faults.append(Fault(op, mode, times, delay_s, retry_after))

    def expense_count(self, account: str | None = None) -> int:
        with self.lock:
            return sum(1 for e in self.state["expenses"] if account is None or e["account"] == account)

    def find_expense(self, ref: str | int) -> dict[str, Any]:
        with self.lock:
            for e in self.state["expenses"]:
                if ref in (e["id"], e["publicId"], e["legacyId"], str(e["legacyId"])):
                    return e
        raise KeyError(ref)

    # -- the ledger ---------------------------------------------------------------------------

    def _pair(self, *, group: str, kind: str, debit_account: str, credit_account: str, cents: int,
              currency: str, description: str, now: dt.datetime, expense: dict[str, Any] | None = None,
              is_refund: bool = False, service: str = "") -> list[dict[str, Any]]:
        """A CREDIT/DEBIT pair: the DEBIT row on ``debit_account`` is negative."""
        rows = []
        for type_, account, opposite, amount in (("DEBIT", debit_account, credit_account, -cents),
                                                 ("CREDIT", credit_account, debit_account, cents)):
            rows.append({
                "id": _long_id(), "publicId": _public_id("tx_"), "legacyId": self._next("transaction"),
                "group": group, "type": type_, "kind": kind, "description": description,
                "amount_cents": amount, "currency": currency, "account": account, "oppositeAccount": opposite,
                "expense": expense["legacyId"] if expense else None, "isRefund": is_refund, "isRefunded": False,
                "refundKind": "REFUND" if is_refund else None, "createdAt": _iso(now), "clearedAt": _iso(now),
                "service": service})
        self.state["transactions"].extend(rows)
        return rows

    def add_funds(self, slug: str, gross_cents: int, *, kind: str = "CONTRIBUTION", from_slug: str = "a-donor",
                  processor_fee_cents: int = 0, host_fee_cents: int = 0, description: str = "",
                  at: dt.datetime | None = None) -> str:
        """Money into the collective: a CONTRIBUTION (or ADDED_FUNDS) pair plus fee pairs in one group.
        Returns the group id."""
        with self.lock:
            collective = self.state["accounts"][slug]
            self.add_account(from_slug, type_="INDIVIDUAL", currency=collective["currency"])
            now = at or self.clock()
            group = str(uuid.uuid4())
            cur = collective["currency"]
            self._pair(group=group, kind=kind, debit_account=from_slug, credit_account=slug, cents=gross_cents,
                       currency=cur, description=description or f"Financial contribution to {collective['name']}",
                       now=now, service="STRIPE" if kind == "CONTRIBUTION" else "OPENCOLLECTIVE")
            if processor_fee_cents:
                self.add_account("stripe-processor", type_="ORGANIZATION", currency=cur)
                self._pair(group=group, kind="PAYMENT_PROCESSOR_FEE", debit_account=slug,
                           credit_account="stripe-processor", cents=processor_fee_cents, currency=cur,
                           description="Stripe payment processor fee", now=now)
            if host_fee_cents:
                self.add_account("fiscal-host", type_="ORGANIZATION", currency=cur)
                self._pair(group=group, kind="HOST_FEE", debit_account=slug, credit_account="fiscal-host",
                           cents=host_fee_cents, currency=cur, description="Host fee", now=now)
            self.save()
            self._emit("collective.transaction.created", slug, {"transaction": {
                "group": group, "kind": kind, "amount": gross_cents, "amountInHostCurrency": gross_cents}})
            return group

    def balance_cents(self, slug: str) -> int:
        with self.lock:
            return sum(t["amount_cents"] for t in self.state["transactions"] if t["account"] == slug)

    # -- expense lifecycle (shared by the GraphQL resolvers and test hooks) ------------------------

    def process(self, ref: str | int, action: str, params: dict[str, Any] | None = None,
                message: str = "") -> dict[str, Any]:
        """Apply ``action`` to an expense as ``processExpense`` does (also a test hook)."""
        params = params or {}
        with self.lock:
            try:
                expense = self.find_expense(ref)
            except KeyError:
                raise _OCError("Expense not found", "NotFound") from None
            allowed, target = TRANSITIONS[action] if action in TRANSITIONS else (frozenset(), None)
            if expense["status"] not in allowed:
                # OC's exact code for an impossible transition is not documented [unverified]
                raise _OCError(f"Cannot {action.lower().replace('_', ' ')} an expense that is "
                               f"{expense['status']}", "BadRequest")
            now = self.clock()
            if action == "HOLD" or action == "RELEASE":
                expense["onHold"] = action == "HOLD"
            elif action == "PAY":
                fee = int(params.get("paymentProcessorFeeInHostCurrency") or 0)
                if fee < 0:
                    raise _OCError("The payment processor fee cannot be negative", "ValidationFailed")
                if self.balance_cents(expense["account"]) < expense["amount_cents"] + fee:
                    raise _OCError("Collective does not have enough funds to pay this expense.", "BadRequest")
                expense["pending_fee_cents"] = fee
                expense["feesPayer"] = params.get("feesPayer") or "COLLECTIVE"
                if expense["payoutMethodType"] == "BANK_ACCOUNT" and not params.get("forceManual"):
                    expense["status"] = "PROCESSING"
                    self._emit_expense("collective.expense.processing", expense)
                else:
                    self._mark_paid(expense, now)
            elif action == "MARK_AS_UNPAID":
                self._mark_unpaid(expense, params.get("markAsUnPaidStatus") or "APPROVED", now)
            else:
                assert target is not None
                expense["status"] = target
            if action in WEBHOOK_TYPE_OF_ACTION:
                self._emit_expense(WEBHOOK_TYPE_OF_ACTION[action], expense)
            self.save()
            return expense

    def complete_processing(self, ref: str | int, *, ok: bool = True) -> dict[str, Any]:
        """Test hook: the bank transfer of a PROCESSING expense succeeded (PAID) or failed (ERROR)."""
        with self.lock:
            expense = self.find_expense(ref)
            if expense["status"] != "PROCESSING":
                raise ValueError(f"expense {ref} is {expense['status']}, not PROCESSING")
            if ok:
                self._mark_paid(expense, self.clock())
            else:
                expense["status"] = "ERROR"
                self._emit_expense("collective.expense.error", expense)
            self.save()
            return expense

    def _mark_paid(self, expense: dict[str, Any], now: dt.datetime) -> None:
        group = str(uuid.uuid4())
        cur = expense["currency"]
        self._pair(group=group, kind="EXPENSE", debit_account=expense["account"], credit_account=expense["payee"],
                   cents=expense["amount_cents"], currency=cur, description=expense["description"], now=now,
                   expense=expense)
        fee = int(expense.pop("pending_fee_cents", 0))
        if fee:
            self.add_account("payment-processor", type_="ORGANIZATION", currency=cur)
            # who bears the fee with feesPayer PAYEE is not documented; the payee here [inferred]
            payer = expense["payee"] if expense.get("feesPayer") == "PAYEE" else expense["account"]
            self._pair(group=group, kind="PAYMENT_PROCESSOR_FEE", debit_account=payer,
                       credit_account="payment-processor", cents=fee, currency=cur,
                       description="Payment processor fee", now=now, expense=expense)
        expense["status"] = "PAID"
        expense["paidAt"] = _iso(now)
        expense["paid_group"] = group
        self._emit_expense("collective.expense.paid", expense)

    def _mark_unpaid(self, expense: dict[str, Any], back_to: str, now: dt.datetime) -> None:
        group = str(uuid.uuid4())
        paid_group = expense.get("paid_group")
        originals = [t for t in self.state["transactions"] if t["group"] == paid_group and not t["isRefunded"]]
        for t in [t for t in originals if t["kind"] == "EXPENSE" and t["type"] == "DEBIT"]:
            reversed_rows = self._pair(group=group, kind="EXPENSE", debit_account=t["oppositeAccount"],
                                       credit_account=t["account"], cents=-t["amount_cents"],
                                       currency=t["currency"], description=f"Refund of \"{t['description']}\"",
                                       now=now, expense=expense, is_refund=True)
            del reversed_rows
        for t in originals:
            if t["kind"] == "EXPENSE":
                t["isRefunded"] = True
        # processor fees are not reversed: a PAYMENT_PROCESSOR_COVER pair credits the collective
        # (direction and counterparty are not documented [inferred])
        for t in [t for t in originals if t["kind"] == "PAYMENT_PROCESSOR_FEE" and t["type"] == "DEBIT"]:
            self._pair(group=group, kind="PAYMENT_PROCESSOR_COVER", debit_account=t["oppositeAccount"],
                       credit_account=t["account"], cents=-t["amount_cents"], currency=t["currency"],
                       description="Cover of payment processor fee for refund", now=now, expense=expense)
        expense["status"] = back_to
        expense["paidAt"] = None
        expense["paid_group"] = None

    # -- webhooks -------------------------------------------------------------------------------

    def _emit_expense(self, type_: str, expense: dict[str, Any]) -> None:
        self._emit(type_, expense["account"], {
            "expense": {"idV2": expense["id"], "id": expense["legacyId"], "publicId": expense["publicId"],
                        "description": expense["description"], "amount": expense["amount_cents"],
                        "currency": expense["currency"]},
            "fromCollective": self._account_payload(expense["payee"]),
            "collective": self._account_payload(expense["account"])})

    def _account_payload(self, slug: str) -> dict[str, Any]:
        a = self.state["accounts"].get(slug, {"id": "", "publicId": "", "legacyId": 0, "type": "", "name": slug})
        return {"idV2": a["id"], "publicId": a["publicId"], "id": a["legacyId"], "type": a["type"], "slug": slug,
                "name": a["name"]}

    def _emit(self, type_: str, slug: str, data: dict[str, Any]) -> None:
        hooks = [h for h in self.state["webhooks"] if h["account"] == slug and h["activityType"] in (
            "ACTIVITY_ALL", type_.upper().replace(".", "_"))]
        if not hooks:
            return
        account = self.state["accounts"].get(slug, {})
        payload = {"createdAt": _iso(self.clock()), "id": secrets.randbelow(10**9), "type": type_,
                   "CollectiveId": account.get("legacyId"), "data": data}
        for hook in hooks:
            threading.Thread(target=self._deliver, args=(hook["webhookUrl"], payload), daemon=True).start()

    def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        import requests

        record: dict[str, Any] = {"url": url, "payload": payload}
        try:  # one attempt, no redirects, no signature, failures dropped (OC's behaviour)
            response = requests.post(url, json=payload, timeout=30, allow_redirects=False)
            record["status"] = response.status_code
        except requests.RequestException as exc:
            record["error"] = str(exc)
        with self.lock:
            self.webhook_deliveries.append(record)

    # -- GraphQL wiring -------------------------------------------------------------------------

    def _wire_types(self) -> None:
        def account_type(obj: Any, _info: Any, _t: Any) -> str:
            return {"COLLECTIVE": "Collective", "INDIVIDUAL": "Individual"}.get(obj.get("type"), "Organization")

        self.schema.type_map["Account"].resolve_type = account_type  # type: ignore[attr-defined]
        self.schema.type_map["Transaction"].resolve_type = (  # type: ignore[attr-defined]
            lambda obj, _info, _t: obj["__typename"])

    @staticmethod
    def _field_resolver(source: Any, info: Any, **args: Any) -> Any:
        value = source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
        return value(**args) if callable(value) else value

    def _account_view(self, slug: str | None) -> dict[str, Any] | None:
        if slug is None:
            return None
        a = self.state["accounts"].get(slug)
        if a is None:
            return None
        return {"id": a["id"], "slug": a["slug"], "name": a["name"], "type": a["type"], "currency": a["currency"]}

    def _expense_view(self, e: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        admin = ctx.token is not None and ctx.token.is_admin(e["account"])
        host_currency = self.state["accounts"][e["account"]]["currency"]

        def amount(currencySource: str = "EXPENSE") -> dict[str, Any]:  # noqa: N803 (GraphQL name)
            cur = host_currency if currencySource in ("HOST", "ACCOUNT") else e["currency"]
            return {"valueInCents": float(e["amount_cents"]), "value": e["amount_cents"] / 100, "currency": cur}

        return {
            "id": e["id"], "publicId": e["publicId"], "legacyId": e["legacyId"], "description": e["description"],
            "longDescription": e.get("longDescription"), "status": e["status"], "type": e["type"],
            "currency": e["currency"], "createdAt": e["createdAt"], "paidAt": e.get("paidAt"),
            "onHold": e.get("onHold", False), "tags": e.get("tags") or [], "feesPayer": e.get("feesPayer") or "COLLECTIVE",
            # invoice info and custom data are visible to admins (and the payee) only
            "reference": e.get("reference") if admin else None,
            "customData": e.get("customData") if admin else None,
            "amountV2": amount, "payee": self._account_view(e["payee"]), "account": self._account_view(e["account"]),
            "payoutMethod": {"id": e["id"] + "-pm", "type": e["payoutMethodType"]},
            "draftKey": e.get("draftKey") if admin else None,
        }

    def _transaction_view(self, t: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        amount = {"valueInCents": float(t["amount_cents"]), "value": t["amount_cents"] / 100, "currency": t["currency"]}
        zero = {"valueInCents": 0.0, "value": 0.0, "currency": t["currency"]}
        expense = None
        if t["expense"] is not None:
            expense = self._expense_view(self.find_expense(t["expense"]), ctx)
        return {
            "__typename": "Debit" if t["type"] == "DEBIT" else "Credit", "id": t["id"], "publicId": t["publicId"],
            "legacyId": t["legacyId"], "group": t["group"], "type": t["type"], "kind": t["kind"],
            "refundKind": t.get("refundKind"), "description": t["description"], "amount": amount,
            "amountInHostCurrency": amount, "netAmount": amount, "netAmountInHostCurrency": amount,
            "paymentProcessorFee": zero, "hostCurrencyFxRate": 1.0, "isRefund": t["isRefund"],
            "isRefunded": t["isRefunded"], "createdAt": t["createdAt"], "clearedAt": t.get("clearedAt"),
            "account": self._account_view(t["account"]), "oppositeAccount": self._account_view(t["oppositeAccount"]),
            "expense": expense,
        }

    def _slug_of(self, ref: dict[str, Any] | None) -> str | None:
        if not ref:
            return None
        if ref.get("slug"):
            return str(ref["slug"])
        for a in self.state["accounts"].values():
            if ref.get("id") in (a["id"], a["publicId"]) or ref.get("legacyId") == a["legacyId"]:
                return str(a["slug"])
        raise _OCError("Account Not Found", "NotFound")

    # -- Query ----------------------------------------------------------------------------------

    def _q_expenses(self, ctx: _Ctx, limit: int, offset: int, orderBy: dict[str, Any],  # noqa: N803
                    account: dict[str, Any] | None = None, fromAccount: dict[str, Any] | None = None,  # noqa: N803
                    status: list[str] | None = None, type: str | None = None,  # noqa: A002
                    types: list[str] | None = None, dateFrom: str | None = None,  # noqa: N803
                    dateTo: str | None = None, searchTerm: str | None = None,  # noqa: N803
                    customData: Any = None) -> dict[str, Any]:  # noqa: N803
        if limit > 1000:
            raise _OCError("Cannot fetch more than 1,000 expenses at the same time, please adjust the limit",
                           "BadRequest")
        if status and "READY_TO_PAY" in status and len(status) > 1:
            raise _OCError("READY_TO_PAY cannot be combined with other statuses", "BadRequest")
        slug, payee = self._slug_of(account), self._slug_of(fromAccount)
        if customData is not None:
            if slug is None and payee is None:
                raise _OCError("The customData filter requires an account, host or fromAccount filter", "BadRequest")
            if ctx.token is None or not ctx.token.is_admin(slug or payee or ""):
                raise _OCError("You need to be an admin of the account to filter by customData", "Unauthorized")
        rows = []
        needle = (searchTerm or "").strip().lower()
        for e in self.state["expenses"]:
            if slug and e["account"] != slug or payee and e["payee"] != payee:
                continue
            if status is None:
                if e["status"] in _NOT_LISTED_BY_DEFAULT:
                    continue
            elif status == ["READY_TO_PAY"]:
                if e["status"] != "APPROVED" or e.get("onHold"):
                    continue
            else:
                wanted = set(status)
                on_hold_match = "ON_HOLD" in wanted and e.get("onHold")
                if not on_hold_match and (e["status"] not in wanted or e.get("onHold")):
                    continue
            if type and e["type"] != type or types and e["type"] not in types:
                continue
            created = _parse_iso(e["createdAt"])
            if dateFrom and created < _parse_iso(dateFrom) or dateTo and created > _parse_iso(dateTo):
                continue
            if customData is not None and not _contains(e.get("customData") or {}, customData):
                continue
            if needle:
                haystack = " ".join(str(x) for x in (e["legacyId"], e["publicId"], e["id"], e.get("reference") or "",
                                                     e["description"], " ".join(e.get("tags") or []), e["payee"],
                                                     e["amount_cents"])).lower()
                if not all(word in haystack for word in needle.split()):
                    continue
            rows.append(e)
        rows.sort(key=lambda e: (e["createdAt"], e["legacyId"]), reverse=orderBy.get("direction") == "DESC")
        page = rows[offset:offset + limit]
        return {"offset": offset, "limit": limit, "totalCount": len(rows),
                "nodes": [self._expense_view(e, ctx) for e in page]}

    def _q_expense(self, ctx: _Ctx, expense: dict[str, Any] | None = None, id: str | None = None  # noqa: A002
                   ) -> dict[str, Any] | None:
        ref = (expense or {}).get("id") or (expense or {}).get("legacyId") or id
        if ref is None:
            raise _OCError("Please provide an expense reference", "BadRequest")
        try:
            return self._expense_view(self.find_expense(ref), ctx)
        except KeyError:
            return None

    def _q_transactions(self, ctx: _Ctx, limit: int, offset: int, orderBy: dict[str, Any],  # noqa: N803
                        account: list[dict[str, Any]] | None = None, type: str | None = None,  # noqa: A002
                        kind: list[str] | None = None, group: list[str] | None = None,
                        expense: dict[str, Any] | None = None, dateFrom: str | None = None,  # noqa: N803
                        dateTo: str | None = None) -> dict[str, Any]:  # noqa: N803
        if limit > 10000:
            raise _OCError("Cannot fetch more than 10,000 transactions at the same time, please adjust the limit",
                           "BadRequest")
        slugs = {self._slug_of(a) for a in account} if account else None
        expense_legacy = None
        if expense:
            try:
                expense_legacy = self.find_expense(expense.get("id") or expense.get("legacyId"))["legacyId"]
            except KeyError:
                raise _OCError("Expense not found", "NotFound") from None
        start = _parse_iso(dateFrom) if dateFrom else None
        end = _parse_iso(dateTo) if dateTo else None
        rows = []
        for t in self.state["transactions"]:
            if slugs is not None and t["account"] not in slugs:
                continue
            if type and t["type"] != type or kind and t["kind"] not in kind or group and t["group"] not in group:
                continue
            if expense is not None and t["expense"] != expense_legacy:
                continue
            if start or end:
                created = _parse_iso(t["createdAt"])
                if start and created < start or end and created > end:
                    continue
            rows.append(t)
        rows.sort(key=lambda t: (t["createdAt"], t["legacyId"]), reverse=orderBy.get("direction") == "DESC")
        page = rows[offset:offset + limit]
        return {"offset": offset, "limit": limit, "totalCount": len(rows),
                "nodes": [self._transaction_view(t, ctx) for t in page]}

    # -- Mutation -------------------------------------------------------------------------------

    def _require_writer(self, ctx: _Ctx) -> None:
        if ctx.token is None:
            raise _OCError("You need to be authenticated to perform this action", "Unauthorized")
        if ctx.token.two_factor and not ctx.token.preauthorized_2fa:
            raise _OCError("This personal token is not pre-authorized for 2FA", "2FA_REQUIRED")

    def _validate_items(self, items: list[dict[str, Any]] | None, currency: str) -> int:
        if not items or len(items) > 300:
            raise _OCError("Expense must have between 1 and 300 items", "ValidationFailed")
        total = 0
        for item in items:
            amount = (item.get("amountV2") or {}).get("valueInCents")
            if amount is None:
                amount = item.get("amount")
            if amount is None or amount <= 0:
                raise _OCError("Each item must have a positive amount", "ValidationFailed")
            item_currency = (item.get("amountV2") or {}).get("currency")
            if item_currency and item_currency != currency:
                raise _OCError("Items must be in the expense currency", "ValidationFailed")
            total += int(amount)
        return total

    def _target(self, account: dict[str, Any], currency: str | None, type_: str) -> tuple[str, str]:
        slug = self._slug_of(account)
        target = self.state["accounts"].get(slug or "")
        if target is None:
            raise _OCError("Account Not Found", "NotFound")
        if target["type"] not in ("COLLECTIVE", "EVENT", "FUND", "PROJECT", "ORGANIZATION"):
            raise _OCError("Expenses can only be submitted to collectives, events, funds, projects and hosts",
                           "ValidationFailed")
        if type_ == "GRANT" and not target.get("grant_allowed", True):
            raise _OCError(f"Expenses of type grant are not allowed by the {target['type'].lower()}",
                           "ValidationFailed")
        cur = currency or target["currency"]
        if cur != target["currency"]:
            raise _OCError("This host does not support expenses in another currency than the collective's",
                           "FeatureNotSupportedForCollective")
        return str(slug), cur

    def _m_create_expense(self, ctx: _Ctx, expense: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
        self._require_writer(ctx)
        slug, cur = self._target(account, expense.get("currency"), expense["type"])
        total = self._validate_items(expense.get("items"), cur)
        payout = expense.get("payoutMethod") or {}
        if payout.get("type") == "OTHER" and set((payout.get("data") or {})) - {"content", "currency"}:
            raise _OCError("Payout method of type OTHER may only hold content and currency", "ValidationFailed")
        if payout.get("type") == "STRIPE" and expense["type"] not in ("SETTLEMENT", "PLATFORM_BILLING"):
            raise _OCError("Stripe payout methods are only for settlements", "ValidationFailed")
        custom = expense.get("customData")
        if custom is not None and (not isinstance(custom, dict) or len(json.dumps(custom)) > 10_000):
            raise _OCError("customData must be a JSON object of at most 10 kB", "ValidationFailed")
        payee = self._slug_of(expense["payee"])
        if payee not in self.state["accounts"]:
            if not self.auto_create_payees:
                raise _OCError("Payee account not found", "NotFound")
            self.add_account(str(payee), type_="INDIVIDUAL", currency=cur)
        row = self._insert_expense(slug=slug, payee=str(payee), currency=cur, total=total, expense=expense,
                                   status="PENDING", payout_type=payout.get("type") or "OTHER")
        self._emit_expense("collective.expense.created", row)
        return self._expense_view(row, ctx)

    def _m_invite(self, ctx: _Ctx, expense: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
        self._require_writer(ctx)
        slug, cur = self._target(account, expense.get("currency"), expense["type"])
        total = self._validate_items(expense.get("items"), cur)
        invitee = expense["payee"]
        payee = invitee.get("slug")
        if not payee:
            if not invitee.get("email"):
                raise _OCError("An invited payee needs an email", "ValidationFailed")
            payee = "invited-" + secrets.token_hex(4)
            self.add_account(payee, name=invitee.get("name") or invitee["email"], type_="INDIVIDUAL", currency=cur)
        row = self._insert_expense(slug=slug, payee=payee, currency=cur, total=total, expense=expense,
                                   status="DRAFT", payout_type=(expense.get("payoutMethod") or {}).get("type") or "OTHER")
        row["draftKey"] = secrets.token_urlsafe(12)
        row["invite_email"] = invitee.get("email")
        self._emit_expense("collective.expense.invite.drafted", row)
        return self._expense_view(row, ctx)

    def _insert_expense(self, *, slug: str, payee: str, currency: str, total: int, expense: dict[str, Any],
                        status: str, payout_type: str) -> dict[str, Any]:
        row = {"id": _long_id(), "publicId": _public_id("ex_"), "legacyId": self._next("expense"),
               "description": expense["description"], "longDescription": expense.get("longDescription"),
               "reference": expense.get("reference"), "status": status, "type": expense["type"], "currency": currency,
               "createdAt": _iso(self.clock()), "paidAt": None, "onHold": False, "tags": expense.get("tags") or [],
               "customData": expense.get("customData"), "feesPayer": "COLLECTIVE", "amount_cents": total,
               "payee": payee, "account": slug, "payoutMethodType": payout_type}
        self.state["expenses"].append(row)
        return row

    def _m_process(self, ctx: _Ctx, expense: dict[str, Any], action: str, message: str | None = None,
                   paymentParams: dict[str, Any] | None = None) -> dict[str, Any]:  # noqa: N803
        self._require_writer(ctx)
        ref = expense.get("id") or expense.get("legacyId")
        return self._expense_view(self.process(ref, action, paymentParams or {}, message or ""), ctx)

    def _m_create_webhook(self, ctx: _Ctx, webhook: dict[str, Any]) -> dict[str, Any]:
        self._require_writer(ctx)
        slug = self._slug_of(webhook["account"])
        if ctx.token is None or not ctx.token.is_admin(slug or ""):
            raise _OCError("You need to be an admin of the account", "Forbidden")
        url = str(webhook["webhookUrl"])
        if not url.startswith(("http://", "https://")):
            raise _OCError("Webhook URL must be http or https", "ValidationFailed")
        hook = {"id": _long_id(), "account": slug, "activityType": webhook.get("activityType") or "ACTIVITY_ALL",
                "webhookUrl": url}
        self.state["webhooks"].append(hook)
        return {"id": hook["id"], "activityType": hook["activityType"], "webhookUrl": url}

    # -- request handling ---------------------------------------------------------------------

    def execute(self, body: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        """Run one GraphQL request under the state lock (mutations are atomic, as in one DB transaction)."""
        mutate = {"createExpense": self._m_create_expense, "draftExpenseAndInviteUser": self._m_invite,
                  "processExpense": self._m_process, "createWebhook": self._m_create_webhook}
        query = {"expenses": self._q_expenses, "expense": self._q_expense, "transactions": self._q_transactions}
        root = {name: (lambda fn: (lambda **kw: fn(ctx, **kw)))(fn) for name, fn in {**mutate, **query}.items()}
        with self.lock:
            result = graphql_sync(self.schema, body.get("query") or "", root_value=root,
                                  variable_values=body.get("variables") or None,
                                  operation_name=body.get("operationName"), field_resolver=self._field_resolver)
            out: dict[str, Any] = {"data": result.data}
            if result.errors:
                out["errors"] = [e.formatted for e in result.errors]
            elif any(name in (body.get("query") or "") for name in mutate):
                self.save()
            return out

    def _token(self, headers: Any) -> tuple[str, _TokenInfo | None, bool]:
        """(token text, its info or None, whether a token was presented at all)."""
        text = headers.get("Personal-Token") or ""
        auth = headers.get("Authorization") or ""
        if not text and auth.lower().startswith("bearer "):
            text = auth[7:].strip()
        if not text:
            return "", None, False
        info = self.state["tokens"].get(text)
        return text, (_TokenInfo(tuple(info["admin_of"]), info["two_factor"], info["preauthorized_2fa"])
                      if info else None), True

    def _rate_limited(self, key: str) -> tuple[bool, float, int, int]:
        """(over the limit?, seconds until a slot frees, remaining, reset epoch)."""
        limit = self.rate_limit_per_minute
        now = time.time()
        if not limit:
            return False, 0.0, 0, 0
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:
            wait = window[0] + 60 - now
            return True, wait, 0, int(window[0] + 60)
        window.append(now)
        return False, 0.0, limit - len(window), int(window[0] + 60)

    def take_fault(self, op: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.op in (op, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- CSV export -----------------------------------------------------------------------------

    def transactions_csv(self, slug: str, *, use_field_names: bool = False, limit: int = 1000, offset: int = 0,
                         fetch_all: bool = False) -> str:
        """The collective's transactions as OC's CSV export (newest first, like the REST default)."""
        with self.lock:
            rows = [t for t in self.state["transactions"] if t["account"] == slug]
            rows.sort(key=lambda t: (t["createdAt"], t["legacyId"]), reverse=True)
            total = len(rows)
            page = rows if fetch_all else rows[offset:offset + limit]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow([label if use_field_names else key for key, label in CSV_COLUMNS])
            for t in page:
                e = self.find_expense(t["expense"]) if t["expense"] is not None else None
                values = {
                    "effectiveDate": t["clearedAt"][:19], "legacyId": t["legacyId"], "publicId": t["publicId"],
                    "description": t["description"], "type": t["type"], "kind": t["kind"], "group": t["group"],
                    "amount": _major(t["amount_cents"]), "netAmount": _major(t["amount_cents"]),
                    "currency": t["currency"], "isRefund": "REFUND" if t["isRefund"] else "",
                    "isRefunded": "REFUNDED" if t["isRefunded"] else "", "accountSlug": t["account"],
                    "oppositeAccountSlug": t["oppositeAccount"], "paymentMethodService": t.get("service") or "",
                    "expenseType": e["type"] if e else "", "expenseLegacyId": e["legacyId"] if e else "",
                    "expensePublicId": e["publicId"] if e else "", "expenseId": e["id"] if e else ""}
                writer.writerow([values[key] for key, _label in CSV_COLUMNS])
            if not fetch_all and total > offset + limit:
                out.write(f"Warning: totalCount is {total} and limit was {limit}\n")
            return out.getvalue()

    # -- the demo's "Open Collective dashboard" ----------------------------------------------------

    def admin_page(self) -> str:
        """A plain HTML page listing the expenses with the buttons a collective admin has in OC."""
        from html import escape

        with self.lock:
            rows = []
            for e in sorted(self.state["expenses"], key=lambda e: e["createdAt"], reverse=True):
                actions = self._action_forms(e, back="/")
                rows.append(f"<tr><td>{escape(e['publicId'])}</td><td>{escape(e['account'])}</td>"
                            f"<td>{escape(e['description'])}</td><td>{escape(e['payee'])}</td>"
                            f"<td>{_major(e['amount_cents'])} {escape(e['currency'])}</td><td>{escape(e['status'])}"
                            f"{' (on hold)' if e.get('onHold') else ''}</td><td>{''.join(actions)}</td></tr>")
            balances = "".join(f"<li>{escape(slug)}: {_major(self.balance_cents(slug))} {escape(a['currency'])}</li>"
                               for slug, a in self.state["accounts"].items() if a["type"] == "COLLECTIVE")
        return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Fake Open Collective</title></head>"
                "<body><h1>Fake Open Collective (local, for the demo)</h1>"
                "<p>What a collective admin does in Open Collective. Changes send webhooks to fundcircle.</p>"
                f"<h2>Balances</h2><ul>{balances}</ul><h2>Expenses</h2><table><thead><tr><th>Expense</th>"
                "<th>Collective</th><th>Description</th><th>Payee</th><th>Amount</th><th>Status</th><th>Actions</th>"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>")

    def _action_forms(self, e: dict[str, Any], *, back: str) -> list[str]:
        """The admin's buttons for an expense in its current status; ``back``: where to return."""
        from html import escape

        hidden = f'<input type="hidden" name="back" value="{escape(back)}">'
        actions = []
        for action, label in (("approve", "Approve"), ("reject", "Reject"), ("mark_as_unpaid", "Mark as unpaid")):
            if e["status"] in TRANSITIONS[action.upper()][0]:
                actions.append(f'<form method="post" action="/__fake__/expenses/{escape(e["publicId"])}/{action}">'
                               f'{hidden}<button>{label}</button></form>')
        if e["status"] in TRANSITIONS["PAY"][0]:
            amount = _major(e["amount_cents"])
            actions.append(
                f'<form method="post" action="/__fake__/expenses/{escape(e["publicId"])}/pay">{hidden}'
                f'<label>Amount <input name="amount" value="{amount}" size="8"></label> '
                f'<label>Fee <input name="fee" value="0" size="5"></label> <button>Pay</button></form>')
        return actions

    def expense_page(self, slug: str, ref: str) -> str | None:
        """The expense's own page, where fundcircle's "Open Collective expense" links point
        (``/<collective>/expenses/<legacy id or public id>``, as on opencollective.com); None when
        the collective has no such expense."""
        from html import escape

        with self.lock:
            try:
                e = self.find_expense(ref)
            except KeyError:
                return None
            if e["account"] != slug:
                return None
            actions = "".join(self._action_forms(e, back=f"/{slug}/expenses/{e['legacyId']}"))
            collective = self.state["accounts"].get(slug, {}).get("name", slug)
            return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
                    f"<title>Expense {escape(e['publicId'])} · Fake Open Collective</title></head><body>"
                    f'<p><a href="/">Fake Open Collective (local, for the demo)</a> › {escape(collective)}</p>'
                    f"<h1>{escape(e['description'])}</h1><dl>"
                    f"<dt>Expense</dt><dd>{escape(e['publicId'])} (#{e['legacyId']})</dd>"
                    f"<dt>Collective</dt><dd>{escape(slug)}</dd><dt>Payee</dt><dd>{escape(e['payee'])}</dd>"
                    f"<dt>Amount</dt><dd>{_major(e['amount_cents'])} {escape(e['currency'])}</dd>"
                    f"<dt>Status</dt><dd data-status=\"{escape(e['status'])}\">{escape(e['status'])}"
                    f"{' (on hold)' if e.get('onHold') else ''}</dd></dl>"
                    f"{'<h2>Admin actions</h2>' + actions if actions else ''}</body></html>")

    # -- server lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql/v2"

    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        # A persisted fake keeps its address across restarts: fundcircle stores each expense's
        # absolute link when it creates the payout (the demo's while seeding, before `up` restarts
        # the fake), and those links must keep working. A taken port falls back to a free one.
        remembered = int(self.state.get("port") or 0) if self.state_path is not None and not self.port else 0
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", remembered or self.port), Handler)
        except OSError:
            if not remembered:
                raise
            log.warning("fake Open Collective: port %s is taken; links stored earlier will not work", remembered)
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.state_path is not None and not self.port:
            with self.lock:
                self.state["port"] = self._server.server_address[1]
                self.save()
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-opencollective", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenCollective:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def _contains(stored: Any, wanted: Any) -> bool:
    """JSON containment (PostgreSQL's ``@>``), as OC's customData filter."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(stored, list) and all(any(_contains(s, w) for s in stored) for w in wanted)
    return bool(stored == wanted)


def _root_field(query: str, operation_name: str | None) -> str:
    try:
        document = parse(query)
    except GraphQLError:
        return "?"
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
                operation_name is None or (definition.name and definition.name.value == operation_name)):
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode):
                    return selection.name.value
    return "?"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenCollective
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:  # quiet: tests and the demo read their own output
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def _admin_action(self, path: str, raw: bytes) -> None:
        """The demo's stand-in for a collective admin clicking in OC: approve, pay (optionally with a
        fee), mark as unpaid, reject. Real OC semantics (transactions, webhooks) follow."""
        parts = path.split("/")  # /__fake__/expenses/<id>/<action>
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if len(parts) != 5 or parts[4].upper() not in ("APPROVE", "PAY", "MARK_AS_UNPAID", "REJECT"):
            self._send(404, b"unknown action", "text/plain")
            return
        params: dict[str, Any] = {}
        if parts[4].upper() == "PAY":
            try:
                fee = Decimal(form.get("fee") or "0")
                expense = self.fake.find_expense(parts[3])
                params["paymentProcessorFeeInHostCurrency"] = int(fee * 100)
                if form.get("amount"):  # "edited in OC" before paying: the amount OC pays differs
                    expense["amount_cents"] = int(Decimal(form["amount"]) * 100)
            except (ArithmeticError, ValueError, KeyError):
                self._send(400, b"bad fee, amount or expense", "text/plain")
                return
        try:
            self.fake.process(parts[3], parts[4].upper(), params)
        except GraphQLError as exc:
            self._send(409, str(exc.message).encode(), "text/plain; charset=utf-8")
            return
        except KeyError:
            self._send(404, b"no such expense", "text/plain")
            return
        back = form.get("back") or "/"
        if not back.startswith("/") or back.startswith("//"):  # only this fake's own pages
            back = "/"
        self.send_response(303)
        self.send_header("Location", back)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            self._send(200, self.fake.admin_page().encode(), "text/html; charset=utf-8")
            return
        if len(segments) == 3 and segments[1] == "expenses":
            page = self.fake.expense_page(segments[0], segments[2])
            if page is None:
                self._send(404, b"No such expense in this collective", "text/plain; charset=utf-8")
            else:
                self._send(200, page.encode(), "text/html; charset=utf-8")
            return
        if len(segments) == 3 and segments[0] == "v2" and segments[2] == "transactions.csv":
            q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            slug = segments[1]
            if slug not in self.fake.state["accounts"]:
                self._send(404, b'{"error":{"message":"Not found"}}')
                return
            try:
                limit = min(int(q.get("limit", "1000")), 10_000)
                offset = int(q.get("offset", "0"))
            except ValueError:
                self._send(400, b'{"error":{"message":"limit and offset must be integers"}}')
                return
            text = self.fake.transactions_csv(slug, use_field_names=q.get("useFieldNames") in ("1", "true"),
                                              limit=limit, offset=offset, fetch_all=q.get("fetchAll") in ("1", "true"))
            rows = sum(1 for t in self.fake.state["transactions"] if t["account"] == slug)
            self._send(200, text.encode(), "text/csv; charset=utf-8", {
                "Content-Disposition": f'attachment; filename="{slug}-transactions.csv"',
                "X-Exported-Rows": str(rows)})
            return
        self._send(404, b'{"error":{"message":"Not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/__fake__/expenses/"):
            self._admin_action(path, raw)
            return
        if path not in ("/graphql/v2", "/graphql"):
            self._send(404, b'{"error":{"message":"Not found"}}')
            return
        fake = self.fake
        token_text, token, presented = fake._token(self.headers)
        key = f"token:{token_text}" if presented else f"ip:{self.client_address[0]}"
        try:
            body = json.loads(raw or b"{}")
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            self._send(400, json.dumps({"errors": [{"message": "POST body must be a JSON object",
                                                    "extensions": {"code": "BAD_REQUEST"}}]}).encode())
            return
        op = _root_field(body.get("query") or "", body.get("operationName"))
        with fake.lock:
            fake.requests_by_op[op] = fake.requests_by_op.get(op, 0) + 1
        fault = fake.take_fault(op)
        limited, wait_s, remaining, reset = fake._rate_limited(key)
        if limited or (fault is not None and fault.mode == "rate_limit"):
            retry_after = fault.retry_after if fault is not None and fault.mode == "rate_limit" else f"{wait_s:.1f}"
            suffix = "Contact-us to get higher limits." if presented else "Create a Personal Token to get higher limits."
            self._send(429, json.dumps({"error": {"message": f"Rate limit exceeded. {suffix}"}}).encode(), headers={
                "Retry-After": retry_after, "X-RateLimit-Limit": str(fake.rate_limit_per_minute or 100),
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset or int(time.time()) + 1)})
            return
        if fault is not None and fault.mode.startswith("http_"):
            self._send(int(fault.mode[5:]), b"<html><body>Bad gateway</body></html>", "text/html")
            return
        if fault is not None and fault.mode == "drop":
            self._drop()
            return
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.delay_s)
        if presented and token is None:
            payload = {"data": None, "errors": [{"message": "Invalid personal token", "extensions": {
                "code": "Unauthorized", "id": str(uuid.uuid4())}}]}
        else:
            payload = fake.execute(body, _Ctx(token, token_text))
        if fault is not None and fault.mode == "commit_then_drop":
            self._drop()
            return
        if fault is not None and fault.mode == "commit_then_timeout":
            time.sleep(fault.delay_s)
        headers = {}
        if fake.rate_limit_per_minute:
            headers = {"X-RateLimit-Limit": str(fake.rate_limit_per_minute), "X-RateLimit-Remaining": str(remaining),
                       "X-RateLimit-Reset": str(reset)}
        status = 400 if payload.get("errors") and payload.get("data") is None and _is_document_error(payload) else 200
        self._send(status, json.dumps(payload).encode(), headers=headers)


def _is_document_error(payload: dict[str, Any]) -> bool:
    """Validation errors of the document or variables (no resolver ran) answer HTTP 400, as Apollo does."""
    return all(not (e.get("extensions") or {}).get("code") for e in payload.get("errors", []))


def main() -> None:  # pragma: no cover - manual use: python -m fundcircle.integrations.fakes.opencollective
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake Open Collective server")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state", default=None)
    args = parser.parse_args()
    fake = FakeOpenCollective(state_path=args.state, port=args.port, auto_create_payees=True)
    fake.add_token()
    print(f"fake Open Collective on {fake.start()}/graphql/v2 (token {FAKE_TOKEN})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["CSV_COLUMNS", "FAKE_TOKEN", "Fault", "FakeOpenCollective"]
