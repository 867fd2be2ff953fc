"""Deliberation forms: shape only (the operations check meaning, phase and permission)."""

from __future__ import annotations

import secrets

from wtforms import HiddenField, RadioField, SelectChoice, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from fundcircle.deliberation.models import MAX_BODY_CHARS, MAX_HIDE_REASON_CHARS, CommentKind
from fundcircle.forms import BaseForm
from fundcircle.voting.models import ConflictCategory, ConflictLevel


def new_submission_key() -> str:
    """A random key per rendered form: a double-submitted form then stores one comment."""
    return secrets.token_urlsafe(24)


class _KeyedForm(BaseForm):
    submission_key = HiddenField(validators=[Optional(), Length(max=64)])

    def with_fresh_key(self) -> _KeyedForm:
        if not self.submission_key.data:
            self.submission_key.data = new_submission_key()
        return self


class CommentForm(_KeyedForm):
    body = TextAreaField("Your comment", validators=[
        DataRequired("Write something first."),
        Length(max=MAX_BODY_CHARS, message=f"Keep it under {MAX_BODY_CHARS:,} characters.")])
    kind = RadioField("This is", default=CommentKind.COMMENT.value, choices=[
        SelectChoice(CommentKind.COMMENT.value, "a comment for everyone"),
        SelectChoice(CommentKind.QUESTION.value, "a question to the applicant (they are notified and answer here)"),
    ], validators=[DataRequired("Choose a comment or a question.")])
    parent_id = HiddenField(validators=[Optional(), Regexp(r"^\d{1,12}$", message="Not a comment number.")])

    @property
    def parent_id_value(self) -> int | None:
        return int(self.parent_id.data) if self.parent_id.data else None


class AnswerForm(_KeyedForm):
    body = TextAreaField("Your answer", validators=[
        DataRequired("Write your answer first."),
        Length(max=MAX_BODY_CHARS, message=f"Keep it under {MAX_BODY_CHARS:,} characters.")])


class HideForm(BaseForm):
    reason = TextAreaField("Why hide it? (shown to everyone in its place)", validators=[
        DataRequired("Give a reason; it is shown in place of the comment."),
        Length(max=MAX_HIDE_REASON_CHARS, message=f"Keep it under {MAX_HIDE_REASON_CHARS} characters.")])


CONFLICT_CATEGORY_LABELS = {
    ConflictCategory.CO_APPLICANT.value: "I am part of the group applying (a co-applicant)",
    ConflictCategory.FAMILY.value: "A close personal relationship with the applicant",
    ConflictCategory.FINANCIAL.value: "I would gain money from it",
    ConflictCategory.ORGANISATION.value: "I work for or help run the applicant organisation",
    ConflictCategory.OTHER.value: "Something else (say what below)",
}
CONFLICT_LEVEL_LABELS = {
    ConflictLevel.DISCLOSE.value: "Disclose only: it is published (without my name) and I still vote on it",
    ConflictLevel.RECUSE.value: "Recuse: I will not vote on this proposal",
}


class ConflictForm(BaseForm):
    level = RadioField("How strong is the conflict?", default=ConflictLevel.RECUSE.value,
                       choices=[SelectChoice(v, label) for v, label in CONFLICT_LEVEL_LABELS.items()],
                       validators=[DataRequired("Choose disclose or recuse.")])
    category = RadioField("What kind of conflict?",
                          choices=[SelectChoice(v, label) for v, label in CONFLICT_CATEGORY_LABELS.items()],
                          validators=[DataRequired("Choose what kind of conflict it is.")])
    reason = TextAreaField("In your words (facilitators see this; it is never published)",
                           validators=[Length(max=1000, message="Keep it under 1,000 characters.")])
