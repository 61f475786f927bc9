# Part of invenio-stats-dashboard (MIT License).
"""XML export: one ``dataSeriesCollection`` document (§7.4).

The document validates against the shipped ``data-series.xsd`` (gap 9): our
elements are unprefixed in the project namespace, point dates are full
``xs:date`` values (gap 8), units and descriptions come from the camelCase
metric table in ``rows.py``, ``timeRange`` is emitted (the requested range when
the view passes it, else the span of the points), ``community`` when known.
Upstream's per-point ``quality`` (always ``low``) and ``unit`` are dropped: a
constant says nothing, and the unit is stated once per metric.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from xml.etree import ElementTree as ET

from .json import attachment
from .rows import group_blocks, iter_metrics, iter_points, label_of, number, text, time_range

XML = "application/xml"
NS = "https://github.com/MESH-Research/invenio-stats-dashboard"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_FILE = "data-series.xsd"

ET.register_namespace("", NS)
ET.register_namespace("dc", DC)
ET.register_namespace("xsi", XSI)

_NOT_NMTOKEN = re.compile(r"[^A-Za-z0-9._-]+")


def schema_path():
    """Filesystem path of the shipped XSD (package data), for validators and docs."""
    return resources.files(__package__).joinpath(SCHEMA_FILE)


def _el(parent, tag, text=None, ns=NS, /, **attrs):
    """Append element ``tag`` (namespace ``ns``) with text and string attributes."""
    element = ET.SubElement(parent, f"{{{ns}}}{tag}", {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _token(name):
    """An ``xs:NMTOKEN`` id for a name (query names and camelCase keys pass unchanged)."""
    return _NOT_NMTOKEN.sub("_", str(name)) or "_"


def decimal_text(value):
    """``xs:decimal`` lexical form: no exponent (``1e+20`` is not a decimal)."""
    value = number(value)
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)), "f")


def _site():
    """Publisher and language from the app config (outside an app: defaults)."""
    try:
        from flask import current_app

        config = current_app.config
    except RuntimeError:
        config = {}
    names = ("THEME_SITENAME", "THEME_FRONTPAGE_TITLE", "THEME_SHORT_TITLE", "APP_THEME")
    # APP_THEME is usually a list of theme names, not a title (titles may be
    # lazy translation strings, hence no ``isinstance(str)`` test).
    publisher = next(
        (config[k] for k in names if config.get(k) and not isinstance(config[k], (list, tuple))), "InvenioRDM"
    )
    language = config.get("BABEL_DEFAULT_LOCALE") or config.get("I18N_DEFAULT_LOCALE") or "en"
    return text(publisher), text(language)


def _metadata(root, blocks, now, community, start_date, end_date):
    publisher, language = _site()
    meta = _el(root, "metadata")
    for name, value in (
        ("title", f"{publisher} Data Series Collection"),
        ("creator", publisher),
        ("description", "Daily statistics data series exported from the stats dashboard"),
        ("date", now.isoformat()),
        ("format", XML),
        ("language", language),
        ("publisher", publisher),
        ("source", f"{publisher} API"),
        ("subject", "Repository usage and content statistics"),
        ("type", "Dataset"),
    ):
        _el(meta, name, value, DC)
    _el(meta, "generatedAt", now.isoformat())
    _el(meta, "totalCategories", len({b.query for b in blocks}))
    _el(meta, "totalDataPoints", sum(b.point_count for b in blocks))
    span = (str(start_date), str(end_date)) if start_date and end_date else time_range(blocks)
    if span:
        _el(meta, "timeRange", start=span[0], end=span[1])
    if community:
        _el(meta, "community", id=text(community))


def _metric(parent, block):
    attrs = {"name": block.metric, "id": _token(block.metric), "dataPointsCount": block.point_count}
    if block.unit:
        attrs["unit"] = block.unit
    attrs.update(measurementType=block.measurement, aggregationMethod="daily")
    metric = _el(parent, "metric", **attrs)
    _el(metric, "description", block.description)
    for series in block.series:
        node = _el(
            metric,
            "series",
            id=text(series.get("id", "")),
            type=series.get("type", "line"),
            valueType=series.get("valueType", "number"),
        )
        _el(node, "label", label_of(series))
        points = _el(node, "dataPoints", count=len(series.get("data") or ()))
        for date, value in iter_points(series):
            _el(points, "point", date=date, value=decimal_text(value))


def xml_serializer(results, community=None, start_date=None, end_date=None, **_options):
    """``application/xml``: the whole response as one schema-valid document."""
    blocks = list(iter_metrics(results))
    now = datetime.now(UTC).replace(microsecond=0)
    root = ET.Element(
        f"{{{NS}}}dataSeriesCollection",
        {"version": "1.0", f"{{{XSI}}}schemaLocation": f"{NS} {SCHEMA_FILE}"},
    )
    _metadata(root, blocks, now, community, start_date, end_date)
    for (query,), query_blocks in group_blocks(blocks, "query"):
        query_blocks = list(query_blocks)
        count = sum(b.metric is not None for b in query_blocks)
        category = _el(root, "category", name=query, id=_token(query), metricsCount=count)
        for (_q, subcount), sub_blocks in group_blocks(query_blocks, "query", "subcount"):
            sub_blocks = [b for b in sub_blocks if b.metric is not None]
            series_set = _el(
                category, "seriesSet", name=subcount, id=_token(subcount), metricsCount=len(sub_blocks)
            )
            for block in sub_blocks:
                _metric(series_set, block)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    name = f"data_series_xml_{_token(community)}.xml" if community else "data_series_xml.xml"
    return body, {"Content-Type": f"{XML}; charset=utf-8", "Content-Disposition": attachment(name)}
