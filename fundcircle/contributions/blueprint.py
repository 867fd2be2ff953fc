"""Contributions: money into a circle's pot through Stripe Checkout, and Stripe's webhooks."""
from flask import Blueprint

from fundcircle.contributions import views
from fundcircle.extensions import csrf

bp = Blueprint("contributions", __name__)
bp.add_url_rule("/c/<slug>/contribute", "contribute", views.contribute, methods=["GET", "POST"])
bp.add_url_rule("/c/<slug>/contribute/<public_id>/thanks", "thanks", views.thanks, methods=["GET"])
bp.add_url_rule("/c/<slug>/contribute/<public_id>/cancelled", "cancelled", views.cancelled, methods=["GET"])
# Stripe signs its deliveries; there is no browser session, so no CSRF token either.
bp.add_url_rule("/webhooks/stripe", "stripe_webhook", csrf.exempt(views.stripe_webhook), methods=["POST"])
