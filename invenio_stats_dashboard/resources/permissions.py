# Part of invenio-stats-dashboard (MIT License).
"""Who may read which statistics (api-and-cache.md §5, gap 1).

Upstream read every community with the system identity and allowed every
query, so anyone could read a restricted community's statistics and probe
whether it exists. Here the community is read with the *caller's* identity:
not existing and not readable are the same ``CommunityNotFound`` (404), so
no existence leaks. Global statistics are public.

Dashboard flags (``STATS_DASHBOARD_ENABLED_COMMUNITY``, opt-in) are *not*
consulted by the API: they decide whether a page is shown, and a community
whose dashboard is disabled has no aggregation documents, so its queries
answer with empty results (documented in docs/api.md). An instance that wants
a stricter rule sets ``COMMUNITY_STATS_PERMISSION_POLICY`` to its own class.
"""

from flask import current_app, g, has_request_context
from werkzeug.utils import import_string

from ..exceptions import CommunityNotFound, StatsPermissionDenied

GLOBAL = "global"


class CommunityStatsPermissionPolicy:
    """Default policy: whoever may read the community may read its statistics.

    Replace via ``COMMUNITY_STATS_PERMISSION_POLICY`` (class or import string);
    ``can_read_stats`` receives the identity and the community record (already
    readable by that identity).
    """

    def can_read_stats(self, identity, community):
        """True: reading the community already succeeded with ``identity``."""
        return True


def policy():
    """An instance of the configured policy class."""
    cls = current_app.config.get("COMMUNITY_STATS_PERMISSION_POLICY") \
        or CommunityStatsPermissionPolicy
    if isinstance(cls, str):
        cls = import_string(cls)
    return cls()


def current_identity():
    """The request's identity, or the system identity outside requests (tasks, CLI)."""
    if has_request_context() and getattr(g, "identity", None) is not None:
        return g.identity
    from invenio_access.permissions import system_identity

    return system_identity


def resolve_community(community_id, identity=None):
    """``"global"`` or the UUID (str) of the community ``community_id`` (slug or UUID).

    Raises ``CommunityNotFound`` when it does not exist or ``identity``
    (default: ``current_identity()``) may not read it; ``StatsPermissionDenied``
    when the configured policy refuses statistics of a readable community.
    """
    record = read_community(community_id, identity)
    return GLOBAL if record is None else str(record.id)


def read_community(community_id, identity=None):
    """The community record ``resolve_community`` checks (None for ``global``)."""
    if community_id in (None, "", GLOBAL):
        return None
    from invenio_communities.proxies import current_communities

    identity = identity if identity is not None else current_identity()
    service = current_communities.service
    try:
        # what ``service.read`` checks (existence, "read" permission, not
        # deleted), without building the result item: ``read`` resolved the id
        # twice and rendered links on every cached API request (~half its time)
        record = service.record_cls.pid.resolve(str(community_id))
        service.require_permission(identity, "read", record=record)
        if record.deletion_status.is_deleted:
            raise LookupError("deleted")
    except Exception as error:  # missing, deleted, malformed id, or no read access
        raise CommunityNotFound(f"Community {community_id} not found") from error
    if not dashboard_allows(record):
        raise StatsPermissionDenied(
            f"Statistics are not enabled for community {community_id}")
    if not policy().can_read_stats(identity, record):
        raise StatsPermissionDenied(
            f"You may not read the statistics of community {community_id}")
    return record


def dashboard_allows(record):
    """``COMMUNITY_STATS_API_DISABLED_DASHBOARD``: "serve" (default) answers for every
    readable community; "forbid" only for those whose dashboard is enabled
    (``(stats:dashboard_enabled or not OPT_IN) and STATS_DASHBOARD_ENABLED_COMMUNITY``,
    the pages' rule, config.md)."""
    config = current_app.config
    if str(config.get("COMMUNITY_STATS_API_DISABLED_DASHBOARD") or "serve") != "forbid":
        return True
    switch = ((record.get("custom_fields") or {}).get("stats:dashboard_enabled") is True
              or not config.get("STATS_DASHBOARD_COMMUNITY_OPT_IN", True))
    return bool(switch and config.get("STATS_DASHBOARD_ENABLED_COMMUNITY", False))


class _AllowAll:
    def can(self):
        return True


def stats_query_permission_factory(query_name, params):
    """invenio-stats' per-query permission: allow; ``run`` applies ``resolve_community``.

    The check lives in ``run`` because only it knows the community (and a
    denial must look like a missing community, not a 401/403).
    """
    return _AllowAll()
