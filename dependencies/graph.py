"""The network must stay acyclic. Before an edge is added, one recursive SQL query walks
everything reachable downstream of the edge's target; if the edge's source is among it, the new
edge would close a loop, and the loop is named.

A node is ``("o", objective_id)`` or ``("k", key_result_id)``. An edge points from the node whose
health flows to the node that takes it in: child objective -> parent (the primary one and each
extra parent), key result -> objective (its own, and the one it is aligned to),
contributing key result -> shared key result, upstream -> dependent.

Callers hold the organization lock (``orgs.services.lock_organization``) from the check
until their insert commits, so two concurrent inserts (A -> B and B -> A) cannot both pass.
"""

from django.core.exceptions import ValidationError
from django.db import connection

from okrs.models import KeyResult, Objective

from .models import Dependency

OBJECTIVE, KEY_RESULT = "o", "k"

_EDGES = """
    SELECT 'o' AS src_kind, o.id AS src_id, 'o' AS dst_kind, o.parent_id AS dst_id
      FROM okrs_objective o WHERE o.organization_id = %(org)s AND o.parent_id IS NOT NULL
    UNION ALL
    SELECT 'o', p.objective_id, 'o', p.parent_id
      FROM okrs_objectiveparent p WHERE p.organization_id = %(org)s
    UNION ALL
    SELECT 'k', k.id, 'o', k.objective_id
      FROM okrs_keyresult k WHERE k.organization_id = %(org)s
    UNION ALL
    SELECT 'k', k.id, 'o', k.aligned_to_id
      FROM okrs_keyresult k WHERE k.organization_id = %(org)s AND k.aligned_to_id IS NOT NULL
    UNION ALL
    SELECT 'k', k.id, 'k', k.feeds_id
      FROM okrs_keyresult k WHERE k.organization_id = %(org)s AND k.feeds_id IS NOT NULL
    UNION ALL
    SELECT CASE WHEN d.upstream_objective_id IS NULL THEN 'k' ELSE 'o' END,
           COALESCE(d.upstream_objective_id, d.upstream_key_result_id),
           CASE WHEN d.downstream_objective_id IS NULL THEN 'k' ELSE 'o' END,
           COALESCE(d.downstream_objective_id, d.downstream_key_result_id)
      FROM dependencies_dependency d
     WHERE d.organization_id = %(org)s AND d.status IN ({statuses})
"""

_REACH = """
WITH RECURSIVE reach(kind, id, from_kind, from_id) AS (
    SELECT CAST(%(kind)s AS TEXT), CAST(%(id)s AS BIGINT), CAST('' AS TEXT), CAST(0 AS BIGINT)
    UNION
    SELECT e.dst_kind, e.dst_id, r.kind, r.id
      FROM reach r JOIN ({edges}) e ON e.src_kind = r.kind AND e.src_id = r.id
)
SELECT kind, id, from_kind, from_id FROM reach
"""


# PostgreSQL: each step looks up only the current node's outgoing edges, through the primary
# keys and the dependency indexes (a LATERAL join), so the walk costs what it reaches, not the
# size of the organization. SQLite has no LATERAL; the plain join above is fast enough there.
_REACH_PG = """
WITH RECURSIVE reach(kind, id, from_kind, from_id) AS (
    SELECT CAST(%(kind)s AS TEXT), CAST(%(id)s AS BIGINT), CAST('' AS TEXT), CAST(0 AS BIGINT)
    UNION
    SELECT e.dst_kind, e.dst_id, r.kind, r.id
      FROM reach r CROSS JOIN LATERAL (
        SELECT 'o'::text, o.parent_id FROM okrs_objective o
         WHERE r.kind = 'o' AND o.id = r.id AND o.parent_id IS NOT NULL
        UNION ALL
        SELECT 'o'::text, p.parent_id FROM okrs_objectiveparent p
         WHERE r.kind = 'o' AND p.objective_id = r.id
        UNION ALL
        SELECT 'o'::text, k.objective_id FROM okrs_keyresult k WHERE r.kind = 'k' AND k.id = r.id
        UNION ALL
        SELECT 'o'::text, k.aligned_to_id FROM okrs_keyresult k
         WHERE r.kind = 'k' AND k.id = r.id AND k.aligned_to_id IS NOT NULL
        UNION ALL
        SELECT 'k'::text, k.feeds_id FROM okrs_keyresult k
         WHERE r.kind = 'k' AND k.id = r.id AND k.feeds_id IS NOT NULL
        UNION ALL
        SELECT CASE WHEN d.downstream_objective_id IS NULL THEN 'k' ELSE 'o' END,
               COALESCE(d.downstream_objective_id, d.downstream_key_result_id)
          FROM dependencies_dependency d
         WHERE r.kind = 'o' AND d.upstream_objective_id = r.id AND d.status IN ({statuses})
        UNION ALL
        SELECT CASE WHEN d.downstream_objective_id IS NULL THEN 'k' ELSE 'o' END,
               COALESCE(d.downstream_objective_id, d.downstream_key_result_id)
          FROM dependencies_dependency d
         WHERE r.kind = 'k' AND d.upstream_key_result_id = r.id AND d.status IN ({statuses})
      ) AS e(dst_kind, dst_id)
)
SELECT kind, id, from_kind, from_id FROM reach
"""


def node_of(obj):
    return (OBJECTIVE if isinstance(obj, Objective) else KEY_RESULT, obj.pk)


def downstream_of(org, node):
    """{node: the node it was reached from} for everything reachable from ``node``."""
    statuses = ", ".join(f"'{s}'" for s in Dependency.IN_GRAPH)
    if connection.vendor == "postgresql":
        sql = _REACH_PG.format(statuses=statuses)
    else:
        sql = _REACH.format(edges=_EDGES.format(statuses=statuses))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"org": org.pk, "kind": node[0], "id": node[1]})
        rows = cursor.fetchall()
    reached = {}
    for kind, pk, from_kind, from_pk in rows:
        reached.setdefault((kind, pk), (from_kind, from_pk) if from_kind else None)
    return reached


def find_loop(org, src, dst):
    """The loop that a new edge src -> dst would close, as a list of nodes from src back to src,
    or None when the edge is safe."""
    if src == dst:
        return [src, src]
    reached = downstream_of(org, dst)
    if src not in reached:
        return None
    path = [src]
    while path[-1] != dst:
        path.append(reached[path[-1]])
    return [src, *reversed(path)]


def describe(org, nodes):
    """'Title (Team) -> Title (Team) -> ...' for a list of nodes: two queries at most."""
    objective_ids = {pk for kind, pk in nodes if kind == OBJECTIVE}
    kr_ids = {pk for kind, pk in nodes if kind == KEY_RESULT}
    names = {}
    for o in Objective.objects.for_org(org).filter(pk__in=objective_ids).select_related("team"):
        names[(OBJECTIVE, o.pk)] = f"{o.title} ({o.team.name})"
    for k in KeyResult.objects.for_org(org).filter(pk__in=kr_ids).select_related("owner_team"):
        names[(KEY_RESULT, k.pk)] = f"{k.title} ({k.owner_team.name})"
    return " -> ".join(names.get(n, "?") for n in nodes)


def check_no_loop(org, src, dst, *, field=None):
    """Raise a ValidationError naming the loop if src -> dst would close one."""
    loop = find_loop(org, src, dst)
    if loop is not None:
        message = f"This link would create a loop: {describe(org, loop)}. Remove one link first."
        raise ValidationError({field: message} if field else message)
