# Part of invenio-stats-dashboard (MIT License).
"""Live view/download events, enriched when they are built (fixes upstream G1, G11).

The builders add to InvenioRDM's stock events the communities the record is in
*now* (its parent's communities, M1/M5) and the subcount fields of
``COMMUNITY_STATS_SUBCOUNTS`` — extracted by the same ``MetadataExtractor`` the
migration uses, so live and migrated events carry the same fields.

``EnrichedEventsIndexer`` writes each event pruned to the mapping of the index
it lands in: an index created from our v2 template keeps everything, while a
legacy current-month index (strict stock mapping) gets the stock fields only
— the event is kept, unenriched, and the migration enriches it later. Without
this, an enriched event sent to a stock index would be rejected and lost.
"""

import json
import time
from importlib.resources import files

from flask import current_app
from invenio_rdm_records.resources.stats import event_builders as stock
from invenio_search.proxies import current_search_client
from invenio_stats.processors import EventsIndexer

from ..services.enrichment import MetadataExtractor, prune

ENRICHED_FIELDS_TTL = 60  # default seconds a month's target and mapping are cached


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


def _template_properties(stem):
    package = f"invenio_stats_dashboard.search_indices.search_templates.{stem.replace('-', '_')}"
    body = json.loads((files(package) / "os-v2" / f"{stem}-v2.0.0.json").read_text())
    return body["template"]["mappings"]["properties"]


class EnrichedEventsIndexer(EventsIndexer):
    """invenio-stats' indexer: routes a month to its migrated index, prunes to mappings.

    Once a month's ``-v2.0.0`` index exists (the migration created it), events
    of that month are written there directly, so the stock index stops
    changing and can be copied completely before it is swapped out — no event
    written during a migration is lost. The lookup is cached for
    ``STATS_DASHBOARD_EVENT_ROUTING_TTL`` seconds; the migration waits that
    long after creating a target before its final copy.
    """

    _mappings = {}  # index name -> (expiry, (target index, properties))

    def _target(self, index):
        ttl = current_app.config.get("STATS_DASHBOARD_EVENT_ROUTING_TTL", ENRICHED_FIELDS_TTL)
        cached = self._mappings.get(index)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        client = current_search_client
        target = f"{index}-v2.0.0"
        if not client.indices.exists(index=target):
            target = index
        result = (target, self._properties(target))
        self._mappings[index] = (time.monotonic() + ttl, result)
        return result

    def _properties(self, index):
        client = current_search_client
        if client.indices.exists(index=index):
            mapping = client.indices.get_mapping(index=index)
            props = next(iter(mapping.values()))["mappings"].get("properties", {})
        else:  # will be created from our v2 template
            stem = "file-download" if "file-download" in index else "record-view"
            props = _template_properties(stem)
        return props

    def actionsiter(self):
        """Stock actions, with sources pruned to what the target index maps."""
        for action in super().actionsiter():
            action["_index"], props = self._target(action["_index"])
            source = {}
            for key, value in action["_source"].items():
                if key in props:
                    pruned = prune(value, props[key])
                    if pruned is not None or key == "community_ids":
                        source[key] = pruned if pruned is not None else []
            action["_source"] = source
            yield action
