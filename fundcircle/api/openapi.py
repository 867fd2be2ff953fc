"""The OpenAPI 3.1 document of ``/api/v1``, written by hand so it states the contract rather than
echoing the code. Objects are closed (``additionalProperties: false``): a field added to a response
without documenting it here fails the schema tests."""

from __future__ import annotations

from typing import Any

MAX_ID = 2**31 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties),
            "additionalProperties": False}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
DATETIME = {"type": "string", "format": "date-time"}
MINOR = {"type": "integer", "description": "an amount in minor units of the currency (cents for EUR)"}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
LINK = {"type": "string", "description": "a path on this site"}


def _links(*names: str) -> dict[str, Any]:
    return _obj({n: LINK for n in names})


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": STR, "message": STR, "status": INT,
                   "fields": {"type": "object", "additionalProperties": {"type": "array", "items": STR}}},
                  ["error", "message", "status"]),
    "PageMeta": _obj({"page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1},
                      "total": {"type": "integer", "minimum": 0}, "pages": {"type": "integer", "minimum": 1}}),
    "PageLinks": _obj({"self": LINK, "first": LINK, "last": LINK, "next": _nullable(LINK), "prev": _nullable(LINK)}),
    "ChainHead": _obj({"seq": {"type": "integer", "minimum": 0},
                       "hash": {"type": "string", "pattern": "^([0-9a-f]{64})?$",
                                "description": "hex SHA-256 of the latest seal; empty when the ledger is empty"}}),
    "Balances": _obj({"currency": CURRENCY, "pot_available_minor": MINOR, "earmarked_minor": MINOR,
                      "paid_out_minor": MINOR, "fees_minor": MINOR, "suspense_minor": MINOR}),
    "CircleSummary": _obj({"slug": STR, "name": STR, "currency": CURRENCY, "links": _links("self")}),
    "Circle": _obj({"slug": STR, "name": STR, "purpose": STR, "currency": CURRENCY,
                    "member_count": {"type": "integer", "minimum": 0}, "balances": _ref("Balances"),
                    "chain_head": _ref("ChainHead"),
                    "links": _links("self", "rounds", "ledger", "html", "open_data")}),
    "Rule": _obj({"id": STR, "name": STR, "description": STR, "params": {"type": "object"}}),
    "Round": _obj({
        "id": INT, "circle": STR, "title": STR, "call_text": STR, "budget_minor": MINOR, "currency": CURRENCY,
        "phase": {"type": "string", "enum": ["draft", "announced", "call_open", "screening", "deliberation",
                                             "voting", "closed"]},
        "tallied": BOOL, "rule": _ref("Rule"), "published_at": _nullable(DATETIME),
        "submissions_open_at": DATETIME, "submissions_close_at": DATETIME, "deliberation_open_at": DATETIME,
        "voting_open_at": DATETIME, "voting_close_at": DATETIME,
        "min_request_minor": _nullable(MINOR), "max_request_minor": _nullable(MINOR),
        "required_fields": {"type": "array", "items": STR},
        "max_proposals_per_applicant": _nullable(INT),
        "links": _links("self", "proposals", "result", "html", "open_data")}),
    "Proposal": _obj({
        "id": INT, "round_id": INT, "title": STR, "summary": STR, "description": STR,
        "amount_requested_minor": MINOR, "currency": CURRENCY,
        "status": {"type": "string", "enum": ["submitted", "withdrawn"]},
        "screening": {"type": "string", "enum": ["unscreened", "eligible", "ineligible"]},
        "screening_reason": _nullable(STR), "applicant_name": _nullable(STR),
        "budget_lines": {"type": "array", "items": _obj({"description": STR, "amount_minor": MINOR})},
        "payee": _obj({"kind": {"type": "string", "enum": ["none", "opencollective", "email"]},
                       "open_collective_slug": _nullable(STR)}),
        "submitted_at": _nullable(DATETIME), "withdrawn_at": _nullable(DATETIME),
        "links": _links("self", "html")}),
    "ResultProposal": _obj({
        "proposal_id": INT, "title": STR, "status": STR, "screening": STR, "amount_requested_minor": MINOR,
        "currency": CURRENCY, "on_ballot": BOOL,
        "score": {"anyOf": [INT, STR, {"type": "null"}], "description": "exact fractions as \"p/q\""},
        "funded": BOOL, "amount_awarded_minor": MINOR, "selection_position": _nullable(INT),
        "recusals": INT, "why": {"type": "array", "items": STR}}),
    "Result": _obj({
        "format": STR,
        "circle": _obj({"slug": STR, "name": STR}),
        "round": _obj({"id": INT, "title": STR, "currency": CURRENCY, "budget_minor": MINOR,
                       "voting_open_at": DATETIME, "voting_close_at": DATETIME}),
        "rule": _obj({"id": STR, "name": STR, "params": {"type": "object"}}),
        "tallied_at": DATETIME, "ballot_count": INT, "member_count": INT, "excluded_ballot_count": INT,
        "ballot_digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "seed": STR,
        "funded_total_minor": MINOR,
        "proposals": {"type": "array", "items": _ref("ResultProposal")},
        "trace": {"type": "array", "items": _obj({"action": _nullable(STR), "proposal_id": _nullable(STR),
                                                  "message": _nullable(STR)})},
        "ballots_published": BOOL}),
    "Posting": _obj({"account": STR, "account_kind": STR, "round_id": _nullable(INT), "proposal_id": _nullable(INT),
                     "amount_minor": {"type": "integer", "description": "signed, debit positive"},
                     "currency": CURRENCY, "balance_after_minor": {"type": "integer"}}),
    "LedgerTransaction": _obj({
        "seq": INT, "transaction_id": INT, "kind": STR, "effective_on": {"type": "string", "format": "date"},
        "recorded_at": DATETIME, "reverses_transaction_id": _nullable(INT), "external_reference": _nullable(STR),
        "seal_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "postings": {"type": "array", "items": _ref("Posting")}}),
}


def _list(item: str) -> dict[str, Any]:
    return _obj({"data": {"type": "array", "items": _ref(item)}, "meta": _ref("PageMeta"),
                 "links": _ref("PageLinks")})


SCHEMAS["CircleList"] = _list("CircleSummary")
SCHEMAS["RoundList"] = _list("Round")
SCHEMAS["ProposalList"] = _list("Proposal")
SCHEMAS["LedgerPage"] = _obj({"data": {"type": "array", "items": _ref("LedgerTransaction")},
                              "meta": _ref("PageMeta"), "links": _ref("PageLinks"),
                              "chain_head": _ref("ChainHead"), "balances": _ref("Balances")})
SCHEMAS["Index"] = _obj({"name": STR, "version": STR,
                         "links": _links("self", "openapi", "circles", "chain_head", "schema")})
SCHEMAS["ChainHeadExplained"] = _obj({"seq": {"type": "integer", "minimum": 0},
                                      "hash": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
                                      "explanation": STR})

SLUG = {"name": "slug", "in": "path", "required": True, "description": "the circle's address",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,59}$"}}
ROUND_ID = {"name": "round_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
PROPOSAL_ID = {"name": "proposal_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
PAGE = [
    {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
    {"name": "per_page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _get(summary: str, schema: str, params: list[Any], *, extra: dict[str, Any] | None = None,
         operation_id: str) -> dict[str, Any]:
    responses = {"200": _ok(schema, summary), "404": _error("no such object (or not public)")}
    if any(p.get("in") == "query" for p in params):
        responses["422"] = _error("a query parameter is invalid; `fields` names it")
    responses.update(extra or {})
    return {"get": {"summary": summary, "operationId": operation_id, "parameters": params, "responses": responses}}


def document() -> dict[str, Any]:
    from fundcircle.ledger.models import TRANSACTION_KINDS

    ledger_filters = [
        {"name": "kind", "in": "query", "required": False, "schema": {"type": "string", "enum": list(TRANSACTION_KINDS)}},
        {"name": "round", "in": "query", "required": False, "description": "transactions touching this round's awards",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
        {"name": "from", "in": "query", "required": False, "description": "effective on or after (YYYY-MM-DD)",
         "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": False, "description": "effective on or before (YYYY-MM-DD)",
         "schema": {"type": "string", "format": "date"}},
    ]
    base = "/api/v1"
    return {
        "openapi": "3.1.0",
        "info": {"title": "fundcircle open API", "version": "1",
                 "description": "Read-only, public data of every Fund Circle: circles, rounds, proposals (public "
                                "fields), results, the ledger and its hash-chain head. No authentication. Amounts "
                                "are integers in minor units with an ISO 4217 currency. Errors are JSON "
                                "`{error, message, status}`. Lists are paginated with `page`/`per_page` and "
                                "carry `links` to follow."},
        "paths": {
            base: _get("API index", "Index", [], operation_id="index"),
            f"{base}/chain/head": _get("The ledger's hash-chain head", "ChainHeadExplained", [],
                                       operation_id="chainHead"),
            f"{base}/circles": _get("All circles", "CircleList", PAGE, operation_id="listCircles"),
            f"{base}/circles/{{slug}}": _get("One circle with its balances", "Circle", [SLUG],
                                             operation_id="getCircle"),
            f"{base}/circles/{{slug}}/ledger": _get(
                "The circle's ledger, oldest first, with running balances", "LedgerPage",
                [SLUG, *PAGE, *ledger_filters], operation_id="getLedger"),
            f"{base}/circles/{{slug}}/rounds": _get("The circle's published rounds", "RoundList", [SLUG, *PAGE],
                                                    operation_id="listRounds"),
            f"{base}/circles/{{slug}}/rounds/{{round_id}}": _get("One round", "Round", [SLUG, ROUND_ID],
                                                                 operation_id="getRound"),
            f"{base}/circles/{{slug}}/rounds/{{round_id}}/result": _get(
                "The round's stored result", "Result", [SLUG, ROUND_ID], operation_id="getResult",
                extra={"409": _error("the round has not been tallied yet")}),
            f"{base}/circles/{{slug}}/rounds/{{round_id}}/proposals": _get(
                "The round's proposals (public fields; drafts never)", "ProposalList", [SLUG, ROUND_ID, *PAGE],
                operation_id="listProposals"),
            f"{base}/circles/{{slug}}/rounds/{{round_id}}/proposals/{{proposal_id}}": _get(
                "One proposal", "Proposal", [SLUG, ROUND_ID, PROPOSAL_ID], operation_id="getProposal"),
        },
        "components": {"schemas": SCHEMAS},
    }
