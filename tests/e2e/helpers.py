"""What the browser journeys share: the demo's password, where screenshots go, signing in, and
finding form controls and pickers the way a person does (by their label)."""

import re
from pathlib import Path

from playwright.sync_api import expect

PASSWORD = "northwind-demo"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def field(scope, label):
    """A form control by its exact label. Required fields' labels end with " *", and a regex
    is matched against the label's raw text, whitespace included."""
    return scope.get_by_label(re.compile(rf"^\s*{re.escape(label)}(\s*\*)?\s*$"))


def pick(scope, label, typed, option, *, exact=True):
    """A search picker: type into its box, then choose the match (a button) with Enter. If the
    match does not come, the box is typed into once more: an htmx swap of the form that lands
    just after the typing (the answer to the last save, on a loaded machine) replaces the box
    and what was typed in it, so no search was ever asked for."""
    choice = scope.get_by_role("button", name=option, exact=exact)
    for attempt in range(2):
        box = field(scope, label)
        box.fill("")  # a search fires on a changed value: the same text again would not
        box.fill(typed)
        try:
            expect(choice).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            if attempt:
                raise
    choice.focus()
    choice.press("Enter")
    expect(scope.locator(".picker-chosen", has_text=option)).to_be_visible()


def sign_in(page, live_server, email):
    """Sign in as a demo person who belongs to the demo organization only: the root sends them
    straight to its home page."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")
