# Part of invenio-stats-dashboard (MIT License).
"""A membership history driven through the RDM services, for the records aggregation tests.

Every change happens under a frozen clock at an instant chosen here (May
2024, day ``n`` = ``D(n)``). The facts the counting rules need are written
down by hand next to the history (``FACTS``, ``MEMBERS``), never read back
from the code under test.

Records (owner O = ``owner``, P = ``depositor``) and what happens to them in
community A (``alpha``), G (``gamma``, deleted on D5) and ``global``:

* r1  O, metadata-only, dataset, English, creators' and contributors'
  affiliation CERN (and Brown for a contributor), funder EC. In A on D1
  10:00; removed from A D3 11:00, added back D3 12:00 (one of each, R1).
* v1  O, metadata-only, dataset: in A on D1 11:00. Its new version v2 (one
  pdf of 20 bytes, published "1850") joins A and global on D5 12:00: a
  record but no parent added (R4a); the parent gets a version with files.
* r2  P, two files (a.csv 10 bytes, b.txt 5 bytes), dataset, English and
  French. Published D2 10:00; in A D2 11:00 (request accepted); removed from
  A D4 10:00, deleted D5 10:00 (counted once in A, M3).
* r3  O, one file (c.csv 7 bytes), software, CC-BY, a funder with a name only,
  published "2023". In A D2 09:00 and G D2 09:30; deleted D4 09:00; G deleted
  D5 09:00; restored D6 09:00: back in A and global, not in G (M3).
* r5  O, metadata-only: published D7 10:00, in A 11:00, out 12:00 (one of each).
"""

from datetime import date
from types import SimpleNamespace

from invenio_access.permissions import system_identity
from invenio_communities.proxies import current_communities

from invenio_stats_dashboard.aggregations import documents as docs
from invenio_stats_dashboard.aggregations.runner import aggregate
from invenio_stats_dashboard.aggregations.series import get
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log

from agg_common import calendar, series_hits, travel

#: ``D(n)``: the date n May 2024 (day 0 is 30 April); ``at(n, hour, minute)``: an instant on it.
D, at = calendar(date(2024, 4, 30))


def _data(title, files=False, **kw):
    return rdm.record_data(f"Record {title}", kw.pop("publication_date", "2024-03-01"), files=files, **kw)


def build(identities, communities):
    """Drive the history above; returns ids of records, versions and communities."""
    O, P = identities["owner"], identities["depositor"]  # noqa: N806
    A = communities["alpha"].id  # noqa: N806
    with travel(at(1, 9)):
        G = rdm.create_community(O, f"{A[:8]}-gamma", "Gamma").id  # noqa: N806
    with travel(at(1, 10)):
        r1 = rdm.create_record(O, _data("r1", resource_type="dataset", languages=["eng"],
                                        creators_affiliations=["01ggx4157"],
                                        contributors_affiliations=["01ggx4157", "05gq02987"],
                                        funders=["00k4n6c32"]), community_id=A)
    with travel(at(1, 11)):
        v1 = rdm.create_record(O, _data("v1"), community_id=A)
    with travel(at(2, 9)):
        data = _data("r3", files=True, resource_type="software", rights=["cc-by-4.0"],
                     publication_date="2023")
        data["metadata"]["funding"] = [{"funder": {"name": "Acme Foundation"}}]
        r3 = rdm.create_record(O, data, files={"c.csv": b"x" * 7}, community_id=A)
    with travel(at(2, 9, 30)):
        rdm.add_to_community(O, r3.id, G)
    with travel(at(2, 10)):
        r2 = rdm.create_record(P, _data("r2", files=True, languages=["eng", "fra"]),
                               files={"a.csv": b"x" * 10, "b.txt": b"y" * 5})
    with travel(at(2, 11)):
        request = rdm.add_to_community(P, r2.id, A, require_review=True)[0]
        rdm.accept_request(O, request)
    with travel(at(3, 11)):
        rdm.remove_from_community(O, r1.id, A)
    with travel(at(3, 12)):
        rdm.add_to_community(O, r1.id, A)
    with travel(at(4, 9)):
        rdm.delete_record(r3.id)
    with travel(at(4, 10)):
        rdm.remove_from_community(O, r2.id, A)
    with travel(at(5, 9)):
        current_communities.service.delete(system_identity, G, data={
            "removal_reason": {"id": "spam"}, "is_visible": False})
    with travel(at(5, 10)):
        rdm.delete_record(r2.id)
    with travel(at(5, 12)):
        v2 = rdm.new_version(O, v1.id, publication_date="1850", files={"d.pdf": b"z" * 20})
    with travel(at(6, 9)):
        rdm.restore_record(r3.id)
    with travel(at(7, 10)):
        r5 = rdm.create_record(O, _data("r5"))
    with travel(at(7, 11)):
        rdm.add_to_community(O, r5.id, A)
    with travel(at(7, 12)):
        rdm.remove_from_community(O, r5.id, A)
    log.refresh()
    return SimpleNamespace(A=A, G=G, r1=r1.id, v1=v1.id, v2=v2.id, r2=r2.id, r3=r3.id,
                           r5=r5.id)


#: Per record: (owner, parent, files class, file count, volume, created day, publication day).
def facts(h):
    return {
        h.r1: ("O", "p1", "metadata_only", 0, 0.0, D(1), date(2024, 3, 1)),
        h.v1: ("O", "p4", "metadata_only", 0, 0.0, D(1), date(2024, 3, 1)),
        h.v2: ("O", "p4", "with_files", 1, 20.0, D(5), date(1850, 1, 1)),
        h.r2: ("P", "p2", "with_files", 2, 15.0, D(2), date(2024, 3, 1)),
        h.r3: ("O", "p3", "with_files", 1, 7.0, D(2), date(2023, 1, 1)),
        h.r5: ("O", "p5", "metadata_only", 0, 0.0, D(7), date(2024, 3, 1)),
    }


def members(h):
    """Members at the end of each day D1..D8, written down from the history."""
    a = {1: {h.r1, h.v1}, 2: {h.r1, h.v1, h.r3, h.r2}, 3: {h.r1, h.v1, h.r3, h.r2},
         4: {h.r1, h.v1}, 5: {h.r1, h.v1, h.v2}, 6: {h.r1, h.v1, h.v2, h.r3},
         7: {h.r1, h.v1, h.v2, h.r3}, 8: {h.r1, h.v1, h.v2, h.r3}}
    g = {1: set(), 2: {h.r3}, 3: {h.r3}, 4: set(), 5: set(), 6: set(), 7: set(), 8: set()}
    glob = {1: {h.r1, h.v1}, 2: {h.r1, h.v1, h.r3, h.r2}, 3: {h.r1, h.v1, h.r3, h.r2},
            4: {h.r1, h.v1, h.r2}, 5: {h.r1, h.v1, h.v2},
            6: {h.r1, h.v1, h.v2, h.r3}, 7: {h.r1, h.v1, h.v2, h.r3, h.r5},
            8: {h.r1, h.v1, h.v2, h.r3, h.r5}}
    return {h.A: a, h.G: g, "global": glob}


def totals_of(h, record_ids):
    """Snapshot totals of a member set, from :func:`facts` (R2, R4, R4a)."""
    f = facts(h)
    out = {"total_records": {"metadata_only": 0, "with_files": 0},
           "total_parents": {"metadata_only": 0, "with_files": 0},
           "total_files": {"file_count": 0, "data_volume": 0.0}}
    parents = {"metadata_only": set(), "with_files": set()}
    for r in record_ids:
        owner, parent, cls, count, volume, _c, _p = f[r]
        out["total_records"][cls] += 1
        parents[cls].add(parent)
        out["total_files"]["file_count"] += count
        out["total_files"]["data_volume"] += volume
    out["total_parents"] = {k: len(v) for k, v in parents.items()}
    out["total_uploaders"] = len({f[r][0] for r in record_ids})
    return out


def run(names, community_ids, first, last, **kwargs):
    """Aggregate and make the documents searchable; returns the run's report."""
    report = aggregate(names, community_ids=community_ids, start_date=first.isoformat(),
                       end_date=last.isoformat(), **kwargs)
    for r in report["results"]:
        assert r["status"] == "success", r
    return report


def read(name, community_id):
    """``{day: document}`` of a series for a community."""
    field = get(name).date_field
    return {docs.as_day(h["_source"][field][:10]): h["_source"]
            for h in series_hits(name, {"term": {"community_id": community_id}})}
