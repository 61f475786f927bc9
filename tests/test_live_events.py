# Part of invenio-stats-dashboard (MIT License).
"""Live view/download events are enriched when indexed (views *and* downloads, G1)."""

import json
from importlib.resources import files

import arrow
import pytest
from flask import current_app
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from invenio_stats.proxies import current_stats

from invenio_stats_dashboard.utils.usage_events import BROWSER_UA

INDEX_TEMPLATE_PKG = "invenio_rdm_records.records.stats.templates.events.record_view"


def process(event_type):
    event = current_stats.events[event_type]
    event.cls(**event.params).run()
    current_search_client.indices.refresh(index=prefix_index(f"events-stats-{event_type}-*"))


def emit(app, event_type, **kwargs):
    with app.test_request_context("/records/x", headers={"User-Agent": BROWSER_UA},
                                  environ_base={"REMOTE_ADDR": "81.2.69.142"}):
        current_stats.get_event_emitter(event_type)(current_app, via_api=False, **kwargs)
    process(event_type)


def docs_for(event_type, recid):
    return [h["_source"] for h in current_search_client.search(
        index=prefix_index(f"events-stats-{event_type}"),
        body={"query": {"term": {"recid": recid}}})["hits"]["hits"]]


@pytest.fixture(scope="module")
def record(make_record, communities):
    item = make_record(files={"table.csv": b"x,y\n"}, community_id=communities["alpha"].id,
                       languages=["deu"], resource_type="software")
    return current_rdm_records_service.record_cls.pid.resolve(item.id)


def test_live_view_is_enriched(services, record, communities):
    emit(services, "record-view", record=record)
    (doc,) = docs_for("record-view", record["id"])
    assert doc["community_ids"] == [communities["alpha"].id]
    assert doc["resource_type"]["id"] == "software"
    assert [lang["id"] for lang in doc["languages"]] == ["deu"]
    assert doc["access_status"] == "open"
    assert doc["country"] == "GB" and doc["is_robot"] is False


def test_live_download_is_enriched(services, record, communities):
    obj = record.files["table.csv"].object_version
    emit(services, "file-download", record=record, obj=obj)
    (doc,) = docs_for("file-download", record["id"])
    assert doc["community_ids"] == [communities["alpha"].id]  # upstream never set this
    assert doc["file_types"] == ["csv"]
    assert doc["file_key"] == "table.csv" and doc["size"] == len(b"x,y\n")


def test_event_for_a_legacy_index_is_kept_unenriched(services, record):
    """A strict stock index (legacy current month) gets the stock fields, not a rejection."""
    body = json.loads((files(INDEX_TEMPLATE_PKG) / "os-v2" / "record-view-v1.0.0.json")
                      .read_text().replace("__SEARCH_INDEX_PREFIX__", prefix_index("")))
    month = "2020-05"
    index = prefix_index(f"events-stats-record-view-{month}")
    # An index from before the package: created while only the stock template existed.
    from invenio_stats_dashboard.search_indices.templates import (
        EVENT_TEMPLATE_PACKAGES,
        put_index_templates,
    )

    ours = prefix_index("record-view-v2.0.0")
    current_search_client.indices.delete_index_template(name=ours)
    current_search_client.indices.create(index=index, body={
        "mappings": body["mappings"], "settings": body["settings"]})
    put_index_templates(EVENT_TEMPLATE_PACKAGES, strict=True)
    assert "community_ids" not in current_search_client.indices.get_mapping(
        index=index)[index]["mappings"]["properties"]
    event = {"timestamp": arrow.get(f"{month}-10T10:00:00").naive.isoformat(),
             "recid": record["id"], "parent_recid": record.parent["id"],
             "community_ids": ["x"], "resource_type": {"id": "software"},
             "via_api": False, "session_id": "s1", "user_agent": BROWSER_UA,
             "ip_address": "8.8.8.8", "referrer": None}
    current_stats.publish("record-view", [event])
    process("record-view")
    hits = current_search_client.search(index=index)["hits"]["hits"]
    assert len(hits) == 1
    assert "community_ids" not in hits[0]["_source"]
    assert hits[0]["_source"]["recid"] == record["id"]
