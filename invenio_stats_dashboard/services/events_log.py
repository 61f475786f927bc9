# Part of invenio-stats-dashboard (MIT License).
"""Reading and writing the community membership log (``stats-community-events``).

One document says "from ``event_date`` on, record version ``record_id`` is
(``added``) or is no longer (``removed``) in ``community_id``" (a community UUID
or ``global``). Documents get deterministic ids (record, community, type,
instant), so a repeated or retried write overwrites instead of duplicating.

**The invariant readers rely on: state transitions, not documents.** Within a
(record, community) pair, documents are ordered by ``event_date``, then by
write time (``timestamp``). The pair starts *out*; an ``added`` document while
*in*, or a ``removed`` one while *out*, is a no-op (M4) — e.g. the second of
two ``added`` documents written by concurrent post-commit operations — and
changes nothing. :func:`iter_transitions` yields only the real changes; every
count must go through it (or through :func:`latest_states`, the state after
the last one), never count documents.
"""

import hashlib
import re
from collections import defaultdict
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timezone

import arrow
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

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


#: The stored forms of ``event_date`` and ``timestamp`` (``iso``, ``utcnow``).
_PLAIN_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(\+00:00|Z)?")


def epoch_ms(value):
    """Epoch milliseconds of an instant (datetime, ISO or date-only string; naive = UTC)."""
    if isinstance(value, str):
        return _text_epoch_ms(value)
    when = arrow.get(value).to("utc")
    return when.int_timestamp * 1000 + when.microsecond // 1000


@lru_cache(maxsize=1 << 16)
def _text_epoch_ms(value):
    """:func:`epoch_ms` of a string, memoised: a run parses each log instant several
    times (ordering a pair, its transitions), and ``arrow.get`` costs ~0.15 ms —
    seconds per hourly run. The stored UTC form is read by ``datetime`` (same result)."""
    if _PLAIN_ISO.fullmatch(value):
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp()) * 1000 + when.microsecond // 1000
    when = arrow.get(value).to("utc")
    return when.int_timestamp * 1000 + when.microsecond // 1000


def _chronological(hit):
    """Order within a pair: instant, then write time; at a tie ``added`` is the newer."""
    src = hit["_source"]
    return (epoch_ms(src["event_date"]), epoch_ms(src.get("timestamp") or src["event_date"]),
            src["event_type"] == ADDED, hit["_id"])


def _chunks(record_ids, client=None, community_ids=None):
    """Per chunk of ids: ``{(record_id, community_id): [hits, oldest first]}``.

    A scroll per chunk (no result window, and no sort on ``_id``, whose field
    data is deprecated and held on the heap); the order is made here.
    """
    client = client or current_search_client
    ids = sorted(set(record_ids))
    if not ids or not client.indices.exists_alias(name=alias_name()):
        return
    for start in range(0, len(ids), TERMS_CHUNK):
        filters = [{"terms": {"record_id": ids[start:start + TERMS_CHUNK]}}]
        if community_ids:
            filters.append({"terms": {"community_id": sorted(community_ids)}})
        pairs = defaultdict(list)
        for hit in search.helpers.scan(client, index=alias_name(), size=PAGE_SIZE,
                                       query={"query": {"bool": {"filter": filters}}}):
            src = hit["_source"]
            pairs[(src["record_id"], src["community_id"])].append(hit)
        for hits in pairs.values():
            hits.sort(key=_chronological)
        yield dict(sorted(pairs.items()))


def documents_by_pair(record_ids, client=None, community_ids=None):
    """``{(record_id, community_id): [hits, oldest first]}`` (all documents)."""
    found = {}
    for chunk in _chunks(record_ids, client, community_ids):
        found.update(chunk)
    return found


def iter_documents(record_ids, client=None, community_ids=None):
    """Every log document of ``record_ids``, by (record, community), newest first within each pair."""
    for chunk in _chunks(record_ids, client, community_ids):
        for hits in chunk.values():
            yield from reversed(hits)


@dataclass(frozen=True)
class Transition:
    """A real change of a pair's state (see the module docstring)."""

    record_id: str
    community_id: str
    event_type: str
    event_date: str
    hit: dict  # the document that made the change


def transitions(hits):
    """The real state changes among one pair's documents (oldest first)."""
    out, state = [], REMOVED
    for hit in hits:
        src = hit["_source"]
        if src["event_type"] != state:
            state = src["event_type"]
            out.append(Transition(src["record_id"], src["community_id"], state,
                                  src["event_date"], hit))
    return out


def iter_transitions(record_ids=None, client=None, community_ids=None):
    """Real state transitions, pair by pair (record, community ascending), oldest first.

    No-op documents (a repeated ``added`` or ``removed``, a ``removed`` first)
    are dropped, so duplicates written concurrently change no count. With
    ``record_ids=None`` the whole log is read (record ids paged by a composite
    aggregation), optionally limited to ``community_ids``.
    """
    ids = record_ids if record_ids is not None else log_record_ids(client, community_ids)
    for chunk in _chunks(ids, client, community_ids):
        for hits in chunk.values():
            yield from transitions(hits)


def search_log(body, client=None):
    """One search over the log; a shard that fails (e.g. a tripped memory breaker)
    raises instead of silently shortening the result (and a composite paging)."""
    client = client or current_search_client
    res = client.search(index=alias_name(), body=body)
    shards = res.get("_shards") or {}
    if shards.get("failed"):
        raise RuntimeError(f"{shards['failed']} shard(s) of the membership log failed: "
                           f"{(shards.get('failures') or [None])[0]}")
    return res


def log_record_ids(client=None, community_ids=None):
    """Every record id in the log (optionally: with documents for ``community_ids``)."""
    client = client or current_search_client
    if not client.indices.exists_alias(name=alias_name()):
        return []
    query = ({"terms": {"community_id": sorted(community_ids)}} if community_ids
             else {"match_all": {}})
    ids, after = [], None
    while True:
        agg = {"composite": {"size": 1000, "sources": [{"r": {"terms": {"field": "record_id"}}}]}}
        if after:
            agg["composite"]["after"] = after
        res = search_log({"size": 0, "query": query, "aggs": {"ids": agg}},
                         client)["aggregations"]["ids"]
        ids.extend(b["key"]["r"] for b in res["buckets"])
        after = res.get("after_key")
        if not res["buckets"] or not after:
            return ids


def latest_states(record_ids, client=None):
    """State after the last transition, per pair: ``{(record_id, community_id): PairState}``.

    Pairs whose documents are all no-ops (a lone ``removed``) are *out*.
    """
    states = {}
    for chunk in _chunks(record_ids, client):
        for key, hits in chunk.items():
            last, src = hits[-1], hits[-1]["_source"]
            states[key] = PairState(
                src["event_type"], src["event_date"], last["_id"], last["_index"],
                bool(src.get("is_deleted")), src.get("deleted_date"),
            )
    return states


def write(actions, client=None, refresh=False):
    """Bulk-write log documents; raises if any fails. Returns the number written.

    No refresh by default: readers that must see the documents at once call
    :func:`refresh` (``refresh=True``: now).
    """
    actions = list(actions)
    if not actions:
        return 0
    client = client or current_search_client
    ensure_template(client)
    ok, errors = search.helpers.bulk(client, actions, raise_on_error=False, refresh=False)
    if errors:
        raise RuntimeError(f"{len(errors)} community events failed to index: {errors[:3]}")
    if refresh:
        refresh_log(client)
    return ok


def deletion_updates(hits, deleted_date):
    """Partial updates that make ``is_deleted``/``deleted_date`` of ``hits`` match.

    Upstream compatibility: the flags mirror the version's *current* deletion
    state on all its documents.
    """
    wanted_deleted, wanted_date = deleted_date is not None, iso(deleted_date)
    return [
        {"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"],
         "doc": {"is_deleted": wanted_deleted, "deleted_date": wanted_date,
                 "updated_timestamp": iso(utcnow())}}
        for hit in hits
        if bool(hit["_source"].get("is_deleted")) != wanted_deleted
        or iso(hit["_source"].get("deleted_date")) != wanted_date
    ]


def refresh(client=None):
    """Make written documents visible to searches."""
    client = client or current_search_client
    if client.indices.exists_alias(name=alias_name()):
        client.indices.refresh(index=alias_name())


refresh_log = refresh  # for callers whose ``refresh`` is a flag

