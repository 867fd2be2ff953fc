from flask import Blueprint

from fundcircle.rounds import views

bp = Blueprint("rounds", __name__)
bp.add_url_rule("/c/<slug>/rounds/new", "new_round", views.new_round, methods=["GET", "POST"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>", "round_page", views.round_page, methods=["GET"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/edit", "edit_round", views.edit_round, methods=["GET", "POST"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/publish", "publish_round", views.publish_round, methods=["POST"])
bp.add_url_rule("/c/<slug>/r/<int:round_id>/screening", "screening", views.screening, methods=["GET"])
