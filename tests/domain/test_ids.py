"""Record ids as people type them: digits within the database's integer range, or nothing."""

from __future__ import annotations

import pytest

from app.domain.ids import MAX_RECORD_ID, record_id


@pytest.mark.parametrize(("text", "expected"), [
    ("12", 12), ("1", 1), (str(MAX_RECORD_ID), MAX_RECORD_ID),
    ("0", None), (str(MAX_RECORD_ID + 1), None), ("99999999999999999999", None),
    ("", None), ("-3", None), ("1.5", None), ("Q12", None), ("٣", None), ("²", None),
])
def test_record_id(text, expected):
    assert record_id(text) == expected
