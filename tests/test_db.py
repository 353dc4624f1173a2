"""The database layer: UTC datetimes, SQLite pragmas, write transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, select, text

from app.db import UTCDateTime, make_engine, write_session
from app.models import Organization, OrgKind


def test_datetimes_come_back_aware_in_utc(session):
    beijing = timezone(timedelta(hours=8))
    org = Organization(name="测试党委", kind=OrgKind.committee, path="/",
                       created_at=datetime(2026, 11, 1, 8, 0, tzinfo=beijing))
    session.add(org)
    session.commit()
    session.expire_all()
    loaded = session.get(Organization, org.id)
    assert loaded.created_at == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)


def test_sqlite_engine_sets_wal_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    assert (tmp_path / "sub" / "x.db").exists()


def test_sqlite_enforces_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    meta = MetaData()
    Table("parent", meta, Column("id", Integer, primary_key=True))
    child = Table("child", meta, Column("id", Integer, primary_key=True),
                  Column("parent_id", Integer, ForeignKey("parent.id")))
    meta.create_all(engine)
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as conn:
        conn.execute(child.insert().values(id=1, parent_id=42))


def test_write_session_rolls_back_everything_on_error(db):
    with pytest.raises(RuntimeError), write_session(db) as session:
        session.add(Organization(name="半途党委", kind=OrgKind.committee, path="/"))
        session.flush()
        raise RuntimeError("boom")
    with write_session(db) as session:
        assert session.exec(select(Organization)).all() == []


def test_postgresql_url_without_driver_uses_psycopg():
    engine = make_engine("postgresql://u@127.0.0.1:1/x", pool_size=3)
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.pool.size() == 3
