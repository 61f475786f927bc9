# Part of invenio-stats-dashboard (MIT License).
"""``CommunityDashboardsService`` (python-api.md §4.3): which dashboards are on.

The switch is the community custom field ``stats:dashboard_enabled``, set
through the communities service as the system identity (so the change is
indexed and versioned like any community edit). With the opt-in on
(default) the aggregations cover only communities whose switch is on.
"""

from flask import current_app

from ..exceptions import InvalidInputError
from . import events_log as log

FIELD = "stats:dashboard_enabled"


class CommunityDashboardsService:
    """Turn community dashboards on or off; list those the aggregations cover."""

    @staticmethod
    def get_enabled_communities(communities, include_global=True):
        """Ids of ``communities`` (records or dicts) whose dashboard counts, then ``global``."""
        opt_in = current_app.config.get("STATS_DASHBOARD_COMMUNITY_OPT_IN", True)
        ids = []
        for community in communities:
            data = community if isinstance(community, dict) else community.data
            if not opt_in or (data.get("custom_fields") or {}).get(FIELD) is True:
                ids.append(str(data["id"]))
        return ids + ([log.GLOBAL] if include_global else [])

    def enable_community_dashboards(self, ids=None, first_active=None, active_since=None,
                                    record_threshold=0, filter_priority=None, verbose=False,
                                    enabled=True):
        """Set the switch on given ids/slugs, or on communities whose activity matches.

        Every id is resolved before anything is written (``InvalidInputError``
        names the unknown ones). Returns ``communities_updated`` (ids) and
        ``communities_failed`` (``id``, ``error_message``).
        """
        from .community_events import CommunityRecordEventsService, resolve_community_ids

        if ids:
            if log.GLOBAL in ids:
                raise InvalidInputError("'global' has no community dashboard switch.")
            targets = resolve_community_ids(ids)
        elif first_active or active_since or record_threshold:
            targets = CommunityRecordEventsService().filter_communities_by_activity(
                first_active, active_since, record_threshold or 0, filter_priority)
        else:
            targets = []
        updated, failed = [], []
        for community_id in dict.fromkeys(targets):
            try:
                set_dashboard_enabled(community_id, enabled)
                updated.append(community_id)
            except Exception as exc:  # noqa: BLE001 - reported per community
                current_app.logger.warning("dashboard switch of %s failed", community_id,
                                           exc_info=True)
                failed.append({"id": community_id,
                               "error_message": f"{type(exc).__name__}: {exc}"})
        return {"communities_updated": updated, "communities_failed": failed}


def set_dashboard_enabled(community_id, enabled=True):
    """Write the switch through the communities service (system identity)."""
    from invenio_access.permissions import system_identity
    from invenio_communities.proxies import current_communities

    service = current_communities.service
    data = service.read(system_identity, community_id).data
    fields = dict(data.get("custom_fields") or {})
    if fields.get(FIELD) is enabled:
        return
    fields[FIELD] = enabled
    data = {**data, "custom_fields": fields}
    service.update(system_identity, community_id, data)
    service.indexer.refresh()
