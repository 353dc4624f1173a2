"""The mini-app JSON API under /api/v1: me, points, ledger, activities, leave, boards."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
