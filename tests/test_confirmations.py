"""Every destructive action asks first. With JavaScript the button opens a dialog
(static/js/confirm.js, tested in tests/e2e); without it the form posts without ``confirm=yes``
and the server answers with a page that asks, whose form posts the same fields again with it.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django_scopes import scopes_disabled

from alignment.models import RecascadeFlag, Stakeholder
from dependencies.models import Dependency, ObjectiveShare
from okrs.models import Objective
from orgs.models import Invitation, Membership, Role, Theme

from .factories import MembershipFactory, StakeholderFactory, UserFactory

pytestmark = pytest.mark.django_db


def hidden_fields(page):
    """The fields a confirmation page's form posts, by name."""
    page = page[page.index("confirm-page"):]
    form = re.search(r'<form method="post" action="([^"]*)"[^>]*>(.*?)</form>', page, re.S)
    assert form, "no confirmation form on the page"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[2]))
    fields.pop("csrfmiddlewaretoken", None)
    return form[1].replace("&amp;", "&"), fields


def ask_then_do(client, post_url, data, *, question, exists):
    """Post without confirm: nothing happens and the answer leads to a page asking
    ``question``; its form, posted, does it."""
    response = client.post(post_url, data)
    assert response.status_code == 302
    assert exists(), "a post without confirm=yes changed something"
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert question in html, html
    action, fields = hidden_fields(html)
    assert fields.get("confirm") == "yes"
    done = client.post(action, fields)
    assert done.status_code == 302
    assert not exists(), "the confirmed post did nothing"
    return html


def test_removing_a_theme_asks_first(world_a, alice_client):
    with scopes_disabled():
        theme = Theme.objects.create(organization=world_a.org, name="Enterprise")
    page = alice_client.get(reverse("alignment_settings", args=["org-a"])).content.decode()
    assert "hx-confirm" not in page and 'data-confirm="Remove the theme “Enterprise”?"' in page
    html = ask_then_do(
        alice_client, reverse("alignment_settings", args=["org-a"]),
        {"action": "delete_theme", "theme": theme.pk}, question="Remove the theme “Enterprise”?",
        exists=lambda: Theme.objects.with_scopes_disabled().filter(pk=theme.pk).exists())
    assert "No objective uses it." in html


def test_stop_sharing_asks_first(world_a, alice_client):
    share = world_a.share
    ask_then_do(
        alice_client, reverse("share_remove", args=["org-a", share.pk]), {},
        question=f"Stop sharing “Org A team goal” with {world_a.company.name}?",
        exists=lambda: ObjectiveShare.objects.with_scopes_disabled().filter(pk=share.pk).exists())


def test_retiring_from_the_recascade_page_asks_first(world_a, alice_client):
    flag = world_a.recascade_flag

    def live():
        with scopes_disabled():
            return Objective.objects.get(pk=flag.objective_id).state != "retired"

    ask_then_do(alice_client, reverse("recascade_act", args=["org-a", flag.pk]),
                {"action": "retire"}, question="Retire “Org A team goal”?", exists=live)
    # Confirm and re-align are not destructive: they need no extra step.
    with scopes_disabled():
        assert RecascadeFlag.objects.filter(pk=flag.pk).exists()


def test_removing_a_stakeholder_asks_first(world_a, alice_client):
    st = StakeholderFactory(workflow=world_a.workflow, team=world_a.team)
    html = ask_then_do(
        alice_client, reverse("workflow_act", args=["org-a", world_a.workflow.pk]),
        {"action": "remove_stakeholder", "stakeholder": st.pk},
        question=f"Remove {world_a.team.name} from this workflow?",
        exists=lambda: Stakeholder.objects.with_scopes_disabled().filter(pk=st.pk).exists())
    assert "commitment" in html


def test_withdrawing_an_invitation_asks_first(world_a, alice_client):
    inv = world_a.invitation

    def pending():
        with scopes_disabled():
            return Invitation.objects.get(pk=inv.pk).is_pending

    ask_then_do(alice_client, reverse("console_invitation_revoke", args=["org-a", inv.pk]), {},
                question=f"Withdraw the invitation to {inv.email}?", exists=pending)


@pytest.mark.parametrize("before,status,question", [
    ("requested", "declined", "Decline this request?"),
    ("requested", "withdrawn", "Withdraw this request?"),
    ("committed", "broken", "Mark this dependency broken?"),
])
def test_ending_a_dependency_asks_first(world_a, alice_client, before, status, question):
    dep = world_a.dependency
    Dependency.objects.with_scopes_disabled().filter(pk=dep.pk).update(status=before)

    def unchanged():
        with scopes_disabled():
            return Dependency.objects.get(pk=dep.pk).status == before

    page = alice_client.get(reverse("dependency", args=["org-a", dep.pk])).content.decode()
    assert f'data-confirm="{question}"' in page
    html = ask_then_do(alice_client, reverse("dependency_answer", args=["org-a", dep.pk]),
                       {"status": status, "note": "No capacity <this> quarter"},
                       question=question, exists=unchanged)
    assert "No capacity &lt;this&gt; quarter" in html  # the note is carried, escaped
    with scopes_disabled():
        assert Dependency.objects.get(pk=dep.pk).status == status


def test_committing_to_a_dependency_needs_no_extra_step(world_a, alice_client):
    dep = world_a.dependency
    Dependency.objects.with_scopes_disabled().filter(pk=dep.pk).update(status="requested")
    alice_client.post(reverse("dependency_answer", args=["org-a", dep.pk]),
                      {"status": "committed", "note": ""})
    with scopes_disabled():
        assert Dependency.objects.get(pk=dep.pk).status == "committed"


def test_an_invalid_decline_is_a_form_error_before_any_question(world_a, alice_client):
    Dependency.objects.with_scopes_disabled().filter(pk=world_a.dependency.pk).update(
        status="requested")
    answer = reverse("dependency_answer", args=["org-a", world_a.dependency.pk])
    response = alice_client.post(answer, {"status": "declined", "note": "  "})
    assert response.status_code == 400


def test_retiring_an_objective_posts_from_its_page_only_with_confirm(world_a, alice_client):
    retire = reverse("objective_retire", args=["org-a", world_a.objective.pk])
    response = alice_client.post(retire)
    assert response.status_code == 302 and response["Location"] == retire
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).state == "published"
    page = alice_client.get(retire).content.decode()
    assert 'name="confirm" value="yes"' in page
    alice_client.post(retire, {"confirm": "yes"})
    with scopes_disabled():
        assert Objective.objects.get(pk=world_a.objective.pk).state == "retired"


def test_removing_a_member_posts_from_its_page_only_with_confirm(world_a, alice_client):
    member = MembershipFactory(organization=world_a.org, user=UserFactory(), role=Role.MEMBER)
    remove = reverse("console_member_remove", args=["org-a", member.pk])
    response = alice_client.post(remove)
    assert response.status_code == 302 and response["Location"] == remove
    assert Membership.objects.with_scopes_disabled().filter(pk=member.pk).exists()
    assert 'name="confirm" value="yes"' in alice_client.get(remove).content.decode()
    alice_client.post(remove, {"confirm": "yes"})
    assert not Membership.objects.with_scopes_disabled().filter(pk=member.pk).exists()


def test_an_htmx_post_without_confirm_is_sent_to_the_page_that_asks(world_a, alice_client):
    st = StakeholderFactory(workflow=world_a.workflow, team=world_a.team)
    response = alice_client.post(
        reverse("workflow_act", args=["org-a", world_a.workflow.pk]),
        {"action": "remove_stakeholder", "stakeholder": st.pk}, HTTP_HX_REQUEST="true")
    assert "remove_stakeholder" in response["HX-Redirect"]
    assert Stakeholder.objects.with_scopes_disabled().filter(pk=st.pk).exists()


def test_a_foreign_id_in_the_question_is_not_found(world_a, world_b, alice_client):
    # The confirmation page looks its object up in the organization like the action does.
    with scopes_disabled():
        theme_b = Theme.objects.create(organization=world_b.org, name="Secret B theme")
    page = alice_client.get(reverse("alignment_settings", args=["org-a"]),
                            {"action": "delete_theme", "theme": theme_b.pk})
    assert page.status_code == 404
    stakeholder_b = StakeholderFactory(workflow=world_b.workflow, team=world_b.team)
    page = alice_client.get(reverse("workflow_act", args=["org-a", world_a.workflow.pk]),
                            {"action": "remove_stakeholder", "stakeholder": stakeholder_b.pk})
    assert page.status_code == 404


DESTRUCTIVE = re.compile(
    r"<button[^>]*>\s*(Remove|Retire it|Stop sharing|Withdraw|Delete)\b[^<]*</button>")


def test_no_template_relies_on_hx_confirm_and_destructive_buttons_ask():
    """hx-confirm only works on htmx-driven elements: it sat on plain forms and asked nothing.
    Every destructive button (or its form) carries data-confirm instead."""
    root = Path(settings.BASE_DIR) / "templates"
    for path in root.rglob("*.html"):
        text = path.read_text()
        assert "hx-confirm" not in text, path
        for form in re.findall(r"<form\b.*?</form>", text, re.S):
            if "data-picker-remove" in form or 'name="confirm" value="yes"' in form:
                continue  # a picker's chip only edits its form; a confirmation page asks
            if DESTRUCTIVE.search(form):
                assert "data-confirm=" in form, f"{path.name}: {form[:160]}"
