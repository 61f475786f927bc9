# Part of invenio-stats-dashboard (MIT License).
"""The ``stats:dashboard_enabled`` and ``stats:dashboard_layout`` community fields.

Registered by the extension in ``COMMUNITIES_CUSTOM_FIELDS`` so that
``invenio custom-fields communities init stats:dashboard_layout`` (and
``... exists``) work (seed step 3a). The layout is stored but not searchable.
"""

from flask import current_app
from invenio_i18n import lazy_gettext as _
from invenio_records_resources.services.custom_fields import BaseCF, BooleanCF
from marshmallow import INCLUDE, Schema, fields, validate

COMMUNITIES_NAMESPACES = {"stats": None}


class ComponentPropsSchema(Schema):
    """Widget props: known ranges are checked, unknown props are kept."""

    class Meta:
        """Keep props the schema does not know."""

        unknown = INCLUDE

    title = fields.String()
    icon = fields.String()
    height = fields.Integer(validate=validate.Range(100, 2000))
    minHeight = fields.Integer(validate=validate.Range(100, 2000))
    maxHeight = fields.String()
    maxSeries = fields.Integer(validate=validate.Range(1, 50))
    chartType = fields.String(validate=validate.OneOf(["bar", "line"]))
    pageSize = fields.Integer(validate=validate.Range(1, 100))
    default_view = fields.String(validate=validate.OneOf(["pie", "bar", "list", "table"]))
    available_views = fields.List(
        fields.String(validate=validate.OneOf(["pie", "bar", "list", "table"]))
    )


class ComponentSchema(Schema):
    """One widget of a row."""

    component = fields.String(required=True)
    width = fields.Integer(required=True, validate=validate.Range(1, 16))
    props = fields.Nested(ComponentPropsSchema, load_default=dict)


class RowSchema(Schema):
    """A row of widgets."""

    name = fields.String(required=True)
    components = fields.List(fields.Nested(ComponentSchema), required=True,
                             validate=validate.Length(min=1))


class TabSchema(Schema):
    """A dashboard page (sidebar tab)."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    icon = fields.String()
    date_range_phrase = fields.String()
    rows = fields.List(fields.Nested(RowSchema), required=True,
                       validate=validate.Length(min=1))


class DashboardTypeSchema(Schema):
    """The layout of one dashboard type."""

    tabs = fields.List(fields.Nested(TabSchema), required=True,
                       validate=validate.Length(min=1))


class DashboardLayoutSchema(Schema):
    """``stats:dashboard_layout``: ``global_layout`` and/or ``community_layout``."""

    global_layout = fields.Nested(DashboardTypeSchema)
    community_layout = fields.Nested(DashboardTypeSchema)


class DashboardLayoutCF(BaseCF):
    """Nested layout field; stored, not indexed for search."""

    @property
    def mapping(self):
        """Search mapping: an object with indexing disabled."""
        return {"type": "object", "enabled": False}

    @property
    def field(self):
        """Marshmallow field validating the layout."""
        return fields.Nested(DashboardLayoutSchema, **self._field_args)


COMMUNITY_STATS_FIELDS = [
    BooleanCF(name="stats:dashboard_enabled"),
    DashboardLayoutCF(name="stats:dashboard_layout"),
]


def get_community_stats_fields_ui(app=None):
    """Settings-form section holding the opt-in checkbox (used when opt-in is on)."""
    config = (app or current_app).config
    return {
        "section": _("Stats Dashboard Settings"),
        "fields": [{
            "field": "stats:dashboard_enabled",
            "ui_widget": "DashboardEnabledField",
            "template": "dashboard_enabled.html",
            "props": {
                "label": config.get("STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_LABEL")
                or _("Enable Dashboard"),
                "description": config.get(
                    "STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_DESCRIPTION"),
                "icon": config.get("STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_ICON")
                or "chart line",
                "helpText": config.get("STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_HELPTEXT"),
                "trueLabel": _("Enable"),
                "falseLabel": _("Disable"),
            },
        }],
    }


COMMUNITY_STATS_FIELDS_UI = get_community_stats_fields_ui


def communities_index_name():
    """The (prefixed) alias of the communities index."""
    from invenio_communities.proxies import current_communities
    from invenio_search.utils import build_alias_name

    return build_alias_name(current_communities.service.config.record_cls.index._name)


def put_community_field_mappings(field_names=()):
    """Add custom-field mappings to the communities index (all fields if none named).

    What ``invenio communities custom-fields init`` does; adding mappings is
    idempotent. Unknown names raise ``InvalidInputError`` before any write.
    """
    from invenio_records_resources.services.custom_fields.mappings import Mapping
    from invenio_search.proxies import current_search_client

    from ....exceptions import InvalidInputError

    available = current_app.config.get("COMMUNITIES_CUSTOM_FIELDS") or []
    known = {f.name for f in available}
    unknown = [n for n in field_names if n not in known]
    if unknown:
        raise InvalidInputError(f"Unknown community custom field: {', '.join(unknown)}.")
    properties = Mapping.properties_for_fields(tuple(field_names), available)
    current_search_client.indices.put_mapping(
        index=communities_index_name(), body={"properties": properties})
    return sorted(name.removeprefix("custom_fields.") for name in properties)


def community_field_exists(field_name):
    """True if the communities index maps ``custom_fields.<field_name>``."""
    from invenio_records_resources.services.custom_fields.mappings import Mapping
    from invenio_search import current_search_client
    from invenio_search.engine import dsl

    index = dsl.Index(communities_index_name(), using=current_search_client)
    return Mapping.field_exists(f"custom_fields.{field_name}", index)
