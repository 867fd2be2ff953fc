"""Voting URLs: the ballot page (GET form, POST cast) and the facilitator's close action."""

from flask import Blueprint

from fundcircle.voting import views

bp = Blueprint("voting", __name__)
bp.add_url_rule("/c/<slug>/r/<int:round_id>/ballot", "ballot", views.ballot, methods=["GET", "POST"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/close", "close_round", views.close_round, methods=["POST"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/earmark", "earmark_again", views.earmark_again, methods=["POST"])
bp.add_app_template_global(views.voting_panel, "voting_panel")
