"""Read-only JSON API ``/api/v1``: thin handlers that load, check visibility, serialise.

Everything here is public (no login, GET only, so CSRF does not apply). Errors come from the one
mapping in ``fundcircle.errors``, which answers JSON for ``/api/`` paths:
``{"error": title, "message": reason, "status": code}``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from flask import jsonify, request, url_for

from fundcircle.api import serializers
from fundcircle.api.pagination import PageRequest, int_arg, paginated
from fundcircle.circles.models import Circle
from fundcircle.db import MAX_ROW_ID, utcnow
from fundcircle.errors import NotFound, ValidationError
from fundcircle.extensions import db
from fundcircle.ledger.models import TRANSACTION_KINDS as LEDGER_KINDS
from fundcircle.proposals.models import Proposal, ProposalStatus
from fundcircle.rounds.models import Round
from fundcircle.transparency import opendata

#: slugs the app creates (lower-case letters, digits, hyphens); anything else cannot exist
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
MAX_ID = MAX_ROW_ID


def _circle(slug: str) -> Circle:
    if not SLUG_RE.match(slug):
        raise NotFound("There is no circle with that address.")
    return opendata.published_circle(db.session, slug)


def _round(circle: Circle, round_id: int) -> Round:
    if round_id > MAX_ID:
        raise NotFound("There is no such round in this circle.")
    return opendata.published_round(db.session, circle, round_id)


def _tallied_ids(round_ids: list[int]) -> set[int]:
    from fundcircle.voting.models import RoundResult

    if not round_ids:
        return set()
    return set(db.session.scalars(sa.select(RoundResult.round_id).where(RoundResult.round_id.in_(round_ids))))


def _head(circle_id: int | None = None) -> dict[str, Any]:
    from fundcircle import ledger

    head = ledger.head(db.session, circle_id)
    return {"seq": head.seq, "hash": head.hash_hex}


def index():  # type: ignore[no-untyped-def]
    return jsonify({
        "name": "fundcircle open API",
        "version": "v1",
        "links": {
            "self": url_for("api.index"),
            "openapi": url_for("api.openapi_document"),
            "circles": url_for("api.circles"),
            "chain_head": url_for("api.chain_head"),
            "schema": url_for("api.data_schema"),
        },
    })


def circles():  # type: ignore[no-untyped-def]
    page = PageRequest.from_request()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Circle)) or 0
    rows = db.session.scalars(sa.select(Circle).order_by(Circle.slug).offset(page.offset).limit(page.per_page)).all()
    return jsonify(paginated([serializers.circle_summary_json(c) for c in rows], total, page, "api.circles"))


def circle(slug: str):  # type: ignore[no-untyped-def]
    c = _circle(slug)
    return jsonify(serializers.circle_json(c, member_count=opendata.member_count(db.session, c),
                                           balances=opendata.circle_balances(db.session, c), chain_head=_head(c.id)))


def rounds(slug: str):  # type: ignore[no-untyped-def]
    c = _circle(slug)
    page = PageRequest.from_request()
    where = (Round.circle_id == c.id, Round.published_at.is_not(None))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Round).where(*where)) or 0
    rows = db.session.scalars(sa.select(Round).where(*where).order_by(Round.submissions_open_at.desc(), Round.id.desc())
                              .offset(page.offset).limit(page.per_page)).all()
    tallied = _tallied_ids([r.id for r in rows])
    now = utcnow()
    items = [serializers.round_json(r, now=now, tallied=r.id in tallied) for r in rows]
    return jsonify(paginated(items, total, page, "api.rounds", slug=c.slug))


def round(slug: str, round_id: int):  # type: ignore[no-untyped-def]  # noqa: A001 - the endpoint's name
    r = _round(_circle(slug), round_id)
    return jsonify(serializers.round_json(r, now=utcnow(), tallied=bool(_tallied_ids([r.id]))))


def _public_proposals(round_id: int) -> tuple[Any, ...]:
    return (Proposal.round_id == round_id, Proposal.status != ProposalStatus.DRAFT.value)


def proposals(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    c = _circle(slug)
    r = _round(c, round_id)
    page = PageRequest.from_request()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Proposal).where(*_public_proposals(r.id))) or 0
    rows = db.session.scalars(sa.select(Proposal).where(*_public_proposals(r.id)).order_by(Proposal.id)
                              .offset(page.offset).limit(page.per_page)).all()
    return jsonify(paginated([serializers.proposal_json(p, c.slug) for p in rows], total, page, "api.proposals",
                             slug=c.slug, round_id=r.id))


def proposal(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    c = _circle(slug)
    r = _round(c, round_id)
    p = None
    if proposal_id <= MAX_ID:
        p = db.session.scalar(sa.select(Proposal).where(Proposal.id == proposal_id, *_public_proposals(r.id)))
    if p is None:
        raise NotFound("There is no such proposal in this round.")
    return jsonify(serializers.proposal_json(p, c.slug))


def result(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    from flask import current_app

    c = _circle(slug)
    r = _round(c, round_id)
    tr = opendata.tallied_round(db.session, c, r, min_voters=opendata.configured_min_voters(current_app.config))
    return jsonify(opendata.results_document(db.session, tr))



def _date_arg(name: str) -> dt.date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"Query parameter {name!r} must be a date like 2026-11-21.",
                              field_errors={name: ["not a date (YYYY-MM-DD)"]}) from None


def ledger_filter_from_request() -> opendata.LedgerFilter:
    kind = request.args.get("kind") or None
    if kind is not None and kind not in LEDGER_KINDS:
        raise ValidationError(f"Query parameter 'kind' must be one of {', '.join(LEDGER_KINDS)}.",
                              field_errors={"kind": ["unknown kind"]})
    flt = opendata.LedgerFilter(kind=kind, round_id=int_arg("round", None, low=1, high=MAX_ID),
                                date_from=_date_arg("from"), date_to=_date_arg("to"))
    return flt


def ledger(slug: str):  # type: ignore[no-untyped-def]
    c = _circle(slug)
    page = PageRequest.from_request()
    flt = ledger_filter_from_request()
    total = opendata.ledger_count(db.session, c, flt)
    entries = opendata.ledger_entries(db.session, c, flt, offset=page.offset, limit=page.per_page)
    body = paginated(entries, total, page, "api.ledger", slug=c.slug, kind=flt.kind, round=flt.round_id,
                     **{"from": flt.date_from.isoformat() if flt.date_from else None,
                        "to": flt.date_to.isoformat() if flt.date_to else None})
    body["chain_head"] = _head(c.id)
    body["balances"] = opendata.circle_balances(db.session, c)
    return jsonify(body)


def chain_head():  # type: ignore[no-untyped-def]
    head = _head()
    head["explanation"] = ("Every ledger transaction is sealed into one SHA-256 hash chain: each seal hashes the "
                           "previous seal's hash and the transaction's canonical encoding. The head is the latest "
                           "seal; `fundcircle ledger verify` recomputes the whole chain and must end at this head.")
    return jsonify(head)


def openapi_document():  # type: ignore[no-untyped-def]
    from fundcircle.api.openapi import document

    return jsonify(document())
