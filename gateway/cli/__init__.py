"""`safeguard`: one console script; one module per command."""

from __future__ import annotations

import functools
import os
import sys
from datetime import tzinfo

import click

from gateway.config import ConfigError, Settings, load_settings
from gateway.policy.pack import PackError


class Context:
    """Carries `--config` to commands; settings are parsed once, on first use."""

    def __init__(self, config_path: str | None, click_context: click.Context) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self.call_on_close = click_context.call_on_close

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @functools.cached_property
    def zone(self) -> tzinfo:
        """The organisation's time zone: the site's setting, else its pack's (loaded once)."""
        from gateway.policy.pack import load_pack

        settings = self.settings
        if settings.organisation.timezone is not None:
            return settings.organisation.timezone
        return load_pack(settings.pack, site=settings.organisation).organisation.timezone


pass_context = click.make_pass_decorator(Context)
LOG_LEVELS = click.Choice(["debug", "info", "warning", "warn", "error", "critical"], False)


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"safeguard: {exc}", err=True)
            sys.exit(2)
        except PackError as exc:
            # A broken pack stops start-up (and every command): its first problem on stderr
            # (one line, as for all bad input), every problem on stdout.
            click.echo(f"safeguard: {exc}", err=True)
            if len(exc.problems) > 1:
                click.echo("The problems to fix in the policy pack:")
                for problem in exc.problems:
                    click.echo(f"  {problem}")
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: it says what was wrong with the command line
        except BrokenPipeError:
            # The reader went away (`| head`): nothing to say. Python flushes stdout once
            # more at exit; pointed at /dev/null, that cannot fail as well (Python's docs).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:
            # Never a traceback to the user: one line, and the details in a file for whoever
            # looks into it.
            click.echo(f"safeguard: {_explain(exc, ctx)}", err=True)
            sys.exit(1)


def _explain(exc: Exception, ctx: click.Context) -> str:
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(exc, DBAPIError):
        cause = exc.orig if exc.orig is not None else exc
        lines = str(cause).strip().splitlines()  # a driver may give no text at all
        reason = lines[0] if lines else type(cause).__name__
        return f"the database could not be used: {reason} ({_database(ctx)})"
    if isinstance(exc, ArgumentError):  # an unreadable URL, an unknown database
        return f"[database] url cannot be used: {exc}"
    if isinstance(exc, ModuleNotFoundError) and _loading_driver(exc):
        return (
            f"{exc}: is [database] url ({_database(ctx)}) for SQLite or PostgreSQL "
            "(postgresql+psycopg://)?"
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ModuleNotFoundError):  # the gateway's own installation is incomplete
        said = (
            f"{exc}: the gateway's installation is incomplete; install it again "
            "(pip install -e '.[postgres]' in its checkout, or make .venv; deploy/README.md)"
        )
    else:
        said = f"unexpected error: {type(exc).__name__}: {exc}"
    report = _write_report(exc)
    return f"{said}; the details are in {report}" if report else said


def _loading_driver(exc: ModuleNotFoundError) -> bool:
    """Raised while SQLAlchemy loaded the driver [database] url names (mysql://, say), not by
    a module of the gateway or a library it needs."""
    frame = exc.__traceback__
    while frame is not None:
        if "/sqlalchemy/dialects/" in frame.tb_frame.f_code.co_filename.replace(os.sep, "/"):
            return True
        frame = frame.tb_next
    return False


def _database(ctx: click.Context) -> str:
    """The configured database, without its password."""
    obj = ctx.find_object(Context)
    try:
        from sqlalchemy.engine import make_url

        url = obj.settings.database_url if obj is not None else ""
        return make_url(url).render_as_string(hide_password=True) if url else "no url"
    except Exception:
        return "[database] url"


def _write_report(exc: Exception) -> str | None:
    import tempfile
    import traceback

    try:
        handle, path = tempfile.mkstemp(prefix="safeguard-error-", suffix=".txt")
        with open(handle, "w", encoding="utf-8") as out:
            traceback.print_exception(exc, file=out)
        return path
    except OSError:
        return None


@click.group(cls=Group)
@click.option(
    "--config",
    "config_path",
    envvar="SAFEGUARD_CONFIG",
    default=None,
    help="Path to gateway.toml (default: $SAFEGUARD_CONFIG, else ./gateway.toml).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Safeguard Gateway: a safeguarding mail relay for organisations working with young people."""
    ctx.obj = Context(config_path, ctx)


def _register() -> None:
    from gateway.cli import archive, check, digest, directory, export, queue, rules, serve, staff

    cli.add_command(archive.archive)
    cli.add_command(check.check)
    cli.add_command(digest.digest)
    cli.add_command(directory.directory)
    cli.add_command(export.export)
    cli.add_command(rules.rules)
    cli.add_command(serve.serve)
    cli.add_command(queue.queue)
    cli.add_command(staff.staff)

    from gateway.cli import api, audit, search, web

    cli.add_command(api.api)
    cli.add_command(audit.audit)
    cli.add_command(search.search)
    cli.add_command(web.web)


def _config_after_command(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_object(Context).config_path = value  # type: ignore[union-attr]


def _accept_config_everywhere(command: click.Command) -> None:
    """`--config` is also taken after any command (`safeguard serve --config PATH`), as the
    interface promises; given in both places, the later one wins."""
    for sub in getattr(command, "commands", {}).values():
        sub.params.append(
            click.Option(
                ["--config"],
                expose_value=False,
                callback=_config_after_command,
                help="Path to gateway.toml (as `safeguard --config`).",
            )
        )
        _accept_config_everywhere(sub)


_register()
_accept_config_everywhere(cli)


def main() -> None:
    cli(prog_name="safeguard")
