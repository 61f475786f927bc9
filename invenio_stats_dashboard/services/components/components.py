# Part of invenio-stats-dashboard (MIT License).
"""Service components that keep the community membership log current.

Every hook only *registers* the changed parent in the unit of work (one
:class:`CommunityEventsSyncOp` per unit of work). After the database commit
the operation reconciles the log with the database for every version of
those parents (``membership.reconcile_parents``): a failed transaction writes
nothing, repeats write nothing, every version of a parent moves together
(M5; fixes upstream G5–G7), and changes are dated from the database's
evidence exactly as ``community-events generate`` dates them.

A failure after the commit cannot undo the user's change, so it is logged
(not raised); ``community-events generate`` repairs what it left missing.
"""

import logging

from flask import current_app
from invenio_records_resources.services.records.components import ServiceComponent
from invenio_records_resources.services.uow import Operation

from ..history import INCLUSION_REQUEST_TYPES
from ..membership import reconcile_parents

logger = logging.getLogger(__name__)


def _record_cls():
    from invenio_rdm_records.proxies import current_rdm_records_service

    return current_rdm_records_service.record_cls


def sync_parents(parent_pids):
    """Reconcile the log for these parents (PID values) now.

    Returns ``{"added": n, "removed": m}`` documents written. Public for
    tests and repair scripts.
    """
    parent_cls = _record_cls().parent_record_cls
    return reconcile_parents([parent_cls.pid.resolve(pid).id for pid in sorted(set(parent_pids))])


class CommunityEventsSyncOp(Operation):
    """Unit-of-work operation: reconcile the log for the changed parents after the commit."""

    def __init__(self):
        """Start with no parent."""
        self.parents = set()

    def on_post_commit(self, uow):
        """Write the membership changes (never fails the user's request)."""
        try:
            reconcile_parents(sorted(self.parents))
        except Exception:
            logger.exception(
                "Could not record community events for parents %s; "
                "`invenio community-stats community-events generate` will repair the log.",
                sorted(self.parents))
            if current_app.config.get("TESTING"):
                raise


def _register(component, parent, uow=None):
    uow = uow or getattr(component, "uow", None)
    if uow is None:  # called outside a unit of work: apply now
        reconcile_parents([parent.id])
        return
    op = getattr(uow, "_stats_community_events_op", None)
    if op is None:  # one operation per unit of work, however many hooks ran
        op = uow._stats_community_events_op = CommunityEventsSyncOp()
        uow.register(op)
    op.parents.add(parent.id)


class RecordCommunityEventComponent(ServiceComponent):
    """RDM records service: publication, deletion and restoration."""

    def publish(self, identity, draft=None, record=None, **kwargs):
        """A published version joins ``global`` and its parent's communities."""
        _register(self, record.parent)

    def delete_record(self, identity, data=None, record=None, **kwargs):
        """Deletion removes the version from everything it is in (M3)."""
        _register(self, record.parent)

    def restore_record(self, identity, record=None, **kwargs):
        """Restoration re-adds the version to its parent's communities (M3)."""
        _register(self, record.parent)


class RecordCommunityEventTrackingComponent(ServiceComponent):
    """RDM record-communities service: direct adds, removals, bulk adds."""

    def add_community(self, identity, record=None, communities=None, uow=None, **kwargs):
        """Inclusions accepted directly in this transaction (others: on accept)."""
        _register(self, record.parent, uow)

    # Upstream's name for the same hook (never invoked by the service, G6).
    add = add_community

    def remove_community(self, identity, record=None, community=None, valid_data=None,
                         errors=None, uow=None, **kwargs):
        """Removal from a community, for every version of the parent (G7)."""
        _register(self, record.parent, uow)

    # InvenioRDM 14's name for the same hook (invenio-rdm-records 32).
    remove_community_from_record = remove_community

    def bulk_add(self, identity, community_id=None, record_ids=None, set_default=None,
                 uow=None, **kwargs):
        """Records added in bulk to one community."""
        for record_id in record_ids or []:
            try:
                record = _record_cls().pid.resolve(record_id)
            except Exception:
                continue  # the service reports unknown records itself
            _register(self, record.parent, uow)


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
            logger.warning("Accepted request %s: topic does not resolve; "
                           "`community-events generate` will record it.", request.id)
            return
        _register(self, record.parent, uow)


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
