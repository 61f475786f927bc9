# Part of invenio-stats-dashboard (MIT License).
"""Load the deterministic "legacy instance" demo data set.

    python -m invenio_stats_dashboard.demo.loader [--records 300] [--events 50000] [--seed 42]

Run by ``./run-demo.sh`` inside a fresh instance (``INVENIO_INSTANCE_PATH``).
It builds what an instance that ran for two years *before* installing this
package looks like: communities, records with files and versions created over
the last two years, membership changes (direct adds, accepted inclusion
requests, removals, bulk adds), deletions and restorations, and view/download
events in the stock monthly invenio-stats indices. Everything goes through the
RDM services and invenio-stats' own pipeline; only creation times are
rewritten afterwards (``rdm.backdate_*``) to spread history over the past.
"""

import argparse
import json
import random
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import click

from . import rdm
from .usage_events import RecordTarget, expected_counts, index_events, plan_events
from .vocabularies import (
    AFFILIATIONS,
    FUNDERS,
    LANGUAGES,
    LICENSES,
    RESOURCE_TYPES,
    SUBJECTS,
    load_vocabularies,
)

COMMUNITIES = [  # slug, title, visibility
    ("physics", "Physics", "public"),
    ("biology", "Biology", "public"),
    ("digital-humanities", "Digital Humanities", "public"),
    ("open-software", "Open Software", "public"),
    ("internal-reports", "Internal Reports", "restricted"),
]
FILE_KINDS = [("csv", b"x,y\n1,2\n"), ("pdf", b"%PDF-1.4\n"), ("txt", b"text\n"),
              ("png", b"\x89PNG\r\n"), ("zip", b"PK\x03\x04")]
PUBLISHERS = ["Zenodo", "Demo Press", "University Press", None]


def _random_metadata(rng, n, when):
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


def load(n_records=300, n_events=50_000, seed=42, echo=print):
    """Create the demo data set; returns a summary dict (also the oracle)."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    origin = now - timedelta(days=730)
    load_vocabularies()

    owner_user = rdm.create_user("owner@demo.org", username="owner")
    depositor_users = [rdm.create_user(f"depositor{i}@demo.org") for i in range(4)]
    communities = {}
    owner_identity = rdm.make_identity(owner_user)
    for slug, title, visibility in COMMUNITIES:
        item = rdm.create_community(owner_identity, slug, title, visibility)
        rdm.backdate_community(item.id, (origin - timedelta(days=10)).replace(tzinfo=None))
        communities[slug] = item.id
    owner = rdm.make_identity(owner_user)  # now carries its community roles
    depositors = [rdm.make_identity(u) for u in depositor_users]
    public = [s for s, _, v in COMMUNITIES if v == "public"]

    stats = Counter()
    targets = []
    created_at = sorted(origin + timedelta(seconds=rng.uniform(0, 700 * 86400))
                        for _ in range(n_records))
    with click.progressbar(list(enumerate(created_at)), label="Records") as bar:
        for n, when in bar:
            meta = _random_metadata(rng, n, when)
            files = _random_files(rng, n)
            restricted = meta["record_access"] == "restricted"
            # Owners include directly; depositors go through a reviewed request.
            creator = owner if restricted or rng.random() < 0.6 else rng.choice(depositors)
            item = rdm.create_record(creator, rdm.record_data(files=bool(files), **meta),
                                     files=files)
            stats["records"] += 1
            stats["records_with_files"] += bool(files)
            homes = (["internal-reports"] if restricted and rng.random() < 0.7 else
                     rng.sample(public, rng.choice([0, 1, 1, 1, 2])) if not restricted else [])
            for slug in homes:
                if creator is not owner:
                    ids = rdm.add_to_community(creator, item.id, communities[slug],
                                               require_review=True)
                    rdm.accept_request(owner, ids[0])
                    stats["inclusion_requests_accepted"] += 1
                else:
                    rdm.add_to_community(owner, item.id, communities[slug])
                    stats["direct_adds"] += 1
            versions = [(item, when)]
            if rng.random() < 0.1 and (now - when).days > 30:
                v_when = when + timedelta(days=rng.randint(1, (now - when).days - 1))
                v2 = rdm.new_version(creator, item.id, v_when.date().isoformat(), files=files)
                versions.append((v2, v_when))
                stats["new_versions"] += 1
            for version, v_when in versions:
                rdm.backdate_record(version.id, v_when.replace(tzinfo=None))
                targets.append((version.id, v_when))
            rdm.backdate_requests(item.id, when.replace(tzinfo=None))
            if homes and not restricted and rng.random() < 0.06:
                rdm.remove_from_community(owner, item.id, communities[homes[0]])
                stats["removals"] += 1
                if rng.random() < 0.5:
                    if creator is owner:
                        rdm.add_to_community(owner, item.id, communities[homes[0]])
                    else:  # no longer the record's curator: the depositor asks again
                        ids = rdm.add_to_community(creator, item.id, communities[homes[0]],
                                                   require_review=True)
                        rdm.accept_request(owner, ids[0])
                    stats["re_adds"] += 1
    # A bulk add of recent public records to one community.
    recent = [rid for rid, when in targets[-40:] if when > now - timedelta(days=120)][:10]
    if recent:
        try:
            rdm.bulk_add(communities["open-software"], recent)
            stats["bulk_added"] += len(recent)
        except Exception as exc:  # e.g. a record already in the community
            echo(f"bulk add skipped: {exc}")
    # Deletions (a few restored again).
    for rid, _ in rng.sample(targets, min(6, len(targets))):
        rdm.delete_record(rid)
        stats["deleted"] += 1
        if rng.random() < 0.4:
            rdm.restore_record(rid)
            stats["restored"] += 1

    echo("Planning and indexing usage events through invenio-stats ...")
    from invenio_rdm_records.proxies import current_rdm_records_service

    resolve = current_rdm_records_service.record_cls.pid.resolve
    record_targets = [RecordTarget.from_record(resolve(rid), created=when)
                      for rid, when in targets]
    with_files = sum(1 for t in record_targets if t.files)
    per_record = max(1, round(n_events / (len(record_targets) + 0.5 * with_files)))
    planned = plan_events(record_targets, per_record=per_record, end=now, seed=seed)
    index_events(planned)
    expected = expected_counts(planned)
    stats["view_events"] = len(planned["record-view"])
    stats["download_events"] = len(planned["file-download"])
    stats["months_with_events"] = len({m for _, m in expected})
    stats["communities"] = len(communities)
    return dict(stats)


def main(argv=None):
    """Command-line entry: create the API app of the instance and load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from invenio_app.factory import create_api

    app = create_api()
    with app.app_context():
        summary = load(args.records, args.events, args.seed, echo=click.echo)
    click.echo(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
