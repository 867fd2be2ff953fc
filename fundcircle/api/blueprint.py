"""Read-only JSON API (/api/v1), open-data downloads and pages, and the receipt check."""
from flask import Blueprint

from fundcircle.api import views
from fundcircle.transparency import opendata_views as data

bp = Blueprint("api", __name__)

API = "/api/v1"
bp.add_url_rule(API, "index", views.index, methods=["GET"])
bp.add_url_rule(f"{API}/openapi.json", "openapi_document", views.openapi_document, methods=["GET"])
bp.add_url_rule(f"{API}/chain/head", "chain_head", views.chain_head, methods=["GET"])
bp.add_url_rule(f"{API}/circles", "circles", views.circles, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>", "circle", views.circle, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/ledger", "ledger", views.ledger, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/rounds", "rounds", views.rounds, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/rounds/<int:round_id>", "round", views.round, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/rounds/<int:round_id>/result", "result", views.result, methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/rounds/<int:round_id>/proposals", "proposals", views.proposals,
                methods=["GET"])
bp.add_url_rule(f"{API}/circles/<slug>/rounds/<int:round_id>/proposals/<int:proposal_id>", "proposal",
                views.proposal, methods=["GET"])

# open data (HTML pages and files)
bp.add_url_rule("/data/schema", "data_schema", data.data_schema, methods=["GET"])
bp.add_url_rule("/c/<slug>/data", "circle_data", data.circle_data, methods=["GET"])
bp.add_url_rule("/c/<slug>/data/ledger.<any(json, csv):fmt>", "ledger_download", data.ledger_download,
                methods=["GET"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/data", "round_data", data.round_data, methods=["GET"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/data/<any(" + ", ".join(sorted(data.ROUND_FILES)) + "):filename>",
                "round_download", data.round_download, methods=["GET"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/receipt", "receipt", data.receipt, methods=["GET", "POST"])


@bp.after_request
def _cacheable_json(response):  # type: ignore[no-untyped-def]
    """Public API answers carry an ETag (a hash of the body), so clients and proxies revalidate
    with If-None-Match and get a 304 without the body. Short max-age: balances change."""
    from flask import request

    if request.method in ("GET", "HEAD") and request.path.startswith("/api/") and response.status_code == 200:
        response.headers.setdefault("Cache-Control", "public, max-age=60")
        response.add_etag()
        response.make_conditional(request)
    return response
