from django import forms

from .models import ApiToken
from .tokens import EXPIRY_CHOICES


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What it is for, e.g. “Jira sync”.")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ,
                              widget=forms.RadioSelect)
    expires_in_days = forms.TypedChoiceField(
        label="Expires", initial=90, required=False, empty_value=None,
        coerce=lambda v: int(v) if v else None,
        choices=[("" if days is None else days, label) for days, label in EXPIRY_CHOICES])
