# Part of invenio-stats-dashboard (MIT License).
"""Read every ``/api/stats-dashboard`` body format BACK into plain points.

``parse_back(body, mimetype)`` → ``{query: {subcount: {metric: {series_id:
{YYYY-MM-DD: value}}}}}`` for JSON (plain, gzip, brotli), the CSV and XLSX
tar.gz archives and the XML document. ``expected_points(results)`` is the
same shape computed straight from a response object (spec §4.3: ``MM-DD`` +
``year`` or full dates). Both are written independently of the package's
``rows.py`` so a round-trip test compares the exports against the spec, not
the serializers against themselves. Empty series/metrics/subcounts are pruned
on both sides: the archives do not carry metrics without points (§7.2).
"""

import csv
import gzip
import io
import re
import tarfile
from datetime import date, datetime

import brotli
import orjson
from lxml import etree

NS = "{https://github.com/MESH-Research/invenio-stats-dashboard}"
_INT = re.compile(r"^-?\d+$")


def expand(series, day):
    """Full date of a point per §4.3 (``year`` + ``MM-DD``, or already full)."""
    if len(day) == 10:
        return day
    assert "year" in series and len(day) == 5, (series.get("id"), day)
    return f"{series['year']}-{day}"


def prune(tree):
    """Drop empty leaves bottom-up: ``{}`` series/metrics/subcounts/queries."""
    if not isinstance(tree, dict):
        return tree
    out = {}
    for key, value in tree.items():
        value = prune(value)
        if value != {}:
            out[key] = value
    return out


def _put(tree, query, subcount, metric, series_id, day, value):
    points = tree.setdefault(query, {}).setdefault(subcount, {}).setdefault(metric, {})
    points = points.setdefault(series_id, {})
    assert day not in points, f"duplicate point {query}/{subcount}/{metric}/{series_id}/{day}"
    points[day] = value


def expected_points(results):
    """The points of a response object, dates expanded, as the nested dict."""
    tree = {}
    for query, series_set in results.items():
        if not isinstance(series_set, dict):
            continue  # raw-document queries have no tabular export
        for subcount, metrics in series_set.items():
            for metric, series_list in metrics.items():
                for series in series_list:
                    for day, value in series["data"]:
                        _put(tree, query, subcount, metric, series["id"], expand(series, day), value)
    return prune(tree)


def _number(text):
    return int(text) if _INT.match(text) else float(text)


def _members(body):
    """``{path: bytes}`` of a gzip tar archive (fails unless it IS one)."""
    assert body[:2] == b"\x1f\x8b", "archive is not gzip-compressed"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def parse_csv_archive(body):
    """``<query>/<subcount>/<metric>.csv`` files with columns id,label,date,value,units."""
    tree = {}
    for path, data in _members(body).items():
        query, subcount, filename = path.split("/")
        assert filename.endswith(".csv"), path
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        assert reader.fieldnames == ["id", "label", "date", "value", "units"], reader.fieldnames
        for row in reader:
            _put(tree, query, subcount, filename[:-4], row["id"], row["date"], _number(row["value"]))
    return prune(tree)


def parse_xlsx_archive(body):
    """``<query>/<subcount>.xlsx`` workbooks, one sheet per metric."""
    from openpyxl import load_workbook

    tree = {}
    for path, data in _members(body).items():
        query, filename = path.split("/")
        assert filename.endswith(".xlsx"), path
        book = load_workbook(io.BytesIO(data), read_only=True)
        for sheet in book.worksheets:
            rows = list(sheet.iter_rows(values_only=True))
            if sheet.title == "No Data":
                continue
            assert rows[0] == ("id", "label", "date", "value", "units"), rows[0]
            for series_id, _label, day, value, _units in rows[1:]:
                if isinstance(day, datetime):
                    day = day.date()
                day = day.isoformat() if isinstance(day, date) else str(day)
                _put(tree, query, filename[:-5], sheet.title, str(series_id), day, value)
    return prune(tree)


def parse_xml(body):
    """``category/seriesSet/metric/series/dataPoints/point`` of the XML export."""
    root = etree.fromstring(body)
    tree = {}
    for category in root.iter(f"{NS}category"):
        for series_set in category.iter(f"{NS}seriesSet"):
            for metric in series_set.iter(f"{NS}metric"):
                for series in metric.iter(f"{NS}series"):
                    for point in series.iter(f"{NS}point"):
                        _put(
                            tree,
                            category.get("name"),
                            series_set.get("name"),
                            metric.get("name"),
                            series.get("id"),
                            point.get("date"),
                            _number(point.get("value")),
                        )
    return prune(tree)


def decode_json(body, mimetype):
    """The response object of a JSON body (decompressing the ``+gzip``/``+br`` files)."""
    if mimetype == "application/json+gzip":
        body = gzip.decompress(body)
    elif mimetype == "application/json+br":
        body = brotli.decompress(body)
    return orjson.loads(body)


def parse_back(body, mimetype):
    """Points of any body format, as ``expected_points`` gives them for the input."""
    if mimetype.startswith("application/json"):
        return expected_points(decode_json(body, mimetype))
    if mimetype == "text/csv":
        return parse_csv_archive(body)
    if mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        return parse_xlsx_archive(body)
    if mimetype == "application/xml":
        return parse_xml(body)
    raise ValueError(mimetype)
