# Part of invenio-stats-dashboard (MIT License).
"""What each month of events looks like in the cluster, read in one call per type.

A month is judged by what is there, not by a bookmark alone: its stock-named
index (concrete, or an alias once the current month was switched over), its
enriched ``-v2.0.0`` index, their mappings and aliases. This lets a run finish
a month a killed run left between the switch and its bookmark, and tells a
month that our extension enriched live (created from our template after the
migration, ``_meta`` says so) from a legacy month that still needs migrating.
"""

from dataclasses import dataclass, field

from ...search_indices.names import ENRICHED_SUFFIX as SUFFIX
from ...search_indices.names import EVENT_TYPES, META_KEY, events_alias  # noqa: F401


def month_of(index_name):
    """``YYYY-MM`` at the end of an index name, or None."""
    parts = index_name.split("-")
    if len(parts) < 2 or not (parts[-2].isdigit() and parts[-1].isdigit()):
        return None
    return f"{parts[-2]}-{parts[-1]}"


def matches_months(month, month_filter):
    """Whether ``month`` is selected by ``YYYY-MM`` / ``YYYY-MM:YYYY-MM`` filters."""
    if not month_filter:
        return True
    filters = [month_filter] if isinstance(month_filter, str) else list(month_filter)
    for item in filters:
        if ":" in item:
            start, end = item.split(":", 1)
            if start <= month <= end:
                return True
        elif item == month:
            return True
    return False


@dataclass
class MonthState:
    """One (event type, month): the indices that hold it and how readers reach them."""

    event_type: str
    month: str
    stock_name: str
    source: str | None = None  # concrete index under the stock name
    source_meta: dict | None = None  # our ``_meta`` on it (enriched live), else None
    source_mapped: bool = False  # its mapping has ``community_ids``
    source_aliases: dict = field(default_factory=dict)
    source_blocked: bool = False
    source_created: int | None = None  # epoch ms (cluster clock)
    target: str | None = None  # the ``-v2.0.0`` index
    target_meta: dict | None = None
    target_aliases: dict = field(default_factory=dict)
    target_created: int | None = None

    @property
    def switched(self):
        """The stock name is now an alias of the enriched index (current month done)."""
        return self.source is None and self.stock_name in self.target_aliases

    @property
    def enriched_live(self):
        """Created from our template after the migration: nothing to migrate."""
        return (self.source is not None and self.target is None and self.source_mapped
                and self.source_meta is not None)

    @property
    def needs_migration(self):
        """A stock-mapped (legacy) month, or one a run left between stages."""
        return self.source is not None and not self.enriched_live

    @property
    def end(self):
        """First instant after the month (ISO)."""
        year, month = map(int, self.month.split("-"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return f"{year:04d}-{month:02d}-01T00:00:00+00:00"

    @property
    def enriched_index(self):
        """The index whose events carry enrichment (target, or the live-enriched source)."""
        if self.target:
            return self.target
        return self.source if self.enriched_live else None


def discover(client, event_type, month_filter=None):
    """Every month of ``event_type`` in the cluster, oldest first."""
    alias = events_alias(event_type)
    found = client.indices.get(index=f"{alias}-*", ignore=[404], expand_wildcards="open")
    if "error" in found or "status" in found:
        return []
    months = {}
    for name, info in found.items():
        base = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name
        month = month_of(base)
        if not month or base != f"{alias}-{month}" or not matches_months(month, month_filter):
            continue  # backups and other look-alikes
        state = months.setdefault(month, MonthState(event_type, month, base))
        mappings = info.get("mappings") or {}
        meta = (mappings.get("_meta") or {}).get(META_KEY)
        settings = (info.get("settings") or {}).get("index") or {}
        created = int(settings["creation_date"]) if settings.get("creation_date") else None
        if name.endswith(SUFFIX):
            state.target, state.target_meta = name, meta
            state.target_aliases = info.get("aliases") or {}
            state.target_created = created
        else:
            state.source, state.source_meta = name, meta
            state.source_mapped = "community_ids" in (mappings.get("properties") or {})
            state.source_aliases = info.get("aliases") or {}
            state.source_blocked = str((settings.get("blocks") or {}).get(
                "write", "false")).lower() == "true"
            state.source_created = created
    return [months[m] for m in sorted(months)]
