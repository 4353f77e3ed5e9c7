"""Sign-in throttling: an account locks after a handful of failures from anywhere, an address
locks after more failures across accounts, the lock says how long it lasts and lifts after it,
and while it lasts even the right password is refused."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone

from orgs.signin import client_ip

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def sign_in(email, password, ip="10.0.0.1", client=None):
    client = client or Client()
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(response):
    return response.status_code == 302 and response["Location"] == "/"


def refused(response):
    """The ordinary wrong-password answer: the form again, not the lockout page."""
    return (response.status_code == 200
            and "enter a correct email" in response.content.decode().lower())


def locked(response):
    return (response.status_code == 429
            and "Signing in is paused" in response.content.decode())


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@a.test", full_name="Alice Admin")


def test_thirty_wrong_passwords_then_the_right_one_is_refused(alice):
    answers = [sign_in("alice@a.test", f"guess-{n}", ip=f"10.0.1.{n}") for n in range(30)]
    assert all(refused(r) for r in answers[:4])
    assert all(locked(r) for r in answers[4:])
    response = sign_in("alice@a.test", "password", ip="10.9.9.9")
    assert locked(response)
    assert "Try again in 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_an_account_locks_after_five_failures_from_different_addresses(alice, settings):
    for n in range(4):
        assert refused(sign_in("alice@a.test", "wrong", ip=f"10.0.2.{n}"))
    assert locked(sign_in("alice@a.test", "wrong", ip="10.0.2.99"))
    assert locked(sign_in("alice@a.test", "password", ip="192.168.7.7"))
    # Other accounts at the same addresses are not affected.
    UserFactory(email="bob@a.test")
    assert signed_in(sign_in("bob@a.test", "password", ip="10.0.2.1"))


def test_the_account_key_ignores_case_and_spaces(alice):
    for email in ["ALICE@A.TEST", " alice@a.test", "Alice@A.test ", "alice@a.TEST"]:
        assert refused(sign_in(email, "wrong", ip="10.0.3.1"))
    assert locked(sign_in("aLiCe@a.test", "wrong", ip="10.0.3.1"))
    assert locked(sign_in("alice@a.test", "password", ip="10.0.3.2"))
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {"alice@a.test"}


def test_an_address_locks_after_twenty_failures_across_accounts(alice):
    for n in range(19):
        assert refused(sign_in(f"nobody{n}@a.test", "wrong", ip="203.0.113.5"))
    assert locked(sign_in("nobody19@a.test", "wrong", ip="203.0.113.5"))
    # Locked for every account from that address, including the right password...
    assert locked(sign_in("alice@a.test", "password", ip="203.0.113.5"))
    # ...but not from elsewhere.
    assert signed_in(sign_in("alice@a.test", "password", ip="198.51.100.1"))


def test_the_lock_lifts_after_the_cool_off(alice):
    for _ in range(5):
        sign_in("alice@a.test", "wrong")
    assert locked(sign_in("alice@a.test", "password"))
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert signed_in(sign_in("alice@a.test", "password"))


def test_the_page_says_how_long_is_left(alice):
    for _ in range(5):
        sign_in("alice@a.test", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=10, seconds=5))
    response = sign_in("alice@a.test", "password")
    assert locked(response) and "Try again in 5 minutes." in response.content.decode()
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14, seconds=30))
    assert "Try again in 1 minute." in sign_in("alice@a.test", "wrong").content.decode()


def test_attempts_during_the_lock_do_not_extend_it(alice):
    for _ in range(5):
        sign_in("alice@a.test", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    for _ in range(3):
        assert locked(sign_in("alice@a.test", "wrong"))
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert signed_in(sign_in("alice@a.test", "password"))


def test_a_successful_sign_in_resets_the_account_count(alice):
    for _ in range(4):
        assert refused(sign_in("alice@a.test", "wrong"))
    assert signed_in(sign_in("alice@a.test", "password"))
    for _ in range(4):
        assert refused(sign_in("alice@a.test", "wrong"))
    assert locked(sign_in("alice@a.test", "wrong"))


def test_signing_in_to_ones_own_account_does_not_clear_guesses_at_another(alice):
    UserFactory(email="mallory@a.test")
    for _ in range(4):
        assert refused(sign_in("alice@a.test", "wrong", ip="198.51.100.66"))
    assert signed_in(sign_in("mallory@a.test", "password", ip="198.51.100.66"))
    assert locked(sign_in("alice@a.test", "wrong", ip="198.51.100.66"))


def test_signing_in_still_works_and_force_login_is_untouched(alice):
    assert signed_in(sign_in("Alice@A.test", "password"))
    client = Client()
    client.force_login(alice)
    assert client.get("/orgs/").status_code == 200
    assert not AccessAttempt.objects.exists()


def test_the_admin_sign_in_is_throttled_too(alice):
    alice.is_staff = True
    alice.save()
    for _ in range(5):
        Client().post("/django-admin/login/", {"username": "alice@a.test", "password": "x"},
                      REMOTE_ADDR="10.0.4.1")
    response = Client().post("/django-admin/login/", {"username": "alice@a.test",
                                                      "password": "password"})
    assert locked(response)


@pytest.mark.parametrize(("proxies", "remote", "forwarded", "expected"), [
    (0, "192.0.2.1", "", "192.0.2.1"),
    (0, "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # no proxy: a client's header is ignored
    (1, "172.18.0.2", "203.0.113.9", "203.0.113.9"),
    (1, "172.18.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the forged part is skipped
    (2, "172.18.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
    (2, "172.18.0.2", "203.0.113.9", "172.18.0.2"),  # fewer hops than configured
    (1, "172.18.0.2", "not-an-address", "172.18.0.2"),
    (1, "172.18.0.2", "2001:db8::1", "2001:db8::1"),
])
def test_the_client_address_behind_trusted_proxies(settings, proxies, remote, forwarded,
                                                   expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_ip(RequestFactory().get("/", **meta)) == expected


def test_one_forged_header_does_not_escape_an_address_lock(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(20):
        Client().post(LOGIN, {"username": f"nobody{n}@a.test", "password": "x"},
                      REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR=f"10.1.1.{n}, 203.0.113.5")
    response = Client().post(LOGIN, {"username": "alice@a.test", "password": "password"},
                             REMOTE_ADDR="172.18.0.2",
                             HTTP_X_FORWARDED_FOR="10.99.0.1, 203.0.113.5")
    assert locked(response)


def test_choosing_a_new_password_through_the_emailed_link_ends_the_pause(
        alice, django_capture_on_commit_callbacks):
    for _ in range(5):
        sign_in("alice@a.test", "wrong")
    page = sign_in("alice@a.test", "password")
    assert locked(page) and "/accounts/password-reset/" in page.content.decode()
    c = Client()
    with django_capture_on_commit_callbacks(execute=True):
        c.post("/accounts/password-reset/", {"email": "alice@a.test"})
    [message] = mail.outbox
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", message.body).group(1)
    form_url = c.get(link)["Location"]
    c.post(form_url, {"new_password1": "fresh-pass-phrase-9",
                      "new_password2": "fresh-pass-phrase-9"})
    assert signed_in(sign_in("alice@a.test", "fresh-pass-phrase-9"))


def test_a_bad_reset_link_does_not_end_the_pause(alice):
    for _ in range(5):
        sign_in("alice@a.test", "wrong")
    Client().post("/accounts/reset/MQ/bad-token/", {"new_password1": "fresh-pass-phrase-9",
                                                  "new_password2": "fresh-pass-phrase-9"})
    assert locked(sign_in("alice@a.test", "password"))
