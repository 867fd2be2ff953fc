"""The base of every form: Flask-WTF (CSRF) plus refusal of control characters.

PostgreSQL cannot store NUL in text and no person types control characters into a form, so any
such input gets a field error instead of reaching the database.
"""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, FieldList, FormField

# C0 controls except tab, line feed and carriage return; DEL; C1 controls.
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _fields(form: Any) -> list[Field]:
    found: list[Field] = []
    for field in form:
        if isinstance(field, FormField):
            found.extend(_fields(field.form))
        elif isinstance(field, FieldList):
            for entry in field.entries:
                found.extend(_fields(entry.form) if isinstance(entry, FormField) else [entry])
        else:
            found.append(field)
    return found


class BaseForm(FlaskForm):
    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in _fields(self):
            values = field.data if isinstance(field.data, list) else [field.data]
            if any(isinstance(v, str) and CONTROL_CHARS_RE.search(v) for v in values):
                field.errors = list(field.errors) + ["Remove the control characters from this field."]
                ok = False
        return ok
