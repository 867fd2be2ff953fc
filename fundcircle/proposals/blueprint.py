from flask import Blueprint

from fundcircle.proposals import views

bp = Blueprint("proposals", __name__)
base = "/c/<slug>/r/<int:round_id>"
bp.add_url_rule(f"{base}/proposals/new", "new_proposal", views.new_proposal, methods=["GET", "POST"])
bp.add_url_rule(f"{base}/p/<int:proposal_id>", "proposal_page", views.proposal_page, methods=["GET"])
bp.add_url_rule(f"{base}/p/<int:proposal_id>/edit", "edit_proposal", views.edit_proposal, methods=["GET", "POST"])
bp.add_url_rule(f"{base}/p/<int:proposal_id>/submit", "submit", views.submit, methods=["POST"])
bp.add_url_rule(f"{base}/p/<int:proposal_id>/withdraw", "withdraw", views.withdraw, methods=["POST"])
bp.add_url_rule(f"{base}/p/<int:proposal_id>/screen", "screen", views.screen, methods=["POST"])
bp.add_url_rule("/me/proposals", "my_proposals", views.my_proposals, methods=["GET"])
