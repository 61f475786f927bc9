# Part of invenio-stats-dashboard (MIT License).
"""Monthly event indices with InvenioRDM's stock mapping (legacy months).

``usage-events generate`` without ``--enrich-events`` simulates events of an
instance before installation: they must land in indices exactly like the ones
such an instance has, so that the migration is exercised on them. Once our
enriched templates are installed they win by priority (and would merge into
any explicit mapping), so a stock month is created through a one-off
template for exactly its name, from InvenioRDM's own template body.
"""

import json
from importlib.resources import files

from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

STOCK_PACKAGE = "invenio_rdm_records.records.stats.templates.events"


def stock_body(stem):
    """InvenioRDM's template of ``record-view`` / ``file-download`` events, prefixed."""
    package = f"{STOCK_PACKAGE}.{stem.replace('-', '_')}"
    text = (files(package) / "os-v2" / f"{stem}-v1.0.0.json").read_text()
    return json.loads(text.replace("__SEARCH_INDEX_PREFIX__", prefix_index("")))


def create_stock_month(stem, month, client=None):
    """The stock-mapped index of ``stem`` events for ``YYYY-MM``; an existing one is kept."""
    client = client or current_search_client
    index = prefix_index(f"events-stats-{stem}-{month}")
    if client.indices.exists(index=index) or client.indices.exists(
            index=f"{index}-v2.0.0"):
        return index
    body = stock_body(stem)
    name = f"{index}-stock-month"
    client.indices.put_index_template(name=name, body={
        "index_patterns": [index], "priority": 1000, "template": {
            "mappings": body["mappings"], "settings": body["settings"],
            "aliases": body.get("aliases") or {}}})
    try:
        client.indices.create(index=index, ignore=[400])
    finally:
        client.indices.delete_index_template(name=name, ignore=[404])
    return index
