"""The proposal form: shape only. Amounts stay text here; the view parses them with the round's
currency so "1,250.50" and "1250,5" both work and errors name the field."""

from __future__ import annotations

from fundcircle.forms import BaseForm
from wtforms import FieldList, Form, FormField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from fundcircle.proposals.models import PayeeKind

BUDGET_LINE_ROWS = 8


class BudgetLineForm(Form):
    # not "description": that name is taken by every WTForms field
    item = StringField("Item", validators=[Optional(), Length(max=200)])
    amount = StringField("Amount", validators=[Optional(), Length(max=30)])


class ProposalForm(BaseForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=160)])
    summary = TextAreaField("Summary (one or two sentences)", validators=[Length(max=500)])
    description = TextAreaField("Description", validators=[Length(max=20000)],
                                description="What you will do, for whom, and how you will know it worked.")
    amount_requested = StringField("Amount requested", validators=[DataRequired(), Length(max=30)])
    budget_lines = FieldList(FormField(BudgetLineForm), min_entries=BUDGET_LINE_ROWS,
                             max_entries=BUDGET_LINE_ROWS)
    payee_kind = RadioField("Who receives the money", default=PayeeKind.NONE.value, choices=[
        SelectChoice(PayeeKind.NONE.value, "Decide later"),
        SelectChoice(PayeeKind.OPENCOLLECTIVE.value, "An Open Collective account"),
        SelectChoice(PayeeKind.EMAIL.value, "A person or group we invite by e-mail to give payout details"),
    ])
    payee_oc_slug = StringField("Open Collective account (its short name)", validators=[Length(max=100)])
    payee_email = StringField("Payee e-mail (kept private)", validators=[Length(max=254)])


class ScreeningForm(BaseForm):
    decision = RadioField("Decision", choices=[SelectChoice("eligible", "Eligible"),
                                                     SelectChoice("ineligible", "Not eligible")],
                          validators=[DataRequired()])
    reason = TextAreaField("Reason (the applicant sees it)", validators=[Length(max=2000)])
