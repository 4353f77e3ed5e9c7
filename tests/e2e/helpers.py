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
    """A search picker: type into its box, then choose the match (a button) with Enter."""
    field(scope, label).fill(typed)
    choice = scope.get_by_role("button", name=option, exact=exact)
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
