"""Every log line says which organization and which object it concerns, when that is known.

``ContextFilter`` (wired in ``settings.LOGGING``) gives each record ``org`` and ``obj``, from the
first source that knows them:

1. ``extra={"org": ..., "obj": ...}`` passed by the caller;
2. the request of a ``django.request`` record (a 500 or a 4xx): the organization's slug from the
   URL, and the URL's ids as the object ("key_result 12");
3. the organization of the open django-scopes scope (views, tasks and commands open one);
4. inside a Celery task, its arguments: ``cycle_id`` names "cycle 12" at once; for a warning or
   an error outside any scope, the cycle's organization is looked up (once per run).

Celery's ``task_failure`` and ``task_retry`` signals log the task, its arguments and its
organization (looked up from the ids the task takes: ``cycle_id`` is a Cycle, ``digest_id`` a
Digest, and so on for any model; ``ARGUMENT_MODELS`` names the others).
"""

import contextlib
import inspect
import logging
from contextvars import ContextVar

from celery import signals
from django_scopes import get_scope, scopes_disabled

log = logging.getLogger("config.tasks")

# Inside a task's run: {"org", "obj", and while the organization is not looked up yet, "task",
# "args", "kwargs"}; None elsewhere.
_context = ContextVar("log_context", default=None)
UNKNOWN = "-"


def _slug(org):
    return getattr(org, "slug", None) or (str(org) if org else None)


def _from_request(request):
    org = getattr(request, "org", None)
    match = getattr(request, "resolver_match", None)
    kwargs = dict(match.kwargs) if match else {}
    slug = _slug(org) or kwargs.get("org_slug")
    # The URL's ids, "key_result 12"; other URL parts (a signed token) stay out of the logs.
    ids = [f"{k.removesuffix('_pk')} {v}" for k, v in kwargs.items() if k.endswith("pk")]
    return slug, ", ".join(ids) or None


class ContextFilter(logging.Filter):
    """Adds ``org`` and ``obj`` to every record; never drops one."""

    def filter(self, record):
        org = getattr(record, "org", None)
        obj = getattr(record, "obj", None)
        try:
            request = getattr(record, "request", None)
            if request is not None and hasattr(request, "path"):
                req_org, req_obj = _from_request(request)
                org, obj = org or req_org, obj or req_obj
            if not org:
                org = _slug(get_scope().get("organization"))
            context = _context.get()
            if context:
                if not org and not context["org"] and record.levelno >= logging.WARNING:
                    _resolve_task_org(context)
                org, obj = org or _slug(context["org"]), obj or context["obj"]
        except Exception:  # a log line must never fail because of its decoration
            pass
        record.org = _slug(org) or UNKNOWN
        record.obj = obj or UNKNOWN
        return True


# Celery tasks ---------------------------------------------------------------------------------

# Task arguments whose name does not say their model.
ARGUMENT_MODELS = {"email_id": "nudges.OutboundEmail", "org_id": "orgs.Organization"}


def _model_for(param):
    """``digest_id`` -> Digest, ``cycle_id`` -> Cycle, ``email_id`` -> OutboundEmail."""
    from django.apps import apps

    if param in ARGUMENT_MODELS:
        try:
            return apps.get_model(ARGUMENT_MODELS[param])
        except LookupError:
            return None
    name = param.removesuffix("_id").replace("_", "")
    found = [m for m in apps.get_models() if m._meta.model_name == name]
    return found[0] if len(found) == 1 else None


def _named_args(task, args, kwargs):
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    return bound.arguments


def task_object(task, args, kwargs):
    """The first ``<model>_id`` argument of a task, as ``(model, pk)``; or ``(None, None)``."""
    for param, value in _named_args(task, args, kwargs).items():
        if param.endswith("_id") and isinstance(value, int):
            model = _model_for(param)
            if model is not None:
                return model, value
    return None, None


def task_context(task, args, kwargs):
    """``(org_slug, "model pk")`` for a task's arguments, looked up in the database. Used only
    when a task fails, so a normal run costs no query."""
    model, pk = task_object(task, args, kwargs)
    if model is None:
        return None, None
    label = f"{model._meta.model_name} {pk}"
    try:
        with scopes_disabled():
            if model._meta.label == "orgs.Organization":
                org = model.objects.filter(pk=pk).values_list("slug", flat=True).first()
            elif any(f.name == "organization" for f in model._meta.get_fields()):
                org = (model.objects.filter(pk=pk)
                       .values_list("organization__slug", flat=True).first())
            else:
                org = None
    except Exception:  # the database may be what failed
        org = None
    return org, label


_resolving = ContextVar("log_resolving", default=False)


def _resolve_task_org(context):
    """A warning or an error inside a task, outside any scope: look the organization up from
    the task's arguments, once per run (a normal run logs no warning and costs no query)."""
    task = context.get("task")
    if task is None or _resolving.get():
        return
    token = _resolving.set(True)
    try:
        context["org"], _ = task_context(task, context["args"], context["kwargs"])
        context["task"] = None  # looked up, found or not
    finally:
        _resolving.reset(token)


@signals.task_prerun.connect
def _enter_task(task=None, args=None, kwargs=None, **_):
    # The object is known from the arguments without a query; the organization, when a line
    # is logged inside a scope, from the scope.
    if task is None:
        return
    model, pk = task_object(task, args, kwargs)
    obj = f"{model._meta.model_name} {pk}" if model is not None else None
    task.request.log_context_token = _context.set(
        {"org": None, "obj": obj, "task": task if model is not None else None,
         "args": args, "kwargs": kwargs})


@signals.task_postrun.connect
def _leave_task(task=None, **_):
    token = getattr(task.request, "log_context_token", None)
    if token is not None:
        with contextlib.suppress(ValueError):
            _context.reset(token)


LONG_ARG = 80


def loggable_args(args, kwargs):
    """A task's arguments for a log line. Long texts (an email's body, with its sign-in or
    invitation link) are shown by their length only: a log is no place for a token."""
    def short(value):
        if isinstance(value, str) and len(value) > LONG_ARG:
            return f"<text, {len(value)} chars>"
        return repr(value)

    parts = [short(v) for v in args or ()]
    parts += [f"{k}={short(v)}" for k, v in (kwargs or {}).items()]
    return "[" + ", ".join(parts) + "]"


def log_task_failure(task, task_id, args, kwargs, exc, *, where="worker",
                     with_traceback=False):
    """One ERROR line for a task that failed for good: its name, arguments, organization and
    object. On a worker Celery logs the traceback just after; in-process, pass it here."""
    org, obj = task_context(task, args, kwargs)
    context = _context.get()
    if context is not None and not context["org"]:
        context["org"] = org  # so Celery's own line with the traceback, next, names it too
    log.error("Task %s[%s] failed (%s): %s: %s; args=%s", task.name, task_id or "-",
              where, type(exc).__name__, exc, loggable_args(args, kwargs),
              exc_info=exc if with_traceback else None, extra={"org": org, "obj": obj})


@signals.task_failure.connect
def _task_failed(sender=None, task_id=None, exception=None, args=None, kwargs=None, **_):
    log_task_failure(sender, task_id, args, kwargs, exception)


@signals.task_retry.connect
def _task_retried(sender=None, request=None, reason=None, **_):
    org, obj = task_context(sender, request.args, request.kwargs)
    log.warning("Task %s[%s] will retry: %s; args=%s", sender.name, request.id, reason,
                loggable_args(request.args, request.kwargs), extra={"org": org, "obj": obj})


@signals.setup_logging.connect
def _keep_django_logging(loglevel=None, **_):
    """The worker and beat keep Django's LOGGING (it was applied by django.setup()); their
    ``-l`` level still applies to the root logger."""
    import django

    django.setup()  # idempotent; applies settings.LOGGING if it was not yet
    if loglevel:
        logging.getLogger().setLevel(loglevel)
