# Part of invenio-stats-dashboard (MIT License).
"""Proxies to the extension and its services (python-api.md §3)."""

from flask import current_app
from werkzeug.local import LocalProxy

EXTENSION_KEY = "invenio-stats-dashboard"


def _extension():
    return current_app.extensions[EXTENSION_KEY]


def _service(attribute):
    """Resolve a service attribute, failing loudly when it is not available."""
    ext = current_app.extensions.get(EXTENSION_KEY)
    service = getattr(ext, attribute, None) if ext else None
    if service is None:
        raise RuntimeError(
            f"invenio-stats-dashboard {attribute} is not available "
            "(extension disabled with COMMUNITY_STATS_ENABLED=False, or not loaded)."
        )
    return service


current_community_stats = LocalProxy(_extension)
"""The extension instance (``KeyError`` when disabled)."""

current_community_stats_service = LocalProxy(lambda: _service("service"))
"""The ``CommunityStatsService``."""

current_event_reindexing_service = LocalProxy(
    lambda: _service("event_reindexing_service")
)
"""The ``EventReindexingService``."""
