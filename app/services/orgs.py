"""The organisation tree: finding and creating nodes by path, subtrees, display paths."""

from __future__ import annotations

from sqlmodel import Session, select

from app.models import Organization, OrgKind
from app.services import audit


class OrgPathError(ValueError):
    """A roster or command named an organisation path that cannot be resolved."""


def kind_for(name: str, *, depth: int, last: bool) -> OrgKind:
    """Level of a node created from a path: the root is a committee, the last is a branch."""
    if depth == 0:
        return OrgKind.committee
    if last:
        return OrgKind.branch
    if "党委" in name:
        return OrgKind.committee
    return OrgKind.general_branch


def roots(session: Session) -> list[Organization]:
    """Top-level organisations."""
    return list(session.exec(select(Organization).where(Organization.parent_id.is_(None))))


def child(session: Session, parent: Organization | None, name: str) -> Organization | None:
    """The child of `parent` (or the root) called `name`."""
    parent_clause = (
        Organization.parent_id.is_(None) if parent is None else Organization.parent_id == parent.id
    )
    return session.exec(
        select(Organization).where(parent_clause, Organization.name == name)
    ).first()


def create_child(
    session: Session, parent: Organization | None, name: str, kind: OrgKind, *, actor_label: str
) -> Organization:
    """Create one node under `parent` and record it in the audit log."""
    org = Organization(name=name, kind=kind, parent_id=parent.id if parent else None)
    session.add(org)
    session.flush()
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    session.flush()
    audit.record(
        session=session,
        actor_label=actor_label,
        action="create",
        entity="organization",
        entity_id=org.id,
        after={"name": name, "kind": kind.value, "path": org.path},
    )
    return org


def ensure_path(session: Session, names: list[str], *, actor_label: str) -> Organization:
    """The branch at `names`, creating missing nodes; one bare name must match one branch."""
    if len(names) == 1:
        return _resolve_bare_branch(session, names[0], actor_label=actor_label)
    parent: Organization | None = None
    for depth, name in enumerate(names):
        node = child(session, parent, name)
        if node is None:
            kind = kind_for(name, depth=depth, last=depth == len(names) - 1)
            node = create_child(session, parent, name, kind, actor_label=actor_label)
        parent = node
    assert parent is not None
    return parent


def _resolve_bare_branch(session: Session, name: str, *, actor_label: str) -> Organization:
    matches = list(
        session.exec(
            select(Organization).where(
                Organization.name == name, Organization.kind == OrgKind.branch
            )
        )
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise OrgPathError(f"有多个名为“{name}”的支部，请写完整路径（如 某公司党委/{name}）")
    top = roots(session)
    if len(top) != 1:
        raise OrgPathError(f"找不到支部“{name}”，请写完整路径（如 某公司党委/{name}）")
    return create_child(session, top[0], name, OrgKind.branch, actor_label=actor_label)


def ensure_group(
    session: Session, branch: Organization, name: str, *, actor_label: str
) -> Organization:
    """The 党小组 `name` under `branch`, created if missing."""
    return child(session, branch, name) or create_child(
        session, branch, name, OrgKind.group, actor_label=actor_label
    )


def subtree_ids(session: Session, org: Organization) -> list[int]:
    """Ids of `org` and every organisation below it."""
    return list(session.exec(select(Organization.id).where(Organization.path.startswith(org.path))))


def ancestors(session: Session, org: Organization) -> list[Organization]:
    """The chain from the root down to `org`, inclusive."""
    ids = [int(part) for part in org.path.strip("/").split("/") if part]
    by_id = {o.id: o for o in session.exec(select(Organization).where(Organization.id.in_(ids)))}
    return [by_id[i] for i in ids]


def display_path(session: Session, org: Organization) -> str:
    """`某公司党委/生产第一党支部`: the names from the root down."""
    return "/".join(o.name for o in ancestors(session, org))


def find_by_path_or_name(session: Session, text: str) -> Organization | None:
    """An organisation named by its full path or, when unambiguous, by its name alone."""
    names = [p for p in text.replace("／", "/").split("/") if p.strip()]
    if len(names) > 1:
        node: Organization | None = None
        for name in names:
            node = child(session, node, name.strip())
            if node is None:
                return None
        return node
    found = list(session.exec(select(Organization).where(Organization.name == text.strip())))
    return found[0] if len(found) == 1 else None
