"""Transparency pages: what each circle decided, why, and where every unit of money went (no login)."""
from flask import Blueprint

from fundcircle.transparency import views

bp = Blueprint("transparency", __name__)
bp.add_url_rule("/c/<slug>/r/<int:round_id>/results", "results", views.results, methods=["GET"])
bp.add_url_rule("/c/<slug>/ledger", "ledger", views.ledger, methods=["GET"])
