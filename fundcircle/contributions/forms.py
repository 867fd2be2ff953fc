"""The public contribution form (shape only; the amount's meaning is checked by the operation)."""

from __future__ import annotations

from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from fundcircle.forms import BaseForm


class ContributeForm(BaseForm):
    #: generated when the form is shown; the Checkout idempotency key derives from it
    intent = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{22,64}$")])
    amount = StringField("Amount", validators=[DataRequired(message="Enter an amount."), Length(max=32)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    donor_name = StringField("Your name (optional)", validators=[Length(max=120)], render_kw={"autocomplete": "name"})
    message = TextAreaField("A message to the circle (optional)", validators=[Length(max=500)])
    is_anonymous = BooleanField("Give anonymously (your name and message are not shown)")
