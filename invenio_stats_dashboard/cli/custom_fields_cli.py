# Part of invenio-stats-dashboard (MIT License).
"""``invenio custom-fields communities init|exists`` (seed step 3a, literally).

InvenioRDM 13 names this ``invenio communities custom-fields``; the setup
guide's spelling is provided too, and ``exists`` exits 1 when the field is
missing (InvenioRDM's exits 0 either way).
"""

import click

from ..records.communities.custom_fields.custom_fields import (
    community_field_exists,
    put_community_field_mappings,
)
from .common import command_errors


@click.group(name="custom-fields")
def custom_fields_cli():
    """Custom fields (compatibility spelling of the setup guide)."""


@custom_fields_cli.group(name="communities")
def communities_fields():
    """Community custom fields."""


@communities_fields.command("init")
@click.argument("field_names", nargs=-1)
@command_errors
def init_command(field_names):
    """Create the search mapping of the named fields (all when none is named)."""
    created = put_community_field_mappings(field_names)
    click.echo(f"Created communities custom fields: {', '.join(created)}")


@communities_fields.command("exists")
@click.argument("field_name")
@command_errors
def exists_command(field_name):
    """Check that a field is mapped in the communities index (exit 1 if not)."""
    if not community_field_exists(field_name):
        raise click.ClickException(f"Field {field_name} does not exist")
    click.echo(f"Field {field_name} exists")
