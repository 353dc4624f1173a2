"""Values reused while the data version stands."""

from __future__ import annotations

from app.db import write_session
from app.services import audit
from app.services.versioned import VersionedCache


def test_a_value_is_reused_until_an_audited_write_moves_the_version(db):
    cache: VersionedCache[str, int] = VersionedCache()
    builds = []

    def build() -> int:
        builds.append(1)
        return len(builds)

    with write_session(db) as s:
        assert cache.get_or_build(s, "k", build) == 1
    with write_session(db) as s:
        assert cache.get_or_build(s, "k", build) == 1
    with write_session(db) as s:
        audit.record(session=s, actor_label="test", action="touch", entity="test", entity_id=1)
    with write_session(db) as s:
        assert cache.get_or_build(s, "k", build) == 2


def test_nothing_read_by_a_transaction_that_wrote_is_kept_nor_is_a_none(db):
    cache: VersionedCache[str, str | None] = VersionedCache()
    with write_session(db) as s:
        audit.record(session=s, actor_label="test", action="touch", entity="test", entity_id=1)
        assert cache.get_or_build(s, "written", lambda: "uncommitted") == "uncommitted"
        s.rollback()
    with write_session(db) as s:
        audit.record(session=s, actor_label="test", action="touch", entity="test", entity_id=2)
    with write_session(db) as s:
        assert cache.get_or_build(s, "written", lambda: "committed") == "committed"
        assert cache.get_or_build(s, "missing", lambda: None) is None
        assert cache.get_or_build(s, "missing", lambda: "added") == "added"
