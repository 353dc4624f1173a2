"""Who a platform user is: the person and every role they hold, in one query."""

from __future__ import annotations

from app.db import write_session
from app.domain.vocab import Role
from app.models import Platform
from app.services.access import sender
from tests.factories import build_org


def test_a_sender_comes_with_every_role_and_an_inactive_one_is_nobody(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
        secretary, member = built.everyone()
        secretary.dingtalk_userid, member.dingtalk_userid = "dt-sec", "dt-mem"
        s.flush()
        found = sender(session=s, platform=Platform.DINGTALK, userid="dt-sec")
        assert found is not None and found[0].id == secretary.id
        assert Role.branch_secretary in found[1]
        plain = sender(session=s, platform=Platform.DINGTALK, userid="dt-mem")
        assert plain is not None and plain[0].id == member.id and plain[1] == {Role.member}
        member.active = False
        s.flush()
        assert sender(session=s, platform=Platform.DINGTALK, userid="dt-mem") is None
        assert sender(session=s, platform=Platform.DINGTALK, userid="nobody") is None
        assert sender(session=s, platform=Platform.DINGTALK, userid=None) is None
