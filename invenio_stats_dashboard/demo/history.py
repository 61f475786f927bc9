# Part of invenio-stats-dashboard (MIT License).
"""The demo's legacy history as a plan: every random choice drawn before any write.

The plan is a pure function of ``(n_records, seed, now)``: drawing all choices
first, in one fixed order, keeps the history deterministic per seed while the
records are then created by several worker processes in any order. Creation
instants are relative to ``now``, so the same seed gives the same history
shifted to the day it is loaded.
"""

import random
from dataclasses import dataclass, field
from datetime import timedelta

OWNER = "owner@demo.org"
DEPOSITORS = [f"depositor{i}@demo.org" for i in range(4)]
COMMUNITIES = [  # slug, title, visibility
    ("physics", "Physics", "public"),
    ("biology", "Biology", "public"),
    ("digital-humanities", "Digital Humanities", "public"),
    ("open-software", "Open Software", "public"),
    ("internal-reports", "Internal Reports", "restricted"),
]
BULK_COMMUNITY = "open-software"
FILE_KINDS = [("csv", b"x,y\n1,2\n"), ("pdf", b"%PDF-1.4\n"), ("txt", b"text\n"),
              ("png", b"\x89PNG\r\n"), ("zip", b"PK\x03\x04")]
PUBLISHERS = ["Zenodo", "Demo Press", "University Press", None]


@dataclass(frozen=True)
class RecordPlan:
    """One record's life: creation, communities, a second version, a removal."""

    n: int
    created: object  # datetime (UTC)
    metadata: dict
    files: dict | None
    creator: str  # e-mail of the owner or of a depositor
    homes: tuple = ()  # community slugs, in the order the record joins them
    version_created: object = None  # datetime of a second version, if any
    removed: bool = False  # removed from ``homes[0]`` after creation
    re_added: bool = False  # ... and added again

    @property
    def by_owner(self):
        """Owner records join communities directly, depositor records by request."""
        return self.creator == OWNER

    @property
    def versions(self):
        """Creation instants of the record's published versions."""
        return [self.created] + ([self.version_created] if self.version_created else [])


@dataclass
class History:
    """The whole plan: records, then one bulk add and a few deletions."""

    now: object
    origin: object
    records: list = field(default_factory=list)
    bulk_add: list = field(default_factory=list)  # version positions (see ``versions``)
    deletions: list = field(default_factory=list)  # (version position, restored)

    @property
    def versions(self):
        """``(record n, version index, created)`` of every published version, in order."""
        return [(r.n, i, when) for r in self.records for i, when in enumerate(r.versions)]


def _random_metadata(rng, n, when):
    from .vocabularies import AFFILIATIONS, FUNDERS, LANGUAGES, LICENSES, RESOURCE_TYPES, SUBJECTS

    restricted = rng.random() < 0.1
    return {
        "title": f"Demo record {n}",
        "publication_date": when.date().isoformat(),
        "resource_type": rng.choice([t for t in RESOURCE_TYPES if "-" in t or t in ("dataset", "software")]),
        "creators_affiliations": rng.sample(list(AFFILIATIONS), rng.randint(0, 2)),
        "contributors_affiliations": rng.sample(list(AFFILIATIONS), rng.randint(0, 1)),
        "languages": rng.sample(list(LANGUAGES), rng.randint(0, 2)),
        "rights": rng.sample(list(LICENSES), rng.randint(0, 1)),
        "subjects": rng.sample(list(SUBJECTS), rng.randint(0, 2)),
        "funders": rng.sample(list(FUNDERS), rng.randint(0, 1)),
        "publisher": rng.choice(PUBLISHERS),
        "record_access": "restricted" if restricted else "public",
    }


def _random_files(rng, n):
    if rng.random() < 0.35:
        return None
    files = {}
    for i in range(rng.randint(1, 3)):
        ext, head = rng.choice(FILE_KINDS)
        files[f"file{n}-{i}.{ext}"] = head + bytes(rng.randrange(256) for _ in range(rng.randint(10, 4000)))
    return files


def plan_history(n_records, seed, now):
    """Draw the history; the order of draws is part of the demo's contract (seed 42)."""
    rng = random.Random(seed)
    origin = now - timedelta(days=730)
    public = [s for s, _, v in COMMUNITIES if v == "public"]
    history = History(now=now, origin=origin)
    created_at = sorted(origin + timedelta(seconds=rng.uniform(0, 700 * 86400))
                        for _ in range(n_records))
    for n, when in enumerate(created_at):
        meta = _random_metadata(rng, n, when)
        files = _random_files(rng, n)
        restricted = meta["record_access"] == "restricted"
        creator = OWNER if restricted or rng.random() < 0.6 else rng.choice(DEPOSITORS)
        homes = (["internal-reports"] if restricted and rng.random() < 0.7 else
                 rng.sample(public, rng.choice([0, 1, 1, 1, 2])) if not restricted else [])
        version_created = None
        if rng.random() < 0.1 and (now - when).days > 30:
            version_created = when + timedelta(days=rng.randint(1, (now - when).days - 1))
        removed = bool(homes) and not restricted and rng.random() < 0.06
        re_added = removed and rng.random() < 0.5
        history.records.append(RecordPlan(n, when, meta, files, creator, tuple(homes),
                                          version_created, removed, re_added))
    versions = history.versions
    first_recent = max(0, len(versions) - 40)
    history.bulk_add = [pos for pos in range(first_recent, len(versions))
                        if versions[pos][2] > now - timedelta(days=120)][:10]
    deleted = rng.sample(range(len(versions)), min(6, len(versions)))
    history.deletions = [(pos, rng.random() < 0.4) for pos in deleted]
    return history


def plan_usage_events(targets, n_events, seed, end):
    """About ``n_events`` views and downloads of ``targets`` (``RecordTarget``s, in plan order).

    Every version gets the same number of views; about half of the views of a
    version with files are followed by a download.
    """
    from ..utils.usage_events import plan_events

    with_files = sum(1 for t in targets if t.files)
    per_record = max(1, round(n_events / (len(targets) + 0.5 * with_files)))
    return plan_events(targets, per_record=per_record, end=end, seed=seed)
