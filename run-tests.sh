#!/usr/bin/env bash
# Run the test suite on real services, from nothing:
#   ./run-tests.sh [pytest args...]
#   ISD_RDM=14 ./run-tests.sh ...    # InvenioRDM 12, 13 (default) or 14
# Creates the version's virtualenv if missing (scripts/env.sh: .venv for 13,
# .venv-rdm12 / .venv-rdm14), installs the package with its `tests` extra and
# that release, starts OpenSearch/PostgreSQL/Redis (scripts/services.sh up),
# runs pytest and exits with pytest's status.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
source scripts/env.sh

ensure_venv
# Each release gets its own test database (their schemas differ).
[ "$ISD_RDM" = 13 ] || export ISD_TEST_DB="${ISD_TEST_DB:-invenio_test}_rdm$ISD_RDM"
scripts/services.sh up

# ISD_TEST_DB / ISD_REDIS_PORT let two checkouts run their suites side by side
# (scripts/services.sh creates that database and starts that Redis).
export SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://invenio:invenio@127.0.0.1:5432/${ISD_TEST_DB:-invenio_test}"
export ISD_REDIS_URL="redis://127.0.0.1:${ISD_REDIS_PORT:-6379}"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
exit $status
