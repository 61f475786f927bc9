# Part of invenio-stats-dashboard (MIT License).
"""Service components that keep the community membership log current.

Every hook only *registers* a :class:`CommunityEventsSyncOp` in the unit of
work, with the membership just before the change. After the database commit
the operation reads the parent's versions from the database (the truth) and
writes exactly the differences (``membership.plan_changes``): a failed
transaction writes nothing, repeats write nothing, and every version of a
parent moves together (M5; fixes upstream G5–G7).
"""

import logging

from flask import current_app
from invenio_records_resources.services.records.components import ServiceComponent
from invenio_records_resources.services.uow import Operation

from .. import events_log as log
from ..membership import from_record, plan_changes

logger = logging.getLogger(__name__)

#: Request types whose acceptance adds the topic record to the receiver.
INCLUSION_REQUEST_TYPES = {"community-inclusion", "community-submission",
                           "community-transfer"}


def _record_cls():
    from invenio_rdm_records.proxies import current_rdm_records_service

    return current_rdm_records_service.record_cls


def _published_versions(parent):
    return list(_record_cls().get_records_by_parent(parent, with_deleted=True))


def _current_membership(parent):
    """``{record_id: set(communities)}`` of a parent's versions, as they are now."""
    # A version being published in this transaction has no stored data yet.
    return {r["id"]: from_record(r).members_of for r in _published_versions(parent)
            if r.get("id")}


def _deleted_communities(community_ids):
    """Ids among ``community_ids`` whose community is (soft-)deleted.

    RDM keeps a deleted community in its records' parents; M3: a restored
    record is not re-added to it.
    """
    if not community_ids:
        return set()
    from invenio_communities.communities.records.models import CommunityMetadata
    from invenio_communities.communities.records.systemfields.deletion_status import (
        CommunityDeletionStatusEnum,
    )

    rows = CommunityMetadata.query.filter(
        CommunityMetadata.id.in_(list(community_ids)),
        CommunityMetadata.deletion_status != CommunityDeletionStatusEnum.PUBLISHED)
    return {str(row.id) for row in rows}


def sync_parents(parent_pids, before=None, when=None):
    """Bring the log in line with the database for these parents' versions.

    Returns the summary of written changes. Public so that tests and repair
    scripts can call it directly.
    """
    parent_cls = _record_cls().parent_record_cls
    versions = []
    for pid in sorted(set(parent_pids)):
        parent = parent_cls.pid.resolve(pid)
        versions.extend(from_record(r) for r in _published_versions(parent))
    states = log.latest_states([v.record_id for v in versions])
    gone = _deleted_communities({c for v in versions for c in v.communities})
    actions, summary = plan_changes(versions, states, before=before, now=when,
                                    no_additions=gone)
    for v in versions:
        flags = [s for (r, _), s in states.items() if r == v.record_id]
        if any(s.is_deleted != bool(v.deleted_date) for s in flags):
            actions.extend(log.deletion_updates(v.record_id, v.deleted_date))
    log.write(actions)
    return summary


class CommunityEventsSyncOp(Operation):
    """Unit-of-work operation: reconcile the log after the commit."""

    def __init__(self, parent_pid, before=None, when=None):
        """Remember which parent changed and its membership before the change."""
        self.parent_pid = parent_pid
        self.before = before or {}
        self.when = when or log.utcnow()

    def on_post_commit(self, uow):
        """Write the membership changes (never fails the user's request)."""
        try:
            sync_parents([self.parent_pid], self.before, self.when)
        except Exception:
            logger.exception("Could not record community events for parent %s",
                             self.parent_pid)
            if current_app.config.get("TESTING"):
                raise


def _register(component, parent, before, uow=None):
    uow = uow or getattr(component, "uow", None)
    op = CommunityEventsSyncOp(parent["id"], before)
    if uow is None:  # called outside a unit of work: apply now
        op.on_post_commit(None)
    else:
        uow.register(op)


class RecordCommunityEventComponent(ServiceComponent):
    """RDM records service: publication, deletion and restoration."""

    def publish(self, identity, draft=None, record=None, **kwargs):
        """A published version joins ``global`` and its parent's communities."""
        before = _current_membership(record.parent)
        before[record["id"]] = set()
        _register(self, record.parent, before)

    def delete_record(self, identity, data=None, record=None, **kwargs):
        """Deletion removes the version from everything it is in (M3)."""
        before = _current_membership(record.parent)
        before[record["id"]] = {log.GLOBAL, *record.parent.communities.ids}
        _register(self, record.parent, before)

    def restore_record(self, identity, record=None, **kwargs):
        """Restoration re-adds the version to its parent's communities (M3)."""
        before = _current_membership(record.parent)
        before[record["id"]] = set()
        _register(self, record.parent, before)


class RecordCommunityEventTrackingComponent(ServiceComponent):
    """RDM record-communities service: direct adds, removals, bulk adds."""

    def add_community(self, identity, record=None, communities=None, uow=None, **kwargs):
        """Inclusions accepted directly in this transaction (others: on accept)."""
        _register(self, record.parent, _current_membership(record.parent), uow)

    # Upstream's name for the same hook (never invoked by the service, G6).
    add = add_community

    def remove_community(self, identity, record=None, community=None, valid_data=None,
                         errors=None, uow=None, **kwargs):
        """Removal from a community, for every version of the parent (G7)."""
        _register(self, record.parent, _current_membership(record.parent), uow)

    # InvenioRDM 14's name for the same hook (invenio-rdm-records 32).
    remove_community_from_record = remove_community

    def bulk_add(self, identity, community_id=None, record_ids=None, set_default=None,
                 uow=None, **kwargs):
        """Records added in bulk to one community."""
        seen = set()
        for record_id in record_ids or []:
            record = _record_cls().pid.resolve(record_id)
            pid = record.parent["id"]
            if pid not in seen:
                seen.add(pid)
                _register(self, record.parent, _current_membership(record.parent), uow)


class CommunityAcceptedEventComponent(ServiceComponent):
    """Request-events service: accepted inclusion/submission requests."""

    def create(self, identity, data=None, event=None, errors=None, uow=None, **kwargs):
        """On the ``accepted`` log event, the receiver gained the topic record."""
        if event is None or (event.get("payload") or {}).get("event") != "accepted":
            return
        from invenio_requests.proxies import current_requests_service

        request = current_requests_service.record_cls.get_record(event.request_id)
        if request.type.type_id not in INCLUSION_REQUEST_TYPES:
            return
        try:
            record = request.topic.resolve()
        except Exception:
            return
        if not getattr(record, "is_published", True) or getattr(record, "is_draft", False):
            return  # submissions: recorded when the draft is published
        receiver = str(request.receiver.resolve().id)
        before = _current_membership(record.parent)
        for communities in before.values():
            communities.discard(receiver)
        _register(self, record.parent, before, uow)


class CommunityCustomFieldsDefaultsComponent(ServiceComponent):
    """Communities service: fill a missing ``stats:dashboard_enabled``."""

    def _fill(self, data):
        if data is None:
            return
        fields = data.setdefault("custom_fields", {})
        if "stats:dashboard_enabled" not in fields:
            opt_in = current_app.config.get("STATS_DASHBOARD_COMMUNITY_OPT_IN", True)
            if isinstance(opt_in, str):
                opt_in = opt_in.lower() in ("true", "1", "yes", "on")
            fields["stats:dashboard_enabled"] = not opt_in

    def create(self, identity, data=None, record=None, errors=None, **kwargs):
        """New communities get the default."""
        self._fill(data)
        if record is not None and data is not None:
            record.setdefault("custom_fields", {}).setdefault(
                "stats:dashboard_enabled", data["custom_fields"]["stats:dashboard_enabled"]
            )

    def update(self, identity, data=None, record=None, **kwargs):
        """Updated communities keep or get the default."""
        if record is not None and "stats:dashboard_enabled" in record.get("custom_fields", {}):
            return
        self.create(identity, data=data, record=record)
