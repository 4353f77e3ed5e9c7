"""A believable demo organization. Idempotent: a second run changes nothing."""

from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_scopes import scope

from alignment import services as workflow_services
from alignment.models import Milestone, StatusUpdate, Workflow
from dependencies import network
from dependencies import services as network_services
from dependencies.models import Dependency, DependencyEvent
from okrs import services
from okrs import strategy as strategy_services
from okrs.models import KeyResult, Objective, ObjectiveClose, Perspective
from okrs.strategy import create_default_perspectives
from orgs.models import Cycle, Membership, Organization, Role, Team

User = get_user_model()
PASSWORD = "northwind-demo"
SLUG = "northwind"

PEOPLE = [  # email, name, role, team they lead or belong to
    ("ava@northwind.example", "Ava Thompson", Role.ADMIN, "Northwind Cloud"),
    ("liam@northwind.example", "Liam Okafor", Role.ALIGNMENT_LEAD, None),
    ("priya@northwind.example", "Priya Raman", Role.TEAM_LEAD, "Product"),
    ("ethan@northwind.example", "Ethan Brooks", Role.TEAM_LEAD, "Engineering"),
    ("sofia@northwind.example", "Sofia Alvarez", Role.TEAM_LEAD, "Customer Success"),
    ("noah@northwind.example", "Noah Fischer", Role.TEAM_LEAD, "Marketing"),
    ("mia@northwind.example", "Mia Chen", Role.TEAM_LEAD, "Sales"),
    ("lucas@northwind.example", "Lucas Martin", Role.MEMBER, "Platform"),
    ("olivia@northwind.example", "Olivia Berg", Role.VIEWER, None),
]

UNITS = [  # name, kind, type, parent, lead email, charter, scorecard (KPIS below)
    ("Northwind Cloud", "company", "product", None, "ava", "", []),
    ("Product", "department", "product", "Northwind Cloud", "priya",
     "Decides what we build and why, from what customers tell us and what the data shows.",
     [("In-app NPS", "", "higher", 50, 40, [44, 47, 49, 52, 53]),
      ("Weekly active teams", "teams", "higher", 4000, 3500, [3650, 3720, 3810, 3900, 3870])]),
    ("Engineering", "department", "enabling", "Northwind Cloud", "ethan",
     "Builds and runs the platform. We own reliability, speed and the developer experience "
     "of every other team.",
     [("Uptime", "%", "higher", 99.95, 99.9, [99.97, 99.96, 99.98, 99.95, 99.97]),
      ("p95 page load", "s", "lower", 1, 1.5, [1.3, 1.1, 0.95, 0.9, 0.88])]),
    ("Platform", "team", "enabling", "Engineering", "ethan",
     "Keeps the infrastructure boring: deploys, databases, on-call.",
     [("Pages per week", "pages", "lower", 10, 15, [14, 12, 9, 8, 11]),
      ("Deploys per day", "deploys", "higher", 20, 12, [15, 18, 21, 22, 24])]),
    ("Web App", "team", "product", "Engineering", "ethan",
     "Owns the browser app customers use every day.",
     [("Core Web Vitals pass rate", "%", "higher", 90, 80, [82, 85, 88, 90, 91])]),
    ("Customer Success", "department", "shared", "Northwind Cloud", "sofia",
     "Makes customers successful after the sale: onboarding, support, renewals.",
     [("First response", "h", "lower", 4, 8, [6, 5, 4.5, 3.8, 3.5]),
      ("Gross retention", "%", "higher", 92, 88, [90, 89, 88, 87.5, 87])]),
    ("Marketing", "department", "product", "Northwind Cloud", "noah",
     "Creates demand and tells the story of the product.",
     [("MQLs per month", "MQLs", "higher", 900, 700, [760, 820, 870, 910, 930])]),
    ("Sales", "department", "product", "Northwind Cloud", "mia",
     "Turns qualified demand into customers, with a focus on enterprise accounts.",
     [("Win rate", "%", "higher", 28, 22, [24, 25, 23, 26, 27]),
      ("Pipeline coverage", "x", "higher", 3, 2.5, [2.6, 2.8, 3.1, 3.0, 3.2])]),
]

# key: (team, title, parent key or None, local?, why, [KRs])
# KR: (title, start, target, unit, profile, owner team or None) with start None = milestone
OBJECTIVES = [
    ("csat", "Northwind Cloud", "Become the product customers recommend first", None, False,
     "Referrals bring our cheapest and most loyal customers; they only come when customers "
     "love the product and the service around it.",
     [("Raise NPS from 31 to 50", 31, 50, "", "on", None),
      ("Cut churned accounts per quarter from 40 to 20", 40, 20, "accounts", "risk", None),
      ("Lift support satisfaction from 80 to 92", 80, 92, "%", "on", None)]),
    ("arr", "Northwind Cloud", "Reach $12M in annual recurring revenue", None, False,
     "Twelve million keeps us default-alive and funds the platform work planned for next year.",
     [("Grow ARR from $8.4M to $12M", 8.4, 12, "$M", "risk", None),
      ("Win 12 new enterprise customers", 0, 12, "customers", "off", None),
      ("Keep net revenue retention above 110%", 102, 110, "%", "on", None)]),
    ("product", "Product", "Deliver a product experience users love", "csat", False,
     "Most detractors cite friction in everyday workflows, not missing features.",
     [("Increase in-app NPS from 35 to 55", 35, 55, "", "on", None),
      ("Reduce critical bugs per month from 12 to 3", 12, 3, "bugs", "risk", None),
      ("Launch the 3 most-requested features", 0, 3, "features", "on", None)]),
    ("eng", "Engineering", "Make the platform fast and dependable", "csat", False,
     "Outages and slow pages are the top two reasons in churn interviews.",
     [("Achieve 99.95% uptime (from 99.5%)", 99.5, 99.95, "%", "on", None),
      ("Bring p95 page load from 2.4 s to 1.0 s", 2.4, 1.0, "s", "risk", None),
      ("Real-time sync across web and mobile", None, None, "", "off", None)]),
    ("platform", "Platform", "Harden the infrastructure for enterprise load", "eng", False,
     "Enterprise customers bring 10x the data per account.",
     [("Database failover under 30 s", 180, 30, "s", "on", None),
      ("Load-test at 5x current peak", 1, 5, "x", "on", None),
      ("Zero-downtime deploys for all services", 40, 100, "%", "risk", None)]),
    ("toil", "Platform", "Pay down on-call toil", None, True,
     "Tired engineers make outages longer. A team priority with no parent, on purpose.",
     [("Cut pages per week from 30 to 10", 30, 10, "pages", "on", None),
      ("Runbooks for every alert", 40, 100, "%", "stale", None),
      ("Automate the 5 most common manual fixes", 0, 5, "fixes", "on", None)]),
    ("web", "Web App", "Halve page load times in the web app", "eng", False,
     "Speed is the feature customers notice first.",
     [("Core Web Vitals pass rate from 55% to 90%", 55, 90, "%", "risk", None),
      ("Ship the new bundle pipeline", None, None, "", "on", None),
      ("Cut JS payload from 1.8 MB to 0.9 MB", 1.8, 0.9, "MB", "on", None)]),
    ("cs", "Customer Success", "Resolve customer issues quickly and for good", "csat", False,
     "Fast, final answers turn a bad day into a reason to stay.",
     [("Reduce first response time from 24 h to 4 h", 24, 4, "h", "on", None),
      ("First-contact resolution from 70% to 90%", 70, 90, "%", "risk", None),
      ("Support satisfaction from 80 to 92", 80, 92, "", "on", None),
      ("Measure the reopen rate of resolved tickets", None, None, "%", "on", None)]),
    ("mkt", "Marketing", "Fill the pipeline with qualified demand", "arr", False,
     "Sales needs three times coverage to hit the enterprise target.",
     [("Grow MQLs from 400 to 900 per month", 400, 900, "MQLs", "on", None),
      ("Website conversion from 1.8% to 3%", 1.8, 3.0, "%", "on", None),
      ("Launch the partner referral program", None, None, "", "on", None)]),
    ("brand", "Marketing", "Refresh the brand guidelines", None, True,
     "Our look has drifted across five agencies; a local priority for the team.",
     [("Guidelines published", None, None, "", "on", None),
      ("Templates migrated", 0, 40, "templates", "on", None),
      ("Teams trained", 0, 6, "teams", "risk", None)]),
    ("sales", "Sales", "Win more enterprise customers", "arr", False,
     "Enterprise deals are a third of new ARR this year.",
     [("Close 12 enterprise deals", 0, 12, "customers", "on", None),
      ("Raise average deal size from $40k to $55k", 40, 55, "$k", "risk", None),
      ("SSO available to enterprise prospects", None, None, "", "on", "Engineering")]),
]

# The company objectives count their departments' work in their progress, beside their own KRs.
ALIGNED_PROGRESS = {"csat", "arr"}
# Stretch objectives (about 0.7 is a good result); the others are committed.
ASPIRATIONAL = {"csat", "web"}

# Key results of other kinds than increase / decrease (a start) or milestone (no start), by
# title: keep above takes its target as the threshold, a baseline has neither.
KR_KINDS = {"Achieve 99.95% uptime (from 99.5%)": "keep_above",
            "Keep net revenue retention above 110%": "keep_above",
            "Measure the reopen rate of resolved tickets": "baseline"}
# Their values week by week (None: no check-in that week): uptime dipped once below 99.95%,
# the baseline was first measured in week 4.
SERIES = {"Achieve 99.95% uptime (from 99.5%)": [99.97, 99.96, 99.91, 99.97, 99.98, 99.96],
          "Keep net revenue retention above 110%": [111.2, 110.8, 110.5, 111.0, 111.6, 112.1],
          "Measure the reopen rate of resolved tickets": [None, None, None, 14, 12, 13]}

# Check-in notes by the confidence they come with, so a note never contradicts its confidence.
NOTES = {
    "on_track": ["Moving as planned.", "Good week; the experiment paid off.", "Steady progress."],
    "at_risk": ["Slower than hoped; two blockers open.", "Dependency slipped a week.",
                "Behind plan, recovery plan drafted."],
    "off_track": ["Far behind: scope was underestimated.",
                  "Still far off the pace; escalated to the department head.",
                  "Blocked on another team; the gap keeps growing."],
}
# Notes that say what happened to a particular key result, by confidence.
KR_NOTES = {
    "Win 12 new enterprise customers": {
        "on_track": ["Pipeline looks healthy; pilots start next week.",
                     "Two pilots signed their evaluation plans."],
        "off_track": ["Pilots are stalling: prospects want SSO before they sign.",
                      "Two deals pushed their close date until SSO ships.",
                      "One more signed; the next five deals need SSO before they sign."],
    },
    "Real-time sync across web and mobile": {
        "on_track": ["Design agreed with the mobile team.", "Prototype syncs notes between "
                     "web and iOS."],
        "off_track": ["Far behind: the sync protocol was underestimated.",
                      "No movement this week; the team is on the CDN rollout.",
                      "Blocked on the CDN rollout; proposing to cut mobile from scope."],
    },
}
LAG = {"on": 0.0, "risk": 0.22, "off": 0.42, "stale": 0.05}
CONFIDENCE = {"on": "on_track", "risk": "at_risk", "off": "off_track", "stale": "on_track"}
# Where a KR's values follow another profile than its confidence: the company's enterprise
# customers are Sales' closed deals (it rolls them up), whatever the confidence says.
VALUES_PROFILE = {"Win 12 new enterprise customers": "on"}
# Units that count things: their check-ins are whole numbers (nobody closes 5.93 deals).
COUNT_UNITS = {"deals", "customers", "accounts", "bugs", "features", "pages", "fixes",
               "templates", "teams", "MQLs", "days", "case studies"}

# The previous quarter, closed: what each team set out to do and where it ended.
# key: (team, title, parent key, why, [KRs])
# KR: (title, start, target, unit, result, course) with start None = milestone (result: done?)
# course: "reached" (on track all along), "short" (at risk from mid-quarter), "missed" (off).
PREVIOUS = [
    ("arr", "Northwind Cloud", "Reach $12M in annual recurring revenue", None,
     "The same goal, first quarter of the push.",
     [("Grow ARR from $7.2M to $8.4M", 7.2, 8.4, "$M", 8.4, "reached"),
      ("Sign 8 new enterprise customers", 0, 8, "customers", 6, "missed"),
      ("Lift net revenue retention from 98% to 102%", 98, 102, "%", 102, "reached")]),
    ("sales", "Sales", "Build a repeatable enterprise sales motion", "arr",
     "One playbook every account executive follows, so wins do not depend on heroics.",
     [("Close 8 enterprise deals", 0, 8, "deals", 6, "missed"),
      ("Shorten the enterprise sales cycle from 120 to 90 days", 120, 90, "days", 98,
       "short")]),
    ("eng", "Engineering", "Make enterprise onboarding painless", "arr",
     "Enterprise pilots stalled in setup; every day of onboarding is a day of doubt.",
     [("Cut onboarding time from 10 days to 3", 10, 3, "days", 3, "reached"),
      ("Audit logs available to every account", None, None, "", True, "reached")]),
    ("mkt", "Marketing", "Build an enterprise pipeline", "arr",
     "Sales needs qualified enterprise conversations, not more trial sign-ups.",
     [("Grow enterprise MQLs from 120 to 300 per month", 120, 300, "MQLs", 310, "reached"),
      ("Publish 4 enterprise case studies", 0, 4, "case studies", 3, "short")]),
]
# Scores the team set instead of the proposal from the data, with the reason they gave.
SCORE_OVERRIDES = {
    "Shorten the enterprise sales cycle from 120 to 90 days": (
        0.5, "Only two small deals closed faster; the large ones still took about 110 days."),
    "Publish 4 enterprise case studies": (
        0.85, "The fourth is written and waits only for the customer's legal sign-off."),
}
# The close form of each of last quarter's objectives: outcome, what we learned, what we
# would do differently, what happens next.
CLOSE_FORMS = {
    "arr": ("partly", "Revenue grew as planned, but enterprise wins lagged: prospects wanted "
            "single sign-on before they signed.",
            "Ask Engineering for the enterprise must-haves while planning, not mid-quarter.",
            "carry_over"),
    "sales": ("missed", "The playbook works for mid-size deals; large deals stall on security "
              "reviews we did not plan for.",
              "Bring a security answer pack to the first call.", "bau"),
    "eng": ("accomplished", "A guided setup beat a longer manual: pilots finished onboarding "
            "in three days.", "Start the audit logs earlier; they gated two pilots.", "bau"),
    "mkt": ("partly", "Case studies depend on the customer's legal team; they take weeks.",
            "Ask for the case study when the contract is signed.", "drop"),
}
# Strategic goals: key, perspective, title, horizon, description.
GOALS = [
    ("revenue", "Financial", "Grow recurring revenue to $20M", "by 2028",
     "Enough to fund the platform and stay default-alive without new funding."),
    ("loved", "Customer", "Be the product customers recommend first", "by 2027",
     "Referrals are our cheapest and most loyal customers."),
    ("ship", "Internal process", "Ship every week without breaking what works", "by 2027", ""),
    ("leaders", "Learning and growth", "Grow our team leads from within", "by 2028",
     "Most new leads come from inside the company."),
]


def proposed_score(kr):
    """The proposal from the data: a milestone done or not; otherwise the share of the way
    from start to target, between 0 and 1."""
    if kr.is_milestone:
        return 1.0 if kr.is_done else 0.0
    span = kr.target_value - kr.start_value
    share = (kr.current_value - kr.start_value) / span if span else Decimal(1)
    return round(float(min(Decimal(1), max(Decimal(0), share))), 2)


COURSE = {  # confidence at each of the six check-ins
    "reached": ["on_track"] * 6,
    "short": ["on_track", "on_track", "at_risk", "at_risk", "at_risk", "at_risk"],
    "missed": ["on_track", "at_risk", "at_risk", "off_track", "off_track", "off_track"],
}


def whole(kr):
    """Does this key result count things (its values are whole numbers)? NPS and scores with
    whole bounds are reported in whole points too."""
    if kr.unit in COUNT_UNITS:
        return True
    return kr.unit == "" and kr.start_value % 1 == 0 and kr.target_value % 1 == 0


def rounded(kr, value):
    return value.quantize(Decimal("1") if whole(kr) else Decimal("0.01"),
                          rounding=ROUND_HALF_UP)


def shown(value, unit):
    """A value with its unit as people write it: $8.4M, 102%, 6 deals."""
    number = f"{value.normalize():f}"
    if unit.startswith("$"):
        return f"${number}{unit[1:]}"
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}".strip()


def note_for(kr, confidence, week):
    notes = KR_NOTES.get(kr.title, {}).get(confidence) or NOTES[confidence]
    return notes[week % len(notes)]


def at(day, hour=10):
    """A moment on ``day``, during the working day."""
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


class Command(BaseCommand):
    help = "Create the Northwind Cloud demo organization (skipped when it exists)."

    def handle(self, *args, **opts):
        if Organization.objects.filter(slug=SLUG).exists():
            self.stdout.write("The demo organization exists already; nothing to do.")
        else:
            # One recompute per cycle for the whole demo, not one per change.
            with network.one_recompute_per_cycle(), transaction.atomic():
                self.build()
            self.stdout.write(self.style.SUCCESS("Created the demo organization."))
        self.stdout.write(
            f"\nOpen http://127.0.0.1:8000/ and sign in. Password for all: {PASSWORD}")
        for email, name, role, team in PEOPLE:
            what = role.label + (f", {team}" if team else "")
            self.stdout.write(f"  {email:<28} {name:<15} {what}")
        # Every organization's trees are consistent (exits non-zero with what is wrong if not).
        call_command("check_trees", stdout=self.stdout, stderr=self.stderr)

    def build(self):
        # The current quarter ends two weeks from today: its scoring window is open.
        today = timezone.localdate()
        end = today + timedelta(days=14)
        start = end - timedelta(days=91)
        org = Organization.objects.create(name="Northwind Cloud", slug=SLUG)
        users = {}
        for email, name, _, _ in PEOPLE:
            user = User.objects.filter(email=email).first() or User.objects.create_user(
                email, PASSWORD, full_name=name)
            users[email.split("@")[0]] = user
        with scope(organization=org):
            create_default_perspectives(org)
            teams = {}
            for name, kind, ttype, parent, lead, charter, card in UNITS:
                teams[name] = Team.objects.create(
                    organization=org, name=name, kind=kind, team_type=ttype,
                    parent=teams.get(parent), lead=users[lead], charter=charter)
                self.scorecard(org, teams[name], card, users[lead])
            members = {}
            for email, _, role, team in PEOPLE:
                m = Membership.objects.create(organization=org, user=users[email.split("@")[0]],
                                              role=role)
                if team:
                    m.teams.add(teams[team])
                members[email.split("@")[0]] = m
            quarter = (start.month - 1) // 3 + 1
            cycle = Cycle.objects.create(organization=org, name=f"{start.year} Q{quarter}",
                                         start_date=start, end_date=end,
                                         status=Cycle.Status.ACTIVE)
            Cycle.objects.create(organization=org, name=f"Next quarter ({end:%b %Y})",
                                 start_date=end, end_date=end + timedelta(days=91))
            previous = Cycle.objects.create(
                organization=org, name=f"Previous quarter ({start - timedelta(days=91):%b %Y})",
                start_date=start - timedelta(days=91), end_date=start,
                status=Cycle.Status.ACTIVE)
            made = self.objectives(org, cycle, teams, members["ava"], users)
            self.network(org, cycle, teams, members, made)
            self.workflows(org, cycle, previous, teams, members, made)
            self.strategy(org, members["liam"], made)
        labs = Organization.objects.create(name="Northwind Labs", slug="northwind-labs")
        with scope(organization=labs):
            Team.objects.create(organization=labs, name="Northwind Labs", kind="company",
                                lead=users["ava"])
            Membership.objects.create(organization=labs, user=users["ava"], role=Role.ADMIN)
            create_default_perspectives(labs)

    def objectives(self, org, cycle, teams, admin, users):
        made = {}
        now = timezone.now()
        elapsed = (timezone.localdate() - cycle.start_date).days / (
            cycle.end_date - cycle.start_date).days
        for key, team, title, parent, local, why, krs in OBJECTIVES:
            objective = services.create_objective(
                membership=admin, cycle=cycle, team=teams[team], title=title, why=why,
                parent=made.get(parent), is_local=local, state=Objective.State.PUBLISHED,
                progress_mode="aligned" if key in ALIGNED_PROGRESS else None,
                commitment="aspirational" if key in ASPIRATIONAL else None)
            made[key] = objective
            lead = teams[team].lead
            for title_kr, start, target, unit, profile, owner_team in krs:
                kind = KeyResult.Kind.MILESTONE if start is None else KeyResult.Kind.NUMERIC
                kind = KR_KINDS.get(title_kr, kind)
                kr = services.create_key_result(
                    membership=admin, objective=objective, title=title_kr, kind=kind,
                    start_value=None if start is None else Decimal(str(start)),
                    target_value=None if target is None else Decimal(str(target)), unit=unit,
                    owner_team=teams[owner_team] if owner_team else None,
                    owner=teams[owner_team].lead if owner_team else lead)
                self.check_ins(admin, kr, profile, elapsed, now, cycle)
        self.backdate(org, cycle)
        return made

    def workflows(self, org, cycle, previous, teams, members, made):
        """A workflow in progress this cycle (steps 1-5 done, a milestone late), and last
        cycle's revenue workflow, closed with a retrospective shared company-wide."""
        liam, ava = members["liam"], members["ava"]
        # Last cycle: the revenue objective ran the workflow with Sales, Engineering, Marketing.
        last = self.previous_quarter(org, previous, teams, ava)
        old = last["arr"]
        self.backdate(org, previous)
        wf = workflow_services.start_workflow(membership=liam, objective=old)
        Workflow.objects.for_org(org).filter(pk=wf.pk).update(
            created_at=at(previous.start_date - timedelta(days=14)))
        workflow_services.save_purpose(
            membership=liam, workflow=wf, purpose="Win enterprise customers together so that "
            "recurring revenue reaches $12M.", impact="Enterprise deals are a third of new ARR.")
        for team, who, role in (("Sales", "mia", "lead"), ("Engineering", "ethan", "contributor"),
                                ("Marketing", "noah", "contributor")):
            workflow_services.add_stakeholder(membership=liam, workflow=wf, team=teams[team],
                                              owner=members[who].user, role=role)
        workflow_services.save_retro(
            membership=liam, workflow=wf,
            what_worked="A single weekly sync with owners only; the shared pipeline dashboard.",
            friction="Engineering heard about the SSO deadline from a customer, not from Sales.",
            share_company_wide=True)
        for title, who, status in (
                ("Record every cross-team deadline as a dependency on day one", "liam", "open"),
                ("Invite Engineering to the weekly pipeline review", "mia", "done")):
            imp = workflow_services.add_improvement(membership=liam, workflow=wf, title=title,
                                                    owner=members[who].user)
            workflow_services.set_improvement_status(membership=liam, improvement=imp,
                                                     status=status)
        workflow_services.close_workflow(membership=liam, workflow=wf)
        self.close_previous(org, previous, last, made, liam)

        # This cycle: customer satisfaction, run by Product, Engineering and Customer Success.
        # Planned in the weeks before the cycle: signed off before step 1's due date.
        wf = workflow_services.start_workflow(membership=liam, objective=made["csat"])
        workflow_services.save_purpose(
            membership=liam, workflow=wf, purpose="Make Northwind the product customers "
            "recommend first by fixing what hurts them most.",
            impact="Detractors churn at three times the rate of promoters.")
        stake = {}
        for team, who, role in (("Product", "priya", "lead"), ("Engineering", "ethan",
                                                                 "contributor"),
                                ("Customer Success", "sofia", "contributor")):
            stake[team] = workflow_services.add_stakeholder(
                membership=liam, workflow=wf, team=teams[team], owner=members[who].user,
                role=role)
        workflow_services.sign_off(membership=ava, workflow=wf)
        workflow_services.share_purpose(membership=liam, workflow=wf)
        kr = {k.title: k for k in KeyResult.objects.filter(objective=made["csat"])}
        workflow_services.save_kickoff(
            membership=liam, workflow=wf, kickoff_date=cycle.start_date + timedelta(days=2),
            notes="Agreed to attack the top three detractor themes: slowness, outages, "
                  "slow support answers.", success_measures=list(kr.values())[:2])
        for team, who in (("Product", "priya"), ("Engineering", "ethan"),
                          ("Customer Success", "sofia")):
            workflow_services.set_commitment(membership=members[who], stakeholder=stake[team],
                                             commitment="committed")
        workflow_services.close_kickoff(membership=liam, workflow=wf)
        s = cycle.start_date
        m1, _ = workflow_services.save_milestone(
            membership=liam, workflow=wf, title="Top 20 detractor accounts interviewed",
            owner_team=teams["Customer Success"], start_date=s + timedelta(days=3),
            due_date=s + timedelta(days=20), cross_team=False)
        workflow_services.milestone_done(membership=members["sofia"], milestone=m1)
        m2, _ = workflow_services.save_milestone(
            membership=liam, workflow=wf, title="p95 page load under 1.5 s",
            owner_team=teams["Engineering"], start_date=s + timedelta(days=10),
            due_date=cycle.end_date - timedelta(days=21), cross_team=True, waits_on=[m1])
        workflow_services.save_milestone(
            membership=liam, workflow=wf, title="In-app NPS survey relaunched",
            owner_team=teams["Product"], start_date=cycle.end_date - timedelta(days=19),
            due_date=cycle.end_date - timedelta(days=1), cross_team=True, waits_on=[m2])
        workflow_services.save_cadence(
            membership=liam, workflow=wf, frequency="weekly", weekday=1,
            time=time(9, 30), sync_format="25 minutes, video, owners only",
            dashboard_url="https://dashboards.northwind.example/csat", async_updates=True)
        blocker = workflow_services.post_update(
            membership=members["ethan"], workflow=wf, team=teams["Engineering"],
            text="CDN rollout slipped a week; p95 is at 2.0 s.", is_blocker=True)
        # When each of these happened, as the plan's dates say.
        Workflow.objects.for_org(org).filter(pk=wf.pk).update(
            created_at=at(s - timedelta(days=16)), signed_off_at=at(s - timedelta(days=9)),
            shared_at=at(s - timedelta(days=8)), kickoff_closed_at=at(s + timedelta(days=2), 16))
        delivered = at(s + timedelta(days=18), 15)
        Milestone.objects.for_org(org).filter(pk=m1.pk).update(done_at=delivered)
        StatusUpdate.objects.for_org(org).filter(
            workflow=wf, text=f"Delivered: {m1.title}").update(created_at=delivered)
        StatusUpdate.objects.for_org(org).filter(pk=blocker.pk).update(
            created_at=timezone.now() - timedelta(days=2))

    def network(self, org, cycle, teams, members, made):
        """Shared work and dependencies: Sales needs Engineering's SSO (supporting); Marketing's
        conversion and the Web App's speed are one goal (shared; unanswered for a week:
        escalated); the company's
        enterprise customers KR adds up Sales' deals; Product co-owns the support objective."""
        kr = {k.title: k for k in KeyResult.objects.filter(organization=org)}
        deals, sso = kr["Close 12 enterprise deals"], kr["SSO available to enterprise prospects"]
        d = network_services.request_dependency(
            membership=members["mia"], downstream=deals, upstream=sso,
            need="SAML single sign-on live for the three pilot prospects",
            needed_by=cycle.end_date - timedelta(days=5),
            fallback="Offer the pilots password login with a signed SSO date in the contract")
        network_services.answer_dependency(membership=members["ethan"], dependency=d,
                                           status="committed", note="Planned for sprint 14.")
        self.dated(org, d, cycle.start_date + timedelta(days=4),
                   answered=cycle.start_date + timedelta(days=5))
        d = network_services.request_dependency(
            membership=members["noah"], downstream=kr["Website conversion from 1.8% to 3%"],
            upstream=kr["Core Web Vitals pass rate from 55% to 90%"],
            need="Landing pages under 1 s on mobile",
            needed_by=cycle.end_date - timedelta(days=2),
            fallback="Run the campaign on the old pages and expect half the conversion",
            kind=Dependency.Kind.SHARED)
        self.dated(org, d, timezone.localdate() - timedelta(days=8))
        # Sales asks to add its deals into the company's enterprise customers; Ava accepts.
        contribution = network_services.request_contribution(
            membership=members["mia"], key_result=deals,
            shared=kr["Win 12 new enterprise customers"], rollup="sum",
            note="Every enterprise deal we close is a new enterprise customer.")
        network_services.answer_contribution(membership=members["ava"],
                                             contribution=contribution, accept=True)
        network_services.share_objective(membership=members["liam"], objective=made["cs"],
                                         team=teams["Product"], kind="whole")
        network_services.add_recovery_action(
            membership=members["liam"], objective=made["arr"],
            title="Weekly pipeline review with Sales and Marketing", owner=members["mia"].user,
            due_date=timezone.localdate() + timedelta(days=7))

    def dated(self, org, dependency, asked, *, answered=None):
        """A dependency asked for on ``asked`` (and answered on ``answered``), events too."""
        Dependency.objects.for_org(org).filter(pk=dependency.pk).update(
            created_at=at(asked), **({"responded_at": at(answered, 11)} if answered else {}))
        events = list(DependencyEvent.objects.for_org(org).filter(dependency=dependency)
                      .order_by("pk"))
        for event, day in zip(events, [asked, answered or asked], strict=False):
            DependencyEvent.objects.for_org(org).filter(pk=event.pk).update(
                created_at=at(day, 11 if day == answered else 10))

    def scorecard(self, org, team, card, lead):
        """A few KPIs per unit, with a reading a week for the last five weeks (the latest one
        gives the KPI its current value and health)."""
        from okrs import kpis
        from okrs.models import KPI, KPIValue

        now = timezone.now()
        for position, (name, unit, direction, healthy, warning, values) in enumerate(card):
            healthy, warning = Decimal(str(healthy)), Decimal(str(warning))
            latest = Decimal(str(values[-1]))
            kpi = KPI.objects.create(
                organization=org, team=team, name=name, unit=unit, direction=direction,
                healthy_at=healthy, warning_at=warning, position=position,
                current_value=latest, current_at=now - timedelta(days=1),
                health=kpis.health_of(latest, direction=direction, healthy_at=healthy,
                                      warning_at=warning))
            KPIValue.objects.bulk_create([KPIValue(
                organization=org, kpi=kpi, value=Decimal(str(v)), author=lead,
                at=now - timedelta(days=1 + 7 * (len(values) - 1 - i)))
                for i, v in enumerate(values)])

    def check_ins(self, admin, kr, profile, elapsed, now, cycle):
        weeks = 3 if profile == "stale" else 6
        # Every check-in falls inside the cycle: a stale KR's first ones crowd into its first
        # days, a day apart, rather than predate it.
        cycle_age = (timezone.localdate(now) - cycle.start_date).days
        values_profile = VALUES_PROFILE.get(kr.title, profile)
        for week in range(weeks):
            days_ago = (5 - week) * 7 + 2 + (17 if profile == "stale" else 0)
            days_ago = min(days_ago, cycle_age - 1 - week)
            share = max(0.0, elapsed * (week + 1) / 6 - LAG[values_profile])
            conf = CONFIDENCE[profile] if week >= 2 else "on_track"
            note = note_for(kr, conf, week)
            if kr.is_milestone:
                services.record_check_in(membership=admin, key_result=kr, confidence=conf,
                                         is_done=False, note=note,
                                         at=now - timedelta(days=days_ago))
                continue
            if kr.title in SERIES:
                if SERIES[kr.title][week] is None:
                    continue
                value = Decimal(str(SERIES[kr.title][week]))
            else:
                value = kr.start_value + (kr.target_value - kr.start_value) * Decimal(str(share))
            services.record_check_in(membership=admin, key_result=kr, confidence=conf,
                                     value=rounded(kr, value), note=note,
                                     at=now - timedelta(days=days_ago))
        if kr.owner_id:
            # Attribute the history to the KR's owner, as if they wrote it.
            kr.check_ins.update(author_id=kr.owner_id)

    def previous_quarter(self, org, previous, teams, admin):
        """Last quarter's OKRs, checked in every two weeks, ending in their results: some
        reached, some missed. Returns the company's revenue objective."""
        made = {}
        for key, team, title, parent, why, krs in PREVIOUS:
            made[key] = services.create_objective(
                membership=admin, cycle=previous, team=teams[team], title=title, why=why,
                parent=made.get(parent), state=Objective.State.PUBLISHED)
            lead = teams[team].lead
            for kr_title, start, target, unit, result, course in krs:
                kind = KeyResult.Kind.MILESTONE if start is None else KeyResult.Kind.NUMERIC
                kr = services.create_key_result(
                    membership=admin, objective=made[key], title=kr_title, kind=kind,
                    start_value=None if start is None else Decimal(str(start)),
                    target_value=None if target is None else Decimal(str(target)), unit=unit,
                    owner=lead)
                for week, confidence in enumerate(COURSE[course]):
                    day = previous.start_date + timedelta(days=12 + 14 * week)
                    final = week == 5
                    if kr.is_milestone:
                        services.record_check_in(
                            membership=admin, key_result=kr, confidence=confidence,
                            is_done=bool(result) and final,
                            note="Live for every account." if final
                            else note_for(kr, confidence, week), at=at(day))
                        continue
                    value = kr.start_value + (Decimal(str(result)) - kr.start_value) * (
                        Decimal(week + 1) / 6)
                    value = rounded(kr, value)
                    note = note_for(kr, confidence, week)
                    if final:
                        note = (f"Result: {shown(value, unit)}, target reached."
                                if course == "reached" else
                                f"Result: {shown(value, unit)}, short of "
                                f"{shown(kr.target_value, unit)}; carried into the next "
                                "quarter.")
                    services.record_check_in(membership=admin, key_result=kr,
                                             confidence=confidence, value=value, note=note,
                                             at=at(day))
                kr.check_ins.update(author_id=lead.pk)
        return made

    def close_previous(self, org, previous, last, made, liam):
        """Each team scored its key results (the proposal from the data, confirmed or
        overridden with a reason), filled the close form, and the revenue objective carried
        over into this quarter, starting from where it ended; then the cycle closed."""
        scored = at(previous.end_date - timedelta(days=2), 15)
        for key, objective in last.items():
            lead = objective.team.lead
            total = weights = Decimal(0)
            for kr in KeyResult.objects.for_org(org).filter(objective=objective):
                proposed = proposed_score(kr)
                score, reason = SCORE_OVERRIDES.get(kr.title, (proposed, ""))
                KeyResult.objects.for_org(org).filter(pk=kr.pk).update(
                    proposed_score=proposed, score=score, score_reason=reason, scored_by=lead,
                    scored_at=scored)
                total += Decimal(str(score)) * kr.weight
                weights += kr.weight
            Objective.objects.for_org(org).filter(pk=objective.pk).update(
                score=round(float(total / weights), 2))
            outcome, learned, differently, next_step = CLOSE_FORMS[key]
            ObjectiveClose.objects.create(
                organization=org, objective=objective, outcome=outcome, learned=learned,
                differently=differently, next_step=next_step, closed_by=lead,
                closed_at=scored + timedelta(days=1))
        # This quarter's revenue objective continues last quarter's: its key results start
        # where those ended ($8.4M, 102%).
        Objective.objects.for_org(org).filter(pk=made["arr"].pk).update(carried_from=last["arr"])
        Cycle.objects.for_org(org).filter(pk=previous.pk).update(
            status=Cycle.Status.CLOSED, closed_by=liam.user, closed_at=at(previous.end_date, 17))

    def strategy(self, org, liam, made):
        """A few long-term goals, one per perspective; the company objectives serve two of
        them (last quarter's revenue objective too), so the other two show as not served."""
        perspectives = {p.name: p for p in Perspective.objects.for_org(org)}
        goals = {}
        for key, perspective, title, horizon, description in GOALS:
            goals[key] = strategy_services.save_goal(
                membership=liam, title=title, perspective=perspectives[perspective],
                horizon=horizon, description=description)
        for key, goal in (("arr", "revenue"), ("csat", "loved")):
            Objective.objects.for_org(org).filter(pk=made[key].pk).update(
                strategic_goal=goals[goal])
        Objective.objects.for_org(org).filter(carried_to=made["arr"]).update(
            strategic_goal=goals["revenue"])

    def backdate(self, org, cycle):
        """Objectives and key results were written in the planning weeks before the cycle."""
        planned = at(cycle.start_date - timedelta(days=10))
        Objective.objects.for_org(org).filter(cycle=cycle).update(created_at=planned,
                                                                 updated_at=planned)
        KeyResult.objects.for_org(org).filter(objective__cycle=cycle).update(created_at=planned)
