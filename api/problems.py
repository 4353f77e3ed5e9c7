"""Every error under /api/ is ``application/problem+json`` (RFC 9457): ``type``, ``title``,
``status``, ``detail``, and for a refused input ``errors`` by field (the services' own
messages)."""

import json
from http import HTTPStatus

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"


def problem(status, detail="", *, errors=None, headers=None):
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail or HTTPStatus(status).description}
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def validation_errors(exc):
    """A Django ValidationError as ``(detail, {field: [messages]})``; messages not tied to a
    field are under ``"__all__"``."""
    if hasattr(exc, "error_dict"):
        errors = {field: [m for e in errs for m in e.messages]
                  for field, errs in exc.error_dict.items()}
    else:
        errors = {"__all__": list(exc.messages)}
    messages = [m for ms in errors.values() for m in ms]
    return " ".join(messages), errors


def pydantic_errors(errors):
    """ninja's input errors (pydantic's ``loc``/``msg``) as ``{field: [messages]}``."""
    out = {}
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path",
                                                                  "data", "filters", "paging")]
        out.setdefault(".".join(loc) or "__all__", []).append(error.get("msg", "Invalid."))
    return out


class ProblemMiddleware:
    """Whatever answers an error under /api/ (a URL that does not exist, a method not allowed,
    a failed CSRF check, a crash), the client gets problem+json, never an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith("/api/") and response.status_code >= 400
                and not response.get("Content-Type", "").startswith(CONTENT_TYPE)):
            replaced = problem(response.status_code, _detail(response))
            for name in ("Allow", "Retry-After", "WWW-Authenticate"):
                if name in response:
                    replaced[name] = response[name]
            return replaced
        return response


def _detail(response):
    if response.status_code == 404:
        return "There is nothing at this address."
    if response.status_code == 405:
        return f"This address takes {response.get('Allow', 'other methods')}."
    if response.status_code == 403:
        return "The request was refused (for a session, send the CSRF token in X-CSRFToken)."
    return ""
