from django import forms

from .models import MAX_INTERVAL, MIN_INTERVAL, DataSource, Event


class SourceForm(forms.Form):
    kind = forms.ChoiceField(
        label="Where the values come from", choices=DataSource.Kind.choices,
        widget=forms.RadioSelect, initial=DataSource.Kind.WEBHOOK)
    url = forms.CharField(
        label="JSON address (scheduled pull)", required=False, max_length=500,
        help_text="An http(s) address that answers a JSON document. Redirects are not followed.")
    json_path = forms.CharField(
        label="Path to the value", required=False, max_length=200,
        help_text="Dots between keys, numbers for list positions: data.total or issues.0.count. "
                  "Empty when the document is the number itself.")
    interval_minutes = forms.IntegerField(
        label="Pull every (minutes)", min_value=MIN_INTERVAL, max_value=MAX_INTERVAL,
        initial=60)
    is_active = forms.BooleanField(label="On (uncheck to pause)", required=False, initial=True)

    def clean(self):
        data = super().clean()
        if data.get("kind") == DataSource.Kind.PULL and not data.get("url"):
            self.add_error("url", "Give the address to pull from.")
        return data


class CsvForm(forms.Form):
    file = forms.FileField(label="CSV of dated values",
                           help_text="One line per date: date,value,note (2026-03-31,42,From "
                                     "the BI export). A header line is optional.")


class SubscriptionForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500,
                          help_text="Where the events are posted. Only http(s); redirects are "
                                    "not followed.")
    description = forms.CharField(label="What it is for", max_length=120, required=False)
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=Event.values)
    is_active = forms.BooleanField(label="On (uncheck to pause)", required=False, initial=True)


class PrivateAddressesForm(forms.Form):
    allow_private_addresses = forms.BooleanField(
        label="Allow private network addresses", required=False,
        help_text="Scheduled pulls and webhooks may then reach addresses inside a private "
                  "network (10.x, 192.168.x, localhost). Leave off unless the service runs "
                  "inside your own network.")
