# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats`` command group.

Sub-commands are registered as their capabilities land (only commands that
work are listed).
"""

import click


@click.group(name="community-stats")
def cli():
    """Community and global statistics (invenio-stats-dashboard)."""


__all__ = ("cli",)
