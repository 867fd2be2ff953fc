from flask import Blueprint

from fundcircle.circles import views

bp = Blueprint("circles", __name__)
bp.add_url_rule("/", "home", views.home, methods=["GET"])
bp.add_url_rule("/c/<slug>", "circle_page", views.circle_page, methods=["GET"])
bp.add_url_rule("/c/<slug>/members", "members", views.members, methods=["GET", "POST"])
bp.add_url_rule("/c/<slug>/invitations/<int:invitation_id>/revoke", "revoke_invitation",
                views.revoke_invitation, methods=["POST"])
bp.add_url_rule("/invitations/<token>", "invitation", views.invitation, methods=["GET", "POST"])
