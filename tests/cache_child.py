# Part of invenio-stats-dashboard (MIT License).
"""A child process of the cache tests: ``cache generate`` whose computation never ends.

    python tests/cache_child.py community-stats cache generate --force ...

It writes ``cachetest:child_started`` into the instance cache when its first
computation starts (the generation lock is held by then), then sleeps until
it is killed. Configuration comes from ``INVENIO_*`` variables (``child_env``).
"""

import sys
import time

if __name__ == "__main__":
    import redis
    from flask import current_app
    from invenio_app.cli import cli

    from invenio_stats_dashboard.services import cache_generation

    def endless(*args):
        redis.Redis.from_url(current_app.config["CACHE_REDIS_URL"]).set(
            "cachetest:child_started", "1")
        while True:
            time.sleep(1)

    cache_generation.default_compute = endless
    sys.argv = ["invenio", *sys.argv[1:]]
    sys.exit(cli())
