# Part of invenio-stats-dashboard.
#
# invenio-stats-dashboard is free software; you can redistribute it and/or
# modify it under the terms of the MIT License; see LICENSE file for details.

"""Default subcount configuration (``COMMUNITY_STATS_SUBCOUNTS``).

Spec: ``config.md`` §4. Each key is a subcount name (also the key under
``subcounts`` in aggregation documents and the series name stem). Each value has
a ``records`` block (record counts, file counts, volume, aggregated over the
record index) and a ``usage_events`` block (views/downloads, aggregated over the
enriched usage-event indices). An empty block disables the subcount for that
family; a block takes part only if it has a non-empty ``source_fields``.

The subcount set is *frozen* once usage events are migrated and aggregated (the
index templates have strict mappings over these twelve names): only removal is
cheap.

The three extraction callables below are applied by the usage-event migration to
a record's search-index source document. Unlike upstream (config.md §4.3, which
looked at top-level ``funding``/``creators``/``contributors`` keys), they read
under ``metadata``; the periodicals path drops upstream's ``.keyword`` suffix
(a mapping sub-field that is not part of ``_source``).
"""

from collections.abc import Iterable, Mapping


def _source_of(doc):
    """Return the record source document (accepts a raw search hit too)."""
    if not isinstance(doc, Mapping):
        return {}
    if "_source" in doc and "metadata" not in doc and isinstance(
        doc["_source"], Mapping
    ):
        return doc["_source"]
    return doc


def _metadata_of(doc):
    """Return the ``metadata`` dict of a record document, or ``{}``.

    A bare metadata dict (top-level ``funding``/``creators``…) is accepted too.
    """
    source = _source_of(doc)
    metadata = source.get("metadata")
    if isinstance(metadata, Mapping):
        return metadata
    return source


def _as_list(value):
    """Return ``value`` as a list (``None``/scalars/mappings handled)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def extract_funders_for_event(doc):
    """Return the ``funder`` object of each ``metadata.funding`` entry.

    Entries without a funder are skipped; returns ``[]`` when absent.
    """
    funders = []
    for funding in _as_list(_metadata_of(doc).get("funding")):
        if isinstance(funding, Mapping):
            funder = funding.get("funder")
            if isinstance(funder, Mapping) and funder:
                funders.append(dict(funder))
    return funders


def extract_affiliations_for_event(doc):
    """Return all affiliation objects of creators, then contributors, flattened.

    One entry per contribution (no de-duplication: distinct counting happens in
    the aggregation); returns ``[]`` when absent.
    """
    metadata = _metadata_of(doc)
    affiliations = []
    for role in ("creators", "contributors"):
        for person in _as_list(metadata.get(role)):
            if not isinstance(person, Mapping):
                continue
            for affiliation in _as_list(person.get("affiliations")):
                if isinstance(affiliation, Mapping) and affiliation:
                    affiliations.append(dict(affiliation))
    return affiliations


def extract_file_types_for_event(doc):
    """Return ``files.types`` if non-empty, else each ``files.entries[].ext``.

    ``files.entries`` may be a list (search index) or a dict keyed by file key
    (record dump). Duplicates are dropped, order kept; returns ``[]`` when absent.
    """
    files = _source_of(doc).get("files")
    if not isinstance(files, Mapping):
        return []
    types = [t for t in _as_list(files.get("types")) if isinstance(t, str) and t]
    if not types:
        types = [
            entry.get("ext")
            for entry in _as_list(files.get("entries"))
            if isinstance(entry, Mapping)
            and isinstance(entry.get("ext"), str)
            and entry.get("ext")
        ]
    return list(dict.fromkeys(types))


def _rec(key, snapshot_type, source_fields, **extra):
    """Build a ``records`` block."""
    return {
        "delta_aggregation_name": key,  # documentary only
        "snapshot_type": snapshot_type,
        **extra,
        "source_fields": source_fields,
    }


def _use(key, snapshot_type, event_field, extraction, field_type, source_fields):
    """Build a ``usage_events`` block."""
    return {
        "delta_aggregation_name": key,  # documentary only
        "snapshot_type": snapshot_type,
        "event_field": event_field,  # field written into enriched events
        "extraction_path_for_event": extraction,  # glom path or callable(doc)
        "field_type": field_type,  # informational (config.md §4.1)
        "source_fields": source_fields,
    }


def _sf(field, label_field=None, includes=None, combine=None):
    """Build one ``source_fields`` entry."""
    entry = {
        "field": field,
        "label_field": label_field,
        "label_source_includes": includes or [field],
    }
    if combine:
        entry["combine_subfields"] = combine
    return entry


COMMUNITY_STATS_SUBCOUNTS = {
    "resource_types": {
        "records": _rec(
            "resource_types",
            "all",
            [
                _sf(
                    "metadata.resource_type.id",
                    "metadata.resource_type.title",
                    ["metadata.resource_type.id", "metadata.resource_type.title"],
                )
            ],
        ),
        "usage_events": _use(
            "resource_types",
            "all",
            "resource_type",
            "metadata.resource_type",
            dict,
            [
                _sf(
                    "resource_type.id",
                    "resource_type.title",
                    ["resource_type.id", "resource_type.title"],
                )
            ],
        ),
    },
    "access_statuses": {
        "records": _rec("access_statuses", "all", [_sf("access.status")]),
        "usage_events": _use(
            "access_statuses",
            "all",
            "access_status",
            "access.status",
            str,
            [_sf("access_status")],
        ),
    },
    "languages": {
        "records": _rec(
            "languages",
            "top",
            [
                _sf(
                    "metadata.languages.id",
                    "metadata.languages.title",
                    ["metadata.languages.id", "metadata.languages.title"],
                )
            ],
        ),
        "usage_events": _use(
            "languages",
            "top",
            "languages",
            "metadata.languages",
            "list",
            [
                _sf(
                    "languages.id",
                    "languages.title",
                    ["languages.id", "languages.title"],
                )
            ],
        ),
    },
    "subjects": {
        "records": _rec(
            "subjects",
            "top",
            [
                _sf(
                    "metadata.subjects.id",
                    "metadata.subjects.subject",
                    [
                        "metadata.subjects.id",
                        "metadata.subjects.subject",
                        "metadata.subjects.scheme",
                    ],
                )
            ],
        ),
        # Disabled for usage events. Full block, should it be enabled:
        # _use("subjects", "top", "subjects", "metadata.subjects", "list",
        #      [_sf("subjects.id", "subjects.subject",
        #           ["subjects.id", "subjects.subject", "subjects.scheme"])])
        "usage_events": {},
    },
    "rights": {
        "records": _rec(
            "rights",
            "top",
            [
                _sf(
                    "metadata.rights.id",
                    "metadata.rights.title",
                    ["metadata.rights.id", "metadata.rights.title"],
                )
            ],
        ),
        "usage_events": _use(
            "rights",
            "top",
            "rights",
            "metadata.rights",
            "list",
            [_sf("rights.id", "rights.title", ["rights.id", "rights.title"])],
        ),
    },
    "funders": {
        "records": _rec(
            "funders",
            "top",
            [
                _sf(
                    "metadata.funding.funder.id",
                    "metadata.funding.funder.name.keyword",
                    ["metadata.funding.funder.id", "metadata.funding.funder.name"],
                    # some funders have only a name: aggregate both and merge
                    combine=[
                        "metadata.funding.funder.id",
                        "metadata.funding.funder.name.keyword",
                    ],
                )
            ],
        ),
        "usage_events": _use(
            "funders",
            "top",
            "funders",
            extract_funders_for_event,
            "list",
            [
                _sf(
                    "funders.id",
                    "funders.name",
                    ["funders.id", "funders.name"],
                    combine=["funders.id", "funders.name"],
                )
            ],
        ),
    },
    "periodicals": {
        "records": _rec(
            "periodicals", "top", [_sf("custom_fields.journal:journal.title.keyword")]
        ),
        "usage_events": _use(
            "periodicals",
            "top",
            "journal_title",
            # _source path: no ".keyword" (that is a mapping sub-field only)
            "custom_fields.journal:journal.title",
            str,
            [_sf("journal_title")],
        ),
    },
    "publishers": {
        "records": _rec("publishers", "top", [_sf("metadata.publisher.keyword")]),
        "usage_events": _use(
            "publishers",
            "top",
            "publisher",
            "metadata.publisher",
            str,
            [_sf("publisher")],
        ),
    },
    "affiliations": {
        "records": _rec(
            "affiliations",
            "top",
            [
                _sf(
                    "metadata.creators.affiliations.id",
                    "metadata.creators.affiliations.name",
                    [
                        "metadata.creators.affiliations.id",
                        "metadata.creators.affiliations.name",
                    ],
                ),
                _sf(
                    "metadata.contributors.affiliations.id",
                    "metadata.contributors.affiliations.name",
                    [
                        "metadata.contributors.affiliations.id",
                        "metadata.contributors.affiliations.name",
                    ],
                ),
            ],
        ),
        "usage_events": _use(
            "affiliations",
            "top",
            "affiliations",
            extract_affiliations_for_event,
            "list",
            [
                _sf(
                    "affiliations.id",
                    "affiliations.name",
                    ["affiliations.id", "affiliations.name"],
                )
            ],
        ),
    },
    "countries": {
        "records": {},  # records carry no country
        # no enrichment: invenio-stats' GeoIP anonymiser sets ``country``
        "usage_events": _use("countries", "top", None, None, str, [_sf("country")]),
    },
    "referrers": {
        "records": {},
        # Inert by default. Block, should it be enabled:
        # _use("referrers", "top", "referrer", None, str, [_sf("referrer")])
        "usage_events": {},
    },
    "file_types": {
        "records": _rec(
            "file_types",
            "all",
            [_sf("files.entries.ext")],
            with_files_only=True,  # informational only (config.md §4.1)
        ),
        "usage_events": _use(
            "file_types",
            "all",
            "file_types",
            extract_file_types_for_event,
            "list",
            [_sf("file_types")],
        ),
    },
}
