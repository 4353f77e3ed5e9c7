"""Pickers over objectives, key results, teams and people: a search field, never a <select> of
the whole organization.

A form field keeps its queryset (that is what validates the chosen id: it must belong to the
organization and follow the form's rules) and takes a ``PickerWidget``: a hidden input with the
chosen id, the chosen label, and a search box. With JavaScript the box asks an htmx endpoint
below (``/o/<org>/pick/<kind>/?q=...``) for at most ``LIMIT`` matches, shown as buttons; without
it, a "Find" button submits the form by GET and the form comes back with the matches as radio
buttons (``find_data`` and ``PickerFormMixin``).

Each kind's ``base`` queryset takes the same parameters as the form's rules (cycle, the objective
whose subtree is excluded, the team left out...), so the matches offered are the choices the
form accepts. Every id in the parameters is looked up inside the organization: another
organization's id answers 404.
"""

from django import forms
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.template import loader
from django.urls import path, reverse
from django.utils.http import urlencode

from .decorators import org_view

LIMIT = 20
COUNT_UP_TO = 500  # beyond this many more matches the line says "500+ more"
FIND = "_find"  # the GET parameter that names the picker whose "Find" button was pressed
DROP = "_drop"  # "<field>:<id>": a multi picker's chip removed without JavaScript


def _words(q):
    return [w for w in (q or "").split() if w][:6]


def _int(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 2**62 else None


def _scoped(model, org, pk):
    """The organization's row with this id, or 404 (also for another organization's id)."""
    obj = model.objects.for_org(org).filter(pk=pk).first() if _int(pk) else None
    if obj is None:
        raise Http404("No such row in this organization.")
    return obj


# --- kinds -------------------------------------------------------------------------------------

def objectives(org, *, cycle=None, exclude=None, above_teams=False, **_):
    """Live objectives of a cycle; with ``exclude``, not that objective nor its subtree (a parent
    cannot be its own descendant); with ``above_teams``, only company and department ones (what
    a workflow starts from)."""
    from okrs.models import Objective

    from .models import Team

    qs = Objective.objects.for_org(org).live().select_related("team")
    if cycle is not None:
        qs = qs.filter(cycle=cycle)
    if above_teams:
        qs = qs.exclude(team__kind=Team.Kind.TEAM)
    if exclude is not None:
        qs = qs.exclude(tree_id=exclude.tree_id, lft__gte=exclude.lft, rght__lte=exclude.rght)
    return qs.order_by("team__level", "team__name", "title", "pk")


def key_results(org, *, cycle=None, exclude=None, **_):
    """Key results of a cycle whose objective is not retired; ``exclude``: that key result."""
    from okrs.models import KeyResult, Objective

    # The objective's organization too: PostgreSQL then reads this organization's objectives
    # by index instead of scanning every organization's.
    qs = (KeyResult.objects.for_org(org).filter(objective__organization=org)
          .exclude(objective__state=Objective.State.RETIRED)
          .select_related("owner_team", "objective"))
    if cycle is not None:
        qs = qs.filter(objective__cycle=cycle)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.order_by("owner_team__name", "title", "pk")


def teams(org, *, exclude=None, no_company=False, **_):
    from .models import Team

    qs = Team.objects.for_org(org)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    if no_company:
        qs = qs.exclude(kind=Team.Kind.COMPANY)
    return qs.order_by("name", "pk")


def people(org, **_):
    from .models import Membership, User

    return (User.objects.filter(pk__in=Membership.objects.for_org(org).values("user_id"))
            .order_by("full_name", "email", "pk"))


def dependencies(org, *, cycle=None, **_):
    """Dependencies of a cycle that are not withdrawn (what a workflow milestone can cite)."""
    from dependencies.models import Dependency

    qs = (Dependency.objects.for_org(org).exclude(status=Dependency.Status.WITHDRAWN)
          .select_related("requesting_team", "providing_team"))
    if cycle is not None:
        qs = qs.filter(cycle=cycle)
    return qs.order_by("requesting_team__name", "providing_team__name", "need", "pk")


def dependency_label(d):
    return f"{d.requesting_team.name} needs {d.providing_team.name}: {d.need}"


def objective_label(o):
    return f"{o.team.name}: {o.title}"


def key_result_label(k):
    return f"{k.owner_team.name}: {k.title}"


def team_label(t):
    return t.name


def person_label(u):
    return u.display_name if not u.full_name else f"{u.full_name} ({u.email})"


TEAM_BATCH = 8  # teams read per step when the first page is read team by team


def first_by_team(org, qs, team_field, n, team_order=("name",), first_batch=1):
    """The first ``n`` rows of ``qs``, whose order starts with ``<team_field>__<team_order>``
    (ending with the team's name, unique in its organization), read a batch of teams at a time
    in that order, so that an empty search sorts a few teams' rows instead of the whole
    organization's (PostgreSQL: 47 -> 3 ms for 10,000 key results). Same rows, same order as
    ``qs[:n]``. The first batch is ``first_batch`` times ``TEAM_BATCH`` teams."""
    from .models import Team

    teams = Team.objects.for_org(org).order_by(*team_order).values_list("pk", flat=True)
    rows, start, size = [], 0, TEAM_BATCH * first_batch
    while len(rows) < n:
        batch = list(teams[start:start + size])
        if batch:
            rows += qs.filter(**{f"{team_field}__in": batch})[:n - len(rows)]
        if len(batch) < size:
            break
        start, size = start + size, size * 4
    return rows


class Kind:
    def __init__(self, name, base, label, fields, params, team_field=None,
                 team_order=("name",), first_batch=1):
        self.name, self.base, self.label, self.fields, self.params = (
            name, base, label, fields, params)
        # The base's order starts with this field's team, in ``team_order``: an empty search's
        # first page is then read team by team (first_by_team).
        self.team_field, self.team_order, self.first_batch = team_field, team_order, first_batch

    def first(self, org, qs, q, n):
        if self.team_field and not _words(q):
            return first_by_team(org, qs, self.team_field, n, self.team_order, self.first_batch)
        return list(qs[:n])

    def matching(self, qs, q):
        for word in _words(q):
            cond = Q()
            for f in self.fields:
                cond |= Q(**{f"{f}__icontains": word})
            qs = qs.filter(cond)
        return qs

    def search(self, org, q, params):
        """(value, label) pairs of at most LIMIT matches, and how many more there are."""
        qs = self.matching(self.base(org, **params), q)
        rows = self.first(org, qs, q, LIMIT + 1)
        more = 0
        if len(rows) > LIMIT:
            rows = rows[:LIMIT]
            more = qs.order_by()[:LIMIT + COUNT_UP_TO].count() - LIMIT  # no sort to count
        return [(str(r.pk), self.label(r)) for r in rows], more

    def label_of(self, org, value, params):
        pk = _int(value)
        obj = self.base(org, **params).filter(pk=pk).first() if pk else None
        return self.label(obj) if obj is not None else None

    def labels_of(self, org, values, params):
        """(value, label) of the given ids that are choices, in the kind's order: one query."""
        pks = {pk for pk in map(_int, values) if pk}
        if not pks:
            return []
        return [(str(r.pk), self.label(r))
                for r in self.base(org, **params).filter(pk__in=pks)]

    def parse(self, org, get):
        """The kind's parameters from a query string; an id of another organization is 404."""
        return {name: parse(org, get[name]) for name, parse in self.params.items()
                if get.get(name)}


def _cycle(org, pk):
    from .models import Cycle

    return _scoped(Cycle, org, pk)


def _objective(org, pk):
    from okrs.models import Objective

    return _scoped(Objective, org, pk)


def _key_result(org, pk):
    from okrs.models import KeyResult

    return _scoped(KeyResult, org, pk)


def _team(org, pk):
    from .models import Team

    return _scoped(Team, org, pk)


def _flag(org, value):
    return value == "1"


KINDS = {
    "objectives": Kind("objectives", objectives, objective_label, ["title", "team__name"],
                       {"cycle": _cycle, "exclude": _objective, "above_teams": _flag},
                       # The company and its departments come first, with their objectives:
                       # 40 teams in the first batch find a page in two queries.
                       team_field="team", team_order=("level", "name"), first_batch=5),
    "key-results": Kind("key-results", key_results, key_result_label,
                        ["title", "owner_team__name"], {"cycle": _cycle, "exclude": _key_result},
                        team_field="owner_team"),
    "teams": Kind("teams", teams, team_label, ["name"],
                  {"exclude": _team, "no_company": _flag}),
    "people": Kind("people", people, person_label, ["full_name", "email"], {}),
    "dependencies": Kind("dependencies", dependencies, dependency_label,
                         ["need", "requesting_team__name", "providing_team__name"],
                         {"cycle": _cycle}, team_field="requesting_team"),
}


class NodeKind:
    """Objectives and key results of a cycle together, as "o:12" / "k:34" (a dependency's
    upstream end), leaving out one team's own."""

    name = "nodes"
    params = {"cycle": _cycle, "exclude_team": _team}

    def _bases(self, org, cycle=None, exclude_team=None, **_):
        objs = objectives(org, cycle=cycle)
        krs = key_results(org, cycle=cycle)
        if exclude_team is not None:
            objs = objs.exclude(team=exclude_team)
            krs = krs.exclude(owner_team=exclude_team)
        return objs, krs

    @staticmethod
    def _label(kind, row):
        if kind == "o":
            return f"Objective: {row.title} ({row.team.name})"
        return f"Key result: {row.title} ({row.owner_team.name}, of “{row.objective.title}”)"

    def search(self, org, q, params):
        objs, krs = self._bases(org, **params)
        objs, krs = KINDS["objectives"].matching(objs, q), KINDS["key-results"].matching(krs, q)
        found = [("o", r) for r in objs[:LIMIT + 1]]
        if len(found) <= LIMIT:
            found += [("k", r) for r in KINDS["key-results"].first(org, krs, q,
                                                                  LIMIT + 1 - len(found))]
        more = 0
        if len(found) > LIMIT:
            found = found[:LIMIT]
            more = min(objs.order_by()[:LIMIT + COUNT_UP_TO].count()
                       + krs.order_by()[:LIMIT + COUNT_UP_TO].count() - LIMIT, COUNT_UP_TO)
        return [(f"{k}:{r.pk}", self._label(k, r)) for k, r in found], more

    def label_of(self, org, value, params):
        kind, _, pk = str(value or "").partition(":")
        if kind not in ("o", "k") or not _int(pk):
            return None
        objs, krs = self._bases(org, **params)
        row = (objs if kind == "o" else krs).filter(pk=pk).first()
        return self._label(kind, row) if row is not None else None

    def parse(self, org, get):
        return Kind.parse(self, org, get)


KINDS["nodes"] = NodeKind()


# --- the widget and the forms that use it -------------------------------------------------------

class PickerWidget(forms.Widget):
    template_name = "_picker.html"

    def __init__(self, *, org, kind, params=None, empty_label="", attrs=None):
        super().__init__(attrs)
        self.org, self.kind, self.params = org, KINDS[kind], params or {}
        self.empty_label = empty_label
        self.results = None  # the no-JavaScript "Find" path fills these in
        self.more = 0
        self.query = ""

    def search_url(self, name):
        query = {"name": name}
        for key, value in self.params.items():
            if value is True:
                query[key] = "1"
            elif value is not None and value is not False:
                query[key] = value.pk
        return reverse(f"pick_{self.kind.name.replace('-', '_')}",
                       args=[self.org.slug]) + "?" + urlencode(query)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        value = "" if value is None else str(value)
        label = self.kind.label_of(self.org, value, self.params) if value else None
        context["picker"] = {
            "url": self.search_url(name), "value": value if label else "",
            "label": label or self.empty_label, "empty_label": self.empty_label,
            "query": self.query, "results": self.results, "more": self.more,
            "count_up_to": COUNT_UP_TO,
            "find": FIND, "kind": self.kind.name,
        }
        return context

    def render(self, name, value, attrs=None, renderer=None):
        # The project's template engine: the widget template lives in templates/.
        return loader.render_to_string(self.template_name,
                                       self.get_context(name, value, attrs))

    def value_from_datadict(self, data, files, name):
        # Hidden input first, then the chosen radio of a "Find" (no JavaScript): the last wins.
        return data.get(name)


class MultiPickerWidget(PickerWidget):
    """Several values: each chosen one is a chip (a hidden input and a "Remove" button); the
    search adds one. Without JavaScript, "Find" shows the matches as checkboxes and a chip's
    "Remove" posts the form with ``_drop=<field>:<id>``: both come back unsaved."""

    template_name = "_picker_multi.html"
    allow_multiple_selected = True

    def format_value(self, value):
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [str(getattr(v, "pk", v)) for v in value if v not in (None, "")]

    def get_context(self, name, value, attrs):
        context = forms.Widget.get_context(self, name, value, attrs)
        chosen = self.kind.labels_of(self.org, context["widget"]["value"], self.params)
        taken = {v for v, _ in chosen}
        results = (None if self.results is None
                   else [(v, label) for v, label in self.results if v not in taken])
        context["picker"] = {
            "url": self.search_url(name), "chosen": chosen, "query": self.query,
            "results": results, "more": self.more, "count_up_to": COUNT_UP_TO,
            "find": FIND, "drop": DROP, "kind": self.kind.name, "multi": True,
        }
        return context

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        drop = data.get(DROP, "")
        field, _, pk = drop.partition(":")
        if field == name:
            values = [v for v in values or [] if v != pk]
        return values

    def value_omitted_from_data(self, data, files, name):
        return False  # no chip left means none chosen, not "field left out"


def use_multi_picker(field, *, org, kind, params=None):
    """Give ``field`` (a multiple choice field whose queryset validates) a multi-value search
    picker instead of a checkbox list or a <select multiple>."""
    widget = MultiPickerWidget(org=org, kind=kind, params=params)
    widget.is_required = field.required
    field.widget = widget
    return field


def use_picker(field, *, org, kind, params=None, empty_label=None):
    """Give ``field`` (a choice field whose queryset or clean method validates) a search
    picker instead of a <select>."""
    if empty_label is None:
        empty_label = getattr(field, "empty_label", None) or "(none)"
    widget = PickerWidget(org=org, kind=kind, params=params, empty_label=empty_label)
    widget.is_required = field.required
    field.widget = widget
    return field


class PickerFormMixin:
    """A form whose data carries ``_find=<field>`` is a search, not a submission: it shows the
    matches for that field's query as radio buttons and does not validate (so no error shows)."""

    _found = False

    def __getitem__(self, name):
        # After the subclass's __init__ has given its fields their pickers: the first time a
        # field is rendered, the searched one gets its matches.
        if not self._found:
            self._found = True
            finding = self.data.get(FIND) if self.is_finding else None
            field = self.fields.get(finding) if finding else None
            if field is not None and isinstance(field.widget, PickerWidget):
                widget = field.widget
                widget.query = self.data.get(f"{self.add_prefix(finding)}_q", "")[:100]
                widget.results, widget.more = widget.kind.search(widget.org, widget.query,
                                                                 widget.params)
        return super().__getitem__(name)

    @property
    def is_finding(self):
        return self.is_bound and (FIND in self.data or DROP in self.data)

    def full_clean(self):
        if self.is_finding:
            self._errors = forms.utils.ErrorDict()
            self.cleaned_data = {}
            return
        super().full_clean()

    def is_valid(self):
        return not self.is_finding and super().is_valid()


def find_data(request):
    """The data a form page binds: the POST (a save, or a "Find" without JavaScript, which posts
    so that the form's CSRF token never lands in a URL), a "Find" link's query, or None."""
    if request.method == "POST":
        return request.POST
    if FIND in request.GET:
        return request.GET
    return None


# --- the endpoints ------------------------------------------------------------------------------

def _pick_view(kind_name):
    kind = KINDS[kind_name]

    @org_view
    def pick(request):
        params = kind.parse(request.org, request.GET)
        name = request.GET.get("name", "")[:60]
        q = request.GET.get("q", request.GET.get(f"{name}_q", ""))[:100]
        results, more = kind.search(request.org, q, params)
        return render(request, "_picker.html#results", {
            "picker": {"results": results, "more": more, "query": q, "buttons": True,
                       "count_up_to": COUNT_UP_TO},
            "widget": {"name": name},
        })

    pick.__name__ = pick.__qualname__ = f"pick_{kind_name.replace('-', '_')}"
    return pick


urlpatterns = [
    path(f"pick/{name}/", _pick_view(name), name=f"pick_{name.replace('-', '_')}")
    for name in ("objectives", "key-results", "nodes", "teams", "people", "dependencies")
]
