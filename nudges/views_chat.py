"""Chat channels in the admin console: one for the organization, one per team, each with a
"send a test message" button. Org admins and alignment leads manage them."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from orgs import pickers
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.models import Team

from . import chat, services
from .models import ChatChannel, ChatDelivery


class ChannelForm(pickers.PickerFormMixin, forms.ModelForm):
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="The whole organization",
        help_text="Leave empty for the organization's channel.")

    class Meta:
        model = ChatChannel
        fields = ["team", "tool", "url", "requests", "reviews", "risks", "reminders",
                  "weekly_summary", "is_active"]
        labels = {"url": "Incoming webhook URL", "tool": "Chat tool",
                  "is_active": "On (uncheck to pause posting)"}
        help_texts = {"url": "From the chat tool's incoming-webhook settings. Only http(s); "
                             "redirects are not followed."}

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.fields["team"].queryset = Team.objects.for_org(org)
        pickers.use_picker(self.fields["team"], org=org, kind="teams",
                           empty_label="The whole organization")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            chat.check_url(url)
        except ValidationError as e:
            raise forms.ValidationError(e.messages) from None
        return url

    def clean(self):
        data = super().clean()
        team = data.get("team")
        taken = ChatChannel.objects.for_org(self.org).filter(team=team)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if "team" in data and taken.exists():
            raise forms.ValidationError(
                f"{team.name if team else 'The organization'} has a channel already: edit it.")
        return data


def _channel(request, pk):
    row = (ChatChannel.objects.for_org(request.org).select_related("team").filter(pk=pk)
           .first())
    if row is None:
        raise Http404("No such channel.")
    return row


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def channels(request):
    form = ChannelForm(request.POST or None, org=request.org,
                       instance=ChatChannel(organization=request.org))
    if request.method == "POST" and form.is_valid():
        channel = services.save_channel(form, membership=request.membership)
        messages.success(request, "Channel added. Send it a test message to check it.")
        return redirect("chat_channel", request.org.slug, channel.pk)
    rows = ChatChannel.objects.for_org(request.org).select_related("team")
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(request, "nudges/chat_channels.html", {
        "page": page, "form": form, "section": "chat"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def channel(request, channel_pk):
    row = _channel(request, channel_pk)
    form = ChannelForm(request.POST or None, org=request.org, instance=row)
    if request.method == "POST" and form.is_valid():
        services.save_channel(form, membership=request.membership)
        messages.success(request, "Channel saved.")
        return redirect("chat_channel", request.org.slug, row.pk)
    recent = ChatDelivery.objects.for_org(request.org).filter(channel=row).only(
        "title", "kind", "status", "attempts", "last_error", "created_at", "sent_at",
        "next_attempt_at")[:10]
    return render(request, "nudges/chat_channel.html", {
        "channel": row, "form": form, "recent": recent, "section": "chat"})


@org_view(console=True)
def channel_test(request, channel_pk):
    row = _channel(request, channel_pk)
    if (refused := post_only(request)) is not None:
        return refused
    sent = chat.send_test(row, actor=request.user)
    if sent.status == ChatDelivery.Status.SENT:
        messages.success(request, "Test message sent: look for it in the channel.")
    else:
        messages.error(request, f"The test message did not arrive ({sent.last_error}). "
                                "It is tried again in a minute; check the URL meanwhile.")
    return redirect("chat_channel", request.org.slug, row.pk)


@org_view(console=True)
def channel_delete(request, channel_pk):
    row = _channel(request, channel_pk)
    name = row.team.name if row.team else request.org.name
    if request.method == "GET":
        return confirm_page(
            request, question=f"Remove the chat channel of {name}?",
            consequence="Nothing more is posted there, and posts still waiting are dropped. "
                        "You can add the channel again.",
            action=request.path, button="Remove",
            cancel=reverse("chat_channel", args=[request.org.slug, row.pk]),
            template="orgs/console/confirm.html", extra={"section": "chat"})
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    services.delete_channel(row, membership=request.membership)
    messages.success(request, f"The chat channel of {name} is removed.")
    return redirect("chat_channels", request.org.slug)
