# Part of invenio-stats-dashboard (MIT License).
"""``COMMUNITY_STATS_SUBCOUNTS`` as the aggregations read it: one generic reader.

A key takes part in a family when its block has ``source_fields``; each
source field names where values are (``field``), optionally where their label
is (``label_field``) and, for funders, sub-fields whose values are one item
(``combine_subfields``: id and name). Adding a subcount is a configuration
change: the mappings, the families and the snapshots all read this.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """One place values of a subcount come from."""

    field: str
    label_field: str | None = None
    combine: tuple = ()


@dataclass(frozen=True)
class Block:
    """A subcount key's block for one family."""

    key: str
    snapshot_type: str  # "all" | "top"
    sources: tuple = field(default_factory=tuple)

    @property
    def is_top(self):
        """Whether snapshots keep only the N largest items."""
        return self.snapshot_type == "top"


def _block(key, config):
    sources = tuple(Source(s["field"], s.get("label_field"), tuple(s.get("combine_subfields") or ()))
                    for s in (config or {}).get("source_fields") or () if s.get("field"))
    if not sources:
        return None
    return Block(key, (config or {}).get("snapshot_type") or "all", sources)


def blocks(subcount_configs, family):
    """The taking-part blocks of ``family`` (``"records"`` or ``"usage"``), in config order."""
    name = "records" if family == "records" else "usage_events"
    out = []
    for key, config in (subcount_configs or {}).items():
        block = _block(key, (config or {}).get(name))
        if block is not None:
            out.append(block)
    return out
