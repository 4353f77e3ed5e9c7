"""The integrity of the MPTT trees (the org tree of teams, the alignment tree of objectives).

Every organization's trees live in shared tables, and django-mptt's own SQL (making space,
moving subtrees) filters by ``tree_id`` alone. So a tree id belongs to exactly one tree of one
organization, for ever:

- new tree ids come from ``allocate_tree_ids``, outside the tenant scope: a PostgreSQL sequence
  per table (``<table>_tree_id_seq``, created by the migrations), or on SQLite, which serializes
  writers, the table's maximum plus one;
- mptt never renumbers trees (see ``orgs.scoping.OrgTreeManager``): a new root gets a fresh id,
  so roots are not ordered by tree id; pages order them by name or title;
- ``find_problems`` checks every organization's trees (``manage.py check_trees``), and
  ``repair_trees`` gives colliding trees fresh ids and rebuilds lft/rght/level from the parent
  links (the migrations that introduced this call it; it works on historical models too).

Nothing here imports the project's models at module level: ``orgs.scoping`` (and so every model
module) imports this one.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connections, models
from django.db.models import UniqueConstraint

TREE_FIELDS = ("tree_id", "lft", "rght", "level")


# Allocation ------------------------------------------------------------------------------------


def sequence_name(table):
    return f"{table}_tree_id_seq"


def allocate_tree_ids(table, count=1, *, using="default"):
    """``count`` tree ids no other tree of any organization has or will get.

    PostgreSQL: ``nextval`` of the table's sequence, which never blocks and never hands out a
    value twice, whatever the transactions do. SQLite: the table's maximum plus one, which is
    safe because SQLite lets one writer at a time into the database."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(%s) FROM generate_series(1, %s)", [sequence_name(table), count]
            )
            return sorted(row[0] for row in cursor.fetchall())
        qn = connection.ops.quote_name
        cursor.execute(f"SELECT MAX({qn('tree_id')}) FROM {qn(table)}")
        top = cursor.fetchone()[0] or 0
        return list(range(top + 1, top + 1 + count))


def create_sequence(schema_editor, table):
    """Migration helper: the table's tree id sequence, starting after its largest tree id."""
    if schema_editor.connection.vendor != "postgresql":
        return
    qn = schema_editor.quote_name
    seq = sequence_name(table)
    schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {qn(seq)} OWNED BY {qn(table)}.tree_id")
    sync_sequence(schema_editor.connection, table)


def drop_sequence(schema_editor, table):
    if schema_editor.connection.vendor == "postgresql":
        seq = schema_editor.quote_name(sequence_name(table))
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {seq}")


def sync_sequence(connection, table):
    """Move the sequence past the largest stored tree id (after rows were written with explicit
    tree ids, e.g. by a repair). Never moves it back."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    seq = sequence_name(table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(%s, GREATEST((SELECT COALESCE(MAX(tree_id), 0) FROM {qn(table)}), "
            f"(SELECT last_value FROM {qn(seq)}), 1))",
            [seq],
        )


def sequence_problem(connection, table):
    """What is wrong with the table's tree id sequence (PostgreSQL), or None."""
    if connection.vendor != "postgresql":
        return None
    qn = connection.ops.quote_name
    seq = sequence_name(table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [seq])
        if cursor.fetchone()[0] is None:
            return f"the tree id sequence {seq} is missing (run migrate)"
        cursor.execute(
            f"SELECT (SELECT MAX(tree_id) FROM {qn(table)}), last_value, is_called FROM {qn(seq)}"
        )
        top, last, called = cursor.fetchone()
    next_value = last + 1 if called else last
    if top is not None and next_value <= top:
        return f"the tree id sequence {seq} would hand out {next_value}, already used"
    return None


class DeferredUniqueConstraint(UniqueConstraint):
    """A unique constraint checked at commit (mptt's UPDATEs pass through transient duplicates).

    SQLite has no deferrable unique constraints: there Django creates nothing and would warn
    (models.W038) on every ``migrate``. This constraint drops only that warning, for itself:
    on SQLite ``check_trees`` is the guard."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("deferrable", models.Deferrable.DEFERRED)
        super().__init__(*args, **kwargs)

    def check(self, model, connection):
        return [e for e in super().check(model, connection) if e.id != "models.W038"]


def tree_constraints(prefix):
    """The database's guard for one MPTT table: no two rows of a tree share a left or a right
    number (so no two roots share a tree id), checked at commit, and left below right."""
    return [
        DeferredUniqueConstraint(fields=["tree_id", "lft"], name=f"{prefix}_tree_lft_unique"),
        DeferredUniqueConstraint(fields=["tree_id", "rght"], name=f"{prefix}_tree_rght_unique"),
        models.CheckConstraint(
            condition=models.Q(lft__lt=models.F("rght")), name=f"{prefix}_tree_lft_below_rght"
        ),
    ]


# Nested sets from parent links (pure) ----------------------------------------------------------


def nested_sets(nodes):
    """Nested-set numbers from parent links.

    ``nodes``: (id, parent_id, sort_key) tuples; children are numbered in sort_key order.
    Returns ``(positions, unreachable)``: positions maps each id reachable from a root
    (parent_id None) to (root_id, lft, rght, level); unreachable lists the other ids (their
    parent is missing, or their parent links loop)."""
    children = defaultdict(list)
    ids = set()
    roots = []
    for pk, parent_id, key in nodes:
        ids.add(pk)
        if parent_id is None:
            roots.append((key, pk))
        else:
            children[parent_id].append((key, pk))
    for kids in children.values():
        kids.sort()
    roots.sort()
    positions = {}
    for _, root in roots:
        counter = 1
        lefts = {}
        stack = [(root, 0, False)]
        while stack:
            pk, level, done = stack.pop()
            if done:
                positions[pk] = (root, lefts.pop(pk), counter, level)
                counter += 1
                continue
            lefts[pk] = counter
            counter += 1
            stack.append((pk, level, True))
            for _, child in reversed(children.get(pk, [])):
                stack.append((child, level + 1, False))
    return positions, sorted(ids - positions.keys())


# Checking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    organization_id: int
    model: str
    row_id: int
    kind: str  # shared_tree_id, roots, nesting, contiguity, level, parent, sequence
    message: str

    def __str__(self):
        return f"organization {self.organization_id}, {self.model} #{self.row_id}: {self.message}"


def tree_models():
    """Every MPTT model of the project."""
    from django.apps import apps
    from mptt.models import MPTTModel

    return [m for m in apps.get_models() if issubclass(m, MPTTModel) and not m._meta.proxy]


def _rows(model, using):
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return list(
            model._base_manager.using(using).order_by().values(
                "id", "organization_id", "parent_id", *TREE_FIELDS
            )
        )


def find_problems(models_=None, *, using="default"):
    """Everything wrong with the stored trees, as a list of Problems (empty: all is well).

    For each MPTT model and each organization: left below right; every row inside its parent,
    one level below it, in its parent's tree and organization; siblings that do not overlap;
    each node spanning exactly its descendants by the parent links; each tree numbered 1..2n with
    one root at 1; no tree id used by two organizations; the sequence ahead of the tree ids."""
    problems = []
    for model in models_ or tree_models():
        problems += _model_problems(model, _rows(model, using), connections[using])
    return problems


def _model_problems(model, rows, connection):
    label = model._meta.label
    out = []

    def add(row, kind, message):
        out.append(Problem(row["organization_id"], label, row["id"], kind, message))

    by_id = {r["id"]: r for r in rows}
    by_tree = defaultdict(list)
    for r in rows:
        by_tree[r["tree_id"]].append(r)

    for tree_id, members in sorted(by_tree.items()):
        orgs = sorted({r["organization_id"] for r in members})
        if len(orgs) > 1:
            for org_id in orgs:
                first = min((r for r in members if r["organization_id"] == org_id),
                            key=lambda r: r["lft"])
                others = ", ".join(str(o) for o in orgs if o != org_id)
                add(first, "shared_tree_id",
                    f"tree id {tree_id} is shared with organization {others}")
            continue  # its numbering is meaningless until the trees are told apart
        roots = [r for r in members if r["parent_id"] is None]
        if len(roots) != 1:
            add(min(members, key=lambda r: r["id"]), "roots",
                f"tree {tree_id} has {len(roots)} roots")
        numbers = sorted([r["lft"] for r in members] + [r["rght"] for r in members])
        if numbers != list(range(1, 2 * len(members) + 1)):
            add(roots[0] if roots else members[0], "contiguity",
                f"tree {tree_id}: its {len(members)} rows should use the numbers 1 to "
                f"{2 * len(members)} once each")

    children = defaultdict(list)
    for r in rows:
        if r["parent_id"] is not None:
            children[r["parent_id"]].append(r)
    positions, unreachable = nested_sets(
        (r["id"], r["parent_id"], r["id"]) for r in rows
    )
    for pk in unreachable:
        add(by_id[pk], "parent", "not reachable from a root: its parent links loop")
    # descendants by the parent links, from the rebuilt numbering
    size = {pk: (rght - lft - 1) // 2 for pk, (_, lft, rght, _) in positions.items()}

    for r in rows:
        if r["lft"] >= r["rght"]:
            add(r, "nesting", f"lft {r['lft']} is not below rght {r['rght']}")
        parent = by_id.get(r["parent_id"]) if r["parent_id"] is not None else None
        if r["parent_id"] is None:
            if r["level"] != 0:
                add(r, "level", f"a root at level {r['level']}, expected 0")
            if r["lft"] != 1:
                add(r, "nesting", f"a root with lft {r['lft']}, expected 1")
        elif parent is None:
            add(r, "parent", f"its parent #{r['parent_id']} does not exist")
        else:
            if parent["organization_id"] != r["organization_id"]:
                add(r, "parent", f"its parent #{parent['id']} belongs to another organization")
            if parent["tree_id"] != r["tree_id"]:
                add(r, "parent", f"in tree {r['tree_id']} but its parent #{parent['id']} is in "
                                 f"tree {parent['tree_id']}")
            elif not (parent["lft"] < r["lft"] and r["rght"] < parent["rght"]):
                add(r, "nesting", f"{r['lft']}..{r['rght']} lies outside its parent "
                                  f"#{parent['id']} ({parent['lft']}..{parent['rght']})")
            if r["level"] != parent["level"] + 1:
                add(r, "level", f"level {r['level']}, expected {parent['level'] + 1} "
                                f"(one below its parent #{parent['id']})")
        if r["id"] in size and r["rght"] - r["lft"] - 1 != 2 * size[r["id"]]:
            add(r, "nesting", f"{r['lft']}..{r['rght']} spans "
                              f"{(r['rght'] - r['lft'] - 1) // 2} descendants, but "
                              f"{size[r['id']]} rows have it as an ancestor")
    for kids in children.values():
        kids = sorted(kids, key=lambda r: r["lft"])
        for before, after in zip(kids, kids[1:], strict=False):
            if after["lft"] <= before["rght"]:
                add(after, "nesting", f"overlaps its sibling #{before['id']}")

    message = sequence_problem(connection, model._meta.db_table)
    if message:
        out.append(Problem(0, label, 0, "sequence", message))
    return out


# Repair ----------------------------------------------------------------------------------------


def repair_trees(model, *, queryset=None, using="default"):
    """Give every tree its own tree id and rebuild lft/rght/level from the parent links.

    A root keeps its tree id unless another root (of any organization) claimed it first; the
    others get fresh ids. Siblings keep their stored order (by lft, then id). Only changed rows
    are written. Rows whose parent links loop are left alone (``find_problems`` reports them).
    Works on historical models (migrations). Returns the number of rows changed."""
    from django_scopes import scopes_disabled

    base = model._base_manager.using(using)
    with scopes_disabled():
        qs = (queryset if queryset is not None else base.all()).order_by()
        rows = list(qs.values("id", "organization_id", "parent_id", *TREE_FIELDS))
        ids = {r["id"] for r in rows}
        orgs = {r["organization_id"] for r in rows}
        # tree ids used by rows this repair does not cover (other organizations)
        taken = set(
            base.exclude(organization_id__in=orgs)
            .filter(tree_id__in={r["tree_id"] for r in rows})
            .values_list("tree_id", flat=True)
        ) if queryset is not None else set()
    by_id = {r["id"]: r for r in rows}
    positions, _ = nested_sets(
(r["id"], r["parent_id"], (r["lft"], r["id"])) for r in rows
    )
    roots = sorted((by_id[pk]["tree_id"], pk) for pk in ids if positions.get(pk, (None,))[0] == pk)
    tree_of = {}
    fresh = []
    for tree_id, root in roots:
        if tree_id and tree_id > 0 and tree_id not in taken:
            taken.add(tree_id)
            tree_of[root] = tree_id
        else:
            fresh.append(root)
    for root, tree_id in zip(
        fresh, allocate_tree_ids(model._meta.db_table, len(fresh), using=using) if fresh else [],
        strict=True,
    ):
        tree_of[root] = tree_id
    changed = []
    for pk, (root, lft, rght, level) in positions.items():
        new = {"tree_id": tree_of[root], "lft": lft, "rght": rght, "level": level}
        if any(by_id[pk][f] != v for f, v in new.items()):
            changed.append(model(pk=pk, **new))
    if changed:
        base.bulk_update(changed, list(TREE_FIELDS), batch_size=500)
    sync_sequence(connections[using], model._meta.db_table)
    return len(changed)
