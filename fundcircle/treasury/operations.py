"""Every state change of the treasury: payouts through Open Collective, imports, reconciliation
proposals, confirming them into the ledger, corrections.

Operations take the session, the acting user (or None for the system) and ``now``, and an Open
Collective client where they talk to OC; they flush, never commit, and know nothing of HTTP. The
ledger is written only through its public API, under the keys reconciliation computed, so
confirming twice or importing twice never posts twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fundcircle import ledger
from fundcircle.audit.operations import record as audit
from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.errors import NotFound, RuleViolation, ValidationError
from fundcircle.integrations.opencollective import (
    CLOSED_STATUSES,
    CreateOutcome,
    GrantRequest,
    OCAmbiguous,
    OCExpense,
    OCTransaction,
    OpenCollectiveClient,
    OpenCollectiveError,
)
from fundcircle.ledger import accounts as chart
from fundcircle.ledger.money import Money, format_money
from fundcircle.ledger.reconcile.csv_import import parse_transactions_csv
from fundcircle.ledger.reconcile.opencollective import Report, contribution_reference
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.treasury import queries
from fundcircle.treasury.models import (
    ImportedTransaction,
    ImportRun,
    PayoutRecord,
    ProposalKind,
    ProposalStatus,
    ProposedEntry,
    TreasuryAccount,
)
from fundcircle.voting.models import Award

log = logging.getLogger(__name__)

SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def award_ref(circle_id: int, award_id: int) -> str:
    """What goes into the OC expense's ``reference``: deterministic, so a lookup always finds it."""
    return f"fundcircle:award:{circle_id}:{award_id}"


def award_custom_data(award: Award, circle_id: int) -> dict[str, Any]:
    return {"fundcircle_award_id": award.id, "fundcircle_circle_id": circle_id,
            "fundcircle_round_id": award.round_id, "fundcircle_proposal_id": award.proposal_id}


def make_client(config: Mapping[str, Any]) -> OpenCollectiveClient:
    """The OC client the configuration names (the fake's URL in the demo and tests)."""
    return OpenCollectiveClient(
        config.get("OPENCOLLECTIVE_API_URL") or "https://api.opencollective.com/graphql/v2",
        config.get("OPENCOLLECTIVE_TOKEN") or "",
        website_url=config.get("OPENCOLLECTIVE_WEBSITE_URL") or "https://opencollective.com",
        timeout_s=float(config.get("OPENCOLLECTIVE_TIMEOUT_S") or 15),
        max_attempts=int(config.get("OPENCOLLECTIVE_MAX_ATTEMPTS") or 4),
        backoff_s=float(config.get("OPENCOLLECTIVE_BACKOFF_S") or 0.5))


# -- the circle's collective -------------------------------------------------------------------

def set_oc_account(session: Session, circle: Circle, *, actor: User | None, slug: str, now: dt.datetime
                   ) -> TreasuryAccount:
    """Name the Open Collective collective that holds the circle's money. Raises ValidationError."""
    slug = slug.strip().lower()
    if not slug or len(slug) > 100 or set(slug) - SLUG_CHARS:
        raise ValidationError("an Open Collective handle has lowercase letters, digits and dashes",
                              field_errors={"oc_account_slug": ["lowercase letters, digits and dashes only"]})
    # one OC token may administer several collectives: a circle must not pay from, or read, another's
    if session.scalar(sa.select(TreasuryAccount.circle_id).where(TreasuryAccount.oc_account_slug == slug,
                                                                 TreasuryAccount.circle_id != circle.id)):
        raise ValidationError(f"opencollective.com/{slug} already holds another circle's money",
                              field_errors={"oc_account_slug": ["another circle uses this collective"]})
    account = session.get(TreasuryAccount, circle.id)
    before = account.oc_account_slug if account else ""
    try:
        with session.begin_nested():  # the unique index decides a race between two circles' treasurers
            if account is None:
                account = TreasuryAccount(circle_id=circle.id, oc_account_slug=slug, updated_at=now,
                                          updated_by_id=actor.id if actor else None)
                session.add(account)
            else:
                account.oc_account_slug, account.updated_at = slug, now
                account.updated_by_id = actor.id if actor else None
            session.flush()
    except IntegrityError:
        raise ValidationError(f"opencollective.com/{slug} already holds another circle's money",
                              field_errors={"oc_account_slug": ["another circle uses this collective"]}) from None
    audit(session, actor=actor, action="treasury.oc_account.set", circle_id=circle.id,
          details={"from": before, "to": slug})
    session.flush()
    return account


def _require_account(session: Session, circle: Circle) -> TreasuryAccount:
    account = session.get(TreasuryAccount, circle.id)
    if account is None:
        raise ValidationError(f"{circle.name} has no Open Collective collective yet: set its handle first")
    return account


# -- payouts -----------------------------------------------------------------------------------

def _apply_expense(payout: PayoutRecord, expense: OCExpense, client: OpenCollectiveClient, now: dt.datetime) -> None:
    payout.oc_expense_id, payout.oc_public_id, payout.oc_legacy_id = expense.id, expense.public_id, expense.legacy_id
    payout.oc_status, payout.oc_on_hold = expense.status, expense.on_hold
    payout.oc_amount_minor, payout.oc_currency = expense.amount_minor, expense.currency
    payout.oc_payee_slug = expense.payee_slug
    payout.oc_url = client.expense_url(expense.account_slug or payout.oc_account_slug, expense.legacy_id,
                                       expense.public_id)
    payout.oc_created_at = payout.oc_created_at or expense.created_at
    payout.oc_paid_at = expense.paid_at
    payout.checked_at, payout.last_error = now, ""


#: how long a claim on a payout row keeps other requests out: far longer than the client can spend
#: on one create (4 attempts of 15 s, backoff and lookups); an older claim is a crash's leftover
CLAIM_TTL = dt.timedelta(minutes=5)


def _has_live_expense(payout: PayoutRecord) -> bool:
    return bool(payout.oc_public_id) and payout.oc_status not in CLOSED_STATUSES


@dataclass(frozen=True)
class PayoutClaim:
    """What step 1 hands to steps 2 and 3: plain values, so calling OC needs no session."""

    payout_id: int
    token: str
    circle_id: int
    award_id: int
    grant: GrantRequest


def create_payout(session: Session, circle: Circle, award: Award, *, actor: User | None,
                  client: OpenCollectiveClient, now: dt.datetime) -> PayoutRecord:
    """Create the award's GRANT expense in Open Collective (or invite the payee by email to submit
    payout details), never twice: :func:`claim_payout`, :func:`send_payout` and
    :func:`record_payout` (or :func:`record_payout_failure`) in the caller's transaction.

    For callers that own their transaction (the demo, tests). The web view runs the steps itself and
    commits after the claim, so no database lock is held while OC answers. Raises what the steps
    raise; on an OpenCollectiveError the payout row keeps ``last_error``. Flushes.
    """
    claim = claim_payout(session, circle, award, actor=actor, now=now)
    try:
        outcome = send_payout(client, claim)
    except OpenCollectiveError as exc:
        record_payout_failure(session, claim, exc, actor=actor, now=now)
        raise
    return record_payout(session, claim, outcome, actor=actor, client=client, now=now)


def claim_payout(session: Session, circle: Circle, award: Award, *, actor: User | None,
                 now: dt.datetime) -> PayoutClaim:
    """Step 1, local row first: insert or lock the award's payout row and claim it.

    Raises ValidationError (no collective, not earmarked, no payee), RuleViolation (a live expense
    exists already, or another request holds a fresh claim). Flushes, never commits: the web view
    commits the claim before calling OC.
    """
    account = _require_account(session, circle)
    if award.earmarked_at is None:
        raise ValidationError("this award is not earmarked in the ledger yet: fund the pot and earmark it first")
    proposal = session.get(Proposal, award.proposal_id)
    if proposal is None:  # pragma: no cover - foreign key
        raise NotFound("the award's proposal does not exist")
    payee_slug = proposal.payee_oc_slug if proposal.payee_kind == "opencollective" and proposal.payee_oc_slug else None
    invite = proposal.payee_email if proposal.payee_kind == "email" and proposal.payee_email else None
    if payee_slug is None and invite is None:
        raise ValidationError(f"“{proposal.title}” names no payee: add an Open Collective handle or an email")
    busy = (f"A payout for “{proposal.title}” is being created by someone else right now; "
            f"reload the page to see it.")
    payout = session.scalar(sa.select(PayoutRecord).where(PayoutRecord.award_id == award.id).with_for_update())
    if payout is not None and _has_live_expense(payout):
        raise RuleViolation(f"“{proposal.title}” already has an Open Collective expense ({payout.oc_public_id})")
    if payout is not None and payout.claimed_at is not None and now - payout.claimed_at < CLAIM_TTL:
        raise RuleViolation(busy)  # another request is asking OC now (OC has no idempotency keys)
    if payout is None:
        payout = PayoutRecord(circle_id=circle.id, award_id=award.id, award_ref=award_ref(circle.id, award.id),
                              oc_account_slug=account.oc_account_slug, requested_at=now,
                              requested_by_id=actor.id if actor else None)
        try:
            with session.begin_nested():
                session.add(payout)
                session.flush()  # the local intent (on PostgreSQL: the unique award row) before calling OC
        except IntegrityError:
            # another request inserted the award's row first (and claimed it)
            raise RuleViolation(busy) from None
    # a stale claim is taken over: its request died between the steps, and the client's lookup
    # finds any expense it created
    token = secrets.token_hex(16)
    payout.claimed_at, payout.claim_token = now, token
    session.flush()
    grant = GrantRequest(
        account_slug=account.oc_account_slug, award_ref=payout.award_ref,
        custom_data=award_custom_data(award, circle.id),
        description=f"Grant: {proposal.title}"[:255], amount_minor=award.amount_minor, currency=award.currency,
        payee_slug=payee_slug, invite_email=invite, invite_name=proposal.title,
        long_description=f"Awarded by {circle.name} in round #{award.round_id} (fundcircle award {award.id}).")
    return PayoutClaim(payout_id=payout.id, token=token, circle_id=circle.id, award_id=award.id,
                       grant=grant)


def send_payout(client: OpenCollectiveClient, claim: PayoutClaim) -> CreateOutcome:
    """Step 2, no database: ask OC for the award's expense. The client looks the award up before
    creating and again after any timeout or 5xx, so a retry never creates a second one. Raises
    OpenCollectiveError subclasses."""
    return client.create_grant_expense(claim.grant)


def _claimed_row(session: Session, claim: PayoutClaim) -> tuple[PayoutRecord, bool]:
    """The payout row, locked, and whether the claim on it is still ``claim``'s (a request that
    outlived CLAIM_TTL may have been taken over)."""
    payout = session.scalar(sa.select(PayoutRecord).where(PayoutRecord.id == claim.payout_id).with_for_update())
    if payout is None:  # pragma: no cover - payout rows are never deleted
        raise NotFound("the award's payout record does not exist")
    ours = payout.claim_token == claim.token
    if ours:
        payout.claimed_at, payout.claim_token = None, None
    return payout, ours


def record_payout(session: Session, claim: PayoutClaim, outcome: CreateOutcome, *, actor: User | None,
                  client: OpenCollectiveClient, now: dt.datetime) -> PayoutRecord:
    """Step 3: store OC's expense on the payout row, release the claim, audit.

    Raises OCAmbiguous when, after a takeover, the row already records another live expense (OC
    then holds two for this award: a person has to decide). Flushes, never commits.
    """
    payout, ours = _claimed_row(session, claim)
    expense = outcome.expense
    if not ours and _has_live_expense(payout) and payout.oc_public_id != expense.public_id:
        payout.last_error = (f"Open Collective holds two expenses for this award ({payout.oc_public_id} and "
                             f"{expense.public_id}): cancel one of them in Open Collective.")
        payout.checked_at = now
        audit(session, actor=actor, action="treasury.payout.failed", circle_id=claim.circle_id, obj=payout,
              details={"award_id": claim.award_id, "error": payout.last_error, "code": "AMBIGUOUS"})
        session.flush()
        raise OCAmbiguous(payout.last_error)
    _apply_expense(payout, expense, client, now)
    payout.invited_email = claim.grant.invite_email or ""
    payout.requested_at, payout.requested_by_id = now, actor.id if actor else None
    audit(session, actor=actor, action="treasury.payout.create", circle_id=claim.circle_id, obj=payout,
          details={"award_id": claim.award_id, "oc_expense": expense.public_id, "created": outcome.created,
                   "amount_minor": claim.grant.amount_minor, "currency": claim.grant.currency,
                   "invited": bool(claim.grant.invite_email)})
    session.flush()
    return payout


def record_payout_failure(session: Session, claim: PayoutClaim, error: OpenCollectiveError, *,
                          actor: User | None, now: dt.datetime) -> PayoutRecord:
    """Step 3 when OC failed: keep the failure on the payout row (unless another request has taken
    the row over meanwhile), release the claim, audit. Flushes, never commits."""
    payout, ours = _claimed_row(session, claim)
    if ours:
        payout.last_error, payout.checked_at = error.user_message, now
    audit(session, actor=actor, action="treasury.payout.failed", circle_id=claim.circle_id, obj=payout,
          details={"award_id": claim.award_id, "error": error.user_message, "code": error.code})
    session.flush()
    return payout


# -- imports -----------------------------------------------------------------------------------

@dataclass
class ImportResult:
    run: ImportRun
    report: Report
    rows_new: int
    proposals_new: int


def _store_transactions(session: Session, circle_id: int, run: ImportRun, txs: Iterable[OCTransaction]
                        ) -> tuple[int, list[OCTransaction] | None]:
    """Insert the rows not stored yet (keyed by circle and ref); set the refund flag of known ones
    (mark-as-unpaid flips it on the original rows). Returns how many rows were new, and the
    circle's complete set of rows when this import covered every stored row (the usual full
    export; it spares reading them all back), else None.

    The insert runs on the session's own DBAPI cursor with the columns' bind processors: the same
    stored values as an ORM insert, without SQLAlchemy's per-row parameter handling (most of the
    cost at 100,000 rows; bench/reconcile.py).
    """
    table = ImportedTransaction.__table__
    incoming: dict[str, OCTransaction] = {}
    for t in txs:
        incoming.setdefault(t.ref, t)
    stored_before = session.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.circle_id == circle_id))
    if not incoming:
        return 0, ([] if not stored_before else None)
    known: dict[str, tuple[int, bool]] = {}
    if stored_before:
        refs = list(incoming)
        for start in range(0, len(refs), 5000):
            for row in session.execute(sa.select(table.c.ref, table.c.id, table.c.is_refunded).where(
                    table.c.circle_id == circle_id, table.c.ref.in_(refs[start:start + 5000]))):
                known[row[0]] = (row[1], bool(row[2]))
    conn = session.connection()
    # the dialect's own processor after UTCDateTime's (stored text identical to an ORM insert)
    bind_ts = table.c.occurred_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) or (lambda v: v)
    columns = ("circle_id", "ref", "oc_id", "public_id", "legacy_id", "group_id", "type", "kind", "is_refund",
               "is_refunded", "amount_minor", "currency", "account_slug", "opposite_slug", "expense_oc_id",
               "expense_public_id", "expense_legacy_id", "description", "occurred_at", "first_import_id")
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})")
    stamps: dict[dt.datetime | None, Any] = {}  # rows of one group share a timestamp: convert it once

    def stamp(value: dt.datetime | None) -> Any:
        found = stamps.get(value, stamps)
        if found is stamps:
            found = stamps[value] = bind_ts(value)
        return found

    rows = [(circle_id, ref, t.id, t.public_id, t.legacy_id, t.group, t.type, t.kind, t.is_refund, t.is_refunded,
             t.amount_minor, t.currency, t.account_slug, t.opposite_slug, t.expense_id, t.expense_public_id,
             t.expense_legacy_id, t.description, stamp(t.created_at), run.id)
            for ref, t in incoming.items() if ref not in known]
    if rows:
        cursor = conn.connection.cursor()
        try:
            for start in range(0, len(rows), 10_000):
                cursor.executemany(sql, rows[start:start + 10_000])
        finally:
            cursor.close()
    flipped = [known[ref][0] for ref, t in incoming.items() if ref in known and t.is_refunded and not known[ref][1]]
    if flipped:
        for start in range(0, len(flipped), 5000):
            session.execute(sa.update(table).where(table.c.id.in_(flipped[start:start + 5000])).values(is_refunded=True))
    if stored_before != len(known):
        return len(rows), None
    # every stored row came again: the complete set is what arrived (refund flags never go back)
    complete = [dataclasses.replace(t, is_refunded=True) if not t.is_refunded and known.get(ref, (0, False))[1] else t
                for ref, t in incoming.items()]
    return len(rows), complete


def _sync_proposals(session: Session, circle_id: int, report: Report, run: ImportRun | None, now: dt.datetime,
                    *, award_ids: set[int] | None = None) -> int:
    """Make the open proposals equal to what the report proposes (within ``award_ids`` when given):
    keep identical ones, supersede changed or resolved ones, add new ones. Returns how many were added."""
    wanted = {p.ledger_key: p for p in report.proposals if award_ids is None or p.award_id in award_ids}
    open_rows = {e.ledger_key: e for e in queries.open_proposals(session, circle_id)
                 if award_ids is None or e.award_id in award_ids}
    added = 0
    for key, row in open_rows.items():
        p = wanted.get(key)
        if p is None or (p.kind.value, p.amount_minor, p.fee_minor, p.currency) != (
                row.kind, row.amount_minor, row.fee_minor, row.currency):
            row.status, row.decided_at = ProposalStatus.SUPERSEDED.value, now
    session.flush()
    for key, p in wanted.items():
        row = open_rows.get(key)
        if row is not None and row.status == ProposalStatus.OPEN.value:
            continue
        session.add(ProposedEntry(circle_id=circle_id, kind=p.kind.value, ledger_key=key, award_id=p.award_id,
                                  oc_ref=p.oc_ref, amount_minor=p.amount_minor, fee_minor=p.fee_minor,
                                  currency=p.currency, reason=p.reason, details=p.details, created_at=now,
                                  import_id=run.id if run else None, status=ProposalStatus.OPEN.value))
        added += 1
    session.flush()
    return added


def _finish_import(session: Session, circle: Circle, run: ImportRun, txs: list[OCTransaction], *,
                   actor: User | None, now: dt.datetime) -> ImportResult:
    run.rows_seen = len(txs)
    run.rows_new, complete = _store_transactions(session, circle.id, run, txs)
    session.flush()
    report = queries.current_report(session, circle.id, transactions=complete)
    run.proposals_new = _sync_proposals(session, circle.id, report, run, now)
    run.summary = {**(run.summary or {}), "counts": report.counts(), "proposals_open": len(report.proposals)}
    audit(session, actor=actor, action=f"treasury.import.{run.source}", circle_id=circle.id, obj=run,
          details={"rows_seen": run.rows_seen, "rows_new": run.rows_new, "proposals_new": run.proposals_new,
                   "filename": run.filename, "header_style": run.header_style})
    session.flush()
    return ImportResult(run, report, run.rows_new, run.proposals_new)


def _refresh_payouts(session: Session, circle: Circle, client: OpenCollectiveClient, now: dt.datetime,
                     account_slug: str) -> None:
    """Re-read the status of every expense fundcircle created (one paginated listing, indexed by id)."""
    payouts = [p for p in queries.payouts_of_circle(session, circle.id).values() if p.oc_public_id]
    if not payouts:
        return
    by_id = {p.oc_expense_id: p for p in payouts}
    seen: set[str] = set()
    for status in (None, ["DRAFT"]):
        for expense in client.iter_expenses(account_slug, status=status, skip_unreadable=True):
            payout = by_id.get(expense.id)
            if payout is not None:
                _apply_expense(payout, expense, client, now)
                seen.add(expense.id)
    for payout in payouts:
        if payout.oc_expense_id not in seen:  # e.g. spam, or on a page the listing hides: ask directly
            expense = client.get_expense(payout.oc_expense_id or payout.oc_public_id or "")
            if expense is None:
                payout.oc_status, payout.checked_at = "", now
                payout.last_error = "Open Collective no longer knows this expense"
            else:
                _apply_expense(payout, expense, client, now)


#: how far before the newest row of the last API import a later import starts reading again
API_IMPORT_OVERLAP = dt.timedelta(days=2)


def _api_window_start(session: Session, circle_id: int) -> dt.datetime | None:
    """Where an incremental API import starts: the newest ``createdAt`` (OC's clock, never ours)
    among rows that full API imports stored, minus an overlap; None = read everything."""
    t, r = ImportedTransaction.__table__, ImportRun.__table__
    newest = session.scalar(sa.select(sa.func.max(t.c.occurred_at)).select_from(
        t.join(r, r.c.id == t.c.first_import_id)).where(t.c.circle_id == circle_id, r.c.source == "api"))
    if newest is None:
        return None
    if newest.tzinfo is None:  # SQLite through a plain aggregate: the stored value is UTC
        newest = newest.replace(tzinfo=dt.timezone.utc)
    return newest - API_IMPORT_OVERLAP


def import_from_api(session: Session, circle: Circle, *, actor: User | None, client: OpenCollectiveClient,
                    now: dt.datetime, full: bool = False) -> ImportResult:
    """Fetch the collective's expenses (statuses) and transactions from the API, store the new
    rows, reconcile and refresh the open proposals. Raises OpenCollectiveError, ValidationError.

    Transactions are read from shortly before the newest one an earlier API import stored (OC
    appends rows; a mark-as-unpaid writes new ones), so a busy collective costs a few requests of
    OC's 100-per-minute budget; ``full`` reads the whole history again.
    """
    account = _require_account(session, circle)
    _refresh_payouts(session, circle, client, now, account.oc_account_slug)
    since = None if full else _api_window_start(session, circle.id)
    txs = list(client.iter_transactions(account.oc_account_slug, date_from=since))
    run = ImportRun(circle_id=circle.id, source="api", actor_id=actor.id if actor else None, created_at=now,
                    summary={"since": since.isoformat() if since else None})
    session.add(run)
    session.flush()
    return _finish_import(session, circle, run, txs, actor=actor, now=now)


def import_from_csv(session: Session, circle: Circle, *, actor: User | None, data: str | bytes, filename: str,
                    now: dt.datetime) -> ImportResult:
    """Import an OC transactions CSV export (either header style). Raises CsvFormatError naming the
    line and column; nothing is stored then."""
    account = _require_account(session, circle)
    parsed = parse_transactions_csv(data, account_slug=account.oc_account_slug)
    run = ImportRun(circle_id=circle.id, source="csv", filename=filename[:255], header_style=parsed.header_style,
                    actor_id=actor.id if actor else None, created_at=now, summary={})
    session.add(run)
    session.flush()
    return _finish_import(session, circle, run, parsed.rows, actor=actor, now=now)


def recheck_award(session: Session, circle: Circle, award: Award, *, actor: User | None,
                  client: OpenCollectiveClient, now: dt.datetime, source: str = "recheck") -> ImportResult:
    """Re-fetch one award's expense and its transactions from OC and reconcile that award again."""
    account = _require_account(session, circle)
    payout = session.scalar(sa.select(PayoutRecord).where(PayoutRecord.award_id == award.id))
    if payout is None or not payout.oc_public_id:
        raise ValidationError("this award has no Open Collective expense to check yet")
    try:
        expense = client.get_expense(payout.oc_expense_id or payout.oc_public_id)
        txs = list(client.iter_transactions(account.oc_account_slug, expense_id=payout.oc_expense_id, kinds=None))
    except OpenCollectiveError as exc:
        payout.last_error, payout.checked_at = exc.user_message, now
        session.flush()
        raise
    if expense is None:
        payout.last_error, payout.checked_at = "Open Collective no longer knows this expense", now
    else:
        _apply_expense(payout, expense, client, now)
    run = ImportRun(circle_id=circle.id, source=source, actor_id=actor.id if actor else None, created_at=now,
                    summary={"award_id": award.id})
    session.add(run)
    session.flush()
    run.rows_seen = len(txs)
    run.rows_new, _complete = _store_transactions(session, circle.id, run, txs)
    session.flush()
    report = queries.current_report(session, circle.id)
    run.proposals_new = _sync_proposals(session, circle.id, report, run, now, award_ids={award.id})
    audit(session, actor=actor, action=f"treasury.{source}", circle_id=circle.id, obj=payout,
          details={"award_id": award.id, "oc_status": payout.oc_status, "rows_new": run.rows_new})
    session.flush()
    return ImportResult(run, report, run.rows_new, run.proposals_new)


def webhook_hint(session: Session, *, payload: Mapping[str, Any], client: OpenCollectiveClient,
                 now: dt.datetime) -> PayoutRecord | None:
    """An OC webhook named an expense: re-fetch it through the API (never trust the payload's
    amounts or status) when it is one of ours. Returns the payout re-checked, or None."""
    expense = (payload.get("data") or {}).get("expense") if isinstance(payload.get("data"), Mapping) else None
    if not isinstance(expense, Mapping):
        return None
    conditions = []
    # a NUL is no OC id, and PostgreSQL's driver refuses it in a string (a 500)
    if isinstance(expense.get("idV2"), str) and "\x00" not in expense["idV2"]:
        conditions.append(PayoutRecord.oc_expense_id == expense["idV2"])
    if isinstance(expense.get("publicId"), str) and "\x00" not in expense["publicId"]:
        conditions.append(PayoutRecord.oc_public_id == expense["publicId"])
    # a legacy id beyond BIGINT would fail in the database (a 500), and names no expense of ours
    if isinstance(expense.get("id"), int) and not isinstance(expense.get("id"), bool) and 0 < expense["id"] < 2**63:
        conditions.append(PayoutRecord.oc_legacy_id == expense["id"])
    if not conditions:
        return None
    payout = session.scalar(sa.select(PayoutRecord).where(sa.or_(*conditions)).limit(1))
    if payout is None:
        return None
    circle = session.get(Circle, payout.circle_id)
    award = session.get(Award, payout.award_id)
    assert circle is not None and award is not None
    recheck_award(session, circle, award, actor=None, client=client, now=now, source="webhook")
    return payout


# -- confirming proposals ----------------------------------------------------------------------

def _round_and_proposal(session: Session, award: Award) -> tuple[Round, Proposal]:
    round_ = session.get(Round, award.round_id)
    proposal = session.get(Proposal, award.proposal_id)
    assert round_ is not None and proposal is not None
    return round_, proposal


def _earmark_minor(session: Session, circle_id: int, award: Award) -> int:
    try:
        return ledger.balance(session, chart.earmark(circle_id, award.round_id, award.proposal_id).key).amount_minor
    except NotFound:
        return 0


def _post_payout(session: Session, circle: Circle, entry: ProposedEntry, *, actor: User | None,
                 now: dt.datetime) -> ledger.Posted:
    award = entry.award
    if award is None:  # pragma: no cover - constraint of the proposal kind
        raise ValidationError("a payout proposal needs its award")
    round_, proposal = _round_and_proposal(session, award)
    attempt = int((entry.details or {}).get("attempt") or 1)
    amount, fee, cur = entry.amount_minor, entry.fee_minor, entry.currency
    from_mark = min(amount, max(_earmark_minor(session, circle.id, award), 0))
    from_pot = amount - from_mark
    actor_id = actor.id if actor else None
    if attempt == 1 and from_pot == 0:
        return ledger.record_payout(session, round_, proposal, expense_id=entry.oc_ref, amount_minor=amount,
                                    fee_minor=fee, now=now, actor_id=actor_id)
    # paid more than the earmark holds (the rest from the pot), or a payout after a reversed one
    ledger.ensure_circle_accounts(session, circle, now=now)
    legs = [ledger.Leg(chart.oc_host(circle.id).key, Money(-(amount + fee), cur))]
    if from_mark:
        legs.append(ledger.Leg(chart.earmark(circle.id, round_.id, proposal.id).key, Money(from_mark, cur)))
    if from_pot:
        legs.append(ledger.Leg(chart.pot_available(circle.id).key, Money(from_pot, cur)))
    if fee:
        legs.append(ledger.Leg(chart.fees_oc(circle.id).key, Money(fee, cur)))
    external = f"expense:{entry.oc_ref}" if attempt == 1 else f"expense:{entry.oc_ref}:{attempt}"
    return ledger.post(session, circle_id=circle.id, kind="payout", idempotency_key=entry.ledger_key, legs=legs,
                       now=now, actor_id=actor_id, external_source="opencollective", external_id=external,
                       memo=f"payout of proposal #{proposal.id} (OC expense {entry.oc_ref})"
                            + (f", {format_money(from_pot, cur)} beyond the award from the pot" if from_pot else ""))


def confirm_proposal(session: Session, circle: Circle, entry: ProposedEntry, *, actor: User | None,
                     now: dt.datetime, note: str = "") -> ledger.Posted:
    """Post the proposed entry under its key (a replay if it was posted already) and mark it
    confirmed; alternatives for the same OC money are superseded. Raises RuleViolation (not open,
    or the ledger refuses, e.g. InsufficientFunds), IdempotencyConflict. Flushes."""
    if entry.circle_id != circle.id:
        raise NotFound("no such proposal")
    if entry.status != ProposalStatus.OPEN.value:
        raise RuleViolation(f"this proposal is {entry.status}, not open")
    kind = ProposalKind(entry.kind)
    actor_id = actor.id if actor else None
    cur = entry.currency
    if kind is ProposalKind.RECORD_PAYOUT:
        posted = _post_payout(session, circle, entry, actor=actor, now=now)
    elif kind is ProposalKind.RELEASE_REMAINDER:
        award = entry.award
        assert award is not None
        legs = [ledger.Leg(chart.earmark(circle.id, award.round_id, award.proposal_id).key, Money(entry.amount_minor, cur)),
                ledger.Leg(chart.pot_available(circle.id).key, Money(-entry.amount_minor, cur))]
        posted = ledger.post(session, circle_id=circle.id, kind="adjustment", idempotency_key=entry.ledger_key,
                             legs=legs, now=now, actor_id=actor_id,
                             memo=f"remainder of the award to proposal #{award.proposal_id} back to the pot")
    elif kind is ProposalKind.REVERSE_PAYOUT:
        tx_id = int((entry.details or {})["transaction_id"])
        posted = ledger.reverse(session, tx_id, now=now, actor_id=actor_id,
                                memo=f"correction: {note or entry.reason}"[:500])
    elif kind is ProposalKind.HOLD_IN_SUSPENSE:
        ledger.ensure_circle_accounts(session, circle, now=now)
        legs = [ledger.Leg(chart.oc_host(circle.id).key, Money(entry.amount_minor, cur)),
                ledger.Leg(chart.suspense(circle.id).key, Money(-entry.amount_minor, cur))]
        posted = ledger.post(session, circle_id=circle.id, kind="adjustment", idempotency_key=entry.ledger_key,
                             legs=legs, now=now, actor_id=actor_id, external_source="opencollective",
                             external_id=f"transaction:{entry.oc_ref}",
                             memo=f"unexplained Open Collective money held in suspense ({entry.oc_ref})")
    else:
        posted = ledger.record_contribution(session, circle, gross_minor=entry.amount_minor, fee_minor=entry.fee_minor,
                                            manual_reference=contribution_reference(entry.oc_ref), now=now,
                                            actor_id=actor_id, memo=f"Open Collective contribution {entry.oc_ref}")
    entry.status, entry.decided_at, entry.decided_by_id = ProposalStatus.CONFIRMED.value, now, actor_id
    entry.decision_note, entry.ledger_transaction_id = note[:2000], posted.transaction_id
    if kind in (ProposalKind.HOLD_IN_SUSPENSE, ProposalKind.RECORD_CONTRIBUTION):
        for other in queries.open_proposals(session, circle.id):
            if other.id != entry.id and other.oc_ref == entry.oc_ref and other.kind in (
                    ProposalKind.HOLD_IN_SUSPENSE.value, ProposalKind.RECORD_CONTRIBUTION.value):
                other.status, other.decided_at = ProposalStatus.SUPERSEDED.value, now
    audit(session, actor=actor, action="treasury.proposal.confirm", circle_id=circle.id, obj=entry,
          details={"kind": entry.kind, "ledger_key": entry.ledger_key, "amount_minor": entry.amount_minor,
                   "fee_minor": entry.fee_minor, "currency": cur, "ledger_transaction_id": posted.transaction_id,
                   "replayed": posted.replayed, "note": note})
    session.flush()
    return posted


def dismiss_proposal(session: Session, circle: Circle, entry: ProposedEntry, *, actor: User | None,
                     now: dt.datetime, note: str) -> ProposedEntry:
    """Decide not to post a proposal (with a reason); the same proposal is not made again."""
    if entry.circle_id != circle.id:
        raise NotFound("no such proposal")
    if entry.status != ProposalStatus.OPEN.value:
        raise RuleViolation(f"this proposal is {entry.status}, not open")
    if not note.strip():
        raise ValidationError("say why the proposal is dismissed", field_errors={"note": ["a reason is required"]})
    entry.status, entry.decided_at = ProposalStatus.DISMISSED.value, now
    entry.decided_by_id, entry.decision_note = (actor.id if actor else None), note.strip()[:2000]
    audit(session, actor=actor, action="treasury.proposal.dismiss", circle_id=circle.id, obj=entry,
          details={"kind": entry.kind, "ledger_key": entry.ledger_key, "note": entry.decision_note})
    session.flush()
    return entry


def confirm_all(session: Session, circle: Circle, *, actor: User | None, now: dt.datetime) -> list[ledger.Posted]:
    """Confirm every open proposal, corrections (reversals) first so earmarks are free again, and
    suspense after contributions were offered. Used by ``fundcircle reconcile --confirm``."""
    order = {ProposalKind.REVERSE_PAYOUT.value: 0, ProposalKind.RECORD_PAYOUT.value: 1,
             ProposalKind.RELEASE_REMAINDER.value: 2, ProposalKind.RECORD_CONTRIBUTION.value: 3,
             ProposalKind.HOLD_IN_SUSPENSE.value: 4}
    posted = []
    for entry in sorted(queries.open_proposals(session, circle.id), key=lambda e: (order[e.kind], e.id)):
        if entry.status == ProposalStatus.OPEN.value:  # an earlier confirm may have superseded it
            posted.append(confirm_proposal(session, circle, entry, actor=actor, now=now))
    return posted


def post_correction(session: Session, circle: Circle, *, actor: User | None, transaction_id: int, reason: str,
                    now: dt.datetime) -> ledger.Posted:
    """Reverse one of the circle's ledger payouts (a correction is a reversal, never an edit), with
    the treasurer's reason. Raises ValidationError (no reason), NotFound (not a payout of this circle)."""
    reason = reason.strip()
    if len(reason) < 5:
        raise ValidationError("give the reason for the correction", field_errors={"reason": ["at least 5 characters"]})
    payouts = {lp.transaction_id: lp for lp in queries.ledger_payout_transactions(session, circle.id)}
    if transaction_id not in payouts:
        raise NotFound("that is not an unreversed payout of this circle")
    posted = ledger.reverse(session, transaction_id, now=now, actor_id=actor.id if actor else None,
                            memo=f"correction: {reason}"[:500])
    audit(session, actor=actor, action="treasury.correction", circle_id=circle.id,
          details={"reversed_transaction_id": transaction_id, "ledger_key": payouts[transaction_id].key,
                   "reversal_transaction_id": posted.transaction_id, "reason": reason})
    session.flush()
    return posted
