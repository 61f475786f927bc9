# Part of invenio-stats-dashboard (MIT License).
"""What the demo loader's worker processes do, each in its own API app.

Workers are spawned (never forked: an app's database, search and queue
connections must not be shared) and load the instance *as a legacy one*: the
extension is disabled in them, so nothing is recorded live and the seed steps
have real back-filling and migration to do. Notifications are muted while
loading: nobody reads the e-mails, and building them costs service reads and
template renderings for every request.
"""

import os
from collections import Counter
from datetime import timezone

from .history import COMMUNITIES, DEPOSITORS, OWNER

#: Settings of the loading processes (environment, so they win over invenio.cfg):
#: a legacy instance, and commits that do not wait for the disk (a lost demo
#: load is simply run again).
LOADER_SETTINGS = {
    "INVENIO_COMMUNITY_STATS_ENABLED": "False",
    "INVENIO_SQLALCHEMY_ENGINE_OPTIONS": repr({
        "pool_pre_ping": False, "pool_recycle": 3600, "pool_timeout": 10,
        "connect_args": {"options": "-c timezone=UTC -c synchronous_commit=off"},
    }),
}

_app = None
_people = {}


class _MutedNotifications:
    """A notification manager that drops every broadcast."""

    def handle_broadcast(self, notification):
        """Drop the notification."""

    def handle_dispatch(self, backend_id, recipient, notification):
        """Drop the notification."""


def start():
    """Pool initializer: the API app of the instance, with an app context pushed."""
    global _app
    os.environ.update(LOADER_SETTINGS)
    from invenio_app.factory import create_api

    _app = create_api()
    _app.extensions["invenio-notifications"].manager = _MutedNotifications()
    _app.app_context().push()


def _naive(when):
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def _identity(email):
    """The identity of a demo user, with the community roles it has now."""
    if email not in _people:
        from invenio_accounts.proxies import current_datastore

        from . import rdm

        _people[email] = rdm.make_identity(current_datastore.get_user(email))
    return _people[email]


def prepare(origin):
    """Vocabularies, users and communities (created before every record; reused if they exist)."""
    from datetime import timedelta

    from invenio_communities.proxies import current_communities

    from . import rdm
    from .vocabularies import load_vocabularies

    _people.clear()  # identities of an earlier load in this process may be stale
    load_vocabularies()
    owner = rdm.make_identity(rdm.create_user(OWNER, username="owner"))
    for email in DEPOSITORS:
        rdm.create_user(email)
    communities = {}
    for slug, title, visibility in COMMUNITIES:
        try:
            community_id = str(current_communities.service.record_cls.pid.resolve(slug).id)
        except Exception:  # PIDDoesNotExistError: a new instance
            community_id = rdm.create_community(owner, slug, title, visibility).id
        rdm.backdate_community(community_id, _naive(origin - timedelta(days=10)))
        communities[slug] = community_id
    return communities


def _join(plan, record_id, community_id):
    """Owners include directly; depositors go through a request the owner accepts."""
    from . import rdm

    if plan.by_owner:
        rdm.add_to_community(_identity(OWNER), record_id, community_id)
        return "direct_adds"
    ids = rdm.add_to_community(_identity(plan.creator), record_id, community_id,
                               require_review=True)
    rdm.accept_request(_identity(OWNER), ids[0])
    return "inclusion_requests_accepted"


def create_record(task):
    """Create one planned record's history; returns ``(n, version ids, counts)``."""
    from . import rdm

    plan, communities = task
    stats = Counter()
    creator = _identity(plan.creator)
    with rdm.without_refresh():
        item = rdm.publish_record(
            creator, rdm.record_data(files=bool(plan.files), **plan.metadata), files=plan.files
        )
        stats["records"] += 1
        stats["records_with_files"] += bool(plan.files)
        for slug in plan.homes:
            stats[_join(plan, item.id, communities[slug])] += 1
        ids = [item.id]
        if plan.version_created:
            version = rdm.new_version(creator, item.id,
                                      plan.version_created.date().isoformat(), files=plan.files)
            ids.append(version.id)
            stats["new_versions"] += 1
        for record_id, when in zip(ids, plan.versions):
            rdm.backdate_record(record_id, _naive(when))
        rdm.backdate_requests(item.id, _naive(plan.created))
        if plan.removed:
            home = communities[plan.homes[0]]
            rdm.remove_from_community(_identity(OWNER), item.id, home)
            stats["removals"] += 1
            if plan.re_added:  # the way the record first joined
                _join(plan, item.id, home)
                stats["re_adds"] += 1
    # Sibling versions wait in the bulk indexing queue until every record is
    # done (``index_queued``): the queue is shared, and a worker indexing
    # another worker's record could write a parent state that is already
    # outdated, with a record version the index cannot tell from the current one.
    return plan.n, ids, stats


def finish(history, version_ids, communities):
    """The bulk add and the deletions; returns the counts and what was skipped."""
    from . import rdm
    from .history import BULK_COMMUNITY

    stats, skipped = Counter(), []
    with rdm.without_refresh():
        recent = [version_ids[pos] for pos in history.bulk_add]
        if recent:
            try:
                rdm.bulk_add(communities[BULK_COMMUNITY], recent)
                stats["bulk_added"] += len(recent)
            except Exception as exc:  # e.g. a record already in the community
                skipped.append(f"bulk add skipped: {exc}")
        for pos, restored in history.deletions:
            rdm.delete_record(version_ids[pos])
            stats["deleted"] += 1
            if restored:
                rdm.restore_record(version_ids[pos])
                stats["restored"] += 1
    return stats, skipped


def index_queued(_task=None):
    """Index the records waiting in the bulk indexing queue (every worker at once).

    Run once nothing changes any more: every worker reads the final state.
    """
    from invenio_rdm_records.proxies import current_rdm_records_service

    current_rdm_records_service.indexer.process_bulk_queue()


def event_targets(history, version_ids):
    """The event targets of every planned version, once the index agrees with the database.

    Each version's indexed communities are compared with its parent's in the
    database: a stale document would show wrong membership in the demo.
    """
    from invenio_rdm_records.proxies import current_rdm_records_service as service
    from invenio_search.proxies import current_search_client as client
    from invenio_search.utils import prefix_index

    from ..utils.usage_events import RecordTarget
    from . import rdm

    rdm.refresh()
    resolve = service.record_cls.pid.resolve
    records = [resolve(rid, registered_only=False) for rid in version_ids]
    hits = client.search(index=prefix_index(service.record_cls.index.search_alias), body={
        "query": {"ids": {"values": [str(r.id) for r in records]}}, "size": len(records),
        "_source": ["parent.communities.ids"]})["hits"]["hits"]
    indexed = {h["_id"]: sorted(h["_source"].get("parent", {}).get("communities", {}).get(
        "ids", [])) for h in hits}
    stale = [r.pid.pid_value for r in records
             if indexed.get(str(r.id)) != sorted(map(str, r.parent.communities.ids))]
    if stale:
        raise RuntimeError(f"indexed communities differ from the database for {stale}")
    return [RecordTarget.from_record(record, created=when)
            for record, (_n, _i, when) in zip(records, history.versions)]


def index_events(task):
    """Run invenio-stats' indexer on one chunk of planned events (read from memory)."""
    from ..utils.usage_events import index_events as index

    event_type, events = task
    return event_type, len(events), index({event_type: events}, via_queue=False)[event_type]



def count_events(keys, recids):
    """Documents of ``recids`` per ``(event type, YYYY-MM)`` in the monthly event indices."""
    from invenio_search.proxies import current_search_client as client
    from invenio_search.utils import prefix_index

    client.indices.refresh(index=prefix_index("events-stats-*"))
    query = {"query": {"terms": {"recid": sorted(recids)}}}
    return {(event_type, month): client.count(
                index=prefix_index(f"events-stats-{event_type}-{month}"), body=query)["count"]
            for event_type, month in keys}
