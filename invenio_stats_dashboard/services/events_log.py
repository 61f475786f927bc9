# Part of invenio-stats-dashboard (MIT License).
"""Reading and writing the community membership log (``stats-community-events``).

One document says "from ``event_date`` on, record version ``record_id`` is
(``added``) or is no longer (``removed``) in ``community_id``" (a community UUID
or ``global``). The state of a (record, community) pair is its newest document
by ``event_date`` (ties: the later-written one).

Documents get deterministic ids (record, community, type, instant), so a
repeated or retried write overwrites instead of duplicating.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import arrow
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from opensearchpy import helpers

from ..search_indices.names import COMMUNITY_EVENTS as ALIAS, COMMUNITY_EVENTS_TEMPLATE
TEMPLATE_PACKAGE = "invenio_stats_dashboard.search_indices.search_templates.stats_community_events"
GLOBAL = "global"
ADDED, REMOVED = "added", "removed"
#: Terms lookups are chunked below OpenSearch's default max_terms_count (65,536).
TERMS_CHUNK = 1000
PAGE_SIZE = 5000


def utcnow():
    """Timezone-aware now, truncated to milliseconds (the stored precision)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value):
    """ISO 8601 UTC string (``Z``-less offset form) of a datetime/str, or None."""
    if value is None:
        return None
    return arrow.get(value).to("utc").isoformat()


def parse_publication_date(pub_date):
    """Normalise a metadata publication date to ``YYYY-MM-DD`` (spec 2.1a)."""
    if not pub_date:
        return None
    text = str(pub_date).strip()
    parts = text.split("/")[0]  # EDTF interval: its start
    try:
        if len(parts) == 4 and parts.isdigit():
            return f"{parts}-01-01"
        if len(parts) == 7 and parts[4] == "-":
            return f"{parts}-01"
        if len(parts) == 9 and parts[4] == "-" and parts[5:].isdigit():  # YYYY-YYYY
            return f"{parts[:4]}-01-01"
        return arrow.get(parts).format("YYYY-MM-DD")
    except (arrow.parser.ParserError, ValueError, TypeError):
        return None


@dataclass
class PairState:
    """The newest log document of one (record, community) pair."""

    event_type: str
    event_date: str
    doc_id: str
    index: str
    is_deleted: bool = False
    deleted_date: str | None = None


def alias_name():
    """The prefixed read alias."""
    return prefix_index(ALIAS)


def index_for(event_date):
    """Yearly index of an event instant."""
    return prefix_index(f"{ALIAS}-{arrow.get(event_date).year}")


def event_id(record_id, community_id, event_type, event_date):
    """Deterministic document id (idempotent re-writes)."""
    key = f"{record_id}|{community_id}|{event_type}|{iso(event_date)}"
    return hashlib.sha1(key.encode()).hexdigest()


def make_event(record_id, community_id, event_type, event_date, created=None,
               published=None, deleted_date=None):
    """A log document (bulk action) for one membership change."""
    now = iso(utcnow())
    source = {
        "record_id": record_id,
        "community_id": community_id,
        "event_type": event_type,
        "event_date": iso(event_date),
        "record_created_date": iso(created),
        "record_published_date": parse_publication_date(published),
        "is_deleted": deleted_date is not None,
        "deleted_date": iso(deleted_date),
        "timestamp": now,
        "updated_timestamp": now,
    }
    return {
        "_op_type": "index",
        "_index": index_for(event_date),
        "_id": event_id(record_id, community_id, event_type, event_date),
        "_source": source,
    }


_templates_checked = set()


def ensure_template(client=None):
    """Put the log's index template if the cluster lacks it (once per process)."""
    from ..search_indices.templates import put_index_templates

    client = client or current_search_client
    key = (id(client), prefix_index(""))
    if key in _templates_checked:
        return
    name = prefix_index(COMMUNITY_EVENTS_TEMPLATE)
    if not client.indices.exists_index_template(name=name):
        put_index_templates([TEMPLATE_PACKAGE], strict=True)
    _templates_checked.add(key)


def iter_documents(record_ids, client=None):
    """Every log document of ``record_ids``, newest first within each pair.

    ``search_after`` pages over chunks of ids: no result-window limit applies.
    """
    client = client or current_search_client
    ids = sorted(set(record_ids))
    if not ids or not client.indices.exists_alias(name=alias_name()):
        return
    sort = [{"record_id": "asc"}, {"community_id": "asc"},
            {"event_date": "desc"}, {"timestamp": "desc"}, {"_id": "asc"}]
    for start in range(0, len(ids), TERMS_CHUNK):
        body = {"query": {"terms": {"record_id": ids[start:start + TERMS_CHUNK]}},
                "sort": sort, "size": PAGE_SIZE}
        while True:
            hits = client.search(index=alias_name(), body=body)["hits"]["hits"]
            yield from hits
            if len(hits) < PAGE_SIZE:
                break
            body["search_after"] = hits[-1]["sort"]


def latest_states(record_ids, client=None):
    """Newest document per (record, community): ``{(record_id, community_id): PairState}``."""
    states = {}
    for hit in iter_documents(record_ids, client):
        src = hit["_source"]
        key = (src["record_id"], src["community_id"])
        if key not in states:
            states[key] = PairState(
                src["event_type"], src["event_date"], hit["_id"], hit["_index"],
                bool(src.get("is_deleted")), src.get("deleted_date"),
            )
    return states


def write(actions, client=None, refresh=True):
    """Bulk-write log documents; raises if any fails. Returns the number written."""
    actions = list(actions)
    if not actions:
        return 0
    client = client or current_search_client
    ensure_template(client)
    ok, errors = helpers.bulk(client, actions, raise_on_error=False,
                              refresh=True if refresh else False)
    if errors:
        raise RuntimeError(f"{len(errors)} community events failed to index: {errors[:3]}")
    return ok


def deletion_updates(record_id, deleted_date):
    """Partial updates that set ``is_deleted``/``deleted_date`` on a record's documents.

    Only documents whose flags differ are touched (upstream compatibility: the
    flags mirror the record's *current* deletion state on all its documents).
    """
    wanted_deleted, wanted_date = deleted_date is not None, iso(deleted_date)
    return [
        {"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"],
         "doc": {"is_deleted": wanted_deleted, "deleted_date": wanted_date,
                 "updated_timestamp": iso(utcnow())}}
        for hit in iter_documents([record_id])
        if bool(hit["_source"].get("is_deleted")) != wanted_deleted
        or iso(hit["_source"].get("deleted_date")) != wanted_date
    ]


def refresh(client=None):
    """Make written documents visible to searches."""
    client = client or current_search_client
    if client.indices.exists_alias(name=alias_name()):
        client.indices.refresh(index=alias_name())

