from fundcircle.forms import BaseForm
from wtforms import EmailField, HiddenField, StringField
from wtforms.validators import DataRequired, Email, Length


class SignInForm(BaseForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Email(check_deliverability=False),
                                                     Length(max=254)])
    next = HiddenField()


class CodeForm(BaseForm):
    email = HiddenField(validators=[DataRequired(), Length(max=254)])
    code = StringField("Code from the e-mail", validators=[DataRequired(), Length(min=6, max=20)])


class LinkForm(BaseForm):
    token = HiddenField(validators=[DataRequired(), Length(max=100)])


class EmptyForm(BaseForm):
    """A POST with nothing but the CSRF token (sign out, withdraw, ...)."""


class ProfileForm(BaseForm):
    display_name = StringField("Your name as others see it", validators=[Length(max=120)])
