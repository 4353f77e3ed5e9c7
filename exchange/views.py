"""Downloads of a cycle (OKRs, check-ins, the alignment matrix) and the OKR import.

Every member may download what the cycle's pages show them; importing is for alignment leads
and org admins, into a cycle that is not closed."""

import secrets
import tempfile

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django_scopes import scope

from orgs.decorators import org_view
from orgs.models import Cycle
from orgs.permissions import can_publish

from . import export, importer

ERRORS_SHOWN = 200
ACTIONS_SHOWN = 100
UPLOAD_KEPT = 3600  # seconds between the dry run and the import


def _cycle(request, pk):
    cycle = Cycle.objects.for_org(request.org).filter(pk=pk).first()
    if cycle is None:
        raise Http404("No such cycle.")
    return cycle


def _filename(org, cycle, what, fmt):
    return f"{slugify(org.slug)}-{slugify(cycle.name) or cycle.pk}-{what}.{fmt}"


def _rows(org, cycle, what):
    if what == "okrs":
        return export.OKR_COLUMNS, export.okr_rows(org, cycle)
    if what == "check-ins":
        return export.CHECK_IN_COLUMNS, export.check_in_rows(org, cycle)
    rows = export.matrix_rows(org, cycle)
    return next(rows), rows


def _scoped(org, lines):
    """Rows are read while the response is sent, after the view has returned: the organization
    scope is opened again around them."""
    with scope(organization=org):
        yield from lines


@org_view
def download(request, cycle_pk, what, fmt):
    cycle = _cycle(request, cycle_pk)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    org = request.org
    name = _filename(org, cycle, what, fmt)
    if fmt == "csv":
        def lines():
            header, rows = _rows(org, cycle, what)
            yield from export.csv_lines(header, rows)

        response = StreamingHttpResponse(_scoped(org, lines()),
                                         content_type="text/csv; charset=utf-8")
    else:
        out = tempfile.TemporaryFile()
        header, rows = _rows(org, cycle, what)
        export.xlsx_file(out, what, header, rows)
        out.seek(0)
        response = FileResponse(out, content_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@org_view
def import_template(request, cycle_pk):
    """The import's template: the export's header row and one example row."""
    cycle = _cycle(request, cycle_pk)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    example = [["Product", "Make onboarding effortless", "New teams give up in week one.",
                "committed", "Company", "Grow revenue", "", "", "Activation rate", "numeric",
                "Product", "", "40", "60", "40", "%", "1", "on_track"]]
    response = StreamingHttpResponse(export.csv_lines(export.OKR_COLUMNS, example),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{_filename(request.org, cycle, "okrs-template", "csv")}"')
    return response


# Streamed files, not pages: the page benchmark (orgs/bench.py) leaves them out.
download.is_download = import_template.is_download = True


def _upload_key(request, token):
    return f"okr-import:{request.org.pk}:{request.user.pk}:{token}"


@org_view
def import_page(request, cycle_pk):
    """GET: the upload form. POST with a file: the dry run. POST with the dry run's token:
    the import, all or nothing."""
    cycle = _cycle(request, cycle_pk)
    if not can_publish(request.membership):
        raise PermissionDenied("Only alignment leads and org admins import OKRs.")
    context = {"cycle": cycle, "nav": "tree", "errors_shown": ERRORS_SHOWN,
               "actions_shown": ACTIONS_SHOWN}
    if request.method != "POST" or cycle.is_closed:
        return render(request, "exchange/import.html", context)
    token = request.POST.get("token", "")
    if token:
        data = cache.get(_upload_key(request, token)) if token.isalnum() else None
        if data is None:
            context["file_error"] = "That upload has expired. Upload the file again."
            return render(request, "exchange/import.html", context)
        apply = True
    else:
        upload = request.FILES.get("file")
        if upload is None:
            context["file_error"] = "Choose a CSV file to upload."
            return render(request, "exchange/import.html", context)
        if upload.size > importer.MAX_BYTES:
            context["file_error"] = "The file is larger than 1 MB; split it."
            return render(request, "exchange/import.html", context)
        upload.seek(0)  # a retried transaction reads it again
        data, apply = upload.read(), False
        context["filename"] = upload.name
    try:
        report = importer.run(membership=request.membership, cycle=cycle, data=data,
                              apply=apply)
    except importer.FileError as e:
        context["file_error"] = str(e)
        return render(request, "exchange/import.html", context)
    if report.applied:
        cache.delete(_upload_key(request, token))
        messages.success(request, _done_sentence(report))
        return redirect(f"{reverse('tree', args=[request.org.slug])}?cycle={cycle.pk}")
    if not report.errors and not apply:
        token = secrets.token_hex(16)
        cache.set(_upload_key(request, token), data, UPLOAD_KEPT)
        context["token"] = token
    context["report"] = report
    context["counts"] = {
        "objectives": report.count("Create the objective"),
        "key_results": report.count("Create the key result"),
        "updates": report.count("Update"), "check_ins": report.count("Check in")}
    return render(request, "exchange/import.html", context)


def _done_sentence(report):
    if not report.actions:
        return "Imported: nothing changed, the cycle already matches the file."
    return f"Imported: {len(report.actions)} change{'s' if len(report.actions) != 1 else ''}."
