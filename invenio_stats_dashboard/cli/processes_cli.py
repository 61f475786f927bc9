# Part of invenio-stats-dashboard (MIT License).
"""``invenio community-stats processes list | status | cancel``."""

import time

import click

from ..utils.process_manager import ProcessManager, list_processes
from .common import command_errors

PID_DIR = click.option("--pid-dir", help="Job folder (default: STATS_DASHBOARD_PROCESS_DIR).")


@click.group(name="processes")
def processes_cli():
    """Background jobs started by the ``*-background`` commands."""


def _hms(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _echo_status(name, data):
    click.echo(f"Process Status: {name}")
    click.echo("=" * 50)
    end = data.get("end_time") or time.time()
    progress = float(data.get("progress") or 0)
    filled = round(progress / 2)
    click.echo(f"PID:          {data.get('pid')}")
    click.echo(f"Status:       {data['status']}")
    click.echo(f"Runtime:      {_hms(end - data.get('start_time', end))}")
    click.echo(f"Progress:     [{'█' * filled}{'░' * (50 - filled)}] {progress:.1f}%")
    click.echo(f"Current task: {data.get('current_task')}")
    if "exit_code" in data:
        click.echo(f"Exit code:    {data['exit_code']}")
    click.echo(f"Command:      {data.get('command')}")
    click.echo("🟢 Process is running" if data["running"] else "🔴 Process is not running")


@processes_cli.command("list")
@PID_DIR
@click.option("--package-only", is_flag=True, help="Accepted for compatibility (always on).")
@command_errors
def list_command(pid_dir, package_only):
    """List background jobs and their state."""
    jobs = list_processes(pid_dir)
    if not jobs:
        click.echo("No community-stats background processes found.")
        return
    for name, data in jobs.items():
        click.echo(f"• {name}: {data['status']} ({float(data.get('progress') or 0):.0f}%)")
    running = sum(1 for d in jobs.values() if d["running"])
    click.echo(f"Total: {len(jobs)} job(s), {running} running")
    click.echo("Details: invenio community-stats processes status NAME [--show-log]")


@processes_cli.command("status")
@click.argument("name")
@click.option("--show-log", is_flag=True, help="Show the end of the job's log.")
@click.option("--log-lines", type=int, default=20, show_default=True)
@PID_DIR
@command_errors
def status_command(name, show_log, log_lines, pid_dir):
    """Status (and log) of one background job."""
    job = ProcessManager(name, pid_dir)
    data = job.status()
    if data is None:
        raise click.ClickException(f"No background process named {name}")
    _echo_status(name, data)
    if show_log:
        click.echo("\nRecent Log Output")
        click.echo("-" * 50)
        lines = job.read_log(log_lines)
        click.echo("".join(lines).rstrip() if lines else "No log file found")


@processes_cli.command("cancel")
@click.argument("name")
@click.option("--timeout", type=int, default=30, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@PID_DIR
@command_errors
def cancel_command(name, timeout, pid_dir):
    """Cancel a running background job (its whole process group)."""
    data = ProcessManager(name, pid_dir).cancel(timeout)
    click.echo(f"Process '{name}' cancelled ({(data or {}).get('status', 'cancelled')})")
