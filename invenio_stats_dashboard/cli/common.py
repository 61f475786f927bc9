# Part of invenio-stats-dashboard (MIT License).
"""Shared CLI plumbing: guards, error translation, progress, background launch."""

import functools
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from opensearchpy.exceptions import TransportError

from ..exceptions import StatsDashboardError
from ..utils.process_manager import JobReporter, ProcessManager


def command_errors(func):
    """Run in the app context; every failure becomes one ``Error: …`` line (exit 1).

    Unexpected exceptions are logged with their traceback (app log), not
    printed: the terminal gets the one line.
    """

    @functools.wraps(func)
    @with_appcontext
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.Abort):
            raise
        except StatsDashboardError as exc:
            raise click.ClickException(str(exc)) from exc
        except TransportError as exc:
            current_app.logger.exception("community-stats command failed")
            detail = exc.error if isinstance(exc.error, str) else type(exc).__name__
            raise click.ClickException(
                f"search cluster: {exc.status_code} {detail}: {_reason(exc)}") from exc
        except Exception as exc:
            current_app.logger.exception("community-stats command failed")
            raise click.ClickException(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc

    return wrapper


def _reason(exc):
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        return error.get("reason") or error.get("type") or ""
    return str(error or exc.info or "")[:200]


def require_enabled():
    """Guard of the commands that need ``COMMUNITY_STATS_ENABLED``."""
    if not current_app.config.get("COMMUNITY_STATS_ENABLED", True):
        raise click.ClickException(
            "Community stats are disabled (COMMUNITY_STATS_ENABLED = False).")


class Progress:
    """One progress callback ``(done, total)`` for foreground and background runs.

    In a background job it writes the job's status file; in a terminal it
    drives a click progress bar.
    """

    def __init__(self, label, enabled=True):
        """Choose the sink."""
        self.label = label
        self.reporter = JobReporter()
        self.enabled = enabled
        self.bar = None
        self._done = 0

    def __call__(self, done, total):
        """Report that ``done`` of ``total`` items are processed."""
        if self.reporter.active:
            self.reporter.update(done, total, self.label)
            return
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.label,
                                         show_pos=True, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self._done)
        self._done = done

    def close(self):
        """Finish the bar (if one was shown)."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def invenio_argv(*args):
    """``invenio community-stats <args>`` with this environment's executable."""
    exe = Path(sys.executable).with_name("invenio")
    return [str(exe) if exe.exists() else "invenio", "community-stats", *args]


def forward_options(options):
    """CLI arguments re-creating ``{"--opt": value}`` (lists repeat, flags bare)."""
    argv = []
    for flag, value in options.items():
        if value is None or value is False or value == () or value == []:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv.extend([flag, str(item)])
        else:
            argv.extend([flag, str(value)])
    return argv


def launch_background(name, argv, pid_dir=None):
    """Start a background job and print how to follow it."""
    job = ProcessManager(name, pid_dir)
    pid = job.start(argv)
    click.echo(f"Started {name} in background (PID {pid})")
    click.echo(f"  Log file:    {job.log_file}")
    click.echo(f"  Status file: {job.status_file}")
    click.echo(f"  Command:     {' '.join(argv)}")
    opt = f" --pid-dir {pid_dir}" if pid_dir else ""
    click.echo(f"Monitor: invenio community-stats processes status {name} --show-log{opt}")
    click.echo(f"Cancel:  invenio community-stats processes cancel {name}{opt}")
    return pid
