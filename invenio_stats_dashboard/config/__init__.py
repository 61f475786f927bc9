# Part of invenio-stats-dashboard.
#
# invenio-stats-dashboard is free software; you can redistribute it and/or
# modify it under the terms of the MIT License; see LICENSE file for details.

"""Configuration package: every default is importable from here and from ``.config``."""

from . import config
from .config import *  # noqa: F401,F403
