"""Brokers that fail, for tests: a TCP server that accepts and never answers (a hung Redis), a
closed port, and a way to point the real Celery app at them and back."""

import contextlib
import socket
import threading

from orgs import tasks


class HungBroker:
    """Accepts TCP connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.accepted = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.running = False
        self.thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def forget_connections(app):
    # The app keeps its pools of broker connections and producers for the URL it first used;
    # drop them (not close: kombu keeps each pool by URL and would hand the closed one back).
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def pointing_celery():
    """Yields ``point(url)``: the real Celery app (production settings) with eager mode off,
    publishing to ``url``. Everything is put back afterwards, so other tests see the app as it
    was (the autouse ``_tasks_in_process`` fixture restores eager mode)."""
    from config.celery import app

    before = app.conf.broker_url

    def point(url):
        app.conf.task_always_eager = False
        app.conf.broker_url = url
        forget_connections(app)
        tasks.reset_broker_skip()

    try:
        yield point
    finally:
        app.conf.broker_url = before
        forget_connections(app)
        tasks.reset_broker_skip()
