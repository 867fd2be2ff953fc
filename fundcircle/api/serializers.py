"""Public JSON shapes of the API. Each function picks fields explicitly (an allow-list): a column
added to a model later never reaches the API by accident. ``openapi.py`` documents each shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import url_for

from fundcircle.circles.models import Circle
from fundcircle.proposals.models import PayeeKind, Proposal, Screening
from fundcircle.rounds.models import Round


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def circle_json(circle: Circle, *, member_count: int, balances: dict[str, Any], chain_head: dict[str, Any]
                ) -> dict[str, Any]:
    return {
        "slug": circle.slug,
        "name": circle.name,
        "purpose": circle.purpose,
        "currency": circle.currency,
        "member_count": member_count,
        "balances": balances,
        "chain_head": chain_head,
        "links": {
            "self": url_for("api.circle", slug=circle.slug),
            "rounds": url_for("api.rounds", slug=circle.slug),
            "ledger": url_for("api.ledger", slug=circle.slug),
            "html": url_for("circles.circle_page", slug=circle.slug),
            "open_data": url_for("api.circle_data", slug=circle.slug),
        },
    }


def circle_summary_json(circle: Circle) -> dict[str, Any]:
    return {"slug": circle.slug, "name": circle.name, "currency": circle.currency,
            "links": {"self": url_for("api.circle", slug=circle.slug)}}


def rule_json(rule_id: str, params: dict[str, Any]) -> dict[str, Any]:
    from fundcircle.errors import NotFound
    from fundcircle.voting.base import jsonable
    from fundcircle.voting.registry import get_rule

    try:
        rule = get_rule(rule_id)
        name, description = rule.name, rule.description
    except NotFound:  # a plugin rule that is no longer installed: still say which it was
        name, description = rule_id, ""
    return {"id": rule_id, "name": name, "description": description, "params": jsonable(dict(params or {}))}


def round_json(round_: Round, *, now: dt.datetime, tallied: bool) -> dict[str, Any]:
    slug = round_.circle.slug
    return {
        "id": round_.id,
        "circle": slug,
        "title": round_.title,
        "call_text": round_.call_text,
        "budget_minor": round_.budget_minor,
        "currency": round_.currency,
        "phase": round_.phase_at(now).value,
        "tallied": tallied,
        "rule": rule_json(round_.rule_id, round_.rule_params),
        "published_at": iso(round_.published_at),
        "submissions_open_at": iso(round_.submissions_open_at),
        "submissions_close_at": iso(round_.submissions_close_at),
        "deliberation_open_at": iso(round_.deliberation_open_at),
        "voting_open_at": iso(round_.voting_open_at),
        "voting_close_at": iso(round_.voting_close_at),
        "min_request_minor": round_.min_request_minor,
        "max_request_minor": round_.max_request_minor,
        "required_fields": list(round_.required_fields or []),
        "max_proposals_per_applicant": round_.max_proposals_per_applicant,
        "links": {
            "self": url_for("api.round", slug=slug, round_id=round_.id),
            "proposals": url_for("api.proposals", slug=slug, round_id=round_.id),
            "result": url_for("api.result", slug=slug, round_id=round_.id),
            "html": url_for("rounds.round_page", slug=slug, round_id=round_.id),
            "open_data": url_for("api.round_data", slug=slug, round_id=round_.id),
        },
    }


def proposal_json(proposal: Proposal, slug: str) -> dict[str, Any]:
    """Public fields only: never the payee e-mail, the applicant's e-mail or a screening note on an
    eligible proposal (those are for the applicant and the circle's facilitators)."""
    ineligible = proposal.screening == Screening.INELIGIBLE.value
    return {
        "id": proposal.id,
        "round_id": proposal.round_id,
        "title": proposal.title,
        "summary": proposal.summary,
        "description": proposal.description,
        "amount_requested_minor": proposal.amount_requested_minor,
        "currency": proposal.currency,
        "status": proposal.status,
        "screening": proposal.screening,
        "screening_reason": proposal.screening_reason if ineligible and proposal.screening_reason else None,
        "applicant_name": proposal.applicant.display_name or None,
        "budget_lines": [{"description": b.description, "amount_minor": b.amount_minor} for b in proposal.budget_lines],
        "payee": {
            "kind": proposal.payee_kind,
            "open_collective_slug": proposal.payee_oc_slug
            if proposal.payee_kind == PayeeKind.OPENCOLLECTIVE.value and proposal.payee_oc_slug else None,
        },
        "submitted_at": iso(proposal.submitted_at),
        "withdrawn_at": iso(proposal.withdrawn_at),
        "links": {
            "self": url_for("api.proposal", slug=slug, round_id=proposal.round_id, proposal_id=proposal.id),
            "html": url_for("proposals.proposal_page", slug=slug, round_id=proposal.round_id, proposal_id=proposal.id),
        },
    }
