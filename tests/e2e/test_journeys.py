"""Journeys through the real app in Chromium, on the demo organization (``seed_demo``)."""

import re

import pytest
from playwright.sync_api import expect

from .helpers import ARTIFACTS, PASSWORD, field, pick, sign_in

pytestmark = pytest.mark.e2e

COMPANY_OBJECTIVE = "Become the product customers recommend first"


@pytest.mark.django_db(transaction=True)
def test_engineering_lead_aligns_an_objective_and_checks_in(page, live_server, demo_org):
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/")
    expect(page.get_by_role("heading", name="Northwind Cloud", level=1)).to_be_visible()

    # A new Engineering objective, aligned to a company objective.
    page.get_by_role("link", name="Add objective").click()
    expect(page).to_have_url(re.compile(r"/o/northwind/objectives/new/"))
    field(page, "Title").fill("Cut incident response time in half")
    field(page, "Team").select_option(label="Engineering")
    pick(page, "Contributes to", COMPANY_OBJECTIVE.split()[0].lower(),
         f"Northwind Cloud: {COMPANY_OBJECTIVE}")
    page.get_by_role("button", name="Add objective").click()

    expect(page).to_have_url(re.compile(r"/o/northwind/objectives/\d+/$"))
    summary = page.locator("#objective-summary")
    expect(summary.get_by_role("heading", level=1)).to_have_text(
        "Cut incident response time in half")
    expect(page.locator("nav.crumbs")).to_contain_text(COMPANY_OBJECTIVE)
    expect(summary.locator(".progress-wrap")).to_contain_text("no KRs")

    # From here on everything happens in place: a full reload would lose this marker.
    page.evaluate("window.__marker = 1")

    # Add a key result through the inline form (open while the objective has none).
    add_kr = page.locator("details.add-kr")
    expect(add_kr).to_have_attribute("open", "")
    form = page.locator("#kr-new-form")
    field(form, "Title").fill("Median time to resolve")
    form.get_by_label(re.compile(r"^\s*Increase or decrease to a target")).check()
    field(form, "Start value").fill("120")
    field(form, "Target value").fill("60")
    field(form, "Unit").fill("min")
    form.get_by_role("button", name="Add key result").click()

    kr = page.locator("#key-results li.kr").filter(has_text="Median time to resolve")
    expect(kr).to_have_count(1)
    expect(kr.locator("[data-testid=kr-current]")).to_have_text("120")
    expect(summary.locator(".pct")).to_have_text("0%")  # summary swapped out of band
    kr_id = kr.get_attribute("id")
    assert re.fullmatch(r"kr-\d+", kr_id), kr_id

    # Check in: the form loads under the KR, and saving swaps the KR list and the summary.
    kr.get_by_role("link", name="Check in").click()
    check_in = page.locator(f"#{kr_id}-form form.checkin-form")
    expect(check_in).to_be_visible()
    # 75% done with about 85% of the demo cycle gone (it ends in two weeks): on pace, so
    # the health is the reported confidence.
    field(check_in, "New value").fill("75")
    field(check_in, "At risk").check()
    field(check_in, "Note").fill("Runbooks half done")
    check_in.get_by_role("button", name="Save check-in").click()

    kr = page.locator(f"#{kr_id}")
    expect(page.locator(f"#{kr_id}-form form")).to_have_count(0)  # the list was re-rendered
    expect(kr.locator("[data-testid=kr-current]")).to_have_text("75")
    expect(kr.locator("[data-testid=kr-health]")).to_have_text("At risk")
    expect(summary.locator(".pct")).to_have_text("75%")
    expect(summary.locator("progress")).to_have_attribute("value", "75")
    expect(summary.locator("[data-testid=objective-health]")).to_have_text("At risk")

    history = kr.locator("details.history")
    history.locator("summary").click()
    expect(history).to_contain_text("Check-in history (1)")
    expect(history.locator("li").first).to_contain_text("Runbooks half done")
    expect(history.locator("li").first).to_be_visible()

    assert page.evaluate("window.__marker") == 1, "the page was reloaded"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "journey-objective.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_viewer_reads_without_edit_controls_and_the_tree_loads_lazily(
        page, live_server, demo_org):
    sign_in(page, live_server, "olivia@northwind.example")

    page.goto(f"{live_server.url}/o/northwind/tree/")
    node = page.locator("li.tree-node").filter(
        has=page.get_by_role("link", name=COMPANY_OBJECTIVE, exact=True)).first
    details = node.locator("> details")
    child_title = "Make the platform fast and dependable"
    # Children are not in the page until the node is opened.
    expect(details.locator("> .tree-children")).to_have_text(re.compile(r"^Show the \d+ aligned$"))
    expect(page.get_by_text(child_title)).to_have_count(0)

    summary = details.locator("> summary")
    box = summary.bounding_box()
    # Click the disclosure triangle at the summary's left edge, not the title's link.
    summary.click(position={"x": 6, "y": box["height"] / 2})
    child = details.locator("> .tree-children").get_by_role("link", name=child_title)
    expect(child).to_be_visible()
    expect(details.locator("> .tree-children")).to_contain_text(
        "Deliver a product experience users love")

    # An Engineering objective, read-only for a viewer.
    child.click()
    expect(page).to_have_url(re.compile(r"/o/northwind/objectives/\d+/$"))
    expect(page.locator("#objective-summary h1")).to_have_text(child_title)
    expect(page.locator("#key-results")).to_contain_text("Achieve 99.95% uptime")
    expect(page.locator("#key-results li.kr")).to_have_count(3)
    expect(page.get_by_role("link", name="Check in")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Retire")).to_have_count(0)
    expect(page.locator("details.add-kr")).to_have_count(0)


@pytest.mark.django_db(transaction=True)
def test_an_engineering_slip_reaches_sales_with_its_root_cause(page, live_server, demo_org):
    from django_scopes import scopes_disabled

    from okrs.models import Objective

    with scopes_disabled():
        sales_objective = Objective.objects.get(title="Win more enterprise customers")
    objective_url = f"{live_server.url}/o/northwind/objectives/{sales_objective.pk}/"

    # The Engineering lead reports that SSO, which Sales depends on, is off track.
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(objective_url)
    sso = page.locator("#key-results li.kr").filter(
        has_text="SSO available to enterprise prospects")
    sso.get_by_role("link", name="Check in").click()
    check_in = sso.locator("form.checkin-form")
    expect(check_in).to_be_visible()
    field(check_in, "Done?").select_option(label="Not yet")
    field(check_in, "Off track").check()
    field(check_in, "Note").fill("The identity vendor slipped three weeks")
    check_in.get_by_role("button", name="Save check-in").click()
    sso = page.locator("#key-results li.kr").filter(
        has_text="SSO available to enterprise prospects")
    expect(sso.locator("[data-testid=kr-health]")).to_have_text("Off track")
    page.get_by_role("button", name="Sign out").click()

    # The Sales lead is told at once, and sees why.
    sign_in(page, live_server, "mia@northwind.example")
    expect(page.get_by_test_id("unread-alerts")).to_be_visible()
    page.goto(objective_url)
    deals = page.locator("#key-results li.kr").filter(has_text="Close 12 enterprise deals")
    upstream = deals.get_by_test_id("upstream-risk")
    expect(upstream).to_contain_text("At risk from upstream")
    upstream.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Why is “Close 12 enterprise deals” at risk?")
    path = page.get_by_test_id("risk-path").first
    items = path.locator("li")
    expect(items.first).to_contain_text("SSO available to enterprise prospects")
    expect(items.first).to_contain_text("Engineering")
    expect(items.first).to_contain_text("Off track")
    expect(items.last).to_contain_text("Close 12 enterprise deals")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "journey-why-at-risk.png"), full_page=True)

    page.get_by_role("link", name="Alerts").click()
    expect(page.locator(".alert-list")).to_contain_text("Close 12 enterprise deals")
    expect(page.locator(".alert-list")).to_contain_text(
        "Upstream dependency: “SSO available to enterprise prospects” (Engineering) is off track.")


@pytest.mark.django_db(transaction=True)
def test_the_alignment_lead_runs_steps_1_to_4_and_reads_the_outputs(page, live_server,
                                                                   demo_org):
    from datetime import timedelta

    from django.utils import timezone

    objective = "Reach $12M in annual recurring revenue"
    sign_in(page, live_server, "liam@northwind.example")
    page.get_by_role("link", name="Workflows").click()
    pick(page, "Objective", "recurring revenue", f"Northwind Cloud: {objective}")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(objective)
    # Last cycle's revenue workflow left improvements: step 1 shows them.
    step1 = page.locator("#step-1")
    expect(step1.locator(".carry-over")).to_contain_text("Invite Engineering to the weekly")

    # Step 1: one sentence, not two.
    field(step1, "Shared purpose, in one sentence").fill("Win enterprise. Grow ARR.")
    field(step1, "Why it matters (business impact)").fill("Enterprise is a third of new ARR.")
    step1.get_by_role("button", name="Save purpose").click()
    expect(page.locator("#step-1")).to_contain_text("Keep it to one sentence")
    step1 = page.locator("#step-1")
    field(step1, "Shared purpose, in one sentence").fill(
        "Win enterprise customers together so that recurring revenue reaches $12M.")
    step1.get_by_role("button", name="Save purpose").click()
    expect(page.locator("#step-1 .missing")).not_to_contain_text("one sentence")

    # Step 2: three teams, one owner each. The form opens on demand and stays open after each.
    page.locator("#step-2").get_by_role("link", name="Add a team").click()
    for team, owner, role in (("Sales", "Mia Chen", "Lead"),
                              ("Engineering", "Ethan Brooks", "Contributor"),
                              ("Marketing", "Noah Fischer", "Contributor")):
        step2 = page.locator("#step-2")
        pick(step2, "Team", team, team)
        pick(step2, "Owner", owner.split()[0], owner, exact=False)
        field(step2, "Role").select_option(label=role)
        step2.get_by_role("button", name="Add team").click()
        expect(page.locator("#step-2 table")).to_contain_text(team)
    expect(page.get_by_test_id("step-2-state")).to_have_text("Done")
    page.locator("#step-1").get_by_role("button", name="Share with the team leads").click()
    expect(page.locator("#step-1")).to_contain_text("Shared with every stakeholder team")

    # Step 3: the kickoff, its agenda built from steps 1 and 2, and each team's commitment.
    step3 = page.locator("#step-3")
    expect(step3.locator(".agenda")).to_contain_text("Engineering (contributor, owner Ethan")
    today = timezone.localdate()
    step3.get_by_role("link", name="Plan the kickoff").click()
    expect(field(step3, "Kickoff date")).to_be_visible()
    field(step3, "Kickoff date").fill(today.isoformat())
    field(step3, "Notes").fill("Engineering ships SSO first; Sales runs three pilots.")
    step3.get_by_role("checkbox", name="Grow ARR from $8.4M to $12M (Northwind Cloud)",
                      exact=True).check()
    step3.get_by_role("button", name="Save kickoff").click()
    expect(page.locator("#step-3 .missing")).not_to_contain_text("Set the kickoff date")
    for team in ("Engineering", "Marketing", "Sales"):
        row = page.locator("#step-3 .commitments li").filter(has_text=team)
        row.get_by_label("Commit", exact=True).check()
        row.get_by_role("button", name=f"Answer for {team}").click()
        expect(page.get_by_test_id(f"commitment-{team.lower()}")).to_have_text("Committed")
    page.locator("#step-3").get_by_role("button", name="Close the kickoff").click()
    expect(page.get_by_test_id("step-3-state")).to_have_text("Done")

    # Step 4: one plan, with what waits on what.
    for title, team, days, waits in (("SSO for pilot prospects", "Engineering", 20, None),
                                     ("Three enterprise pilots", "Sales", 50,
                                      "SSO for pilot prospects")):
        step4 = page.locator("#step-4")
        step4.get_by_role("link", name="Add a milestone").click()
        field(step4, "Title").fill(title)
        pick(step4, "Owner team", team, team)
        field(step4, "Due").fill((today + timedelta(days=days)).isoformat())
        if waits:
            field(step4, "Needs another team's work").check()
            field(step4, "Waits on").select_option(label=waits)
        step4.get_by_role("button", name="Save milestone").click()
        expect(page.locator("#step-4 .plan-table")).to_contain_text(title)
    expect(page.get_by_test_id("step-4-state")).to_have_text("Done")
    expect(page.locator("#step-4 svg.gantt path.arrow")).to_have_count(1)

    page.get_by_role("link", name="Outputs").click()
    expect(page.get_by_test_id("output-purpose")).to_contain_text(
        "Win enterprise customers together")
    stakeholders = page.get_by_test_id("output-stakeholders")
    for team in ("Sales", "Engineering", "Marketing"):
        expect(stakeholders).to_contain_text(team)
    expect(page.get_by_test_id("output-plan")).to_contain_text("Three enterprise pilots")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "journey-workflow-outputs.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_copied_title_is_caught_in_review_rewritten_approved_and_published(
        page, live_server, demo_org):
    parent = "Reach $12M in annual recurring revenue"
    # The Engineering lead drafts an objective that only repeats its parent, and proposes it.
    sign_in(page, live_server, "ethan@northwind.example")
    page.get_by_role("link", name="Add objective").click()
    field(page, "Title").fill(parent)
    field(page, "Team").select_option(label="Engineering")
    pick(page, "Contributes to", parent, f"Northwind Cloud: {parent}")
    field(page, "State").select_option(label="Draft")
    page.get_by_role("button", name="Add objective").click()
    expect(page).to_have_url(re.compile(r"/o/northwind/objectives/\d+/$"))
    objective_url = page.url
    review = page.locator("#review")
    expect(review.get_by_test_id("objective-findings")).to_contain_text("repeats its parent")
    review.get_by_role("button", name="Propose for review").click()
    expect(page.locator("#review .tag.state-proposed")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    # The alignment lead sees the copy-paste finding in the queue and asks for changes.
    sign_in(page, live_server, "liam@northwind.example")
    page.get_by_role("link", name="Alignment", exact=True).click()
    page.get_by_role("link", name="Review queue").click()
    item = page.locator(".review-item").filter(has_text="Engineering")
    expect(item.locator(".findings")).to_contain_text("repeats its parent")
    item.get_by_label("Comment").fill("Say what Engineering changes so that ARR grows.")
    item.get_by_role("button", name="Request changes").click()
    expect(page.locator(".messages")).to_contain_text("Sent back to the team")
    page.get_by_role("button", name="Sign out").click()

    # The team lead reads the comment, rewrites and proposes again.
    sign_in(page, live_server, "ethan@northwind.example")
    page.goto(objective_url)
    expect(page.locator("#review .thread")).to_contain_text("Say what Engineering changes")
    page.goto(objective_url + "edit/")
    field(page, "Title").fill("Make enterprise deals possible with SSO and audit logs")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#review")).to_contain_text("No alignment issue found")
    page.locator("#review").get_by_role("button", name="Propose for review").click()
    page.get_by_role("button", name="Sign out").click()

    # The alignment lead approves and publishes the cycle.
    sign_in(page, live_server, "liam@northwind.example")
    page.goto(f"{live_server.url}/o/northwind/review/")
    item = page.locator(".review-item").filter(
        has_text="Make enterprise deals possible with SSO and audit logs")
    expect(item.locator(".findings")).to_have_count(0)
    item.get_by_role("button", name="Approve").click()
    expect(page.locator(".publish-bar")).to_contain_text("1 approved objective")
    page.get_by_role("button", name="Publish the cycle").click()
    expect(page.locator(".messages")).to_contain_text("Published 1 objective")
    page.goto(objective_url)
    expect(page.locator("#objective-summary .tag.state-published")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "journey-review.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_without_javascript_a_parent_is_found_and_chosen_with_the_find_button(
        browser, live_server, demo_org):
    context = browser.new_context(viewport={"width": 420, "height": 900},
                                  java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        sign_in(page, live_server, "ethan@northwind.example")
        page.goto(f"{live_server.url}/o/northwind/objectives/new/")
        field(page, "Title").fill("Make onboarding self-serve")
        field(page, "Team").select_option(label="Engineering")
        field(page, "Contributes to").fill("RECOMMEND")
        # Each picker has its own Find button; this one searches the main parent.
        page.locator('button[name="_find"][value="parent"]').click()
        # The form comes back with what was typed, and the matches as radio buttons.
        expect(field(page, "Title")).to_have_value("Make onboarding self-serve")
        page.get_by_role("radio", name=f"Northwind Cloud: {COMPANY_OBJECTIVE}").check()
        page.get_by_role("button", name="Add objective").click()
        expect(page).to_have_url(re.compile(r"/o/northwind/objectives/\d+/$"))
        expect(page.locator("nav.crumbs")).to_contain_text(COMPANY_OBJECTIVE)
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_an_admin_gives_a_member_teams_with_the_multi_picker(page, live_server, demo_org):
    """Teams are chips: the search adds one (keyboard only), Remove takes one out, Save keeps
    what the chips say. Screenshots at 1280 and 420 px wide."""
    from django_scopes import scopes_disabled

    from orgs.models import Membership

    with scopes_disabled():
        olivia = Membership.objects.get(organization__slug="northwind",
                                        user__email="olivia@northwind.example")
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ava@northwind.example")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    edit_url = f"{live_server.url}/o/northwind/console/members/{olivia.pk}/"
    page.goto(edit_url)
    chips = page.locator(".picker-chips .chip")
    expect(chips).to_have_count(0)
    for typed, name in (("platf", "Platform"), ("web", "Web App"), ("sal", "Sales")):
        field(page, "Teams").fill(typed)
        choice = page.get_by_role("button", name=name, exact=True)
        choice.focus()
        choice.press("Enter")
        expect(chips.filter(has_text=name)).to_be_visible()
    expect(chips).to_have_count(3)
    page.get_by_role("button", name="Remove Web App").press("Enter")
    expect(chips).to_have_count(2)
    expect(chips.filter(has_text="Web App")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "multi-picker-1280.png"), full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    field(page, "Teams").fill("mark")
    expect(page.get_by_role("button", name="Marketing", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "multi-picker-420.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{live_server.url}/o/northwind/console/members/")
    with scopes_disabled():
        assert set(olivia.teams.values_list("name", flat=True)) == {"Platform", "Sales"}
    page.goto(edit_url)
    expect(chips).to_have_count(2)
