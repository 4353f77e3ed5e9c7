"""The code version (``network.code_version``) that a run's fingerprint, the cycle's saved
state and the rules' inputs digest carry covers exactly ``network.COMPUTING_MODULES``: a
deploy that touches only views, forms, templates, admin, emails, tests or migrations keeps
every saved state and stored unit, and one that touches what a run executes or the models it
queries gives a new version. The guard below runs every kind of run under ``sys.monitoring``
and fails when a file of the project whose code ran, or whose models a run queried, is in
neither that list nor ``network.DELIVERY_MODULES`` (what only delivers what a run decided)."""

import ast
import inspect
import random
import re
import shutil
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import django
import pytest
from django.apps import apps
from django.conf import settings
from django.db import connections
from django_scopes import scope

from alignment.models import FindingsReport, RuleUnits
from dependencies import network
from dependencies.models import NetworkState, Notification
from okrs.models import KeyResult
from tests.dependencies import test_snapshot
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    CHANGES,
    MORE_CHANGES,
    _check_in,
    _delete_dependency,
    _end_dependency,
    _new_dependency,
    _start_dependency,
    at,
    built_with_risks_above,
    run,
)

pytestmark = pytest.mark.django_db
# The restart tests' fixture: counts the runs that read a saved state back.
restored = test_snapshot.restored

ROOT = Path(settings.BASE_DIR).resolve()


@contextmanager
def code_that_ran():
    """The files of the functions that started while inside (each function reported once:
    its event is then disabled, so the run goes at nearly full speed), and the SQL run."""
    mon = sys.monitoring
    tool = next(t for t in range(6) if mon.get_tool(t) is None)
    files, queries = set(), set()

    def started(code, offset):
        files.add(code.co_filename)
        return mon.DISABLE

    def recorded(execute, sql, params, many, context):
        queries.add(sql)
        return execute(sql, params, many, context)

    mon.use_tool_id(tool, "code version guard")
    try:
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(recorded))
            mon.register_callback(tool, mon.events.PY_START, started)
            mon.set_events(tool, mon.events.PY_START)
            mon.restart_events()
            yield files, queries
    finally:
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)


def _project_file(path):
    """``path`` relative to the project's root, or None for a file outside it (Python,
    Django, the virtualenv) or a test's."""
    if not Path(path).is_absolute():  # "<string>", "<frozen abc>": no file
        return None
    try:
        name = Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    return None if name.startswith((".venv/", "tests/")) else name


def _models_queried(queries):
    """The project files that define the models whose tables the SQL names."""
    text = "\n".join(queries)
    found = set()
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        if re.search(rf'(?<![\w]){re.escape(table)}(?![\w])', text):
            found.add(_project_file(inspect.getfile(model)))
    return found - {None}


def not_covered(files, queries, covered):
    """The project files whose code ran or whose models were queried, outside ``covered``."""
    needed = {_project_file(f) for f in files} | _models_queried(queries)
    return sorted(needed - {None} - set(covered))


def _sso_slips(r, rng):
    """SSO turns off track, then back: the deals that depend on it turn at risk because of
    other work, and their owner is alerted (notifications, an email queued, a chat event)."""
    sso = KeyResult.objects.get(pk=r.sso.pk)
    KeyResult.objects.filter(pk=sso.pk).update(
        confidence="on_track" if sso.confidence == "off_track" else "off_track")


def test_every_file_a_run_executes_or_queries_the_models_of_is_in_the_code_version(
        revenue, restored):
    """From nothing, warm after every kind of change, after a restart (the saved state read
    back) and from nothing again, rules included: every file of the project that ran, and every
    one whose models were queried, is in ``COMPUTING_MODULES`` or ``DELIVERY_MODULES``; each
    one listed is needed."""
    r = revenue
    rng = random.Random(7)
    built_with_risks_above(r, 240, 7, rng)
    network.forget()
    run(r, at())  # unwatched: imports what a run imports lazily (an import runs whole modules)
    network.forget()
    changes = [*MORE_CHANGES, *CHANGES, _end_dependency, _start_dependency, _new_dependency,
               _new_dependency, _delete_dependency, _sso_slips, _sso_slips]
    files, queries = set(), set()

    def watched(now):
        with code_that_ran() as (ran, sql):
            outcome = run(r, now)
        files.update(ran)
        queries.update(sql)
        return outcome

    watched(at())  # from nothing: no saved state, no units
    for step, change in enumerate(changes):
        with scope(organization=r.org):
            change(r, rng)  # the change's own code is not a run's: unwatched
        now = at(minutes=2 * step + 1)
        watched(now)  # warm: from what this process kept
        with scope(organization=r.org):
            _check_in(r, rng)  # so that the restart's run has something to do
        network.forget(saved=False)
        watched(now)  # a restart: the saved state read back
        after = stored(r)
        network.forget()  # from nothing again, as ``run_from_scratch_stores`` does
        with scope(organization=r.org):
            NetworkState.objects.filter(cycle=r.cycle).update(fingerprint="")
            FindingsReport.objects.filter(cycle=r.cycle).update(inputs="")
            RuleUnits.objects.filter(cycle=r.cycle).delete()
        assert watched(now).changed == 0, change.__name__
        assert stored(r) == after, change.__name__
    assert restored["restored"] == len(changes), restored  # each restart read the state back
    with code_that_ran() as (ran, sql):
        network.save_kept()  # a worker that stops saves what it keeps
    files.update(ran)
    queries.update(sql)
    with scope(organization=r.org):
        assert Notification.objects.filter(user=r.mia).exists()  # the alerts too were watched
    listed = {*network.COMPUTING_MODULES, *network.DELIVERY_MODULES}
    missing = not_covered(files, queries, listed)
    assert not missing, ("ran or queried by a run, in neither network.COMPUTING_MODULES nor "
                         f"network.DELIVERY_MODULES: {missing}")
    # The guard fails when any module is taken off the lists: none is there for nothing.
    for name in sorted(listed):
        assert not_covered(files, queries, listed - {name}) == [name]


# What the computing modules import and a run does not run: each one says why it cannot change
# what a run computes. A new import into a computing module must be listed or said here.
IMPORTED_NOT_RUN = {
    "orgs/trees.py": "the tree ids of a new tree and the trees' constraints: a run makes none",
    "orgs/validation.py": "the models' choice constraints (the migrations') and the forms' checks",
    "dependencies/kinds.py": "each kind's words, for pages and emails: propagation treats every "
                             "kind alike",
    "okrs/sections.py": "the pages that show a written row, for their caches' versions",
}


def _imported(name):
    """The project files that the module at ``name`` imports, at its top or in a function."""
    path = ROOT / name
    package = name.removesuffix(".py").split("/")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            base = ".".join([*base, *([node.module] if node.module else [])])
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for module in modules:
            for candidate in (f"{module.replace('.', '/')}.py",
                              f"{module.replace('.', '/')}/__init__.py"):
                if _project_file(ROOT / candidate) and (ROOT / candidate).is_file():
                    found.add(candidate)
    return {name for name in found if not name.endswith("__init__.py")}


def test_every_file_a_computing_module_imports_is_listed_or_said_why_not():
    """What a run reads but does not call (constants, a model's choices) escapes the guard
    above: the computing modules' imports are held to the lists, or to a reason."""
    listed = {*network.COMPUTING_MODULES, *network.DELIVERY_MODULES, *IMPORTED_NOT_RUN}
    unlisted = sorted({(name, imported) for name in network.COMPUTING_MODULES
                       for imported in _imported(name) if imported not in listed})
    assert not unlisted, f"imported by a computing module, not listed: {unlisted}"
    assert not set(IMPORTED_NOT_RUN) & {*network.COMPUTING_MODULES, *network.DELIVERY_MODULES}


@pytest.fixture
def copy_of_the_code(tmp_path, monkeypatch):
    """The listed modules and a few that are not, copied under ``tmp_path``, which
    ``_code_version`` then reads as the project's root."""
    names = [*network.COMPUTING_MODULES, "okrs/views.py", "dependencies/forms.py",
             "alignment/admin.py", "nudges/mail.py", "dependencies/tasks.py",
             "okrs/migrations/0019_key_result_carried_from.py"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    monkeypatch.setattr(network, "__file__", str(tmp_path / "dependencies" / "network.py"))
    return tmp_path


@pytest.mark.parametrize("name", ["okrs/views.py", "dependencies/forms.py", "alignment/admin.py",
                                  "nudges/mail.py", "dependencies/tasks.py",
                                  "okrs/migrations/0019_key_result_carried_from.py"])
def test_a_deploy_that_touches_no_computing_module_keeps_the_version(copy_of_the_code, name):
    before = network._code_version()
    with open(copy_of_the_code / name, "a") as source:
        source.write("\n# changed by a deploy\n")
    assert network._code_version() == before


@pytest.mark.parametrize("name", network.COMPUTING_MODULES)
def test_a_deploy_that_touches_a_computing_module_gives_a_new_version(copy_of_the_code, name):
    before = network._code_version()
    with open(copy_of_the_code / name, "a") as source:
        source.write("\n# changed by a deploy\n")
    assert network._code_version() != before


def test_another_python_or_django_gives_a_new_version(copy_of_the_code, monkeypatch):
    before = network._code_version()
    monkeypatch.setattr(django, "get_version", lambda: "0.0")
    assert network._code_version() != before
    monkeypatch.undo()
    monkeypatch.setattr(sys, "version", "2.7.18")
    assert network._code_version() != before


def test_the_version_is_read_once_per_process(monkeypatch):
    """``code_version`` is on every run's path (the fingerprint): the files are read once."""
    network.code_version()
    monkeypatch.setattr(network, "_code_version", lambda: pytest.fail("read again"))
    assert network.code_version() == network._CODE_VERSION
