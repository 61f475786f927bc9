# Part of invenio-stats-dashboard (MIT License).
"""Live view/download events, enriched (fixes upstream G1, G11), and their indexer.

The builders add to InvenioRDM's stock events the subcount fields of
``COMMUNITY_STATS_SUBCOUNTS`` — extracted by the same ``MetadataExtractor``
the migration uses — and, provisionally, the parent's communities.

``EnrichedEventsIndexer`` then decides where each event goes and what it
says, batch by batch:

* **Routing, checked on every bulk.** A month whose ``-v2.0.0`` index exists
  (the migration created it) is written there, so its stock index stops
  changing and can be frozen and copied completely. Nothing is cached, so the
  migration never waits for a cache to expire.
* **Communities from the membership log**, the same source and rule as the
  migration (M1/U1; T3: the event stands for the last instant of its stored
  second). The builder's provisional value is kept only for records the log
  does not know yet (before the backfill). A record restored after one of its
  communities was deleted is therefore not stamped with that community (M3),
  live or migrated alike.
* **Pruning to the target's mapping**: a legacy stock index keeps the event
  with stock fields instead of rejecting it.
* **Nothing consumed is dropped**: documents refused for a reason that can
  pass (a write block, a full queue, a moved index) are routed again and
  retried; if they still fail they go back to the queue, marked so that the
  preprocessors are not applied twice.
"""

import time

from flask import current_app
from invenio_rdm_records.resources.stats import event_builders as stock
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_stats.processors import EventsIndexer

from ..services import events_log as log
from ..services.enrichment import (
    MembershipIntervals,
    MetadataExtractor,
    file_fields,
    prune,
    subcount_digest,
)
from .names import ENRICHED_SUFFIX, META_KEY
from .templates import add_missing_event_fields, event_template_properties

MAPPING_TTL = 60  # seconds a concrete index's mapping is cached
REQUEUED = "_isd_requeued"  # marks a message whose preprocessing is done
RETRYABLE = {"cluster_block_exception", "es_rejected_execution_exception",
             "opensearch_rejected_execution_exception", "index_not_found_exception",
             "unavailable_shards_exception", "process_cluster_event_timeout_exception",
             "connection"}


def _enrich(event, record):
    deleted = getattr(getattr(record, "deletion_status", None), "is_deleted", False)
    event["community_ids"] = [] if deleted else sorted(record.parent.communities.ids)
    extractor = MetadataExtractor(current_app.config.get("COMMUNITY_STATS_SUBCOUNTS"))
    for field, value in extractor.extract_fields(record.dumps()).items():
        if value is not None:
            event[field] = value
    return event


def record_view_event_builder(event, sender_app, **kwargs):
    """Stock record-view event plus communities and subcount fields."""
    event = stock.record_view_event_builder(event, sender_app, **kwargs)
    return _enrich(event, kwargs["record"]) if event is not None else None


def file_download_event_builder(event, sender_app, **kwargs):
    """Stock file-download event plus communities, subcount fields and the file's type."""
    event = stock.file_download_event_builder(event, sender_app, **kwargs)
    if event is None:
        return None
    _enrich(event, kwargs["record"])
    key = event.get("file_key") or ""
    event["file_types"] = [key.rsplit(".", 1)[-1].lower()] if "." in key else None
    return event


def _skip_requeued(preprocessor):
    def wrapped(msg):
        return msg if msg.get(REQUEUED) else preprocessor(msg)
    return wrapped


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _bulk_action(action):
    return {k: v for k, v in action.items() if k not in ("_stock_index", "_message")}


class EnrichedEventsIndexer(EventsIndexer):
    """invenio-stats' indexer: per-bulk routing, log stamps, pruning, no loss."""

    chunk_size = 500
    retries = 5  # attempts after the first; back-off from 0.5 s, doubling (about 15 s)
    _mappings = {}  # concrete index -> (expiry, properties)

    def __init__(self, *args, **kwargs):
        """Stock set-up; preprocessors skip messages that come back from a retry."""
        super().__init__(*args, **kwargs)
        self.preprocessors = [_skip_requeued(p) for p in self.preprocessors]

    # -- where and what ------------------------------------------------------
    def _target(self, index):
        """The month's enriched index once it exists, else the stock name.

        A month's first event creates its index (from our template), with a
        ``_meta`` saying it was enriched live and under which subcount
        configuration, so ``status`` and ``re-enrich`` know it from a legacy
        month that still needs migrating.
        """
        client = current_search_client
        target = f"{index}{ENRICHED_SUFFIX}"
        if client.indices.exists(index=target):
            return target
        if not client.indices.exists(index=index):
            digest = subcount_digest(current_app.config.get("COMMUNITY_STATS_SUBCOUNTS"))
            client.indices.create(index=index, ignore=[400], body={"mappings": {"_meta": {
                META_KEY: {"enriched": "live", "subcount_digest": digest}}}})
        return index

    def _properties(self, index):
        cached = self._mappings.get(index)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        client = current_search_client
        if client.indices.exists(index=index):
            # an enriched month made by an earlier version gets the fields added since
            props = add_missing_event_fields(client, index)
        else:  # will be created from our v2 template
            stem = "file-download" if "file-download" in index else "record-view"
            props = event_template_properties(stem)
        self._mappings[index] = (time.monotonic() + MAPPING_TTL, props)
        return props

    def prepare(self, actions):
        """Route, stamp from the log and prune a batch of stock actions (copies)."""
        routes = {}
        recids = {a["_source"].get("recid") for a in actions} - {None}
        members = MembershipIntervals(recids) if recids else None
        prepared = []
        for action in actions:
            stock_index = action.get("_stock_index") or action["_index"]
            if stock_index not in routes:
                target = self._target(stock_index)
                routes[stock_index] = (target, self._properties(target))
            target, props = routes[stock_index]
            message = action.get("_message") or action["_source"]
            recid = message.get("recid")
            stamped = message
            if members is not None and recid in members.known and "community_ids" in props:
                stamped = {**message, "community_ids": members.at(recid, message["timestamp"])}
            if message.get("file_key"):  # as the migration's script derives them (U5)
                stamped = {**stamped, **file_fields(recid, message["file_key"])}
            source = {}
            for key, value in stamped.items():
                if key in props:
                    pruned = prune(value, props[key])
                    if pruned is not None or key == "community_ids":
                        source[key] = pruned if pruned is not None else []
            prepared.append({**action, "_index": target, "_source": source,
                             "_stock_index": stock_index, "_message": message})
        return prepared

    # -- indexing ------------------------------------------------------------
    def actionsiter(self):
        """Stock actions, prepared (for callers that bulk them themselves)."""
        for chunk in _chunks(super().actionsiter(), self.chunk_size):
            for action in self.prepare(chunk):
                yield _bulk_action(action)

    def run(self):
        """Index the queue batch by batch; returns ``(indexed, failed)`` like the stock one."""
        log.refresh()  # stamps must see membership changes written just now
        indexed, failed, requeue = 0, 0, []
        for chunk in _chunks(super().actionsiter(), self.chunk_size):
            done, rejected, again = self._index(self.prepare(chunk))
            indexed, failed = indexed + done, failed + rejected
            requeue.extend(again)
        if requeue:  # after consuming, so that they do not come straight back
            self.queue.publish([{**a["_message"], REQUEUED: True} for a in requeue])
            current_app.logger.warning("requeued %d usage events the cluster refused for now",
                                       len(requeue))
        return indexed, failed

    def _index(self, actions):
        """Bulk with retries; returns ``(indexed, rejected for good, to requeue)``."""
        indexed, pending, delay = 0, actions, 0.5
        for attempt in range(self.retries + 1):
            ok, errors = search.helpers.bulk(
                current_search_client, [_bulk_action(a) for a in pending],
                raise_on_error=False, raise_on_exception=False, chunk_size=self.chunk_size)
            indexed += ok
            if not errors:
                return indexed, 0, []
            refused = {}
            for error in errors:
                info = next(iter(error.values()))
                refused[info.get("_id")] = info
            pending = [a for a in pending if a["_id"] in refused]
            kinds = {_kind(info) for info in refused.values()}
            for a in pending:  # the mapping or the route may have changed: look again
                self._mappings.pop(a["_index"], None)
            if attempt and not kinds & RETRYABLE:
                current_app.logger.error("usage events rejected: %s", list(refused.values())[:3])
                return indexed, len(pending), []
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
                pending = self.prepare(pending)
        return indexed, 0, pending


def _kind(info):
    error = info.get("error")
    return error.get("type") if isinstance(error, dict) else "connection"
