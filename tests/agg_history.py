# Part of invenio-stats-dashboard (MIT License).
"""The acceptance history: RDM services driven at chosen instants, written down as they go.

:class:`Driver` calls the real services under a frozen clock and records each
membership action in an :class:`agg_oracle.History` (what the test *did*,
not what the log says). :func:`drive` is the history itself; every case the
acceptance tests need is named in its comments. :func:`plan_usage` plans the
usage events, which :func:`emit_live` sends through the real emitters and
event builders (request context, user agent, address, session) and
:func:`index_migrated` indexes as a legacy stock month to be migrated.
"""

from datetime import datetime, timedelta, timezone

from flask import current_app, session
from invenio_access.permissions import system_identity
from invenio_communities.proxies import current_communities
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from invenio_stats.proxies import current_stats
from invenio_stats.utils import get_geoip

from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.utils.usage_events import (
    BROWSER_UA,
    RecordTarget,
    download_event,
    view_event,
)

from agg_common import calendar, travel
from agg_oracle import Event, History, Record

#: Day 0 of the history: about four months back, 12 days before a month's first day.
D0 = (datetime.now(timezone.utc).date().replace(day=1) - timedelta(days=75)).replace(day=1) \
    - timedelta(days=12)
LAST_DAY = 36  # the range aggregated: d0 .. d36
ROBOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"  # a robot (U2)
MACHINE_UA = "curl/8.5.0"                                      # a robot and a machine (U2)
IPS = ["81.2.69.142", "8.8.8.8", "130.237.0.1", "193.0.6.139"]
day, at = calendar(D0)  # day(n): the date; at(n, hours, minutes, seconds, millis): an instant


def resolve(record_id):
    return current_rdm_records_service.record_cls.pid.resolve(record_id, registered_only=False)


class Driver:
    """Drive the RDM services at chosen instants; record every membership action."""

    def __init__(self, identities, communities):
        self.owner, self.depositor = identities["owner"], identities["depositor"]
        self.ids = {}
        self.history = History()
        self.communities = communities

    def publish(self, when, name, identity=None, community=None, files=None, journal=None,
                **metadata):
        """Publish a new record (and add it to ``community`` at the same instant)."""
        metadata.setdefault("publication_date", str(day(0)))
        data = rdm.record_data(f"Record {name}", files=bool(files), **metadata)
        if journal:
            data["custom_fields"] = {"journal:journal": {"title": journal, "issue": "3"}}
        with travel(when):
            item = rdm.create_record(identity or self.owner, data, files=files,
                                     community_id=community)
        self.ids[name] = item.id
        self.history.publish(when, item.id)
        if community:
            self.history.add(when, item.id, community)
        return item.id

    def new_version(self, when, name, of, files=None, publication_date=None):
        with travel(when):
            item = rdm.new_version(self.owner, self.ids[of], files=files,
                                   publication_date=publication_date or str(day(0)))
        self.ids[name] = item.id
        self.history.publish(when, item.id)

    def request(self, asked, accepted, name, community):
        """The depositor asks for inclusion, the community owner accepts later."""
        with travel(asked):
            (request,) = rdm.add_to_community(self.depositor, self.ids[name], community,
                                              require_review=True)
        with travel(accepted):
            rdm.accept_request(self.owner, request)
        self.history.add(accepted, self.ids[name], community)

    def add(self, when, name, community):
        with travel(when):
            rdm.add_to_community(self.owner, self.ids[name], community)
        self.history.add(when, self.ids[name], community)

    def bulk_add(self, when, name, community):
        with travel(when):
            rdm.bulk_add(community, [self.ids[name]])
        self.history.add(when, self.ids[name], community)

    def remove(self, when, name, community):
        with travel(when):
            rdm.remove_from_community(self.owner, self.ids[name], community)
        self.history.remove(when, self.ids[name], community)

    def delete(self, when, name):
        with travel(when):
            rdm.delete_record(self.ids[name])
        self.history.delete(when, self.ids[name])

    def restore(self, when, name):
        with travel(when):
            rdm.restore_record(self.ids[name])
        self.history.restore(when, self.ids[name])

    def create_community(self, when, slug):
        with travel(when):
            return rdm.create_community(self.owner, slug, slug.title()).id

    def delete_community(self, when, community):
        with travel(when):
            current_communities.service.delete(system_identity, community, data={
                "removal_reason": {"id": "spam"}, "is_visible": False})
        self.history.delete_community(when, community)

    def records(self):
        """Every version as a reader sees it now (R3), deleted ones included."""
        return [Record.from_json(resolve(i).dumps()) for i in self.ids.values()]


def init_journal_field(app):
    """``invenio rdm-records custom-fields init``: map the journal field (periodicals)."""
    from invenio_rdm_records.cli import create_records_custom_field

    result = app.test_cli_runner().invoke(create_records_custom_field, [])
    assert result.exit_code == 0, result.output


def enable_dashboard(community_id):
    """Opt a community in (§8.4), as its settings page does."""
    service = current_communities.service
    data = service.read(system_identity, community_id).data
    data.setdefault("custom_fields", {})["stats:dashboard_enabled"] = True
    service.update(system_identity, community_id, data)
    service.indexer.refresh()


def drive(d, a, b):
    """The history (``a``, ``b``: enabled communities; ``g`` is created, then deleted)."""
    g = d.create_community(at(0, 0, 30), f"{a[:8]}-gamma")
    # multi-valued subcounts, affiliations of creators and contributors (S2, S3),
    # funders with id and name (S4), file types (S5), a journal (periodicals),
    # a back-dated publication (R5)
    d.publish(at(0, 10), "paper", community=a,
              files={"paper.pdf": b"%" * 1200, "data.csv": b"x" * 300, "fig.PNG": b"p" * 50},
              resource_type="publication-article", languages=["eng", "fra"],
              rights=["cc-by-4.0"], subjects=["http://id.nlm.nih.gov/mesh/D000001"],
              funders=["00k4n6c32", "01cwqze88"], publisher="Demo Press",
              creators_affiliations=["01ggx4157"], contributors_affiliations=["05gq02987"],
              publication_date="2019-06-15", journal="Journal of Tests")
    # published at 00:00:00.000; an inclusion request accepted at 00:00:00.000 the next day
    d.publish(at(0), "survey", identity=d.depositor, languages=["eng"],
              creators_affiliations=["01ggx4157", "05gq02987"],
              contributors_affiliations=["01ggx4157", "013meh722"],
              funders=["00k4n6c32"], publication_date=str(day(0).year - 3),
              journal="Annals of Counting")
    d.request(at(0, 9), at(1), "survey", a)
    # removal and re-add on different days
    d.publish(at(1, 9), "rejoin", community=a, files={"table.csv": b"t" * 40},
              languages=["deu"], publication_date=str(day(1)))
    d.remove(at(3, 12), "rejoin", a)
    d.add(at(6, 8, millis=250), "rejoin", a)
    # left and re-entered on one day; entered and left on one day (R1)
    d.publish(at(2, 9), "bounce", community=b, languages=["fra"], publisher="Other Press",
              journal="Journal of Tests")
    d.remove(at(4, 10), "bounce", b)
    d.add(at(4, 11), "bounce", b)
    d.publish(at(5, 8), "transient", files={"t.txt": b"t" * 7})
    d.bulk_add(at(5, 9), "transient", b)
    d.remove(at(5, 17), "transient", b)
    d.add(at(5, 23, 59, 59, 999), "transient", a)  # the day's last instant
    # removed, then deleted: counted once in a, and in global
    d.publish(at(2, 10), "gone", community=a, files={"img.png": b"i" * 2048})
    d.remove(at(7, 10), "gone", a)
    d.delete(at(8, 10), "gone")
    # delete and restore with one of its communities deleted meanwhile (M3)
    d.publish(at(3, 9), "phoenix", community=a, resource_type="software")
    d.add(at(3, 9, 30), "phoenix", g)
    d.delete_community(at(9, 8), g)
    d.delete(at(10, 10), "phoenix")
    d.restore(at(12, 10), "phoenix")
    # deleted and restored on one day
    d.publish(at(4, 12), "blink", community=a, files={"b.pdf": b"b" * 99})
    d.delete(at(11, 10), "blink")
    d.restore(at(11, 14), "blink")
    # new versions (M5, R4a)
    d.publish(at(4, 9), "v1", community=b, languages=["eng"])
    d.new_version(at(8, 10), "v2", "v1", files={"v2.csv": b"2" * 500})
    d.remove(at(14, 10), "v2", b)                  # the parent leaves with both versions
    d.new_version(at(16, 10), "v3", "v2", files={"v3.pdf": b"3" * 10})  # global only
    d.add(at(18, 10), "v1", b)                     # back with three versions
    d.delete(at(20, 10), "v1")                     # its only metadata-only version
    # publication dates before and after creation (R5)
    d.publish(at(9, 9), "backdated", community=b, publication_date=str(day(2)))
    d.publish(at(10, 9), "future", community=b, publication_date=str(day(30)))
    d.publish(at(25, 9), "late", files={"late.txt": b"l" * 3})
    d.add(at(33, 23, 59, 59, 999), "late", a)
    return g


# --- usage ----------------------------------------------------------------------

def plan_usage(d):
    """``[(Event, user agent, ip)]``: instants chosen against the history above."""
    rows = [  # (name, instant, kind, visitor, file key or None, user agent)
        ("paper", at(0, 10, millis=400), "view", "v1", None, None),  # second of the add (T3)
        ("survey", at(0, 9, 30), "view", "v1", None, None),         # not yet in a
        ("survey", at(1), "view", "v2", None, None),                # 00:00:00.000, added then
        ("survey", at(1, 12), "view", "v1", None, None),
        ("paper", at(1, 12, 1), "view", "v1", None, None),
        ("paper", at(1, 12, 5), "view", "v1", None, None),          # same visitor again
        ("paper", at(1, 13), "download", "v3", "paper.pdf", None),
        ("paper", at(1, 13, 1), "download", "v3", "data.csv", None),
        ("paper", at(1, 14), "view", "bot", None, ROBOT_UA),         # U2
        ("paper", at(1, 14, 1), "download", "bot", "paper.pdf", MACHINE_UA),
        ("paper", at(1, 23, 59, 59, 999), "download", "v4", "fig.PNG", None),
        ("rejoin", at(3, 11, 59, 59, 999), "view", "v1", None, None),  # stored 11:59:59: in a
        ("rejoin", at(3, 12, millis=500), "download", "v2", "table.csv", None),  # removed
        ("rejoin", at(6, 8, millis=100), "view", "v5", None, None),   # re-added at .250 (T3)
        ("bounce", at(4, 10, 30), "view", "v1", None, None),          # out of b for an hour
        ("bounce", at(4, 11, 30), "view", "v2", None, None),
        ("transient", at(5, 12), "view", "v1", None, None),
        ("transient", at(5, 23, 59, 59, 999), "download", "v6", "t.txt", None),
        ("gone", at(7, 9), "download", "v1", "img.png", None),
        ("gone", at(7, 11), "view", "v7", None, None),
        ("phoenix", at(9, 9), "view", "v1", None, None),             # g deleted at 08:00
        ("phoenix", at(12, 11), "view", "v2", None, None),           # restored
        ("blink", at(11, 15), "download", "v3", "b.pdf", None),
        ("v1", at(5, 10), "view", "v8", None, None),
        ("v2", at(8, 10), "download", "v9", "v2.csv", None),         # published that instant
        ("v2", at(15, 10), "view", "v9", None, None),                # parent out of b
        ("v3", at(19, 10), "download", "v9", "v3.pdf", None),
        ("late", at(33, 23, 59, 59, 999), "view", "v1", None, None),
        ("late", at(34), "view", "v1", None, None),                  # 00:00:00.000
    ]
    planned = []
    for n, (name, when, kind, visitor, key, agent) in enumerate(rows):
        ip = IPS[n % len(IPS)]
        record = resolve(d.ids[name])
        size = record.files[key].file.size if key else 0
        event = Event(kind, when, record["id"], f"{visitor}", robot=agent is not None,
                      key=key, size=size, country=get_geoip(ip))
        planned.append((event, agent or BROWSER_UA, ip))
    return planned


def emit_live(planned):
    """Through the real emitters and builders, each at its instant; then the indexer."""
    app = current_app._get_current_object()
    for event, agent, ip in planned:
        record = resolve(event.recid)
        kind = "record-view" if event.kind == "view" else "file-download"
        extra = {"obj": record.files[event.key].object_version} if event.key else {}
        with travel(event.instant), app.test_request_context(
                "/records/x", headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": ip}):
            session["sid_s"] = event.visitor
            current_stats.get_event_emitter(kind)(app, record=record, via_api=False, **extra)
    process_queues()


def raw_events(planned):
    """The same events as stock raw events (for a legacy month)."""
    out = {"record-view": [], "file-download": []}
    for event, agent, ip in planned:
        record = resolve(event.recid)
        target = RecordTarget.from_record(record)
        extra = {"ip_address": ip}
        if event.kind == "view":
            raw = view_event(target, event.instant, event.visitor, **extra)
            out["record-view"].append({**raw, "user_agent": agent})
        else:
            file = next(f for f in target.files if f["key"] == event.key)
            raw = download_event(target, event.instant, file, event.visitor, **extra)
            out["file-download"].append({**raw, "user_agent": agent})
    return out


def process_queues():
    for kind in ("record-view", "file-download"):
        entry = current_stats.events[kind]
        entry.cls(**entry.params).run()
    current_search_client.indices.refresh(index=prefix_index("events-stats-*"))
