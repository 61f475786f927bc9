# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats`` command group.

Sub-commands are registered as their capabilities land (only commands that
work are listed).
"""

import click

from .aggregation_cli import COMMANDS as AGGREGATION_COMMANDS
from .cache_cli import cache_cli
from .community_events_cli import community_events_cli
from .processes_cli import processes_cli
from .usage_events_cli import usage_events_cli
from . import usage_events_generate_cli, usage_events_maintenance_cli  # noqa: F401,I001


@click.group(name="community-stats")
def cli():
    """Community and global statistics (invenio-stats-dashboard)."""


for command in AGGREGATION_COMMANDS:
    cli.add_command(command)
cli.add_command(cache_cli)
cli.add_command(community_events_cli)
cli.add_command(processes_cli)
cli.add_command(usage_events_cli)

__all__ = ("cli",)
