"""Serve the demo instance (UI app with the REST API under /api) on 127.0.0.1:5000."""

import os

from invenio_app.factory import create_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    run_simple(
        "127.0.0.1",
        int(os.environ.get("DEMO_PORT", "5000")),
        create_app(),
        threaded=True,
        use_reloader=False,
    )
