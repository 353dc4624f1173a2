"""Mini-app JSON API under /api/v1 (placeholder until filled)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
