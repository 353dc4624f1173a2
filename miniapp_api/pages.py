"""H5 pages: my points, my ledger, activities, leave, approvals and the branch board."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/h5", include_in_schema=False)
