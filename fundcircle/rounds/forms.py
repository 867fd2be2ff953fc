"""Round forms: shape only; the operation checks meaning."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fundcircle.forms import BaseForm
from wtforms import (BooleanField, SelectChoice, DateTimeLocalField, IntegerField, SelectField, SelectMultipleField,
                     StringField, TextAreaField)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from fundcircle.ledger.money import CURRENCY_EXPONENTS
from fundcircle.rounds.models import REQUIRABLE_FIELDS

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def parse_params(text: str) -> dict[str, str]:
    """"name = value" per line (blank lines and # comments ignored) → dict of strings."""
    params: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValidationError(f"Line {number}: write parameters as name = value.")
        name, value = (part.strip() for part in line.split("=", 1))
        if not name:
            raise ValidationError(f"Line {number}: the parameter name is missing.")
        if name in params:
            raise ValidationError(f"Line {number}: {name} is given twice.")
        params[name] = value
    return params


def format_params(params: dict[str, Any]) -> str:
    return "\n".join(f"{k} = {v}" for k, v in sorted(params.items()))


class RoundForm(BaseForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=160)])
    call_text = TextAreaField("The call for proposals", validators=[Length(max=20000)],
                              description="What the round funds, who may apply, what you look for.")
    budget = StringField("Budget", validators=[DataRequired(), Length(max=30)])
    currency = SelectField("Currency", choices=[SelectChoice(c) for c in sorted(CURRENCY_EXPONENTS)])
    rule_id = SelectField("How members decide")
    rule_params = TextAreaField("Rule parameters (name = value, one per line)", validators=[Length(max=2000)])
    submissions_open_at = DateTimeLocalField("Submissions open (UTC)", format=DATETIME_FORMAT,
                                             validators=[DataRequired()])
    submissions_close_at = DateTimeLocalField("Submissions close (UTC)", format=DATETIME_FORMAT,
                                              validators=[DataRequired()])
    deliberation_open_at = DateTimeLocalField("Deliberation starts (UTC)", format=DATETIME_FORMAT,
                                              validators=[DataRequired()])
    voting_open_at = DateTimeLocalField("Voting opens (UTC)", format=DATETIME_FORMAT, validators=[DataRequired()])
    voting_close_at = DateTimeLocalField("Voting closes (UTC)", format=DATETIME_FORMAT, validators=[DataRequired()])
    min_request = StringField("Smallest request (optional)", validators=[Length(max=30)])
    max_request = StringField("Largest request (optional)", validators=[Length(max=30)])
    required_fields = MultiCheckboxField("Proposals must include",
                                         choices=[SelectChoice(k, v) for k, v in REQUIRABLE_FIELDS.items()])
    max_proposals_per_applicant = IntegerField("Proposals per applicant (optional)",
                                               validators=[Optional(), NumberRange(min=1, max=100)])
    show_running_results = BooleanField("Show running results while voting is open")

    def __init__(self, *args: Any, rule_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule_id.choices = [SelectChoice(value, label) for value, label in rule_choices]

    def validate_rule_params(self, field: Any) -> None:
        parse_params(field.data or "")

    def utc(self, name: str) -> dt.datetime:
        value: dt.datetime = getattr(self, name).data
        return value.replace(tzinfo=dt.timezone.utc)
