# Part of invenio-stats-dashboard (MIT License).
"""The eight statistics series, as data: one engine computes all of them.

Names are upstream's registration keys (also the bookmark keys), aliases are
upstream's index aliases. Upstream registers only the ``added`` basis of the
records series; we register, schedule and serve all three (counting rule R5).
"""

from dataclasses import dataclass

BASES = ("added", "created", "published")


@dataclass(frozen=True)
class Series:
    """One aggregated series: what it counts and where it is stored."""

    name: str  # registration key, e.g. "community-records-delta-added-agg"
    family: str  # "records" | "usage"
    kind: str  # "delta" | "snapshot"
    basis: str | None  # "added" | "created" | "published" for records, None for usage
    alias: str  # unprefixed alias, e.g. "stats-community-records-delta-added"
    depends_on: str | None = None  # a snapshot's delta series

    @property
    def date_field(self):
        """The field holding the document's day."""
        return "period_start" if self.kind == "delta" else "snapshot_date"

    @property
    def is_delta(self):
        """Whether documents count one day (else: the state at its end)."""
        return self.kind == "delta"


def _records(kind, basis):
    alias = f"stats-community-records-{kind}-{basis}"
    depends = f"community-records-delta-{basis}-agg" if kind == "snapshot" else None
    return Series(f"community-records-{kind}-{basis}-agg", "records", kind, basis, alias, depends)


SERIES = (
    Series("community-usage-delta-agg", "usage", "delta", None, "stats-community-usage-delta"),
    *(_records("delta", basis) for basis in BASES),
    *(_records("snapshot", basis) for basis in BASES),
    Series("community-usage-snapshot-agg", "usage", "snapshot", None,
           "stats-community-usage-snapshot", "community-usage-delta-agg"),
)
BY_NAME = {s.name: s for s in SERIES}
#: Upstream's scheduled order (aggregations.md §8.1), then our other bases.
SCHEDULED = ("community-usage-delta-agg", "community-records-delta-added-agg",
             "community-records-snapshot-added-agg", "community-usage-snapshot-agg",
             "community-records-delta-created-agg", "community-records-snapshot-created-agg",
             "community-records-delta-published-agg",
             "community-records-snapshot-published-agg")


def get(name):
    """The series registered as ``name`` (``KeyError`` if none)."""
    return BY_NAME[name]


def in_order(names=None):
    """``names`` (default: all) in the scheduled order, each snapshot after its delta."""
    wanted = set(names or SCHEDULED)
    return [BY_NAME[n] for n in SCHEDULED if n in wanted]
