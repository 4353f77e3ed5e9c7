"""Many wrong passwords at the same moment, as from several gunicorn workers: every one is
answered (no 500 from two workers counting the same failure), the count lands in the shared
database, and the right password afterwards is refused. PostgreSQL only (CI)."""

import threading

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.db.models import Sum
from django.test import Client

from ..factories import UserFactory

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def test_simultaneous_wrong_passwords_are_all_counted_and_lock_the_account(db):
    UserFactory(email="alice@a.test")
    barrier = threading.Barrier(12)
    codes = []

    def guess(n):
        try:
            client = Client(raise_request_exception=False)
            barrier.wait(10)
            codes.append(client.post("/accounts/login/", {
                "username": "alice@a.test", "password": f"guess-{n}"},
                REMOTE_ADDR="203.0.113.7").status_code)
        except Exception as e:  # reported by the assertion below
            codes.append(f"raised {type(e).__name__}: {e}")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(codes) == 12 and set(codes) <= {200, 429}, codes
    assert AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"] >= 5
    response = Client().post("/accounts/login/", {"username": "alice@a.test",
                                                  "password": "password"},
                             REMOTE_ADDR="198.51.100.3")
    assert response.status_code == 429
