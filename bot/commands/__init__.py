"""Chat commands, one router per feature; the dispatcher takes them in this order."""

from bot.commands import activities, approvals, evaluation, groups, help, organize, points

ROUTERS = (points.router, activities.router, evaluation.router, organize.router, approvals.router,
           groups.router, help.router)
fallback = help.unknown

__all__ = ["ROUTERS", "fallback"]
