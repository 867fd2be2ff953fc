"""Forms of the treasurer's dashboard (shape only; operations check meaning)."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from fundcircle.forms import BaseForm


class ActionForm(BaseForm):
    """A button: create payout, re-check, import from the API (CSRF token only)."""


class AccountForm(BaseForm):
    oc_account_slug = StringField(
        "Open Collective handle of the circle's collective",
        description="The last part of the collective's address, e.g. riverside-commons in "
                    "opencollective.com/riverside-commons.",
        validators=[DataRequired(), Length(max=100),
                    Regexp(r"^[a-z0-9][a-z0-9_-]*$", message="Lowercase letters, digits and dashes only.")])


class CsvImportForm(BaseForm):
    file = FileField("Transactions export (CSV) from Open Collective",
                     description="Either header style (field names or labels), exported with all rows. Files up "
                                 "to the site's upload limit (2 MB, about 15,000 rows); larger exports: "
                                 "fundcircle reconcile --csv FILE.",
                     validators=[FileRequired(message="Choose the CSV file.")])


class ConfirmForm(BaseForm):
    note = StringField("Note (optional)", validators=[Optional(), Length(max=500)])


class DismissForm(BaseForm):
    note = StringField("Why is this not posted?", validators=[DataRequired(message="Give a reason."),
                                                               Length(max=500)])


class CorrectionForm(BaseForm):
    transaction_id = IntegerField("Ledger payout to reverse", validators=[DataRequired(), NumberRange(min=1)])
    reason = TextAreaField("Reason for the correction (kept in the ledger and the audit log)",
                           validators=[DataRequired(message="Give the reason."), Length(min=5, max=500)])
