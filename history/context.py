"""Who is acting: read from a context variable, never passed through the services.

``RequestActorMiddleware`` puts the request there; the actor is read from it only when a change
is recorded, so a ``request.user`` (or ``request.auth``) set later, by the API's token
authentication for instance, is seen. Celery tasks act as "system" (``connect_celery``);
anything else can say who acts with ``acting_as``.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_request = ContextVar("history_request", default=None)
_actor = ContextVar("history_actor", default=None)
_paused = ContextVar("history_paused", default=False)


@dataclass(frozen=True)
class Actor:
    kind: str  # one of Change.ActorKind
    label: str
    user_id: int | None = None


SYSTEM = Actor("system", "system")


def person(user):
    return Actor("person", user.display_name, user.pk)


class RequestActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def acting_as(actor):
    """Record the changes made inside as ``actor`` (an ``Actor``, or a user)."""
    token = _actor.set(actor if isinstance(actor, Actor) else person(actor))
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def paused():
    """Record nothing inside (generating a test organization, loading the demo)."""
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def is_paused():
    return _paused.get()


def _token_name(request):
    token = getattr(request, "api_token", None)
    if token is None:
        auth = getattr(request, "auth", None)
        if auth is not None and hasattr(auth, "name") and not hasattr(auth, "email"):
            token = auth
    return getattr(token, "name", None)


def current_actor():
    actor = _actor.get()
    if actor is not None:
        return actor
    request = _request.get()
    if request is None:
        return SYSTEM
    token_name = _token_name(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if token_name:
            return Actor("api", f"{user.display_name} (API token {token_name})", user.pk)
        return person(user)
    if token_name:
        return Actor("api", f"API token {token_name}")
    return SYSTEM


def connect_celery():
    """A task acts as "system", also when it runs eagerly inside a request."""
    from celery.signals import task_postrun, task_prerun

    tokens = {}

    def start(task_id=None, **kwargs):
        tokens[task_id] = _actor.set(SYSTEM)

    def end(task_id=None, **kwargs):
        token = tokens.pop(task_id, None)
        if token is not None:
            try:
                _actor.reset(token)
            except ValueError:  # reset from another context: leave it
                _actor.set(None)

    task_prerun.connect(start, weak=False, dispatch_uid="history_task_start")
    task_postrun.connect(end, weak=False, dispatch_uid="history_task_end")
