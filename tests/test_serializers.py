# Part of invenio-stats-dashboard (MIT License).
"""Exports of ``/api/stats-dashboard``: negotiation, layouts, round trips (§7, gaps 6–9).

Pure tests: the response objects are built here (spec §4.3 shapes), the
bodies are parsed back by ``tests/api_roundtrip.py`` (written without the
package's row walk) and compared with the points of the input. A two-year set
is made the way the design says the view merges year blocks (full dates, no
``year``), so an export that drops or reuses a year cannot pass.
"""

import gzip
import io
import tarfile
from datetime import date, timedelta

import orjson
import pytest
from api_roundtrip import decode_json, expected_points, parse_back, parse_xlsx_archive
from flask import Flask
from lxml import etree

from invenio_stats_dashboard.resources.serializers import (
    CSV,
    JSON,
    JSON_BR,
    JSON_GZIP,
    XLSX,
    XML,
    negotiate,
    serialize,
)
from invenio_stats_dashboard.resources.serializers.xml import schema_path

ALL_TYPES = (JSON, JSON_GZIP, JSON_BR, CSV, XLSX, XML)
NS = "{https://github.com/MESH-Research/invenio-stats-dashboard}"


# --- test data: year blocks as the cache stores them, and a merged range ---


def _days(year, count, step):
    start = date(year, 1, 1)
    return [start + timedelta(days=i * step) for i in range(count) if (start + timedelta(days=i * step)).year == year]


def _series(sid, name, kind, value_type, year, points):
    """A year-block series: ``MM-DD`` dates and ``year`` (§4.3)."""
    return {
        "id": sid,
        "name": name,
        "type": kind,
        "valueType": value_type,
        "year": year,
        "data": [[d.strftime("%m-%d"), v] for d, v in points],
    }


def year_block(year):
    """Two category queries + a raw query for one calendar year.

    Values depend on the year and the day so a point moved to the wrong year
    or day changes the comparison. Includes floats, a big integer, a
    multilingual name, an empty label, sparse item series and empty metrics.
    """
    days = _days(year, 40, 9)  # Jan 1 … Dec 27, every 9th day
    last = date(year, 12, 31)
    glob = [(d, (year % 100) * 1000 + d.timetuple().tm_yday) for d in days] + [(last, year)]
    records = {
        "global": {
            "records": [_series("global", "Global", "bar", "number", year, glob)],
            "fileCount": [_series("global", "Global", "bar", "number", year, [(d, v % 7) for d, v in glob])],
            "dataVolume": [
                _series("global", "Global", "bar", "filesize", year, [(d, v * 1024.25) for d, v in glob[:5]])
            ],
            "parents": [],
            "uploaders": [_series("global", "Global", "bar", "number", year, [(last, 12345678901234)])],
        },
        "resourceTypes": {
            "records": [
                _series("dataset", {"de": "Datensatz", "en": "Dataset"}, "line", "number", year, [(days[3], -2)]),
                _series("image-photo", "", "line", "number", year, [(days[1], 1), (days[8], 0.1)]),
            ],
            "dataVolume": [],
        },
        "filePresence": {
            "records": [
                _series("metadata_only", "Metadata Only", "line", "number", year, [(days[0], 3)]),
                _series("with_files", "With Files", "line", "number", year, [(days[0], 4), (last, 5)]),
            ]
        },
    }
    usage = {
        "global": {
            "views": [_series("global", "Global", "bar", "number", year, [(d, year - 2000 + i) for i, d in enumerate(days)])],
            "downloadUniqueParents": [_series("global", "Global", "bar", "number", year, [(days[2], 2)])],
        },
        "countriesByView": {
            "views": [_series("US" if year % 2 else "DE", {"fr": "Pays"}, "line", "number", year, [(days[5], 9)])],
        },
        "subjects": {},
    }
    return {
        "record-snapshot-category": records,
        "usage-delta-category": usage,
        "community-records-delta-created": [{"period_start": f"{year}-01-01T00:00:00"}],
    }


def merge_years(*blocks):
    """Merge year blocks like the view does for a multi-year range (design doc):
    dates expanded to ``YYYY-MM-DD``, no ``year``, same-id series concatenated."""
    merged = {}
    for block in blocks:
        for query, series_set in block.items():
            if not isinstance(series_set, dict):
                merged.setdefault(query, []).extend(series_set)
                continue
            for subcount, metrics in series_set.items():
                target = merged.setdefault(query, {}).setdefault(subcount, {})
                for metric, series_list in metrics.items():
                    out = target.setdefault(metric, [])
                    for series in series_list:
                        data = [[f"{series['year']}-{d}", v] for d, v in series["data"]]
                        same = next((s for s in out if s["id"] == series["id"]), None)
                        if same is None:
                            out.append({k: v for k, v in series.items() if k not in ("year", "data")} | {"data": data})
                        else:
                            same["data"].extend(data)
    return merged


ONE_YEAR = year_block(2025)
TWO_YEARS = merge_years(year_block(2025), year_block(2026))
SETS = {"one-year": ONE_YEAR, "two-years": TWO_YEARS}


def test_test_data_is_what_it_claims():
    """Guards the oracle: the sets have the shapes §4.3 describes, and many points."""
    assert all(
        "year" in s and len(s["data"][0][0]) == 5
        for m in ONE_YEAR["usage-delta-category"]["global"].values()
        for s in m
    )
    series = TWO_YEARS["record-snapshot-category"]["global"]["records"][0]
    assert "year" not in series and series["data"][0][0] == "2025-01-01" and series["data"][-1][0] == "2026-12-31"
    points = expected_points(TWO_YEARS)
    assert sum(len(p) for m in points.values() for s in m.values() for x in s.values() for p in x.values()) > 160
    # Items present in one year only (US 2025, DE 2026) stay separate series.
    assert set(points["usage-delta-category"]["countriesByView"]["views"]) == {"US", "DE"}


# --- round trips ---


@pytest.mark.parametrize("mimetype", ALL_TYPES)
@pytest.mark.parametrize("name", sorted(SETS))
def test_round_trip(name, mimetype):
    """Every format parses back to exactly the input's points, with full dates (gap 8)."""
    results = SETS[name]
    body, _headers = serialize(results, mimetype)
    parsed = parse_back(body, mimetype)
    assert parsed == expected_points(results)
    records = parsed["record-snapshot-category"]["global"]["records"]["global"]
    assert records["2025-12-31"] == 2025
    assert records["2025-01-01"] == 25001
    if name == "two-years":
        assert records["2026-01-01"] == 26001 and records["2026-12-31"] == 2026


@pytest.mark.parametrize("mimetype", (JSON, JSON_GZIP, JSON_BR))
def test_json_bodies_are_the_response_unchanged(mimetype):
    """JSON is the dashboard's own (year-compacted) shape; compression is lossless."""
    body, _headers = serialize(ONE_YEAR, mimetype)
    assert decode_json(body, mimetype) == ONE_YEAR


def test_export_without_a_year_cannot_guess_one():
    """An ``MM-DD`` date with no ``year`` is malformed input, not silently exported."""
    broken = {"q-delta": {"global": {"views": [{"id": "global", "name": "G", "type": "bar", "valueType": "number", "data": [["01-02", 1]]}]}}}
    with pytest.raises(ValueError):
        serialize(broken, CSV)


# --- headers (gaps 6, 7) ---


@pytest.mark.parametrize(
    "mimetype,content_type,filename",
    [
        (JSON, "application/json", None),
        (JSON_GZIP, "application/json+gzip", "stats.json.gz"),
        (JSON_BR, "application/json+br", "stats.json.br"),
        (CSV, "application/gzip", "data_series_csv.tar.gz"),
        (XLSX, "application/gzip", "data_series_excel.tar.gz"),
        (XML, "application/xml; charset=utf-8", "data_series_xml.xml"),
    ],
)
def test_headers(mimetype, content_type, filename):
    """Own Content-Type, upstream's attachment names, and never Content-Encoding."""
    body, headers = serialize(ONE_YEAR, mimetype)
    assert headers["Content-Type"] == content_type
    assert "Content-Encoding" not in headers
    if filename:
        assert headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    else:
        assert "Content-Disposition" not in headers
    if content_type == "application/gzip" or mimetype == JSON_GZIP:
        gzip.decompress(body)  # the body itself is the gzip file


def test_community_in_attachment_names():
    """A community passed by the view is appended like upstream intended."""
    _body, headers = serialize(ONE_YEAR, CSV, community="my-comm")
    assert headers["Content-Disposition"].endswith('filename="data_series_csv_my-comm.tar.gz"')


# --- CSV / XLSX layouts (§7.2, §7.3) ---


def _members(body):
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_csv_layout_units_and_labels():
    """One file per metric WITH points; units by camelCase key; labels resolved."""
    members = _members(serialize(ONE_YEAR, CSV)[0])
    assert "record-snapshot-category/global/records.csv" in members
    assert "record-snapshot-category/global/parents.csv" not in members  # no points
    assert not any(p.startswith("community-records-delta-created") for p in members)  # raw query
    text = members["usage-delta-category/global/views.csv"].decode()
    assert text.splitlines()[0] == "id,label,date,value,units"
    assert text.splitlines()[1] == "global,Global,2025-01-01,25,views"  # not "unique views" (gap 9)
    volume = members["record-snapshot-category/global/dataVolume.csv"].decode().splitlines()
    assert volume[1].endswith(",bytes")
    types = members["record-snapshot-category/resourceTypes/records.csv"].decode().splitlines()
    assert types[1].startswith("dataset,Dataset,2025-01-28,-2,records")
    assert types[2].startswith("image-photo,,2025-01-10,1,")
    country = members["usage-delta-category/countriesByView/views.csv"].decode().splitlines()
    assert country[1].startswith("US,Pays,")  # no en → first language


def test_xlsx_layout():
    """Workbook per subcount, bold header, real dates, ``No Data`` for empty subcounts."""
    from openpyxl import load_workbook

    members = _members(serialize(ONE_YEAR, XLSX)[0])
    assert set(members) == {
        "record-snapshot-category/global.xlsx",
        "record-snapshot-category/resourceTypes.xlsx",
        "record-snapshot-category/filePresence.xlsx",
        "usage-delta-category/global.xlsx",
        "usage-delta-category/countriesByView.xlsx",
        "usage-delta-category/subjects.xlsx",
    }
    book = load_workbook(io.BytesIO(members["record-snapshot-category/global.xlsx"]))
    assert book.sheetnames == ["records", "fileCount", "dataVolume", "uploaders"]
    sheet = book["records"]
    assert sheet["A1"].font.bold and sheet["A1"].fill.fgColor.rgb.endswith("DDDDDD")
    assert sheet["C2"].is_date and sheet["C2"].value.date() == date(2025, 1, 1)
    assert sheet["E2"].value == "records"
    empty = load_workbook(io.BytesIO(members["usage-delta-category/subjects.xlsx"]))
    assert empty.sheetnames == ["No Data"]
    assert "usage-delta-category" in parse_xlsx_archive(serialize(ONE_YEAR, XLSX)[0])


# --- XML (§7.4, gap 9) ---


@pytest.fixture(scope="module")
def schema():
    """The shipped XSD, compiled by a real XML Schema validator."""
    return etree.XMLSchema(etree.parse(str(schema_path())))


@pytest.mark.parametrize("name", sorted(SETS))
def test_xml_validates_against_shipped_schema(schema, name):
    """The emitted document is valid (upstream's was not)."""
    document = etree.fromstring(serialize(SETS[name], XML)[0])
    schema.assertValid(document)


def _xml(results=ONE_YEAR, **options):
    return etree.fromstring(serialize(results, XML, **options)[0])


@pytest.mark.parametrize(
    "xpath,attribute,bad",
    [
        ("//i:point", "date", "01-02"),  # upstream's MM-DD date
        ("//i:metric", "measurementType", "sometimes"),
        ("//i:series", "type", "pie"),
        ("//i:point", "value", "12 views"),
    ],
)
def test_schema_rejects_invalid_documents(schema, xpath, attribute, bad):
    """The validation test can fail: a broken document is rejected."""
    document = _xml()
    assert schema.validate(document)
    document.xpath(xpath, namespaces={"i": NS[1:-1]})[0].set(attribute, bad)
    assert not schema.validate(document)


def test_schema_rejects_duplicate_dates_and_missing_metadata(schema):
    """Two points on one day (a bad year merge) and a missing count are invalid."""
    document = _xml()
    points = document.xpath("//i:dataPoints[count(i:point) > 1]", namespaces={"i": NS[1:-1]})[0]
    points[1].set("date", points[0].get("date"))
    assert not schema.validate(document)
    document = _xml()
    total = document.find(f"{NS}metadata/{NS}totalDataPoints")
    total.getparent().remove(total)
    assert not schema.validate(document)


def test_xml_metadata_and_metrics():
    """Counts, timeRange, community, units/descriptions per camelCase key; no quality."""
    document = _xml(TWO_YEARS, community="my-comm")
    meta = document.find(f"{NS}metadata")
    points = document.findall(f".//{NS}point")
    assert int(meta.findtext(f"{NS}totalDataPoints")) == len(points)
    assert sum(len(x) for m in expected_points(TWO_YEARS).values() for s in m.values() for y in s.values() for x in y.values()) == len(points)
    assert meta.findtext(f"{NS}totalCategories") == "2"
    assert meta.find(f"{NS}timeRange").attrib == {"start": "2025-01-01", "end": "2026-12-31"}
    assert meta.find(f"{NS}community").get("id") == "my-comm"
    ranged = _xml(start_date="2025-01-01", end_date="2025-06-30").find(f"{NS}metadata/{NS}timeRange")
    assert ranged.attrib == {"start": "2025-01-01", "end": "2025-06-30"}
    metrics = {(m.getparent().get("name"), m.get("name")): m for m in document.iter(f"{NS}metric")}
    volume = metrics[("global", "dataVolume")]
    assert volume.get("unit") == "bytes" and volume.get("measurementType") == "snapshot"
    assert volume.findtext(f"{NS}description").startswith("Data volume")
    assert metrics[("global", "views")].get("unit") == "views"
    assert metrics[("global", "views")].get("measurementType") == "delta"
    assert all(m.get("unit") and m.findtext(f"{NS}description") for m in metrics.values())
    assert int(volume.get("dataPointsCount")) == 10
    assert not document.xpath("//@quality")
    empty = document.xpath("//i:category[@name='usage-delta-category']/i:seriesSet[@name='subjects']", namespaces={"i": NS[1:-1]})
    assert len(empty) == 1 and empty[0].get("metricsCount") == "0" and len(empty[0]) == 0
    label = document.xpath("//i:series[@id='dataset']/i:label", namespaces={"i": NS[1:-1]})[0]
    assert label.text == "Dataset"


def test_site_metadata_and_unsafe_labels(schema):
    """Publisher from the app config (lazy strings too); control characters in
    metadata labels cannot break the XML or the workbook."""
    from flask_babel import Babel
    from invenio_i18n import lazy_gettext

    results = {
        "usage-delta-category": {
            "global": {"views": [{"id": "a\x0bb", "name": "Bad\x01 label\tok", "type": "bar",
                                  "valueType": "number", "year": 2025, "data": [["02-03", 1]]}]}
        }
    }
    app = Flask("serializers-site")
    app.config.update(THEME_SITENAME=lazy_gettext("My Repo"), APP_THEME=["semantic-ui"])
    Babel(app)
    with app.app_context():
        document = _xml(results)
        assert document.find(f"{NS}metadata/{{http://purl.org/dc/elements/1.1/}}title").text == (
            "My Repo Data Series Collection"
        )
    schema.assertValid(document)
    assert document.find(f".//{NS}series").get("id") == "ab"
    assert document.findtext(f".//{NS}label") == "Bad label\tok"
    members = _members(serialize(results, XLSX)[0])
    assert parse_xlsx_archive(serialize(results, XLSX)[0]) == {
        "usage-delta-category": {"global": {"views": {"ab": {"2025-02-03": 1}}}}
    }
    assert set(members) == {"usage-delta-category/global.xlsx"}


# --- negotiation (gap 6) ---


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/json+gzip", JSON_GZIP),
        ("application/json+br", JSON_BR),
        ("text/csv", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("text/*", CSV),
        (XLSX, XLSX),
        ("application/xml", XML),
        ("application/xml;q=0.9, text/csv;q=0.5", XML),
        ("text/csv;q=0.5, application/xml;q=0.9", XML),
        ("text/html, application/json+br;q=0.1", JSON_BR),
        ("*/*;q=0.1, text/csv", CSV),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", XML),
        ("application/json;q=0, application/xml;q=0.2, */*;q=0.1", XML),
        ("text/html", None),
        ("application/pdf, image/png", None),
        ("application/xml;q=0", None),
        ("not a media type", None),
    ],
)
def test_negotiation(accept, expected):
    """Real Accept parsing: q-values, wildcards, exclusions; unmatched → None (406)."""
    assert negotiate(accept) == expected


# --- configuration ---


def _custom(results, **options):
    return b"custom:" + orjson.dumps(sorted(results)), {"Content-Type": "text/plain"}


def test_configured_serializers_are_used():
    """``COMMUNITY_STATS_SERIALIZERS`` decides the offered types and the callables."""
    app = Flask("serializers-test")
    app.config["COMMUNITY_STATS_SERIALIZERS"] = {
        JSON: "invenio_stats_dashboard.resources.serializers.json:json_serializer",
        "text/plain": _custom,
    }
    with app.app_context():
        assert negotiate("text/plain") == "text/plain"
        assert negotiate("text/csv") is None
        assert negotiate("*/*") == JSON
        assert serialize(ONE_YEAR, "text/plain") == (
            b'custom:["community-records-delta-created","record-snapshot-category","usage-delta-category"]',
            {"Content-Type": "text/plain"},
        )
        with pytest.raises(KeyError):
            serialize(ONE_YEAR, CSV)


def test_extension_defaults_every_format():
    """The extension copies the six default entries into ``app.config``."""
    from invenio_stats_dashboard.ext import InvenioStatsDashboard

    app = Flask("serializers-defaults")
    InvenioStatsDashboard().init_config(app)
    assert set(app.config["COMMUNITY_STATS_SERIALIZERS"]) == set(ALL_TYPES)
    with app.app_context():
        for mimetype in ALL_TYPES:
            assert negotiate(mimetype) == mimetype
            body, _headers = serialize(TWO_YEARS, mimetype)
            assert parse_back(body, mimetype) == expected_points(TWO_YEARS)


def test_schema_is_package_data():
    """The XSD ships with the package (pyproject package-data and MANIFEST.in)."""
    import tomllib
    from pathlib import Path

    assert schema_path().is_file()
    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    assert "*.xsd" in patterns
    assert "*.xsd" in (root / "MANIFEST.in").read_text()
