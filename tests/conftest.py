# Part of invenio-stats-dashboard (MIT License).
"""Test bed: the real InvenioRDM API app (13, or ISD_RDM) on real PostgreSQL, OpenSearch, Redis.

``./run-tests.sh`` starts the services and exports the connection settings
read here. Each run uses its own index prefix, so runs never see each other's
indices, and deletes what it created at the end. Celery runs eagerly.

Data fixtures are module-scoped and *committed* (not rolled back): statistics
are computed from what is in both PostgreSQL and OpenSearch, so the two must
agree. Tests that change records build their own.
"""

import os
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest

RUN_PREFIX = f"isdtest-{uuid.uuid4().hex[:8]}-"
REDIS = os.environ.get("ISD_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture(scope="module")
def app_config(app_config):
    """Real services, a per-run index prefix, eager Celery."""
    app_config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "SQLALCHEMY_DATABASE_URI",
            "postgresql+psycopg2://invenio:invenio@127.0.0.1:5432/invenio_test",
        ),
        SEARCH_HOSTS=[{"host": "127.0.0.1", "port": 9200}],
        SEARCH_INDEX_PREFIX=RUN_PREFIX,
        # A busy 2-core machine answers slowly at times; no test measures time.
        SEARCH_CLIENT_CONFIG={"timeout": 60},
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=f"{REDIS}/10",
        # Community roles of identities, keyed by user id: ids repeat from run
        # to run, so a shared cache (the default is localhost:6379/4, whatever
        # the run's Redis) hands one run another's roles (see flush_caches).
        COMMUNITIES_IDENTITIES_CACHE_REDIS_URL=f"{REDIS}/15",
        ACCOUNTS_SESSION_REDIS_URL=f"{REDIS}/11",
        BROKER_URL=f"{REDIS}/12",
        CELERY_BROKER_URL=f"{REDIS}/12",
        QUEUES_BROKER_URL=f"{REDIS}/13",
        CELERY_RESULT_BACKEND=f"{REDIS}/14",
        RATELIMIT_STORAGE_URI="memory://",
        CELERY_TASK_ALWAYS_EAGER=True,
        CELERY_TASK_EAGER_PROPAGATES=True,
        MAIL_SUPPRESS_SEND=True,
        DATACITE_ENABLED=False,
        THEME_FRONTPAGE=False,
        SITE_UI_URL="https://127.0.0.1:5000",
        SITE_API_URL="https://127.0.0.1:5000/api",
    )
    return app_config


@pytest.fixture(scope="session", autouse=True)
def flush_caches():
    """Start from empty caches and queues: this run's Redis databases are its own.

    Database 13 holds the usage-event queues: messages left by an earlier run
    (or release) would be indexed by this run's first live event, into months
    a test has planned to the event.
    """
    import redis

    for db in (10, 12, 13, 14, 15):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


@pytest.fixture(scope="session", autouse=True)
def fresh_database():
    """Start from an empty test database (the run's own, ``ISD_TEST_DB``).

    pytest-invenio creates missing tables only, so rows left by a killed run
    (e.g. its files location) would break the next run's first module.
    """
    import sqlalchemy as sa

    uri = os.environ.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        return
    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="module")
def create_app(instance_path):
    """The InvenioRDM API application factory (loads our extension)."""
    from invenio_app.factory import create_api

    return create_api


@pytest.fixture(scope="module")
def search(appctx):
    """Put every template, create every index, declare the stats queues.

    pytest-invenio's own fixture creates indices only; event indices are
    created from templates when the first event arrives, so templates must be
    in place first (as ``invenio index init`` does).
    """
    from invenio_queues.proxies import current_queues
    from invenio_search.proxies import current_search, current_search_client

    list(current_search.put_templates(ignore=[400]))
    list(current_search.put_component_templates(ignore=[400]))
    list(current_search.put_index_templates(ignore=[400]))
    list(current_search.create())
    _init_community_custom_fields(current_search_client)
    current_search_client.indices.refresh(index=f"{RUN_PREFIX}*")  # not other runs' indices
    current_queues.declare()
    current_queues.purge()  # events another module published but never indexed
    yield current_search_client
    current_queues.purge()
    _delete_run_indices(current_search_client)


def _init_community_custom_fields(client):
    """What ``invenio custom-fields communities init`` does (seed step 3a)."""
    from invenio_stats_dashboard.records.communities.custom_fields.custom_fields import (
        put_community_field_mappings,
    )

    put_community_field_mappings()


def _delete_run_indices(client):
    from invenio_stats_dashboard.search_indices.event_builders import EnrichedEventsIndexer

    client.indices.delete(index=f"{RUN_PREFIX}*", ignore=[404], expand_wildcards="all")
    # The live indexer caches each month's target and mapping for a minute;
    # the next module recreates those names, maybe with another mapping.
    EnrichedEventsIndexer._mappings.clear()
    for name in client.indices.get_index_template(name=f"{RUN_PREFIX}*", ignore=[404]).get(
        "index_templates", []
    ):
        client.indices.delete_index_template(name=name["name"], ignore=[404])
    client.indices.delete_template(name=f"{RUN_PREFIX}*", ignore=[404])


@pytest.fixture(scope="module")
def location(database):
    """pytest-invenio's files location, with a teardown that reads no ORM row.

    Its own reads ``location.uri`` at teardown, which fails on InvenioRDM 12
    (SQLAlchemy 1.4) when a test has ended the session in between.
    """
    import shutil
    import tempfile

    from invenio_files_rest.models import Location

    uri = tempfile.mkdtemp()
    location = Location(name="pytest-location", uri=uri, default=True)
    database.session.add(location)
    database.session.commit()
    yield location
    shutil.rmtree(uri, ignore_errors=True)


@pytest.fixture(scope="module")
def services(app, location):
    """The app with database, search indices and a files location ready."""
    from invenio_stats_dashboard.demo.vocabularies import load_vocabularies

    load_vocabularies()
    return app


# --- people -------------------------------------------------------------------

@pytest.fixture(scope="module")
def users(services):
    """An owner (of communities), a depositor and a curator-less outsider."""
    from invenio_stats_dashboard.demo.rdm import create_user

    return {
        name: create_user(f"{name}@example.org")
        for name in ("owner", "depositor", "outsider")
    }


@pytest.fixture(scope="module")
def identities(users, communities):
    """Authenticated identities of :func:`users`.

    Built after the communities exist: an identity's community roles are
    loaded when it is created.
    """
    from invenio_stats_dashboard.demo.rdm import make_identity

    return {name: make_identity(user) for name, user in users.items()}


# --- communities -------------------------------------------------------------

@pytest.fixture(scope="module")
def communities(users):
    """Two public communities and one restricted, all owned by ``owner``."""
    from invenio_stats_dashboard.demo.rdm import create_community, make_identity

    owner = make_identity(users["owner"])
    slug = RUN_PREFIX.rstrip("-")
    return {
        "alpha": create_community(owner, f"{slug}-alpha", "Alpha"),
        "beta": create_community(owner, f"{slug}-beta", "Beta"),
        "secret": create_community(owner, f"{slug}-secret", "Secret", "restricted"),
    }


# --- records -----------------------------------------------------------------

@pytest.fixture(scope="module")
def make_record(identities):
    """Factory: publish a record (owner's by default), with optional files."""
    from invenio_stats_dashboard.demo.rdm import create_record, record_data

    counter = iter(range(1_000_000))

    def _make(files=None, identity=None, community_id=None, **metadata):
        n = next(counter)
        metadata.setdefault("publication_date", "2024-03-01")
        data = record_data(f"Record {n}", files=bool(files), **metadata)
        return create_record(
            identity or identities["owner"], data, files=files, community_id=community_id
        )

    return _make


@pytest.fixture(scope="module")
def records(make_record):
    """Published records: metadata-only, one file, two files, rich metadata."""
    return {
        "plain": make_record(),
        "one_file": make_record(files={"data.csv": b"a,b\n1,2\n"}),
        "two_files": make_record(
            files={"paper.pdf": b"%PDF-1.4 demo", "notes.txt": b"hello world"}
        ),
        "rich": make_record(
            resource_type="publication-article",
            creators_affiliations=["01ggx4157"],
            contributors_affiliations=["05gq02987"],
            languages=["eng", "fra"],
            rights=["cc-by-4.0"],
            subjects=["http://id.nlm.nih.gov/mesh/D000001"],
            funders=["00k4n6c32"],
            publisher="Demo Press",
        ),
    }


@pytest.fixture(scope="module")
def versioned_record(make_record, identities):
    """A record with three published versions (the last with a file)."""
    from invenio_stats_dashboard.demo.rdm import new_version

    owner = identities["owner"]
    v1 = make_record()
    v2 = new_version(owner, v1.id, publication_date="2024-06-01")
    v3 = new_version(owner, v2.id, publication_date="2024-09-01",
                     files={"v3.txt": b"third"})
    return [v1, v2, v3]


@pytest.fixture(scope="module")
def legacy_events(services, records, versioned_record):
    """Legacy view/download events over the last three months, via invenio-stats.

    Returns ``(planned, expected)``: the raw events and the oracle counts per
    (event type, month).
    """
    from invenio_search.proxies import current_search_client

    from invenio_stats_dashboard.utils.usage_events import (
        RecordTarget,
        expected_counts,
        index_events,
        plan_events,
    )
    from invenio_rdm_records.proxies import current_rdm_records_service
    from legacy_indices import create_stock_months

    now = datetime.now(timezone.utc)
    start = (now.replace(day=1) - timedelta(days=62)).replace(day=1)
    targets = []
    for item in [*records.values(), *versioned_record]:
        record = current_rdm_records_service.record_cls.pid.resolve(item.id)
        targets.append(RecordTarget.from_record(record, created=start))
    planned = plan_events(targets, per_record=40, start=start, end=now, seed=7)
    create_stock_months(sorted({e["timestamp"][:7] for events in planned.values()
                                for e in events}))  # indices from before installation
    index_events(planned)
    current_search_client.indices.refresh(index=f"{RUN_PREFIX}events-stats-*")
    return planned, expected_counts(planned)


@pytest.fixture()
def agg_test_family(monkeypatch):
    """The engine runs ``agg_family`` for its two series (the engine tests' modules)."""
    import agg_family

    agg_family.register(monkeypatch.setitem)


@pytest.fixture()
def child_env(services, monkeypatch, tmp_path):
    """Configuration the ``invenio`` child process needs to reach this run's data."""
    cfg = services.config
    values = {
        "SQLALCHEMY_DATABASE_URI": cfg["SQLALCHEMY_DATABASE_URI"],
        "SEARCH_INDEX_PREFIX": cfg["SEARCH_INDEX_PREFIX"],
        "SEARCH_HOSTS": repr(cfg["SEARCH_HOSTS"]),
        "CACHE_REDIS_URL": cfg["CACHE_REDIS_URL"],
        "COMMUNITIES_IDENTITIES_CACHE_REDIS_URL": cfg["COMMUNITIES_IDENTITIES_CACHE_REDIS_URL"],
        "ACCOUNTS_SESSION_REDIS_URL": cfg["ACCOUNTS_SESSION_REDIS_URL"],
        "BROKER_URL": cfg["BROKER_URL"], "CELERY_BROKER_URL": cfg["CELERY_BROKER_URL"],
        "QUEUES_BROKER_URL": cfg["QUEUES_BROKER_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "True", "DATACITE_ENABLED": "False",
        "RATELIMIT_STORAGE_URI": "memory://", "SECRET_KEY": "test",
    }
    for key, value in values.items():
        monkeypatch.setenv(f"INVENIO_{key}", value)
    monkeypatch.setenv("INVENIO_INSTANCE_PATH", str(tmp_path / "instance"))


def pytest_runtest_logreport(report):
    """Print a failure's one-line cause at once, between the progress dots.

    CI shows only a window of the output: the tracebacks of later failures
    fall outside it, these lines do not.
    """
    if not report.failed:
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    cause = crash.message if crash else (str(report.longrepr).splitlines() or [""])[-1]
    line = " ".join(cause.split())[:600]
    print(f"\n[failed] {report.nodeid} ({report.when}): {line}", file=sys.__stderr__,
          flush=True)
