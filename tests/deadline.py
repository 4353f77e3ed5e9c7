"""Run a request in a thread with a deadline, so a request that waits when it should not (on a
hung broker, on a held recompute) fails its test instead of hanging the suite."""

import threading
import time

from django.db import connection


def within(seconds, call, *, what="the request"):
    """``(response, elapsed seconds)`` of ``call()`` run in a thread; fails the test when it has
    not returned after ``seconds``, and re-raises what it raised."""
    box = {}

    def run():
        try:
            box["response"] = call()
        except BaseException as e:  # handed to the test below
            box["error"] = e
        finally:
            connection.close()

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"{what} still waits after {elapsed:.0f} s"
    if "error" in box:
        raise box["error"]
    return box["response"], elapsed
