"""The checks every service runs on what it writes, in one place.

Services are what views, tasks, commands and the coming API call, so they cannot trust that a
form cleaned their input. Each check reads its limits from the model field (``max_length``,
``max_digits``, ``decimal_places``, ``choices``), so a column and its check cannot drift apart,
and uses Django's own validators where one exists, so a service says what the form would say.

Usage, inside a service::

    v = Fields(Objective)
    title = v.line("title", title)
    why = v.text("why", why)
    state = v.choice("state", state)
    v.done()  # raises ValidationError({field: [messages]}) if anything was refused

``choice_constraint`` builds the database CHECK that backs a choice column.
"""

import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator, MaxLengthValidator
from django.db import models
from django.utils import timezone

LINE_BREAKS = {"\n", "\r"}


def breaks_lines(value):
    """Whether ``value`` spans lines: CR, LF, or Unicode's line and paragraph separators (which
    str.splitlines, and so email headers, also break on). Other breaking controls, such as
    vertical tab or NEL, are control characters and refused anyway."""
    return any(c in LINE_BREAKS or unicodedata.category(c) in ("Zl", "Zp") for c in value)


def control_characters(value, *, allow_line_breaks=False):
    """The control and format characters (Unicode Cc and Cf) in ``value``. Long texts may keep
    their line breaks; nothing else invisible is allowed anywhere."""
    allowed = LINE_BREAKS if allow_line_breaks else set()
    return [c for c in value if c not in allowed and unicodedata.category(c) in ("Cc", "Cf")]


def repair_choices(app_label, repairs):
    """A migration step (for RunPython) that gives every row outside its column's choices a value
    the coming CHECK constraint accepts, so adding it cannot fail on existing data. ``repairs``:
    (model name, column, allowed values, replacement)."""

    def repair(apps, schema_editor):
        for model_name, column, allowed, replacement in repairs:
            model = apps.get_model(app_label, model_name)
            bad = model._base_manager.exclude(**{f"{column}__in": allowed})
            if replacement is None:
                bad = bad.exclude(**{f"{column}__isnull": True})
            repaired = bad.update(**{column: replacement})
            if repaired:
                print(f"\n  {app_label}.{model_name}.{column}: {repaired} rows set to "
                      f"{replacement!r}")
        if schema_editor.connection.vendor == "postgresql":
            # Fire the deferred foreign-key checks of those updates now: PostgreSQL refuses to
            # alter a table with pending trigger events in the same transaction.
            schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    return repair


def choice_constraint(field, choices, *, blank=False, null=False):
    """A CHECK constraint that keeps ``field`` within ``choices`` (a TextChoices or
    IntegerChoices class, or a list of values); ``blank`` also allows "", ``null`` NULL.
    Named ``<app>_<model>_<field>_valid``."""
    values = list(getattr(choices, "values", choices))
    if blank:
        values.append("")
    condition = models.Q(**{f"{field}__in": values})
    if null:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition,
                                  name=f"%(app_label)s_%(class)s_{field}_valid")


class Fields:
    """Cleans the values of one model's fields and collects what is wrong, field by field."""

    def __init__(self, model):
        self.model = model
        self.errors = {}

    def field(self, name):
        return self.model._meta.get_field(name)

    def refuse(self, name, message):
        self.errors.setdefault(name, []).append(message)

    def done(self):
        if self.errors:
            raise ValidationError(self.errors)

    # Text ------------------------------------------------------------------------------------

    def _text(self, name, value, *, required, allow_line_breaks, field):
        field = field or name
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.refuse(name, "Enter text.")
            return value
        value = value.strip()
        if not value:
            if required:
                self.refuse(name, "This field is required.")
            return value
        if not allow_line_breaks and breaks_lines(value):
            self.refuse(name, "Keep it on one line.")
        elif control_characters(value, allow_line_breaks=allow_line_breaks):
            self.refuse(name, "Remove the invisible control characters (such as tabs).")
        limit = self.field(field).max_length
        if limit:
            try:
                MaxLengthValidator(limit)(value)
            except ValidationError as e:
                self.errors.setdefault(name, []).extend(e.messages)
        return value

    def line(self, name, value, *, required=True, field=None):
        """A title or name: one line, stripped, no control characters, within max_length."""
        return self._text(name, value, required=required, allow_line_breaks=False, field=field)

    def text(self, name, value, *, required=False, field=None):
        """A note or long text: line breaks allowed, no other control characters."""
        return self._text(name, value, required=required, allow_line_breaks=True, field=field)

    # Choices ---------------------------------------------------------------------------------

    def choice(self, name, value, *, field=None, allowed=None):
        """A value among the field's choices (or ``allowed``, a narrower list)."""
        model_field = self.field(field or name)
        values = allowed if allowed is not None else [v for v, _ in model_field.flatchoices]
        if model_field.blank and not model_field.null and allowed is None:
            values = [*values, ""]  # a text column's "not set"
        if value not in values:
            self.refuse(name, "Choose one of the offered options.")
        return value

    # Numbers ---------------------------------------------------------------------------------

    def decimal(self, name, value, *, required=False, positive=False, field=None):
        """A finite number that fits the field's max_digits and decimal_places, as a Decimal.
        ``positive`` refuses zero and below."""
        if value is None or value == "":
            if required:
                self.refuse(name, "Enter a number.")
            return None
        model_field = self.field(field or name)
        if isinstance(value, bool):
            self.refuse(name, "Enter a number.")
            return value
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError, TypeError):
            self.refuse(name, "Enter a number.")
            return value
        if not number.is_finite():
            self.refuse(name, "Enter a number.")
            return value
        try:
            DecimalValidator(model_field.max_digits, model_field.decimal_places)(number)
        except ValidationError as e:
            self.errors.setdefault(name, []).extend(e.messages)
            return value
        if positive and number <= 0:
            self.refuse(name, "Ensure this value is greater than zero.")
        return number

    # Yes or no -------------------------------------------------------------------------------

    def flag(self, name, value):
        """True or False, nothing that merely looks like one ("no" is a true string)."""
        if not isinstance(value, bool):
            self.refuse(name, "Answer yes or no.")
        return value

    # Dates -----------------------------------------------------------------------------------

    def check_in_moment(self, name, value, cycle, *, now=None):
        """A check-in's time: inside its cycle (not before its start, not after its end) and
        not in the future."""
        now = now or timezone.now()
        if value is None:
            value = now
        if not isinstance(value, datetime):
            self.refuse(name, "Enter a date and time.")
            return value
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        day = timezone.localdate(value)
        if value > now:
            self.refuse(name, "A check-in cannot be dated in the future.")
        elif day < cycle.start_date or day > cycle.end_date:
            self.refuse(name, f"Date it inside the cycle ({cycle.start_date:%d %b %Y} to "
                              f"{cycle.end_date:%d %b %Y}).")
        return value

    def day(self, name, value, *, required=False):
        if value is None:
            if required:
                self.refuse(name, "Enter a date.")
            return value
        if not isinstance(value, date) or isinstance(value, datetime):
            self.refuse(name, "Enter a date.")
        return value
