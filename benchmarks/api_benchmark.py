# Part of invenio-stats-dashboard (MIT License).
"""The dashboard API over HTTP on the demo instance: cached and cold year blocks.

Issue 12, item 6. Run on the demo instance (``./run-demo.sh --no-serve``,
seed steps 4 and 5 done), with the same environment as the demo::

    .venv/bin/python benchmarks/api_benchmark.py
    ISD_DEMO_NAME=apibench ISD_REDIS_PORT=6406 .venv/bin/python benchmarks/api_benchmark.py
    .venv/bin/python benchmarks/api_benchmark.py --query record-delta-category --year 2025

What runs where. This process builds the instance's **API app**
(``invenio_app.factory.create_api``, everything the ``invenio_base.api_*``
entry points install) with the rate limiter off, adds one trivial route to
*this* app only (``/_bench/empty``: no body read, ``{}`` back), mounts it
under ``/api`` as the demo's server does, and serves it with werkzeug's
threaded server (the server class ``scripts/serve.py`` runs) on a free port.
With ``--server gunicorn`` the same app (``bench_wsgi.py``) runs in gunicorn
worker processes instead (``--workers``, default one per core, gthread
``--threads`` each): how a production instance uses its cores — werkzeug's
server is one process, so concurrent cold computations share one GIL there.
The requests come from a second process (spawned, so client and server do
not share a GIL), one thread per concurrent client, one new HTTP/1.0
connection per request as that server speaks.

Measured, at concurrency 1 and 8 (``--concurrency``), p50/p95 per request:

* **bare Redis**: ``GET`` of the cached entry's key plus ``gzip``
  decompression — the least any cached answer can cost;
* **empty endpoint**: ``POST /api/_bench/empty`` with the same body and
  headers — the HTTP, WSGI and Invenio request overhead (before-request
  hooks, sessions, identity) of this server;
* **cached**: ``POST /api/stats-dashboard``, one category query, one full
  calendar year, ``Accept: application/json`` — the dashboard's request;
  the entry is in Redis (checked before and after);
* **cold**: the same request with the entry deleted before each request
  (the delete is not timed), so each one computes the year from the
  aggregation documents, passes the completeness gate and stores it (checked
  after each request: the key must exist again). At
  concurrency 8 every client thread has its own targets — the same query for
  each readable community and date basis, distinct keys — so no two
  concurrent requests wait on one computation (the stampede lock would
  otherwise turn them into cache hits);
* **/api/stats** (``--no-stats-endpoint`` to skip): the same category query
  through invenio-stats' uncached endpoint, for reference.

Ratios, against floors measured in the same run (absolute times are noise on
a shared machine): cached p95 / (bare Redis p95 + empty endpoint p95), target
≤ 3; cold p95, target < 1 s.
"""

import argparse
import gzip
import http.client
import json
import math
import multiprocessing
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # bench_wsgi
EMPTY_PATH = "/api/_bench/empty"  # bench_wsgi.EMPTY_ROUTE under /api
DASHBOARD_PATH = "/api/stats-dashboard"
STATS_PATH = "/api/stats"
CATEGORIES = ("usage-delta-category", "usage-snapshot-category",
              "record-delta-category", "record-snapshot-category")
DATE_BASES = ("added", "created", "published")


def demo_environment():
    """The demo instance's settings, as ``run-demo.sh`` exports them (unless set)."""
    name = os.environ.get("ISD_DEMO_NAME", "")
    rdm = os.environ.get("ISD_RDM", "13")
    if rdm != "13" and not name:
        name = f"rdm{rdm}"
    port = os.environ.get("ISD_REDIS_PORT", "6379")
    redis = f"redis://127.0.0.1:{port}"
    env = {
        "INVENIO_INSTANCE_PATH": str(ROOT / ".demo" / (f"instance-{name}" if name else "instance")),
        "INVENIO_SEARCH_INDEX_PREFIX": f"demo-{name}-" if name else "demo-",
        "INVENIO_CACHE_REDIS_URL": f"{redis}/0", "INVENIO_ACCOUNTS_SESSION_REDIS_URL": f"{redis}/1",
        "INVENIO_COMMUNITIES_IDENTITIES_CACHE_REDIS_URL": f"{redis}/2",
        "INVENIO_RATELIMIT_STORAGE_URI": f"{redis}/3", "INVENIO_BROKER_URL": f"{redis}/4",
        "INVENIO_CELERY_BROKER_URL": f"{redis}/4", "INVENIO_CELERY_RESULT_BACKEND": f"{redis}/4",
        "INVENIO_QUEUES_BROKER_URL": f"{redis}/5",
        # Thousands of anonymous requests a minute: the limiter would answer 429.
        "INVENIO_RATELIMIT_ENABLED": "False",
    }
    if name:
        env["INVENIO_SQLALCHEMY_DATABASE_URI"] = (
            f"postgresql+psycopg2://invenio:invenio@127.0.0.1:5432/invenio_{name}")
    for key, value in env.items():
        os.environ.setdefault(key, value)


# --- the server (this process) ---------------------------------------------------------

def build_server():
    """The API app with the empty route, under ``/api``, on a threaded werkzeug server."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from bench_wsgi import bench_app

    app, wsgi = bench_app()

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # thousands of lines otherwise
            pass

    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server.server_port, server.shutdown


def start_gunicorn(workers, threads):
    """The same WSGI app in ``workers`` gunicorn processes (gthread, ``threads`` each):
    how a production instance spreads requests over its cores. Returns
    ``(app for this process's lookups, port, stop)``."""
    import atexit
    import signal
    import socket
    import subprocess

    from bench_wsgi import bench_app

    try:
        import gunicorn  # noqa: F401
    except ImportError:
        sys.exit("--server gunicorn needs gunicorn: .venv/bin/pip install gunicorn")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "--timeout", "300", "--chdir", str(ROOT / "benchmarks"), "bench_wsgi:application"])
    app = bench_app()[0]
    deadline = time.monotonic() + 180
    while True:  # every worker builds its app: wait until one answers
        try:
            if http_post(port, EMPTY_PATH, b"{}")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("gunicorn did not start (see its output above)")
        time.sleep(0.5)

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)

    atexit.register(stop)  # also when the benchmark exits early (sys.exit, errors)
    return app, port, stop


def public_targets(app, port, year, query):
    """``global`` and the communities an anonymous caller gets 200 for (by slug).

    Each probe is the dashboard's request for ``query`` and ``year``: it also
    stores the entry when it was missing (not timed).
    """
    from invenio_communities.communities.records.models import CommunityMetadata
    from invenio_db import db

    with app.app_context():
        rows = [(str(row.id), row.slug or str(row.id)) for row in CommunityMetadata.query.all()]
        db.session.remove()
    found = [("global", "global")]
    for community_id, slug in sorted(rows, key=lambda r: r[1]):
        status, _ = http_post(port, DASHBOARD_PATH, dashboard_body(query, community_id, year))
        if status == 200:
            found.append((community_id, slug))
    return found


def entry_key(app, community_id, year, query, date_basis="added"):
    """The cache key of one entry and whether a complete entry is stored under it."""
    from invenio_stats_dashboard.services.response_cache import ResponseCache

    with app.app_context():
        cache = ResponseCache()
        key = cache.key(community_id, year, query, date_basis)
        return key, cache.exists_complete(key)


def cache_redis_url(app):
    """The response cache's Redis URL (the package's own rule)."""
    from invenio_stats_dashboard.services.response_cache import _url

    return _url(app.config, "STATS_CACHE_REDIS_DB", 7)


# --- requests (both processes) ---------------------------------------------------------

def dashboard_body(query, community_id, year, date_basis="added"):
    """The dashboard's request: one category query, one calendar year."""
    return json.dumps({query: {"stat": query, "params": {
        "community_id": community_id, "date_basis": date_basis,
        "start_date": f"{year}-01-01", "end_date": f"{year}-12-31"}}}).encode()


def stats_body(query, community_id, year, date_basis="added"):
    """The same query through invenio-stats' ``/api/stats`` envelope."""
    return json.dumps({query: {"stat": query, "params": {
        "community_id": community_id, "date_basis": date_basis,
        "start_date": f"{year}-01-01", "end_date": f"{year}-12-31"}}}).encode()


HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def http_post(port, path, body):
    """One request on a new connection: (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, body=body, headers=HEADERS)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client_thread(spec, index, barrier):
    """One concurrent client: ``spec["requests"]`` timed requests, latencies in s."""
    import redis

    kind, per = spec["kind"], spec["requests"]
    client = redis.Redis.from_url(spec["redis_url"]) if spec.get("redis_url") else None
    targets = spec["targets"][index]  # [(path, body, key_to_delete or None), …]
    latencies, failures, unstored = [], 0, 0
    barrier.wait()
    for n in range(per):
        path, body, key = targets[n % len(targets)]
        if kind == "redis":
            start = time.perf_counter()
            raw = client.get(key)
            data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            latencies.append(time.perf_counter() - start)
            failures += not data
            continue
        if key is not None:  # cold: the entry goes first (not timed)
            client.delete(key)
        start = time.perf_counter()
        status, payload = http_post(spec["port"], path, body)
        latencies.append(time.perf_counter() - start)
        failures += status != 200 or not payload
        if key is not None:  # a cold request must have computed and stored this very key
            unstored += not client.exists(key)
    return latencies, failures, unstored


def run_phase(spec):
    """Client process: ``spec["concurrency"]`` threads; latencies, failures, unstored, wall."""
    concurrency = spec["concurrency"]
    barrier = threading.Barrier(concurrency + 1)
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(_client_thread, spec, i, barrier) for i in range(concurrency)]
        barrier.wait()
        start = time.perf_counter()
        results = [f.result() for f in futures]
        wall = time.perf_counter() - start
    latencies = [t for lat, _, _ in results for t in lat]
    return latencies, sum(r[1] for r in results), sum(r[2] for r in results), wall


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


# --- main ------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--query", default="usage-delta-category", choices=CATEGORIES)
    parser.add_argument("--community", default=None,
                        help="slug or UUID of the cached entry (default: physics if an "
                             "anonymous caller can read it, else the first by slug; 'global' "
                             "works too)")
    parser.add_argument("--year", type=int, default=date.today().year - 1,
                        help="the calendar year (default: last year, complete)")
    parser.add_argument("--requests", type=int, default=400,
                        help="timed requests per fast phase (bare Redis, empty, cached)")
    parser.add_argument("--cold-requests", type=int, default=24,
                        help="timed requests per cold phase")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--server", choices=("werkzeug", "gunicorn"), default="werkzeug",
                        help="werkzeug's threaded server in this process (the demo's), or "
                             "gunicorn worker processes (production-like; pip install gunicorn)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="gunicorn worker processes (default: one per core)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--no-stats-endpoint", action="store_true",
                        help="skip the uncached /api/stats reference rows")
    args = parser.parse_args()

    demo_environment()
    print(f"instance {os.environ['INVENIO_INSTANCE_PATH']}, "
          f"indices {os.environ['INVENIO_SEARCH_INDEX_PREFIX']}*, load {os.getloadavg()[0]:.2f}")
    if args.server == "gunicorn":
        app, port, stop = start_gunicorn(args.workers, args.threads)
        served = f"gunicorn, {args.workers} workers x {args.threads} threads"
    else:
        app, port, stop = build_server()
        served = "werkzeug threaded"
    redis_url = cache_redis_url(app)
    print(f"API app served on http://127.0.0.1:{port}/api ({served}); "
          f"cache {redis_url}")

    targets = public_targets(app, port, args.year, args.query)
    chosen = [t for t in targets if (args.community or "physics") in t]
    if args.community and not chosen:
        sys.exit(f"{args.community}: not a community an anonymous caller can read")
    main_target = chosen[0] if chosen else targets[1 if len(targets) > 1 else 0]
    community_id, label = main_target
    body = dashboard_body(args.query, community_id, args.year)

    # The entry: computed by the warm-up request above, stored if complete.
    key, complete = entry_key(app, community_id, args.year, args.query)
    if not complete:
        status, payload = http_post(port, DASHBOARD_PATH, body)
        key, complete = entry_key(app, community_id, args.year, args.query)
    if not complete:
        sys.exit(f"no complete cache entry for ({label}, {args.year}, {args.query}) after a "
                 "request: is the aggregation caught up (seed step 4)? Nothing measured.")
    status, payload = http_post(port, DASHBOARD_PATH, body)
    if status != 200:
        sys.exit(f"{DASHBOARD_PATH} answered {status}: {payload[:300]!r}")
    json.loads(payload)

    import redis

    stored = redis.Redis.from_url(redis_url).get(key)
    print(f"entry: {label} {args.year} {args.query}: response {len(payload):,} bytes, "
          f"stored {len(stored):,} bytes (gzip)")

    # Cold targets: the same query for every readable community and date basis
    # (distinct keys, the same kind of computation), the chosen entry first;
    # each client thread gets its own.
    communities = [main_target] + [t for t in targets if t != main_target]
    pairs = [(c, basis) for basis in DATE_BASES for c, _ in communities]
    cold_keys = {(c, basis): entry_key(app, c, args.year, args.query, basis)[0]
                 for c, basis in pairs}

    use_stats = not args.no_stats_endpoint
    if use_stats:
        status, payload = http_post(port, STATS_PATH, stats_body(args.query, community_id,
                                                                  args.year))
        if status != 200:
            print(f"  /api/stats answered {status} ({payload[:200]!r}): its rows are skipped")
            use_stats = False

    rows = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as client:
        client.submit(percentile, [1], 50).result()  # the client process is up

        def phase(name, kind, concurrency, requests, targets_for):
            spec = {"kind": kind, "port": port, "redis_url": redis_url,
                    "concurrency": concurrency, "requests": requests,
                    "targets": [targets_for(i, concurrency) for i in range(concurrency)]}
            warm = dict(spec, requests=max(1, min(requests // 10, 20)))
            if kind != "cold":
                client.submit(run_phase, warm).result()
            latencies, failures, unstored, wall = client.submit(run_phase, spec).result()
            row = {"name": name, "concurrency": concurrency, "n": len(latencies),
                   "failures": failures, "p50": percentile(latencies, 50),
                   "p95": percentile(latencies, 95), "mean": statistics.fmean(latencies),
                   "rps": len(latencies) / wall, "load": os.getloadavg()[0]}
            rows.append(row)
            print(f"  {name:<34} c={concurrency}  p50 {row['p50'] * 1000:8.2f} ms  "
                  f"p95 {row['p95'] * 1000:8.2f} ms  {row['rps']:8.1f} req/s"
                  + (f"  FAILURES {failures}" if failures else "")
                  + (f"  NOT STORED {unstored} (not a cold computation of that key?)"
                     if unstored else ""), flush=True)
            return row

        def cold_for(i, concurrency):
            mine = pairs[:1] if concurrency == 1 else pairs[i::concurrency]
            return [(DASHBOARD_PATH, dashboard_body(args.query, c, args.year, basis),
                     cold_keys[(c, basis)]) for c, basis in mine]

        for concurrency in args.concurrency:
            per = max(args.requests // concurrency, 1) * concurrency
            each = per // concurrency
            phase("bare Redis GET + gunzip", "redis", concurrency, each,
                  lambda i, c: [(None, None, key)])
            phase("empty endpoint", "http", concurrency, each,
                  lambda i, c: [(EMPTY_PATH, body, None)])
            phase("cached year block", "http", concurrency, each,
                  lambda i, c: [(DASHBOARD_PATH, body, None)])
            cold_each = max(args.cold_requests // concurrency, 1)
            if concurrency > 1 and len(pairs) < concurrency:
                print(f"  (only {len(pairs)} cold targets for {concurrency} clients: "
                      "some requests share an entry)")
            phase("cold year block (entry deleted)", "cold", concurrency, cold_each, cold_for)
            if use_stats:
                phase("/api/stats category (uncached)", "http", concurrency, cold_each,
                      lambda i, c: [(STATS_PATH, stats_body(args.query, community_id,
                                                             args.year), None)])
    # The entry is back for the next reader (the cold phases deleted and recomputed it).
    http_post(port, DASHBOARD_PATH, body)
    stop()
    report(rows, args, label)


def report(rows, args, label):
    """The table and the ratios against the same run's floors."""
    print()
    server = args.server + (f" ({args.workers} workers x {args.threads} threads)"
                            if args.server == "gunicorn" else "")
    print(f"{args.query}, {label}, {args.year}, {server}; load {os.getloadavg()[0]:.2f} at the end")
    print(f"{'phase':<36}{'conc':>5}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'req/s':>9}")
    for r in rows:
        print(f"{r['name']:<36}{r['concurrency']:>5}{r['n']:>6}{r['p50'] * 1000:>10.2f}"
              f"{r['p95'] * 1000:>10.2f}{r['rps']:>9.1f}")
    print()
    by = {(r["name"], r["concurrency"]): r for r in rows}
    for concurrency in args.concurrency:
        redis_row = by[("bare Redis GET + gunzip", concurrency)]
        empty = by[("empty endpoint", concurrency)]
        cached = by[("cached year block", concurrency)]
        cold = by[("cold year block (entry deleted)", concurrency)]
        floor = redis_row["p95"] + empty["p95"]
        ratio = cached["p95"] / floor
        print(f"c={concurrency}: cached p95 / (bare Redis p95 + empty endpoint p95) = "
              f"{cached['p95'] * 1000:.2f} / ({redis_row['p95'] * 1000:.2f} + "
              f"{empty['p95'] * 1000:.2f}) = {ratio:.2f}  (target <= 3: "
              f"{'met' if ratio <= 3 else 'NOT met'})")
        print(f"c={concurrency}: cold p95 = {cold['p95']:.3f} s  (target < 1 s: "
              f"{'met' if cold['p95'] < 1 else 'NOT met'}); cold p50 / cached p50 = "
              f"{cold['p50'] / cached['p50']:.1f}")
    if any(r["failures"] for r in rows):
        print("Some requests failed (non-200 or empty): see FAILURES above.")


if __name__ == "__main__":
    main()
