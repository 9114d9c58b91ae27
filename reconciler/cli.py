"""The command line (docs/commands.md). Thin: parse flags, call an operation, render what it
returns, pick the exit code. Every error is one line on stderr, ``error: <what> (<where>)``, exit
1 (usage mistakes too: 2 means "actions pending" or "drift"); ``--debug`` adds the traceback."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from . import redact
from .errors import ConfigError, ReconcilerError
from .render.errors import ABORT, EXIT, USAGE, usage_line

app = typer.Typer(
    name="reconciler",
    help="Terraform-style reconciler for ClickHouse backups in your own object storage.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, bool] = {"debug": False, "stats": False}
_EXITS: tuple[type[BaseException], ...] = (typer.Exit, *EXIT)


class Format(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class StatusFormat(str, Enum):
    text = "text"
    json = "json"


class RefreshMode(str, Enum):
    fast = "fast"
    full = "full"


class SchemaName(str, Enum):
    config = "config"
    plan = "plan"


FileOpt = Annotated[Path, typer.Option("-f", "--file", help="The desired-state YAML file.")]


def _check_now(value: str | None) -> str | None:
    """A bad ``--now`` is a usage mistake: said as one, before any file is read."""
    from .model import parse_iso

    if value is not None:
        try:
            parse_iso(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not an ISO 8601 time such as 2026-11-25T03:00:00Z") from None
    return value


NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Decide as of this time (ISO 8601, UTC if no zone).", callback=_check_now),
]
TargetOpt = Annotated[list[str] | None, typer.Option("--target", help="Only these services, schedules, restores.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print the storage requests made, by kind, to stderr.")]
MetricsOpt = Annotated[Path | None, typer.Option("--metrics-file", help="Write Prometheus text metrics here.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="text, json or markdown.")]
RefreshOpt = Annotated[
    RefreshMode | None,
    typer.Option(
        "--refresh",
        help="fast: folder names and the index per schedule; full: every object, checked against the sidecars.",
    ),
]


def _refresh(value: RefreshMode | None, default: str) -> Any:
    from .model import Refresh

    return Refresh(value.value if value is not None else default)


@app.callback()
def _root(debug: DebugOpt = False) -> None:  # `reconciler --debug plan ...`
    _state["debug"] = _state["debug"] or debug


def _start(debug: bool, stats: bool = False) -> None:
    """Every command: --debug, and --stats counting this run's storage requests (printed at exit)."""
    from .stores.stats import STATS

    _state["debug"] = _state["debug"] or debug
    STATS.reset()
    _state["stats"] = stats


def _session(file: Path) -> tuple[Any, Any]:
    from .connections import Connections
    from .operations import load

    config = load(str(file))
    return config, Connections(config)


def _metrics(path: Path | None, config: Any, planned: Any, ok: bool | None = None) -> None:
    from .operations import write_metrics_file

    write_metrics_file(path, config, planned, ok)


def _notify(config: Any, event: Any) -> None:
    """Tell the config's webhooks (``notify``); a webhook that fails is a warning, never an exit code."""
    if not config.notify or event is None:
        return
    from .operations.notify import send

    for w in send(config, event):
        print(redact.redact(f"warning: {w}"), file=sys.stderr)


def _render(plan: Any, fmt: Format) -> str:
    from .render import plan_view

    return plan_view(plan, fmt.value)


@app.command()
def validate(file: FileOpt, debug: DebugOpt = False) -> None:
    """Check the config only (no network, no environment). Exit 0 valid, 1 invalid."""
    from .config import check_config
    from .render.text import validate_text

    _start(debug)
    checked = check_config(str(file))
    for w in checked.warnings:
        print(f"warning: {w}", file=sys.stderr)
    sys.stdout.write(validate_text(str(file), checked.sections, checked.unset))


@app.command()
def plan(
    file: FileOpt,
    now: NowOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the plan (JSON) here, for apply.")] = None,
    format: FormatOpt = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when actions are pending.")
    ] = False,
    target: TargetOpt = None,
    refresh: RefreshOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Observe, diff, and print the plan."""
    from .operations import parse_now, plan_run
    from .render import to_json

    _start(debug, stats)
    config, conns = _session(file)
    planned = plan_run(config, conns, parse_now(now), target or [], _refresh(refresh, "fast"))
    _metrics(metrics_file, config, planned)
    if out is not None:
        out.write_text(to_json(planned.plan.to_json()))
    sys.stdout.write(_render(planned.plan, format))
    _notify(config, _drift_event(config, planned.plan, "plan"))
    if detailed_exitcode and planned.plan.actions:
        raise typer.Exit(2)


@app.command()
def apply(
    file: FileOpt,
    plan_file: Annotated[Path | None, typer.Argument(metavar="[PLAN]", help="A plan saved by plan --out.")] = None,
    now: NowOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=64, help="Actions run at once.")] = 4,
    target: TargetOpt = None,
    refresh: RefreshOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Carry out a fresh plan, or exactly a saved one (refused when stale)."""
    _start(debug, stats)
    config, conns = _session(file)
    shown: list[Any] = []  # the plan apply carried out, once shown
    try:
        run = _apply(config, conns, plan_file, now, auto_approve, parallelism, target, metrics_file, shown, refresh)
    except BaseException as e:  # the config was read: any exit 1 from here on is a failure to tell
        if not isinstance(e, typer.Exit | KeyboardInterrupt):
            _notify(config, _apply_event(config, None, shown[-1] if shown else None, _error_line(e)))
        raise
    _notify(config, _apply_event(config, run.result, run.plan))
    if not run.ok:
        raise typer.Exit(1)


def _apply(
    config: Any,
    conns: Any,
    plan_file: Path | None,
    now: str | None,
    auto_approve: bool,
    parallelism: int,
    target: list[str] | None,
    metrics_file: Path | None,
    shown: list[Any],
    refresh: RefreshMode | None = None,
) -> Any:
    from .operations import ApplyOptions, apply_run, lease_from_env, parse_now, read_saved_plan
    from .render import apply_text
    from .render.console import confirm_on_terminal, console_for

    saved = read_saved_plan(plan_file, config) if plan_file else None
    options = ApplyOptions(
        now=saved.now if saved is not None and now is None else parse_now(now),
        saved=saved,
        saved_path=plan_file,
        targets=target or [],
        parallelism=parallelism,
        lease=lease_from_env(os.environ.get("RECONCILER_LOCK_LEASE")),
        observe_after=metrics_file is not None,
        refresh=_refresh(refresh, "fast") if refresh is not None else None,
    )

    console = console_for()
    try:
        run = apply_run(
            config,
            conns,
            options,
            console,
            lambda p: _show(p, shown),
            confirm_on_terminal(auto_approve),
        )
    finally:
        with contextlib.suppress(Exception):
            getattr(console, "close", lambda: None)()
    sys.stdout.write(apply_text(run.result) if run.result is not None else "Nothing to do.\n")
    _metrics(metrics_file, config, run.after, run.ok if run.result is not None else None)
    return run


def _show(plan: Any, shown: list[Any]) -> None:
    shown.append(plan)
    sys.stdout.write(_render(plan, Format.text))


def _apply_event(config: Any, result: Any, plan: Any, error: str | None = None) -> Any:
    if not config.notify:
        return None
    from .operations.notify import apply_event

    return apply_event(config, result, plan, error)


def _drift_event(config: Any, plan: Any, command: str) -> Any:
    if not config.notify:
        return None
    from .operations.notify import drift_event

    return drift_event(config, plan, command)


def _error_line(e: BaseException) -> str:
    """What the failed apply's message says (as the CLI prints it, without ``error: ``)."""
    if isinstance(e, ReconcilerError):
        return redact.redact(e.line().removeprefix("error: "))
    if isinstance(e, ABORT):
        return "aborted"
    return redact.redact(f"internal error: {e.__class__.__name__}: {e}")


@app.command()
def drift(
    file: FileOpt,
    now: NowOpt = None,
    format: FormatOpt = Format.text,
    target: TargetOpt = None,
    refresh: RefreshOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Observe and report drift only. Exit 0 none, 2 drift, 1 error."""
    from .operations import drift_run, parse_now
    from .render import drift_json, drift_markdown, drift_text

    _start(debug, stats)
    config, conns = _session(file)
    planned = drift_run(config, conns, parse_now(now), target or [], _refresh(refresh, "full"))
    _metrics(metrics_file, config, planned)
    p = planned.plan
    sys.stdout.write(
        drift_json(p) if format == Format.json else drift_markdown(p) if format == Format.markdown else drift_text(p)
    )
    _notify(config, _drift_event(config, p, "drift"))
    if p.drift:
        raise typer.Exit(2)


@app.command()
def status(
    file: FileOpt,
    format: Annotated[StatusFormat, typer.Option("--format", help="text or json.")] = StatusFormat.text,
    now: NowOpt = None,
    target: TargetOpt = None,
    refresh: RefreshOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Inventory per schedule: backups, newest complete, age, validation, sizes."""
    from .operations import parse_now, status_run
    from .render import status_text, to_json

    _start(debug, stats)
    config, conns = _session(file)
    doc = status_run(config, conns, parse_now(now), target or [], _refresh(refresh, "fast"))
    sys.stdout.write(to_json(doc) if format == StatusFormat.json else status_text(doc))


@app.command("force-unlock")
def force_unlock_cmd(
    file: FileOpt,
    lock_id: Annotated[str, typer.Argument(metavar="LOCK_ID", help="The run id the lock names.")],
    bucket: Annotated[str, typer.Option("--bucket", help="The bucket (config name) whose lock to remove.")],
    debug: DebugOpt = False,
) -> None:
    """Remove a stuck apply lock."""
    from .operations import unlock_run

    _start(debug)
    config, conns = _session(file)
    held = unlock_run(config, conns, bucket, lock_id)
    print(f"Removed the lock of bucket {bucket} held by run {held.lock_id} on {held.host}.")


@app.command()
def schema(name: Annotated[SchemaName, typer.Argument(help="config or plan")] = SchemaName.config) -> None:
    """Print a JSON Schema."""
    from .schemas import load_schema

    sys.stdout.write(json.dumps(load_schema(name.value), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and turns every error into one line and exit code 1."""
    _state.update(debug=False, stats=False)
    try:
        return _main(argv)
    finally:
        if _state["stats"]:
            from .stores.stats import STATS

            print(STATS.line(), file=sys.stderr)


def _main(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="reconciler")
        return rc if isinstance(rc, int) else 0
    except _EXITS as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except ABORT:
        print("error: aborted", file=sys.stderr)
        return 1
    except USAGE as e:
        print(redact.redact(usage_line(e)), file=sys.stderr)
        return 1
    except ReconcilerError as e:
        _traceback()
        for line in e.lines() if isinstance(e, ConfigError) else [e.line()]:
            print(redact.redact(line), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, the traceback with --debug
        _traceback()
        line = f"error: internal error: {e.__class__.__name__}: {e} (run with --debug for the traceback)"
        print(redact.redact(line), file=sys.stderr)
        return 1


def _traceback() -> None:
    if _state["debug"]:
        print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")


def run() -> None:
    sys.exit(main())
