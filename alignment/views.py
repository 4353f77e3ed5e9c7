from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.forms import ModelMultipleChoiceField
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timesince import timesince

from okrs import selectors as okr_selectors
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.forms import apply_errors
from orgs.pickers import find_data
from retros.models import Improvement

from . import forms, selectors, services
from .models import Milestone, Stakeholder, StatusUpdate, Workflow


def _workflow(request, pk):
    workflow = (Workflow.objects.for_org(request.org)
                .select_related("organization", "cycle", "objective__team", "lead",
                                "signed_off_by")
                .prefetch_related(Prefetch("stakeholders", queryset=Stakeholder.objects.for_org(
                    request.org).select_related("team__lead", "owner")))
                .filter(pk=pk).first())
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def _child(model, wf, pk, **filters):
    row = model.objects.for_org(wf.organization).filter(pk=pk, **filters).first()
    if row is None:
        raise ValidationError("That item is not part of this workflow.")
    return row


@org_view
def workflow_list(request):
    cycles = okr_selectors.cycles_for(request.org)
    cycle = okr_selectors.pick_cycle(cycles, request.GET.get("cycle"))
    can_run = services.can_run(request.membership)
    form = None
    if cycle is not None and can_run:
        objectives = services.candidate_objectives(request.membership, cycle)
        form = forms.StartForm(find_data(request), objectives=objectives, cycle=cycle)
        if request.method == "POST" and form.is_valid():
            try:
                workflow = services.start_workflow(membership=request.membership,
                                                   objective=form.cleaned_data["objective"])
            except ValidationError as e:
                apply_errors(form, e)
            else:
                return redirect("workflow", request.org.slug, workflow.pk)
    elif request.method == "POST":
        raise PermissionDenied("Only the alignment lead and org admins start a workflow.")
    return render(request, "alignment/workflows.html", {
        "cycles": cycles, "cycle": cycle, "nav": "workflows", "form": form,
        "workflows": selectors.workflows_for(request.org, cycle) if cycle else []})


def _own_rows(form, workflow):
    """Keep a workflow form's choices to the workflow's own rows: success measures among the
    key results of its teams (the objective's team and the stakeholders'), dependencies
    between those teams, and whatever it already holds; never every row of the cycle."""
    teams = {workflow.objective.team_id} | {s.team_id for s in workflow.stakeholders.all()}
    field = form.fields.get("success_measures")
    if isinstance(field, ModelMultipleChoiceField):
        field.queryset = field.queryset.filter(
            Q(owner_team_id__in=teams) | Q(objective__team_id__in=teams)
            | Q(pk__in=workflow.success_measures.values("pk"))).distinct()
    field = form.fields.get("dependencies")
    if isinstance(field, ModelMultipleChoiceField):
        field.queryset = field.queryset.filter(
            Q(requesting_team_id__in=teams, providing_team_id__in=teams)
            | Q(milestones__workflow=workflow)).distinct()
    return form


def _editing_pk(request):
    pk = request.GET.get("milestone", "")
    return pk if pk.isdigit() and len(pk) <= 18 else None


def _editing(request, workflow):
    """The milestone ``?milestone=<pk>`` asks to edit, if it is one of this plan's."""
    pk = _editing_pk(request)
    if pk is None:
        return None
    return (Milestone.objects.for_org(request.org).filter(workflow=workflow, pk=pk)
            .prefetch_related("waits_on", "dependencies").first())


def _milestone_initial(request, workflow):
    m = _editing(request, workflow)
    if m is None:
        return {}
    return {"milestone": m.pk, "title": m.title, "owner_team": m.owner_team_id,
            "start_date": m.start_date, "due_date": m.due_date, "cross_team": m.cross_team,
            "waits_on": [w.pk for w in m.waits_on.all()],
            "dependencies": [d.pk for d in m.dependencies.all()]}


# Forms the page opens only when asked (``?form=<name>``: a link without JavaScript, the form
# alone with htmx), each with the step it belongs to. The rest are always on the page: the
# purpose, the update (team leads post there) and the retrospective, plain text fields.
ON_DEMAND = {"stakeholder": 2, "kickoff": 3, "milestone": 4, "plan_lead": 4, "cadence": 5,
             "improvement": 7}


def asked_form(request):
    name = request.GET.get("form", "")
    return name if name in ON_DEMAND else None


def _forms(request, workflow, bound=None, *, retro, only=None):
    """The page's forms: those always shown, the one ``?form=`` asks for, the milestone being
    edited (``?milestone=``) and ``bound`` (a form that came back with errors); with ``only``,
    that form alone."""
    org = request.org
    makers = {
        "purpose": lambda: forms.PurposeForm(initial={"purpose": workflow.purpose,
                                                      "impact": workflow.impact}),
        "stakeholder": lambda: forms.StakeholderForm(org=org),
        "kickoff": lambda: _own_rows(forms.KickoffForm(workflow=workflow, initial={
            "kickoff_date": workflow.kickoff_date, "notes": workflow.kickoff_notes,
            "success_measures": list(workflow.success_measures.values_list("pk", flat=True))}),
            workflow),
        "milestone": lambda: _milestone_form(request, workflow),
        "plan_lead": lambda: forms.PlanLeadForm(org=org, initial={"lead": workflow.lead_id}),
        "cadence": lambda: forms.CadenceForm(initial={
            "frequency": workflow.sync_frequency, "weekday": workflow.sync_weekday,
            "time": workflow.sync_time, "sync_format": workflow.sync_format,
            "dashboard_url": workflow.dashboard_url, "async_updates": workflow.async_updates}),
        "update": lambda: forms.UpdateForm(workflow=workflow),
        "retro": lambda: forms.RetroForm(initial={
            "what_worked": retro.what_worked if retro else "",
            "friction": retro.friction if retro else "",
            "share_company_wide": retro.share_company_wide if retro else False}),
        "improvement": lambda: forms.ImprovementForm(org=org),
    }
    wanted = {"purpose", "update", "retro", asked_form(request)}
    if _editing_pk(request):
        wanted.add("milestone")
    if only is not None:
        wanted = {only}
    made = {name: makers[name]() for name in makers if name in wanted}
    made.update(bound or {})
    return made


def _milestone_form(request, workflow):
    form = _own_rows(forms.MilestoneForm(workflow=workflow,
                                         initial=_milestone_initial(request, workflow)),
                     workflow)
    editing = form.initial.get("milestone")
    if editing:  # a milestone cannot wait on itself: do not offer it
        field = form.fields["waits_on"]
        field.queryset = field.queryset.exclude(pk=editing)
    return form


def _on_demand(request, workflow, name):
    """The form ``?form=<name>`` asks for, alone: what an htmx click on its button swaps in."""
    if not services.can_run(request.membership) or workflow.is_closed:
        raise PermissionDenied("Only the alignment lead and org admins run this workflow.")
    return render(request, "alignment/workflow.html#on_demand", {
        "workflow": workflow, "name": name, "can_run": True, **_urls(request, workflow),
        "forms": _forms(request, workflow, retro=None, only=name)})


def _urls(request, workflow):
    """The page's own address and where its forms post, reversed once: the page has about
    thirty forms."""
    args = [request.org.slug, workflow.pk]
    return {"page_url": reverse("workflow", args=args),
            "act_url": reverse("workflow_act", args=args)}


def _page(request, workflow, bound=None, status=200):
    ctx = selectors.cached_workflow_page(request.org, workflow)
    membership = request.membership
    ctx.update({
        "workflow": workflow, "nav": "workflows", **_urls(request, workflow),
        "forms": _forms(request, workflow, bound, retro=ctx["retro"]),
        "can_run": services.can_run(membership) and not workflow.is_closed,
        "can_sign_off": services.can_sign_off(membership),
        "sign_off_people": list(services.sign_off_people(request.org)[:SIGN_OFF_NAMES + 1]),
        "sign_off_request": (asked := services.last_sign_off_request(workflow)
                             if not workflow.signed_off_at else None),
        "sign_off_asked_lately": asked is not None and services.is_fresh(asked, workflow),
        "answerable": {s.pk for s in ctx["stakeholders"]
                       if services.answers_for(membership, workflow, s.team_id)},
    })
    for m in ctx["milestones"]:
        m.can_update = services.answers_for(membership, workflow, m.owner_team_id) \
            if m.owner_team_id else services.can_run(membership)
    form = ctx["forms"].get("milestone")
    editing = form["milestone"].value() if form is not None else None
    ctx["plan_actions"] = not workflow.is_closed
    ctx["editing_milestone"] = next((m for m in ctx["milestones"]
                                     if str(m.pk) == str(editing)), None) if editing else None
    return render(request, "alignment/workflow.html", ctx, status=status)


@org_view
def workflow_detail(request, workflow_pk):
    workflow = _workflow(request, workflow_pk)
    name = asked_form(request)
    if name and request.htmx and request.htmx.target == f"form-{name}":
        return _on_demand(request, workflow, name)
    return _page(request, workflow)


SIGN_OFF_NAMES = 8  # leadership named on the page; more are counted


def _request_sign_off(request, workflow):
    asked, created = services.request_sign_off(membership=request.membership, workflow=workflow)
    if not created:
        raise ValidationError(f"Sign-off was already asked, {timesince(asked.created_at)} ago; "
                              "you can ask again tomorrow, or after changing the purpose.")
    people = [m.user.display_name for m in services.sign_off_people(request.org)
              .exclude(user=request.user)[:SIGN_OFF_NAMES]]
    names = (", ".join(people[:-1]) + " and " + people[-1]) if len(people) > 1 else people[0]
    if asked.recipients > len(people):
        names = f"the {asked.recipients} people of leadership"
    messages.success(request, f"Asked {names} to sign off.")
    return asked


# Each action: (form name, form factory, service call, the step it belongs to).
def _actions(request, workflow):
    m, org = request.membership, request.org

    def stakeholder(data):
        return _child(Stakeholder, workflow, data["stakeholder"], workflow=workflow)

    def milestone(data):
        return _child(Milestone, workflow, data["milestone"], workflow=workflow)

    return {
        "purpose": (lambda p: forms.PurposeForm(p), lambda d: services.save_purpose(
            membership=m, workflow=workflow, purpose=d["purpose"], impact=d["impact"]), 1),
        "sign_off": (None, lambda d: services.sign_off(membership=m, workflow=workflow), 1),
        "request_sign_off": (None, lambda d: _request_sign_off(request, workflow), 1),
        "share": (None, lambda d: services.share_purpose(membership=m, workflow=workflow), 1),
        "stakeholder": (lambda p: forms.StakeholderForm(p, org=org),
                        lambda d: services.add_stakeholder(
                            membership=m, workflow=workflow, team=d["team"], owner=d["owner"],
                            role=d["role"]), 2),
        "remove_stakeholder": (lambda p: forms.StakeholderRefForm(p),
                               lambda d: services.remove_stakeholder(
                                   membership=m, stakeholder=stakeholder(d)), 2),
        "kickoff": (lambda p: _own_rows(forms.KickoffForm(p, workflow=workflow), workflow),
                    lambda d: services.save_kickoff(
                        membership=m, workflow=workflow, kickoff_date=d["kickoff_date"],
                        notes=d["notes"], success_measures=d["success_measures"]), 3),
        "commitment": (lambda p: forms.CommitmentForm(p), lambda d: services.set_commitment(
            membership=m, stakeholder=stakeholder(d), commitment=d["commitment"],
            note=d["note"]), 3),
        "resolve": (lambda p: forms.ResolveForm(p), lambda d: services.resolve_escalation(
            membership=m, stakeholder=stakeholder(d), note=d["note"]), 3),
        "close_kickoff": (None, lambda d: services.close_kickoff(membership=m,
                                                                 workflow=workflow), 3),
        "milestone": (lambda p: _own_rows(forms.MilestoneForm(p, workflow=workflow), workflow),
                      lambda d: services.save_milestone(
                          membership=m, workflow=workflow,
                          milestone=milestone(d) if d["milestone"] else None, title=d["title"],
                          owner_team=d["owner_team"], start_date=d["start_date"],
                          due_date=d["due_date"], cross_team=d["cross_team"],
                          waits_on=list(d["waits_on"]), dependencies=list(d["dependencies"])),
                      4),
        "plan_lead": (lambda p: forms.PlanLeadForm(p, org=org), lambda d: services.set_plan_lead(
            membership=m, workflow=workflow, lead=d["lead"]), 4),
        "milestone_done": (lambda p: forms.MilestoneRefForm(p), lambda d: services.milestone_done(
            membership=m, milestone=milestone(d), done=d["done"]), 6),
        "delete_milestone": (lambda p: forms.MilestoneRefForm(p),
                             lambda d: services.delete_milestone(membership=m,
                                                                 milestone=milestone(d)), 4),
        "revisited": (lambda p: forms.MilestoneRefForm(p),
                      lambda d: services.milestone_revisited(membership=m,
                                                             milestone=milestone(d)), 6),
        "cadence": (lambda p: forms.CadenceForm(p), lambda d: services.save_cadence(
            membership=m, workflow=workflow, frequency=d["frequency"], weekday=d["weekday"],
            time=d["time"], sync_format=d["sync_format"], dashboard_url=d["dashboard_url"],
            async_updates=d["async_updates"]), 5),
        "update": (lambda p: forms.UpdateForm(p, workflow=workflow), lambda d: services.post_update(
            membership=m, workflow=workflow, team=d["team"], text=d["text"],
            is_blocker=d["is_blocker"]), 6),
        "escalate": (lambda p: forms.UpdateRefForm(p), lambda d: services.escalate_blocker(
            membership=m, update=_child(StatusUpdate, workflow, d["update"], workflow=workflow)),
                     6),
        "resolve_blocker": (lambda p: forms.UpdateRefForm(p), lambda d: services.resolve_blocker(
            membership=m, update=_child(StatusUpdate, workflow, d["update"], workflow=workflow)),
                            6),
        "override": (lambda p: forms.OverrideForm(p), lambda d: services.override_step(
            membership=m, workflow=workflow, step=d["step"], reason=d["reason"]), None),
        "clear_override": (lambda p: forms.OverrideForm(p), lambda d: services.clear_override(
            membership=m, workflow=workflow, step=d["step"]), None),
        "retro": (lambda p: forms.RetroForm(p), lambda d: services.save_retro(
            membership=m, workflow=workflow, what_worked=d["what_worked"],
            friction=d["friction"], share_company_wide=d["share_company_wide"]), 7),
        "improvement": (lambda p: forms.ImprovementForm(p, org=org),
                        lambda d: services.add_improvement(
                            membership=m, workflow=workflow, title=d["title"], owner=d["owner"]),
                        7),
        "improvement_status": (lambda p: forms.ImprovementStatusForm(p),
                               lambda d: services.set_improvement_status(
                                   membership=m, improvement=_child(
                                       Improvement, workflow, d["improvement"],
                                       retrospective__workflow=workflow),
                                   status=d["status"]), 7),
    }


@org_view
def workflow_act(request, workflow_pk):
    """Every change of the stepper posts here with an ``action``; the page comes back with the
    step re-rendered (htmx picks the stepper out of it) or with the form's errors."""
    workflow = _workflow(request, workflow_pk)
    if request.method == "GET" and request.GET.get("action") in ASK_FIRST:
        return ASK_FIRST[request.GET["action"]](request, workflow)
    if (refused := post_only(request)) is not None:
        return refused
    actions = _actions(request, workflow)
    name = request.POST.get("action", "")
    if name not in actions:
        return HttpResponse("Unknown action.", status=400)
    make_form, call, step = actions[name]
    form = make_form(request.POST) if make_form else None
    if form is not None and not form.is_valid():
        return _page(request, workflow, {name: form})
    if name in ASK_FIRST and not is_confirmed(request):
        return ask_first(request, fields=("action", *(form.fields if form else ())))
    try:
        call(form.cleaned_data if form is not None else {})
    except ValidationError as e:
        if form is None or name not in _forms_with_fields():
            messages.error(request, " ".join(e.messages))
            return _page(request, workflow)
        apply_errors(form, e)
        return _page(request, workflow, {name: form})
    anchor = f"#step-{step}" if step else ""
    if name in KEEP_OPEN:  # the next team or improvement is one more form away, not two
        anchor = f"?form={name}#form-{name}"
    return redirect(reverse("workflow", args=[request.org.slug, workflow.pk]) + anchor)


# Forms that stay open after a save: one adds teams or improvements one after the other.
KEEP_OPEN = {"stakeholder", "improvement"}


def _confirm_stakeholder_removal(request, workflow):
    if not services.can_run(request.membership):
        raise PermissionDenied("Only the alignment lead and org admins run this workflow.")
    st = (Stakeholder.objects.for_org(request.org).select_related("team")
          .filter(workflow=workflow, pk=_int(request.GET.get("stakeholder"))).first())
    if st is None:
        raise Http404("No such stakeholder in this workflow.")
    return confirm_page(
        request, question=f"Remove {st.team.name} from this workflow?",
        consequence=f"{st.team.name} and its commitment ({st.get_commitment_display().lower()}) "
                    "leave the workflow. You can add the team again later.",
        action=request.path, button="Remove", fields={"action": "remove_stakeholder",
                                                       "stakeholder": st.pk},
        cancel=reverse("workflow", args=[request.org.slug, workflow.pk]) + "#step-2")


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _confirm_milestone_deletion(request, workflow):
    m = (Milestone.objects.for_org(request.org)
         .filter(workflow=workflow, pk=_int(request.GET.get("milestone"))).first())
    if m is None:
        raise Http404("No such milestone in this workflow.")
    if not services.plans_milestone(request.membership, m):
        raise PermissionDenied("You can delete milestones only of your own team.")
    return confirm_page(
        request, question=f"Delete the milestone “{m.title}”?",
        consequence="It leaves the plan, and the milestones that wait on it are flagged for "
                    "their owners to revisit.",
        action=request.path, button="Delete milestone",
        fields={"action": "delete_milestone", "milestone": m.pk},
        cancel=reverse("workflow", args=[request.org.slug, workflow.pk]) + "#step-4")


# Actions that ask first: the page that asks, for a GET of workflow_act with ?action=<name>.
ASK_FIRST = {"remove_stakeholder": _confirm_stakeholder_removal,
             "delete_milestone": _confirm_milestone_deletion}


def _forms_with_fields():
    return {"purpose", "stakeholder", "kickoff", "milestone", "plan_lead", "cadence", "update",
            "retro", "improvement"}


@org_view
def workflow_outputs(request, workflow_pk):
    workflow = _workflow(request, workflow_pk)
    ctx = selectors.cached_workflow_page(request.org, workflow)
    ctx.update({"workflow": workflow, "nav": "workflows"})
    return render(request, "alignment/outputs.html", ctx)


@org_view
def workflow_outputs_markdown(request, workflow_pk):
    workflow = _workflow(request, workflow_pk)
    ctx = selectors.cached_workflow_page(request.org, workflow)
    ctx.update({"workflow": workflow})
    text = render_to_string("alignment/outputs.md", ctx, request=request)
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="alignment-{workflow.pk}.md"'
    return response


@org_view
def learnings(request):
    return render(request, "alignment/learnings.html", {
        "retros": selectors.learnings(request.org), "nav": "workflows"})
