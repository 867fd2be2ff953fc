from flask import Blueprint

from fundcircle.auth import views

bp = Blueprint("auth", __name__)
bp.before_app_request(views.load_signed_in_user)
bp.add_url_rule("/signin", "sign_in", views.sign_in, methods=["GET", "POST"])
bp.add_url_rule("/signin/check", "check_mail", views.check_mail, methods=["GET"])
bp.add_url_rule("/signin/code", "enter_code", views.enter_code, methods=["POST"])
bp.add_url_rule("/signin/link/<token>", "link_landing", views.link_landing, methods=["GET"])
bp.add_url_rule("/signin/link", "link_redeem", views.link_redeem, methods=["POST"])
bp.add_url_rule("/signout", "sign_out", views.sign_out, methods=["POST"])
bp.add_url_rule("/account", "account", views.account, methods=["GET", "POST"])
bp.add_url_rule("/account/sessions/end-others", "end_other_sessions", views.end_other_sessions,
                methods=["POST"])

# Second factor (TOTP) for treasurers and facilitators: fundcircle/auth/second_factor.py
from fundcircle.auth import second_factor  # noqa: E402

bp.add_url_rule("/account/second-factor", "second_factor", second_factor.enrol_view, methods=["GET", "POST"])
bp.add_url_rule("/account/second-factor/check", "second_factor_challenge", second_factor.challenge_view,
                methods=["GET", "POST"])
