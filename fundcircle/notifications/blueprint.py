from flask import Blueprint

from fundcircle.notifications import views

bp = Blueprint("notifications", __name__)
bp.add_url_rule("/dev/outbox", view_func=views.outbox_view, methods=["GET"])
bp.add_url_rule("/dev/outbox/<int:mail_id>", view_func=views.outbox_message_view, methods=["GET"])
