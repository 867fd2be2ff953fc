from flask import Blueprint

from fundcircle.deliberation import views

bp = Blueprint("deliberation", __name__)
base = "/c/<slug>/r/<int:round_id>"
proposal = f"{base}/p/<int:proposal_id>"
bp.add_url_rule(f"{proposal}/comments", "post_comment", views.post_comment, methods=["POST"])
bp.add_url_rule(f"{proposal}/comments/<int:comment_id>/reply", "reply", views.reply, methods=["GET"])
bp.add_url_rule(f"{proposal}/comments/<int:comment_id>/answer", "answer", views.answer, methods=["GET", "POST"])
bp.add_url_rule(f"{proposal}/comments/<int:comment_id>/hide", "hide", views.hide, methods=["GET", "POST"])
bp.add_url_rule(f"{proposal}/conflict", "declare_conflict", views.declare_conflict, methods=["GET", "POST"])
bp.add_url_rule(f"{base}/my-conflicts", "my_conflicts", views.my_conflicts, methods=["GET"])
bp.add_url_rule(f"{base}/conflicts", "round_conflicts", views.round_conflicts, methods=["GET"])
# The proposal page (owned by proposals) shows the discussion through this template global.
bp.add_app_template_global(views.panel_context, "deliberation_panel")
