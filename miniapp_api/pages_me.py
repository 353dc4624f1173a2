"""H5 pages (placeholder until filled)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/h5", include_in_schema=False)
