# Part of invenio-stats-dashboard (MIT License).
"""Index templates of the eight series, built from the subcount configuration.

The shapes are the spec's (aggregations.md §3.1, §4.1, §5.1, §6.1); the
``subcounts`` object has one property per configured key of the family, so a
configured subcount is stored without a template edit. Mappings are strict;
``label`` is a string or a localised object (stored, not indexed), and the
hidden ``_snapshot`` of records deltas is stored, not indexed.
"""

from flask import current_app
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from .series import SERIES
from .subcounts import blocks

VERSION = "v1.0.0"
KW, INT, DOUBLE = {"type": "keyword"}, {"type": "integer"}, {"type": "double"}
DATE = {"type": "date", "format": "date_optional_time"}
STORED = {"type": "object", "enabled": False}
SPLIT = {"properties": {"metadata_only": INT, "with_files": INT}}
FILES = {"properties": {"file_count": INT, "data_volume": DOUBLE}}
VIEW = {"properties": {k: INT for k in (
    "total_events", "unique_visitors", "unique_records", "unique_parents")}}
DOWNLOAD = {"properties": {**VIEW["properties"], "unique_files": INT, "total_volume": DOUBLE}}


def _added_removed(inner):
    return {"properties": {"added": inner, "removed": inner}}


def _nested(properties):
    return {"type": "nested", "properties": {"id": KW, "label": STORED, **properties}}


def _records_delta(keys):
    item = {"records": _added_removed(SPLIT), "parents": _added_removed(SPLIT),
            "files": _added_removed(FILES)}
    return {"records": _added_removed(SPLIT), "parents": _added_removed(SPLIT),
            "files": _added_removed(FILES), "uploaders": INT, "_snapshot": STORED,
            "subcounts": {"properties": {b.key: _nested(item) for b in keys}}}


def _records_snapshot(keys):
    item = {"records": SPLIT, "parents": SPLIT, "files": FILES}
    return {"total_records": SPLIT, "total_parents": SPLIT, "total_files": FILES,
            "total_uploaders": INT,
            "subcounts": {"properties": {b.key: _nested(item) for b in keys}}}


def _usage_delta(keys):
    item = {"view": VIEW, "download": DOWNLOAD}
    return {"totals": {"properties": {"view": VIEW, "download": DOWNLOAD}},
            "subcounts": {"properties": {b.key: _nested(item) for b in keys}}}


def _usage_snapshot(keys):
    item = {"view": VIEW, "download": DOWNLOAD}
    subcounts = {}
    for b in keys:
        subcounts[b.key] = ({"properties": {"by_view": _nested(item),
                                            "by_download": _nested(item)}}
                            if b.is_top else _nested(item))
    return {"totals": {"properties": {"view": VIEW, "download": DOWNLOAD}},
            "community_parent_id": KW, "subcounts": {"properties": subcounts}}


SHAPES = {("records", "delta"): _records_delta, ("records", "snapshot"): _records_snapshot,
          ("usage", "delta"): _usage_delta, ("usage", "snapshot"): _usage_snapshot}


def template(series, subcount_configs):
    """The composable index template body of ``series``."""
    keys = blocks(subcount_configs, series.family)
    day = {"period_start": DATE, "period_end": DATE} if series.is_delta else {
        "snapshot_date": DATE}
    properties = {"community_id": KW, **day, "timestamp": DATE, "updated_timestamp": DATE,
                  **SHAPES[(series.family, series.kind)](keys)}
    alias = prefix_index(series.alias)
    return {"index_patterns": [f"{alias}-*"], "priority": 100, "template": {
        "settings": {"index": {"number_of_shards": 1}},
        "mappings": {"dynamic": "strict", "date_detection": False,
                     "properties": properties},
        "aliases": {alias: {}}}}


def template_name(series):
    """Prefixed template name."""
    return prefix_index(f"{series.alias}-{VERSION}")


def put_templates(client=None, subcount_configs=None):
    """Create or replace the eight templates (start-up, before any write)."""
    client = client or current_search_client
    configs = subcount_configs if subcount_configs is not None else \
        current_app.config.get("COMMUNITY_STATS_SUBCOUNTS")
    for series in SERIES:
        client.indices.put_index_template(name=template_name(series),
                                          body=template(series, configs))
