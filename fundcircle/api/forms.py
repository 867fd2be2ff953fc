"""Forms of the open-data pages (shape only)."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from fundcircle.forms import BaseForm


class ReceiptForm(BaseForm):
    code = StringField(
        "Receipt code",
        description="The code you were shown (and e-mailed) when you voted, e.g. K7QF-3M2X-PA9D-W4LE-7HNC.",
        validators=[DataRequired("Paste your receipt code."), Length(max=64, message="That is too long for a code."),
                    Regexp(r"^[A-Za-z0-9\s-]+$", message="A receipt code has only letters, digits and dashes.")])
