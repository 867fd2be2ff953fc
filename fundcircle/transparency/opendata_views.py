"""Open-data pages and downloads (HTML and files), registered on the ``api`` blueprint.

Handlers: load (404 for unknown or unpublished), refuse what is not published yet (409 with the
reason, via ``fundcircle.errors``), build with ``opendata``, respond. Downloads carry an ETag and
are cacheable: a tallied round's files never change.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, render_template, request

from fundcircle.api.views import _circle, _round
from fundcircle.db import utcnow
from fundcircle.errors import NotFound
from fundcircle.extensions import db
from fundcircle.rounds.models import Phase, Round
from fundcircle.transparency import opendata


def _min_voters() -> int:
    return opendata.configured_min_voters(current_app.config)


def _file(text: str, media_type: str, filename: str) -> Response:
    response = Response(text, mimetype=media_type)
    if media_type.startswith("text/"):
        response.headers["Content-Type"] = f"{media_type}; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    return response.make_conditional(request)


def _json_text(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def data_schema():  # type: ignore[no-untyped-def]
    return render_template("opendata/schema.html", exports=opendata.EXPORTS, unsupported=opendata.PB_UNSUPPORTED,
                           min_voters=_min_voters())


def circle_data(slug: str):  # type: ignore[no-untyped-def]
    circle = _circle(slug)
    rounds = db.session.scalars(sa.select(Round).where(Round.circle_id == circle.id, Round.published_at.is_not(None))
                                .order_by(Round.voting_close_at.desc(), Round.id.desc())).all()
    results = {r.round_id: r for r in db.session.scalars(
        sa.select(opendata.RoundResult).where(opendata.RoundResult.round_id.in_([r.id for r in rounds])))} \
        if rounds else {}
    return render_template("opendata/circle_data.html", circle=circle, rounds=rounds, results=results)


def ledger_download(slug: str, fmt: str):  # type: ignore[no-untyped-def]
    circle = _circle(slug)
    if fmt == "json":
        return _file(_json_text(opendata.ledger_document(db.session, circle)), "application/json",
                     f"{circle.slug}-ledger.json")
    return _file(opendata.ledger_csv(opendata.ledger_entries(db.session, circle)), "text/csv",
                 f"{circle.slug}-ledger.csv")


def round_data(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle = _circle(slug)
    round_ = _round(circle, round_id)
    result = opendata.result_of(db.session, round_.id)
    tr = opendata.TalliedRound(circle, round_, result, _min_voters()) if result is not None else None
    pb_problem = opendata.pb_unsupported_reason(result.rule_id) if tr is not None else ""
    from fundcircle.api.serializers import rule_json

    rule_name = rule_json(result.rule_id, {})["name"] if result is not None else ""
    return render_template("opendata/round_data.html", circle=circle, round=round_, result=result, tr=tr,
                           pb_problem=pb_problem, phase=round_.phase_at(utcnow()), rule_name=rule_name)


#: download name -> (builder, media type, file name pattern)
ROUND_FILES = {
    "results.json": "application/json",
    "results.csv": "text/csv",
    "ballots.json": "application/json",
    "ballots.csv": "text/csv",
    "ballots.pb": "text/plain",
}


def round_download(slug: str, round_id: int, filename: str):  # type: ignore[no-untyped-def]
    if filename not in ROUND_FILES:
        raise NotFound("There is no such file; see the round's data page for the downloads.")
    circle = _circle(slug)
    round_ = _round(circle, round_id)
    tr = opendata.tallied_round(db.session, circle, round_, min_voters=_min_voters())
    media_type = ROUND_FILES[filename]
    if filename == "ballots.pb":
        text = opendata.pb_document(db.session, tr, secret=current_app.config["SECRET_KEY"])
        return _file(text, media_type, f"round-{round_.id}.pb")
    if filename.startswith("results."):
        doc = opendata.results_document(db.session, tr)
        text = _json_text(doc) if filename.endswith(".json") else opendata.results_csv(doc)
    else:
        doc = opendata.ballot_list_document(db.session, tr)
        text = _json_text(doc) if filename.endswith(".json") else opendata.ballot_list_csv(doc)
    return _file(text, media_type, f"round-{round_.id}-{filename}")


def receipt(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    """Check a receipt code against the counted ballots (after the tally); explain before."""
    from flask import g

    from fundcircle.api.forms import ReceiptForm

    # The POST only reads: do not take SQLite's write lock at BEGIN for it (see db.begin_write), so
    # receipt checks never queue behind, or hold up, casting and ledger writes.
    g._fc_write_request = False
    circle = _circle(slug)
    round_ = _round(circle, round_id)
    result = opendata.result_of(db.session, round_.id)
    form = ReceiptForm()
    check = None
    status = 200
    if result is not None and request.method == "POST":
        if form.validate_on_submit():
            tr = opendata.TalliedRound(circle, round_, result, _min_voters())
            check = opendata.check_receipt(db.session, tr, form.code.data or "")
            form.code.data = ""  # the code is a bearer secret: never echo it back into the page
        else:
            status = 422
    elif request.method == "POST":
        status = 409
    phase = round_.phase_at(utcnow())
    return render_template("opendata/receipt.html", circle=circle, round=round_, result=result, form=form,
                           check=check, phase=phase, voting_over=phase is Phase.CLOSED), status
