from fundcircle.forms import BaseForm
from wtforms import BooleanField, EmailField, TextAreaField
from wtforms.validators import DataRequired, Email, Length


class InviteForm(BaseForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Email(check_deliverability=False),
                                                     Length(max=254)])
    as_facilitator = BooleanField("Facilitator (creates rounds, screens proposals)")
    as_treasurer = BooleanField("Treasurer (funds the pot, pays awards)")
    message = TextAreaField("A note for them (optional)", validators=[Length(max=2000)])
