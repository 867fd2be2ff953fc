"""Open Collective GraphQL API v2 client (``requests``): expenses, transactions, GRANT payouts.

Facts come from reference/open-collective-and-stripe.md §1–§2 and §7. Policies:

- Auth with the ``Personal-Token`` header (never a token in the URL: URLs end up in logs).
- 429 is checked before parsing JSON (its body is not GraphQL-shaped); the client sleeps the
  (possibly fractional) ``Retry-After`` (fallback ``X-RateLimit-Reset``, else 60 s) plus jitter and
  retries *any* operation, because a 429 means the operation did not run.
- Queries are retried with exponential backoff on 5xx, timeouts and connection errors.
  Mutations are **not** retried blindly: OC has no idempotency, so a mutation that may have run
  raises ``OCUncertain`` and ``create_grant_expense`` looks the award's expense up before trying again.
- GraphQL errors are classified by ``extensions.code`` into ``OCAuthError``/``OCTwoFactorRequired``
  (stop: configuration), ``OCValidationError`` (stop: tell the treasurer), ``RateLimitExceeded``
  (back off, retry).
- Amounts: OC "cents" are major × 100 for every currency, and ``valueInCents`` is a Float in
  output; conversions to fundcircle minor units are exact or raise.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from fundcircle.errors import IntegrationError, ValidationError
from fundcircle.ledger.money import exponent

log = logging.getLogger(__name__)

PRODUCTION_API_URL = "https://api.opencollective.com/graphql/v2"
PRODUCTION_WEBSITE_URL = "https://opencollective.com"

#: expenses in these statuses will never be paid: a new payout for the award may be created
CLOSED_STATUSES = frozenset({"REJECTED", "CANCELED", "SPAM", "INVITE_DECLINED"})


# -- errors ------------------------------------------------------------------------------------

class OpenCollectiveError(IntegrationError):
    """Open Collective refused or failed; ``code`` is OC's ``extensions.code`` when there was one."""

    def __init__(self, message: str, *, code: str = "", error_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.error_id = error_id


class OCAuthError(OpenCollectiveError):
    """The token is missing, invalid, expired or lacks rights (a configuration problem: stop)."""


class OCTwoFactorRequired(OCAuthError):
    """The token's user has 2FA and the token was not created with "Advanced privileges"."""


class OCVisibilityError(OCAuthError):
    """``reference``/``customData`` came back null: the token is not an admin of the collective, so a
    lookup cannot tell "not created yet" from "not visible" — never create on that answer."""


class OCValidationError(OpenCollectiveError):
    """OC refused the input (ValidationFailed, BadRequest, NotFound, Feature*, PlanLimit)."""

    http_status = 422


class OCUnavailable(OpenCollectiveError):
    """Transient failures (5xx, timeouts, 429s) outlasted the retries."""


class OCUncertain(OCUnavailable):
    """A mutation timed out or got a 5xx: OC may or may not have done it. Look up before retrying."""


class OCAmbiguous(OpenCollectiveError):
    """More than one live expense carries the same award reference: a person has to decide."""


_AUTH_CODES = {"Unauthorized", "Forbidden", "FeatureNotAllowedForUser"}
_VALIDATION_CODES = {"ValidationFailed", "BadRequest", "NotFound", "FeatureNotSupportedForCollective", "PlanLimit"}


# -- amounts -----------------------------------------------------------------------------------

def minor_to_oc_cents(amount_minor: int, currency: str) -> int:
    """fundcircle minor units → OC ``valueInCents`` (major × 100 for every currency)."""
    e = exponent(currency)
    if e not in (0, 2):
        raise OCValidationError(f"Open Collective does not support {currency} (exponent {e})")
    return amount_minor * 100 // 10**e


def oc_cents_to_minor(value: float | int | None, currency: str) -> int:
    """OC ``valueInCents`` (a Float in output) → minor units, exactly, or OpenCollectiveError."""
    if value is None:
        raise OpenCollectiveError("Open Collective sent an amount without a value")
    try:  # a non-number, NaN or infinity from OC is OC's error, not a 500
        cents = int(round(float(value)))
    except (TypeError, ValueError, OverflowError):
        raise OpenCollectiveError(f"Open Collective sent an amount that is not a number: {value!r}") from None
    if float(cents) != float(value):
        raise OpenCollectiveError(f"Open Collective sent a fractional amount in cents: {value!r}")
    e = exponent(currency)
    scaled = cents * 10**e
    if scaled % 100:
        raise OpenCollectiveError(f"{value} OC cents is not a whole amount of {currency}")
    return scaled // 100


def _ts(text: Any) -> dt.datetime | None:
    """An OC timestamp (ISO 8601, often with "Z"); a malformed one is the service's error, not a 500."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        raise OpenCollectiveError(f"Open Collective sent a timestamp that is not ISO 8601: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


# -- values ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OCExpense:
    id: str
    public_id: str
    legacy_id: int | None
    status: str
    type: str
    on_hold: bool
    reference: str | None
    custom_data: dict[str, Any] | None
    amount_minor: int
    currency: str
    #: the amount in the host's currency (what the collective's balance moves by)
    host_amount_minor: int
    host_currency: str
    created_at: dt.datetime | None
    paid_at: dt.datetime | None
    payee_slug: str
    account_slug: str
    description: str = ""

    @classmethod
    def from_node(cls, node: dict[str, Any]) -> OCExpense:
        amount = node.get("amountV2") or {}
        in_host = node.get("inHost") or amount
        cur = amount.get("currency") or node["currency"]
        host_cur = in_host.get("currency") or cur
        return cls(
            id=node["id"], public_id=node["publicId"], legacy_id=node.get("legacyId"), status=node["status"],
            type=node.get("type") or "", on_hold=bool(node.get("onHold")), reference=node.get("reference"),
            custom_data=node.get("customData"), amount_minor=oc_cents_to_minor(amount.get("valueInCents"), cur),
            currency=cur, host_amount_minor=oc_cents_to_minor(in_host.get("valueInCents"), host_cur),
            host_currency=host_cur, created_at=_ts(node.get("createdAt")), paid_at=_ts(node.get("paidAt")),
            payee_slug=(node.get("payee") or {}).get("slug") or "", account_slug=(node.get("account") or {}).get("slug") or "",
            description=node.get("description") or "")


@dataclass(frozen=True)
class OCTransaction:
    """One row of a collective's OC ledger, in the host currency (the same shape the CSV gives)."""

    id: str | None
    public_id: str | None
    legacy_id: int | None
    group: str
    type: str          # CREDIT | DEBIT
    kind: str
    is_refund: bool
    is_refunded: bool
    amount_minor: int  # signed: debits negative
    currency: str
    created_at: dt.datetime | None
    account_slug: str
    opposite_slug: str
    expense_id: str | None = None
    expense_public_id: str | None = None
    expense_legacy_id: int | None = None
    description: str = ""

    @property
    def ref(self) -> str:
        """The stable key of the row across the API and both CSV header styles: the integer id that
        the API, the raw CSV (``legacyId``) and the labelled CSV ("Transaction ID") all carry; the
        public id when an export lacks it."""
        if self.legacy_id is not None:
            return str(self.legacy_id)
        if self.public_id:
            return self.public_id
        if self.id:
            return self.id
        raise OpenCollectiveError("an Open Collective transaction without any id")

    @classmethod
    def from_node(cls, node: dict[str, Any]) -> OCTransaction:
        amount = node.get("amountInHostCurrency") or node.get("amount") or {}
        cur = amount.get("currency")
        if not cur:
            raise OpenCollectiveError(f"transaction {node.get('id')} has no currency")
        expense = node.get("expense") or {}
        return cls(
            id=node.get("id"), public_id=node.get("publicId"), legacy_id=node.get("legacyId"), group=node["group"],
            type=node["type"], kind=node.get("kind") or "", is_refund=bool(node.get("isRefund")),
            is_refunded=bool(node.get("isRefunded")), amount_minor=oc_cents_to_minor(amount.get("valueInCents"), cur),
            currency=cur, created_at=_ts(node.get("createdAt")), account_slug=(node.get("account") or {}).get("slug") or "",
            opposite_slug=(node.get("oppositeAccount") or {}).get("slug") or "", expense_id=expense.get("id"),
            expense_public_id=expense.get("publicId"), expense_legacy_id=expense.get("legacyId"),
            description=node.get("description") or "")


@dataclass(frozen=True)
class GrantRequest:
    """What fundcircle asks OC to pay for one award."""

    account_slug: str
    award_ref: str
    custom_data: dict[str, Any]
    description: str
    amount_minor: int
    currency: str
    #: an existing OC account slug of the payee, or None with ``invite_email`` to invite the payee
    payee_slug: str | None = None
    invite_email: str | None = None
    invite_name: str = ""
    payout_details: str = ""
    long_description: str = ""
    tags: tuple[str, ...] = ("fundcircle",)


@dataclass(frozen=True)
class CreateOutcome:
    expense: OCExpense
    #: False when the lookup found the award's expense already there (nothing was created)
    created: bool


# -- queries -----------------------------------------------------------------------------------

EXPENSE_FIELDS = """
fragment FcExpense on Expense {
  id publicId legacyId description status type currency createdAt paidAt onHold reference customData
  amountV2 { valueInCents currency }
  inHost: amountV2(currencySource: HOST) { valueInCents currency }
  payee { slug }
  account { slug }
}
"""

TRANSACTION_FIELDS = """
fragment FcTransaction on Transaction {
  __typename id publicId legacyId group type kind isRefund isRefunded createdAt description
  amountInHostCurrency { valueInCents currency }
  account { slug }
  oppositeAccount { slug }
  expense { id publicId legacyId }
}
"""

Q_EXPENSES = """
query FcExpenses($account: AccountReferenceInput!, $status: [ExpenseStatusFilter], $limit: Int!, $offset: Int!,
                 $dateFrom: DateTime, $customData: JSON, $searchTerm: String) {
  expenses(account: $account, status: $status, limit: $limit, offset: $offset, dateFrom: $dateFrom,
           customData: $customData, searchTerm: $searchTerm, orderBy: {field: CREATED_AT, direction: ASC}) {
    totalCount offset limit
    nodes { ...FcExpense }
  }
}
""" + EXPENSE_FIELDS

Q_EXPENSE = """
query FcExpense($expense: ExpenseReferenceInput!) {
  expense(expense: $expense) { ...FcExpense }
}
""" + EXPENSE_FIELDS

Q_TRANSACTIONS = """
query FcTransactions($account: [AccountReferenceInput!], $limit: Int!, $offset: Int!, $dateFrom: DateTime,
                     $expense: ExpenseReferenceInput, $kind: [TransactionKind]) {
  transactions(account: $account, limit: $limit, offset: $offset, dateFrom: $dateFrom, expense: $expense,
               kind: $kind, orderBy: {field: CREATED_AT, direction: ASC}) {
    totalCount offset limit
    nodes { ...FcTransaction }
  }
}
""" + TRANSACTION_FIELDS

M_CREATE_EXPENSE = """
mutation FcCreateGrant($account: AccountReferenceInput!, $expense: ExpenseCreateInput!) {
  createExpense(account: $account, expense: $expense) { ...FcExpense }
}
""" + EXPENSE_FIELDS

M_INVITE = """
mutation FcInvitePayee($account: AccountReferenceInput!, $expense: ExpenseInviteDraftInput!) {
  draftExpenseAndInviteUser(account: $account, expense: $expense) { ...FcExpense }
}
""" + EXPENSE_FIELDS

M_PROCESS = """
mutation FcProcessExpense($expense: ExpenseReferenceInput!, $action: ExpenseProcessAction!,
                          $params: ProcessExpensePaymentParams, $message: String) {
  processExpense(expense: $expense, action: $action, paymentParams: $params, message: $message) { ...FcExpense }
}
""" + EXPENSE_FIELDS

M_CREATE_WEBHOOK = """
mutation FcCreateWebhook($webhook: WebhookCreateInput!) {
  createWebhook(webhook: $webhook) { id activityType webhookUrl }
}
"""

#: kinds that move a collective's money in ways reconciliation looks at
RECONCILE_KINDS = ("EXPENSE", "PAYMENT_PROCESSOR_FEE", "PAYMENT_PROCESSOR_COVER", "CONTRIBUTION", "ADDED_FUNDS",
                   "HOST_FEE", "PLATFORM_TIP")


@dataclass
class ClientStats:
    requests: int = 0
    rate_limited: int = 0
    retried: int = 0
    slept_s: float = 0.0
    by_operation: dict[str, int] = field(default_factory=dict)


class OpenCollectiveClient:
    """A small client for the operations fundcircle needs. Thread-compatible, not thread-safe."""

    def __init__(self, api_url: str = PRODUCTION_API_URL, token: str = "", *,
                 website_url: str = PRODUCTION_WEBSITE_URL, timeout_s: float = 15.0, connect_timeout_s: float = 5.0,
                 max_attempts: int = 4, backoff_s: float = 0.5, max_backoff_s: float = 20.0,
                 max_rate_limit_wait_s: float = 120.0, page_size: int = 1000,
                 sleep: Callable[[float], None] = time.sleep, http: requests.Session | None = None) -> None:
        self.api_url = api_url
        self.token = token
        self.website_url = website_url.rstrip("/")
        self.timeout = (connect_timeout_s, timeout_s)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.page_size = page_size
        self.sleep = sleep
        self.http = http or requests.Session()
        self.stats = ClientStats()

    # -- transport ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "fundcircle (+https://github.com/fundcircle)"}
        if self.token:
            headers["Personal-Token"] = self.token
        return headers

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)

    def _rate_limit_wait(self, response: requests.Response) -> float:
        raw = response.headers.get("Retry-After", "")
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            return max(0.0, float(response.headers["X-RateLimit-Reset"]) - time.time())
        except (KeyError, ValueError):
            return 60.0

    def _pause(self, seconds: float) -> None:
        self.stats.slept_s += seconds
        self.sleep(seconds)

    def execute(self, query: str, variables: dict[str, Any], operation: str, *, mutation: bool = False
                ) -> dict[str, Any]:
        """POST one GraphQL operation; returns ``data``. See the module docstring for the retry policy."""
        body = {"query": query, "variables": variables, "operationName": operation}
        attempt = 0
        rate_waited_s = 0.0
        last_problem = ""
        while True:
            self.stats.requests += 1
            self.stats.by_operation[operation] = self.stats.by_operation.get(operation, 0) + 1
            try:
                response = self.http.post(self.api_url, json=body, headers=self._headers(), timeout=self.timeout,
                                          allow_redirects=False)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if mutation:
                    raise OCUncertain(f"Open Collective did not answer {operation} ({type(exc).__name__}); it may "
                                      f"have been carried out") from None
                last_problem = f"{type(exc).__name__}"
            else:
                if response.status_code == 429:
                    # not run: safe to repeat any operation, after the server's own wait
                    wait_s = self._rate_limit_wait(response) + random.uniform(0, 0.05)
                    self.stats.rate_limited += 1
                    if rate_waited_s + wait_s > self.max_rate_limit_wait_s:
                        raise OCUnavailable(f"Open Collective kept rate-limiting {operation} "
                                            f"(asked to wait {wait_s:.1f} s more)")
                    rate_waited_s += wait_s
                    log.info("Open Collective rate limit on %s: waiting %.2f s", operation, wait_s)
                    self._pause(wait_s)
                    continue
                if response.status_code >= 500:
                    if mutation:
                        raise OCUncertain(f"Open Collective answered {operation} with HTTP {response.status_code}; "
                                          f"it may have been carried out")
                    last_problem = f"HTTP {response.status_code}"
                else:
                    data = self._parse(response, operation)
                    if data is not None:
                        return data
                    last_problem = "RateLimitExceeded"
            attempt += 1
            if attempt >= self.max_attempts:
                raise OCUnavailable(f"Open Collective is unavailable ({operation}: {last_problem} after "
                                    f"{attempt} attempts)")
            self.stats.retried += 1
            self._pause(self._backoff(attempt - 1))

    def _parse(self, response: requests.Response, operation: str) -> dict[str, Any] | None:
        """``data`` of a GraphQL answer, None for a resolver-level rate limit (retry), else raise."""
        try:
            payload = response.json()
        except ValueError:
            raise OpenCollectiveError(f"Open Collective answered {operation} with HTTP {response.status_code} "
                                      f"and no JSON") from None
        if not isinstance(payload, dict):
            raise OpenCollectiveError(f"Open Collective answered {operation} with unexpected JSON")
        errors = payload.get("errors") or []
        if response.status_code in (401, 403) and not errors:
            raise OCAuthError(f"Open Collective refused the token (HTTP {response.status_code})")
        if errors:
            first = errors[0]
            ext = first.get("extensions") or {}
            code, error_id = str(ext.get("code") or ""), str(ext.get("id") or "")
            message = str(first.get("message") or "unknown error")
            log.warning("Open Collective error on %s: %s (%s, id %s)", operation, message, code, error_id)
            if code == "RateLimitExceeded":
                return None
            if code == "2FA_REQUIRED" or "pre-authorized for 2FA" in message:
                raise OCTwoFactorRequired(
                    "Open Collective refused: this personal token is not pre-authorised for two-factor "
                    "authentication. Create a new token with “Advanced privileges” and set it as "
                    "OPENCOLLECTIVE_TOKEN.", code=code, error_id=error_id)
            if code in _AUTH_CODES:
                raise OCAuthError(f"Open Collective refused the token: {message}", code=code, error_id=error_id)
            if code in _VALIDATION_CODES or response.status_code == 400:
                raise OCValidationError(f"Open Collective refused {operation}: {message}", code=code,
                                        error_id=error_id)
            raise OpenCollectiveError(f"Open Collective failed {operation}: {message}", code=code, error_id=error_id)
        if response.status_code >= 400:
            raise OpenCollectiveError(f"Open Collective answered {operation} with HTTP {response.status_code}")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise OpenCollectiveError(f"Open Collective answered {operation} without data")
        return data

    # -- reading --------------------------------------------------------------------------------

    def _pages(self, query: str, operation: str, root: str, variables: dict[str, Any],
               page_size: int) -> Iterator[dict[str, Any]]:
        """Offset pagination, oldest first, de-duplicated by id (inserts during a scan shift pages)."""
        seen: set[str] = set()
        offset = 0
        while True:
            data = self.execute(query, {**variables, "limit": page_size, "offset": offset}, operation)[root]
            nodes = data.get("nodes") or []
            for node in nodes:
                if node["id"] not in seen:
                    seen.add(node["id"])
                    yield node
            offset += page_size
            if not nodes or offset >= int(data.get("totalCount") or 0):
                return

    def iter_expenses(self, account_slug: str, *, status: list[str] | None = None,
                      date_from: dt.datetime | None = None, custom_data: dict[str, Any] | None = None,
                      search_term: str | None = None, page_size: int | None = None,
                      skip_unreadable: bool = False) -> Iterator[OCExpense]:
        """The account's expenses, oldest first. ``skip_unreadable``: leave out (and log) expenses whose
        amount fundcircle cannot represent (e.g. a currency it does not support), for listings that
        only look for fundcircle's own expenses among everyone's."""
        variables: dict[str, Any] = {"account": {"slug": account_slug}, "status": status,
                                     "dateFrom": date_from.isoformat() if date_from else None,
                                     "customData": custom_data, "searchTerm": search_term}
        for node in self._pages(Q_EXPENSES, "FcExpenses", "expenses", variables, min(page_size or self.page_size, 1000)):
            try:
                yield OCExpense.from_node(node)
            except (OpenCollectiveError, ValidationError) as exc:
                if not skip_unreadable:
                    raise
                log.warning("skipping Open Collective expense %s: %s", node.get("publicId"), exc.user_message)

    def iter_transactions(self, account_slug: str, *, date_from: dt.datetime | None = None,
                          expense_id: str | None = None, kinds: tuple[str, ...] | None = RECONCILE_KINDS,
                          page_size: int | None = None) -> Iterator[OCTransaction]:
        variables: dict[str, Any] = {"account": [{"slug": account_slug}],
                                     "dateFrom": date_from.isoformat() if date_from else None,
                                     "expense": {"id": expense_id} if expense_id else None,
                                     "kind": list(kinds) if kinds else None}
        # large pages: every request counts against OC's 100 per minute (the server allows 10,000)
        size = min(page_size or max(self.page_size, 5000), 10_000)
        for node in self._pages(Q_TRANSACTIONS, "FcTransactions", "transactions", variables, size):
            yield OCTransaction.from_node(node)

    def get_expense(self, expense_id: str) -> OCExpense | None:
        """One expense by its id or publicId (None when OC does not know it)."""
        node = self.execute(Q_EXPENSE, {"expense": {"id": expense_id}}, "FcExpense")["expense"]
        return OCExpense.from_node(node) if node else None

    def expense_url(self, account_slug: str, legacy_id: int | None, public_id: str) -> str:
        return f"{self.website_url}/{account_slug}/expenses/{legacy_id if legacy_id is not None else public_id}"

    # -- the award's expense: look up, create, invite ---------------------------------------------

    def find_award_expense(self, account_slug: str, award_ref: str, custom_data: dict[str, Any]) -> OCExpense | None:
        """The live expense carrying this award (by ``customData`` containment, then by exact
        ``reference`` through the fuzzy search), or None. Expenses that will never be paid
        (rejected, cancelled, spam, declined invitations) are ignored.

        Raises OCVisibilityError when the token cannot see ``customData``/``reference`` (a non-admin
        token silently gets nulls), OCAmbiguous when two live expenses carry the award.
        """
        found: dict[str, OCExpense] = {}
        # no status argument: a status list would hide on-hold expenses; DRAFT (invitations) apart
        for status in (None, ["DRAFT"]):
            for e in self.iter_expenses(account_slug, status=status, custom_data=custom_data, page_size=10):
                self._check_visible(e)
                found[e.id] = e
        if not found:
            for e in self.iter_expenses(account_slug, search_term=award_ref, page_size=100):
                self._check_visible(e)
                if e.reference == award_ref:  # the search is fuzzy and multi-field
                    found[e.id] = e
        live = [e for e in found.values() if e.status not in CLOSED_STATUSES]
        if len(live) > 1:
            ids = ", ".join(e.public_id for e in live)
            raise OCAmbiguous(f"Open Collective has {len(live)} open expenses for {award_ref} ({ids}); "
                              f"reject the extra ones in Open Collective first")
        return live[0] if live else None

    @staticmethod
    def _check_visible(e: OCExpense) -> None:
        if e.custom_data is None and e.reference is None:
            raise OCVisibilityError(
                "Open Collective hides the expenses' reference and custom data from this token: the token's "
                "user must be an admin of the collective (otherwise fundcircle cannot tell whether an award's "
                "expense already exists)")

    def create_grant_expense(self, grant: GrantRequest, *, max_rounds: int = 3) -> CreateOutcome:
        """Create the award's GRANT expense unless it exists: never twice.

        Looks up first; after a timeout or 5xx on create (``OCUncertain``) looks up again before
        trying again. Raises OCUnavailable when OC stays unreachable, and the auth/validation errors.
        """
        for _round in range(max_rounds):
            existing = self.find_award_expense(grant.account_slug, grant.award_ref, grant.custom_data)
            if existing is not None:
                return CreateOutcome(existing, created=False)
            try:
                return CreateOutcome(self._create(grant), created=True)
            except OCUncertain as exc:
                log.warning("creating the expense for %s may have failed (%s); looking it up", grant.award_ref, exc)
                self._pause(self._backoff(_round))
        existing = self.find_award_expense(grant.account_slug, grant.award_ref, grant.custom_data)
        if existing is not None:
            return CreateOutcome(existing, created=False)
        raise OCUnavailable(f"Open Collective did not confirm the expense for {grant.award_ref}; nothing was "
                            f"created — try again later")

    def _create(self, grant: GrantRequest) -> OCExpense:
        cents = minor_to_oc_cents(grant.amount_minor, grant.currency)
        items = [{"description": grant.description[:255], "amountV2": {"valueInCents": cents, "currency": grant.currency}}]
        if grant.payee_slug:
            expense = {
                "type": "GRANT", "description": grant.description, "currency": grant.currency,
                "reference": grant.award_ref, "tags": list(grant.tags), "payee": {"slug": grant.payee_slug},
                "payoutMethod": {"type": "OTHER", "data": {"content": grant.payout_details or
                                                           "Paid through Open Collective", "currency": grant.currency}},
                "items": items, "customData": grant.custom_data}
            if grant.long_description:
                expense["longDescription"] = grant.long_description
            node = self.execute(M_CREATE_EXPENSE, {"account": {"slug": grant.account_slug}, "expense": expense},
                                "FcCreateGrant", mutation=True)["createExpense"]
        elif grant.invite_email:
            expense = {
                "type": "GRANT", "description": grant.description, "currency": grant.currency,
                "tags": list(grant.tags), "items": items, "customData": grant.custom_data,
                "payee": {"name": grant.invite_name or grant.invite_email, "email": grant.invite_email},
                "recipientNote": "Please add your payout details so the circle can pay this grant."}
            node = self.execute(M_INVITE, {"account": {"slug": grant.account_slug}, "expense": expense},
                                "FcInvitePayee", mutation=True)["draftExpenseAndInviteUser"]
        else:
            raise OCValidationError("the award has no payee: give an Open Collective account or an email to invite")
        return OCExpense.from_node(node)

    # -- lifecycle and webhooks (the treasurer mostly does these in OC itself) -----------------------

    def process_expense(self, expense_id: str, action: str, *, payment_params: dict[str, Any] | None = None,
                        message: str | None = None) -> OCExpense:
        node = self.execute(M_PROCESS, {"expense": {"id": expense_id}, "action": action, "params": payment_params,
                                        "message": message}, "FcProcessExpense", mutation=True)["processExpense"]
        return OCExpense.from_node(node)

    def create_webhook(self, account_slug: str, url: str, activity_type: str = "ACTIVITY_ALL") -> dict[str, Any]:
        data = self.execute(M_CREATE_WEBHOOK, {"webhook": {"account": {"slug": account_slug},
                                                           "activityType": activity_type, "webhookUrl": url}},
                            "FcCreateWebhook", mutation=True)
        return dict(data["createWebhook"] or {})
