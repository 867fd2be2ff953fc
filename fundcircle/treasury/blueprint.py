"""Treasury: Open Collective payouts, reconciliation and the treasurer's dashboard."""
from flask import Blueprint

from fundcircle.extensions import csrf
from fundcircle.treasury import views

bp = Blueprint("treasury", __name__)
bp.add_url_rule("/c/<slug>/treasury", "dashboard", views.dashboard, methods=["GET"])
bp.add_url_rule("/c/<slug>/treasury/account", "set_account", views.set_account, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/awards/<int:award_id>/payout", "create_payout", views.create_payout,
                methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/awards/<int:award_id>/recheck", "recheck", views.recheck, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/import/api", "import_api", views.import_api, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/import/csv", "import_csv", views.import_csv, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/proposals/<int:proposal_id>/confirm", "confirm", views.confirm, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/proposals/<int:proposal_id>/dismiss", "dismiss", views.dismiss, methods=["POST"])
bp.add_url_rule("/c/<slug>/treasury/corrections", "correction", views.correction, methods=["POST"])
# Open Collective's webhooks are unsigned and carry no CSRF token: the secret in the path is the check
bp.add_url_rule("/webhooks/opencollective/<secret>", "oc_webhook", csrf.exempt(views.oc_webhook), methods=["POST"])
