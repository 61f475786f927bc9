# Part of invenio-stats-dashboard.
#
# invenio-stats-dashboard is free software; you can redistribute it and/or
# modify it under the terms of the MIT License; see LICENSE file for details.

"""Default dashboard layout (``STATS_DASHBOARD_LAYOUT``).

Spec: ``config.md`` §5 and ``dashboard-ui.md`` §3. Shape:
``{"global_layout": {"tabs": [...]}}`` (``community_layout`` optional; communities
fall back to ``global_layout``). Tab -> rows -> components; each component has
``component`` (client component-map key), ``width`` (1-16) and ``props``.

Tab labels and date-range phrases are translated (lazy strings); widget ``title``
props are plain strings, as upstream. The component names in the resolved layout
drive server-side payload trimming (``STATS_DASHBOARD_OPTIMIZE_DATA_SERIES``), so
adding widgets after the response cache is built needs ``cache generate
--overwrite``.
"""

from invenio_i18n import lazy_gettext as _

PBL = ["pie", "bar", "list"]  # default multi-display views

# Breakdowns offered by each time-series chart ("show separately").
CONTENT_CUMULATIVE_SUBCOUNTS = [
    "resource_types",
    "languages",
    "rights",
    "affiliations",
    "funders",
    "publishers",
    "file_types",
    "access_statuses",
]
CONTENT_DELTA_SUBCOUNTS = [
    "file_presence",
    "resource_types",
    "subjects",
    "languages",
    "rights",
    "affiliations",
    "periodicals",
    "publishers",
    "file_types",
    "access_statuses",
]
TRAFFIC_SUBCOUNTS = [  # funders commented out upstream
    "countries",
    "file_presence",
    "resource_types",
    "languages",
    "rights",
    "affiliations",
    "periodicals",
    "publishers",
    "file_types",
    "access_statuses",
]


def _single_stats(*stats):
    """Row of three single-stat tiles: widths 5/6/5, mobile 6/6/16."""
    widths = [(5, 6), (6, 6), (5, 16)]
    return {
        "name": "single-stats",
        "components": [
            {
                "component": component,
                "width": width,
                "props": {"title": title, "icon": icon, "mobile": mobile},
            }
            for (component, title, icon), (width, mobile) in zip(stats, widths)
        ],
    }


def _chart(component, title, subcounts, max_series=None):
    """Row with one full-width time-series chart."""
    props = {"title": title, "height": 300}
    if max_series is not None:
        props["maxSeries"] = max_series
    props["display_subcounts"] = {key: {} for key in subcounts}
    return {
        "name": "charts",
        "components": [{"component": component, "width": 16, "props": props}],
    }


def _multi(component, title, default_view, views=None, page_size=10, **extra):
    """One half-width multi-display (list/pie/bar) component."""
    return {
        "component": component,
        "width": 8,
        "props": {
            "title": title,
            "pageSize": page_size,
            "available_views": list(views or PBL),
            "default_view": default_view,
            "hideOtherInCharts": True,
            **extra,
        },
    }


def _map(name, title, **extra):
    """Row with the full-width world map."""
    return {
        "name": name,
        "components": [
            {
                "component": "StatsMap",
                "width": 16,
                "props": {
                    "title": title,
                    "height": 400,
                    "minHeight": 400,
                    "zoom": 1.3,
                    "center": [0, 20],
                    "uniformColorMode": True,
                    **extra,
                },
            }
        ],
    }


def _traffic_tables2(suffix=""):
    """The ``tables2`` row of the traffic (snapshot) / usage (delta) tabs."""
    # Commented out upstream: CountriesMultiDisplayViews<suffix>,
    # ReferrersMultiDisplayViews<suffix> (referrers disabled for usage events).
    return {
        "name": "tables2",
        "components": [
            _multi(f"{name}{suffix}", title, default_view)
            for name, title, default_view in (
                ("FileTypesMultiDisplayDownloads", "File Types Downloaded", "bar"),
                ("LanguagesMultiDisplayViews", "Top Languages Visited", "bar"),
                ("ResourceTypesMultiDisplayViews", "Top Work Types Visited", "bar"),
                ("RightsMultiDisplayViews", "Top Licenses by Visits", "pie"),
                ("PublishersMultiDisplayViews", "Top Publishers by Visits", "list"),
            )
        ],
    }


CONTENT_TAB = {
    "name": "content",
    "label": _("Content"),
    "icon": "chart pie",
    "date_range_phrase": _("Cumulative totals as of"),
    "rows": [
        _single_stats(
            ("SingleStatRecordCountCumulative", "Total Records", "file"),
            ("SingleStatUploadersCumulative", "Total Uploaders", "users"),
            ("SingleStatDataVolumeCumulative", "Total Data Volume", "database"),
        ),
        _chart(
            "ContentStatsChartCumulative",
            "Cumulative Content Totals",
            CONTENT_CUMULATIVE_SUBCOUNTS,
            max_series=10,
        ),
        {
            "name": "tables",
            "components": [
                _multi("ResourceTypesMultiDisplay", "Top Work Types", "pie"),
                _multi("FileTypesMultiDisplay", "Top File Types", "bar"),
                _multi("LanguagesMultiDisplay", "Top Languages", "bar"),
                _multi("SubjectsMultiDisplay", "Top Subjects", "list"),
                _multi("AccessStatusesMultiDisplay", "Top Access Statuses", "bar"),
                _multi("RightsMultiDisplay", "Top Rights", "list", ["pie", "list"]),
                _multi("AffiliationsMultiDisplay", "Top Affiliations", "list"),
                _multi("PublishersMultiDisplay", "Top Publishers", "bar", page_size=8),
                # Commented out upstream:
                # _multi("FundersMultiDisplay", "Top Funders", "list"),
            ],
        },
    ],
}

CONTRIBUTIONS_TAB = {
    "name": "contributions",
    "label": _("Contributions"),
    "icon": "users",
    "date_range_phrase": _("Activity during"),
    "rows": [
        _single_stats(
            ("SingleStatRecordCount", "New Records", "file"),
            ("SingleStatUploaders", "Active Uploaders", "users"),
            ("SingleStatDataVolume", "New Data Uploaded", "database"),
        ),
        _chart(
            "ContentStatsChart",
            "New Contribution Rates",
            CONTENT_DELTA_SUBCOUNTS,
            max_series=8,
        ),
        {
            "name": "tables",
            "components": [
                _multi("ResourceTypesMultiDisplayDelta", "Work Types Added", "pie"),
                _multi("FileTypesMultiDisplayDelta", "File Types Added", "bar"),
                _multi("LanguagesMultiDisplayDelta", "Languages Added", "bar"),
                _multi("SubjectsMultiDisplayDelta", "Subjects Added", "list"),
                _multi(
                    "AccessStatusesMultiDisplayDelta", "Access Statuses Added", "pie"
                ),
                _multi(
                    "RightsMultiDisplayDelta", "Rights Added", "list", ["pie", "list"]
                ),
                _multi("AffiliationsMultiDisplayDelta", "Affiliations Added", "list"),
                _multi("PeriodicalsMultiDisplayDelta", "Periodicals Added", "list"),
                _multi(
                    "PublishersMultiDisplayDelta",
                    "Publishers Added",
                    "list",
                    page_size=8,
                ),
                # Commented out upstream:
                # _multi("FundersMultiDisplayDelta", "Funders Added", "list"),
            ],
        },
    ],
}

TRAFFIC_TAB = {
    "name": "traffic",
    "label": _("Cumulative Traffic"),
    "icon": "world",
    "date_range_phrase": _("Cumulative totals as of"),
    "rows": [
        _single_stats(
            ("SingleStatViewsCumulative", "Total Views", "eye"),
            ("SingleStatDownloadsCumulative", "Total Downloads", "download"),
            ("SingleStatTrafficCumulative", "Total Traffic", "chart line"),
        ),
        _chart(
            "TrafficStatsChartCumulative",
            "Cumulative Traffic Totals",
            TRAFFIC_SUBCOUNTS,
            max_series=10,
        ),
        {
            "name": "tables",
            "components": [
                _multi(
                    "MostDownloadedRecordsMultiDisplay",
                    "Most Downloaded Works",
                    "list",
                    ["list"],
                    page_size=6,
                    maxHeight="300px",
                ),
                _multi(
                    "MostViewedRecordsMultiDisplay",
                    "Most Viewed Works",
                    "list",
                    ["list"],
                    page_size=6,
                    maxHeight="300px",
                ),
            ],
        },
        _map("world-map", "All Countries of Origin for Visits"),
        _traffic_tables2(),
    ],
}

USAGE_TAB = {
    "name": "usage",
    "label": _("Usage Rates"),
    "icon": "download",
    "date_range_phrase": _("Activity during"),
    "rows": [
        _single_stats(
            ("SingleStatViews", "Record Views", "eye"),
            ("SingleStatDownloads", "Record Downloads", "download"),
            ("SingleStatTraffic", "Data Downloaded", "chart line"),
        ),
        # no maxSeries: the client default (12) applies
        _chart("TrafficStatsChart", "Usage Rates", TRAFFIC_SUBCOUNTS),
        _map(
            "world-map-delta",
            "Top Countries of Origin for Visits",
            useSnapshot=False,
        ),
        _traffic_tables2("Delta"),
    ],
}

STATS_DASHBOARD_LAYOUT = {
    # Upstream ships only the global layout; community pages fall back to it
    # (after the community's ``stats:dashboard_layout`` custom field).
    "global_layout": {
        "tabs": [CONTENT_TAB, CONTRIBUTIONS_TAB, TRAFFIC_TAB, USAGE_TAB],
    },
}
