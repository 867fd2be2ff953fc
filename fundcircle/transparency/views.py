"""Public transparency pages (no login): a round's results and a circle's ledger.

Thin handlers: load (404 for what the visitor may not see), answer 304 when the visitor's copy is
current (validators come from the data, before any rendering), validate the query string, read,
render. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from flask import render_template, request
from werkzeug.datastructures import MultiDict

from fundcircle.auth.permissions import current_user
from fundcircle.db import utcnow
from fundcircle.errors import NotFound
from fundcircle.extensions import db
from fundcircle.ledger.models import TRANSACTION_KINDS
from fundcircle.rounds.models import Phase
from fundcircle.transparency import caching, charts, queries

#: ledger rows per page unless ?per_page= says otherwise (within PER_PAGE_RANGE)
DEFAULT_PER_PAGE = 25
PER_PAGE_RANGE = (5, 100)


def public_page(kind: str, slug: str, round_id: int | None, extra: list[Any],
            render: Callable[[], tuple[str, int]]):  # type: ignore[no-untyped-def]
    """Anonymous visitors: validators, 304 and shared renders (see caching.public_page); signed-in
    visitors: a private render. ``render`` does the loading (and its 404s) itself."""
    if not caching.is_anonymous():
        return caching.private_page(*render())
    state = caching.state_memo().get_or_load(
        (slug, round_id), lambda: queries.public_state(db.session, slug, utcnow(), round_id))
    if state is None:
        raise NotFound("There is no such round in this circle." if round_id is not None else "There is no circle here.")
    return caching.public_page(kind, [*extra, *state.parts], state.stamps, render)


def results(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    return public_page("results", slug, round_id, [round_id], lambda: _render_results(slug, round_id))


def _render_results(slug: str, round_id: int) -> tuple[str, int]:
    circle = queries.circle_or_404(db.session, slug)
    round_ = queries.round_or_404(db.session, circle, round_id, current_user())
    now = utcnow()
    view = queries.results_view(db.session, round_)
    chart = None
    awards: list[queries.AwardStatus] = []
    if view is not None:
        chart = charts.bar_chart(
            [charts.Bar(p.title, p.score if p.score is not None and p.score > 0 else 0,
                        queries.format_score(p.score), p.explanation.is_funded)
             for p in view.proposals if p.is_on_ballot],
            chart_id="scores-chart", title=f"{view.score_label} per proposal",
            description=(f"Bar chart of each proposal's {view.score_label.lower()} under the rule "
                         f"“{view.rule_name}”; funded proposals are drawn solid, the others hatched. "
                         f"The same figures are in the table below."))
        awards = queries.award_statuses(db.session, circle.id, round_.id)
    html = render_template(
        "transparency/results.html", circle=circle, round=round_, view=view, chart=chart, now=now,
        phase=round_.phase_at(now), Phase=Phase, awards={a.proposal_id: a for a in awards},
        format_score=queries.format_score, params_text=_params_text(view.params if view else {}))
    return html, 200


def _params_text(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(name, "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value))
            for name, value in sorted(params.items())]


def ledger(slug: str):  # type: ignore[no-untyped-def]
    return public_page("ledger", slug, None, [], lambda: _render_ledger(slug))


def _render_ledger(slug: str) -> tuple[str, int]:
    from fundcircle import ledger as ledger_api

    circle = queries.circle_or_404(db.session, slug)
    now = utcnow()
    public_rounds = queries.published_rounds(db.session, circle.id)
    filters, page, per_page, errors = parse_ledger_args(request.args, {r.id for r in public_rounds})
    context: dict[str, Any] = {"circle": circle, "rounds": public_rounds, "kinds": TRANSACTION_KINDS,
                               "kind_labels": queries.KIND_LABELS, "filters": filters, "errors": errors,
                               "per_page": per_page, "now": now, "head": ledger_api.head(db.session),
                               "balances": ledger_api.circle_balances(db.session, circle.id, circle.currency)}
    if errors:
        return render_template("transparency/ledger.html", page=None, notices=[], awards=[], **context), 400
    notices = []
    result = queries.ledger_page(db.session, circle, filters, page, per_page)
    if page > result.pages:
        notices.append(f"There is no page {page}; showing the last page, {result.pages}.")
        page = result.pages
        result = queries.ledger_page(db.session, circle, filters, page, per_page)
    context["awards"] = queries.award_statuses(db.session, circle.id)
    context["round_titles"] = {r.id: r.title for r in public_rounds}
    html = render_template("transparency/ledger.html", page=result, notices=notices,
                           page_args=_page_args(filters, per_page), **context)
    return html, 200


def parse_ledger_args(args: MultiDict[str, str], round_ids: set[int]
                      ) -> tuple[queries.LedgerFilters, int, int, list[str]]:
    """Validate the ledger's query string: (filters, page, per_page, errors naming each bad field).

    Unknown parameters are ignored (links from elsewhere may carry tracking parameters); every
    known parameter must be well-formed, else the page answers 400 with the reasons.
    """
    errors: list[str] = []

    def text(name: str) -> str:
        return (args.get(name) or "").strip()

    round_id: int | None = None
    if text("round"):
        # isascii: isdigit() alone accepts "²", which int() refuses
        if not (text("round").isascii() and text("round").isdigit()) or int(text("round")) not in round_ids:
            errors.append(f"round: {text('round')[:40]!r} is not a round of this circle.")
        else:
            round_id = int(text("round"))
    kind = text("kind") or None
    if kind is not None and kind not in TRANSACTION_KINDS:
        errors.append(f"kind: {kind[:40]!r} is not one of {', '.join(TRANSACTION_KINDS)}.")
        kind = None

    def date(name: str) -> dt.date | None:
        if not text(name):
            return None
        try:
            return dt.date.fromisoformat(text(name))
        except ValueError:
            errors.append(f"{name}: {text(name)[:40]!r} is not a date like 2026-11-21.")
            return None

    date_from, date_to = date("from"), date("to")
    if date_from and date_to and date_from > date_to:
        errors.append("from: the start date is after the end date.")

    def number(name: str, default: int, low: int, high: int | None) -> int:
        raw = text(name)
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit()) or int(raw) < low or (high is not None and int(raw) > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            errors.append(f"{name}: {raw[:40]!r} is not a whole number {bound}.")
            return default
        return int(raw)

    page = number("page", 1, 1, 10**9)
    per_page = number("per_page", DEFAULT_PER_PAGE, *PER_PAGE_RANGE)
    return queries.LedgerFilters(round_id, kind, date_from, date_to), page, per_page, errors


def _page_args(filters: queries.LedgerFilters, per_page: int) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if filters.round_id is not None:
        args["round"] = filters.round_id
    if filters.kind:
        args["kind"] = filters.kind
    if filters.date_from:
        args["from"] = filters.date_from.isoformat()
    if filters.date_to:
        args["to"] = filters.date_to.isoformat()
    if per_page != DEFAULT_PER_PAGE:
        args["per_page"] = per_page
    return args
