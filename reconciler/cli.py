"""The command line (docs/commands.md). Thin: parse flags, call the core, render, pick the exit code.

Every error is one line on stderr, ``error: <what> (<where>)``, exit 1; ``--debug`` adds the
traceback. Usage mistakes exit 1 too, because 2 means "actions pending" / "drift" here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import redact
from .errors import ConfigError, ReconcilerError, StalePlan
from .model import UTC, Config, Plan, parse_iso

app = typer.Typer(
    name="reconciler",
    help="Terraform-style reconciler for ClickHouse backups in your own object storage.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, bool] = {"debug": False}


class Format(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class StatusFormat(str, Enum):
    text = "text"
    json = "json"


class SchemaName(str, Enum):
    config = "config"
    plan = "plan"


FileOpt = Annotated[Path, typer.Option("-f", "--file", help="The desired-state YAML file.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Plan as of this time (ISO 8601, UTC if no zone).")]
TargetOpt = Annotated[
    list[str] | None, typer.Option("--target", help="Limit to these services, schedules or restores.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print the storage requests made, by kind, to stderr.")]
MetricsOpt = Annotated[
    Path | None, typer.Option("--metrics-file", help="Write Prometheus text metrics here (textfile collector).")
]


@app.callback()
def _root(debug: DebugOpt = False) -> None:
    if debug:
        _state["debug"] = True


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _fail(err: ReconcilerError | str, code: int = 1) -> NoReturn:
    lines = (
        err.lines()
        if isinstance(err, ConfigError)
        else [err.line() if isinstance(err, ReconcilerError) else f"error: {err}"]
    )
    for line in lines:
        print(redact.redact(line), file=sys.stderr)
    raise typer.Exit(code)


def _load(path: Path) -> Config:
    from .config import load_config

    config = load_config(str(path))
    redact.register(config.secrets())
    return config


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_iso(value)
    except ValueError:
        raise ReconcilerError(f"--now {value!r} is not an ISO 8601 time such as 2026-11-25T03:00:00Z") from None


def _warn(config: Config) -> None:
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _observe_and_plan(config: Config, now: datetime, targets: list[str], metrics: Path | None = None) -> Plan:
    from .connections import Connections
    from .observe import observe
    from .plan import build_plan

    conns = Connections(config)
    observed = observe(config, conns, datetime.now(UTC), targets)
    p = build_plan(config, observed, now, targets)
    if metrics is not None:
        _write_metrics(metrics, config, observed, p)
    return p


def _write_metrics(path: Path, config: Config, observed: Any, p: Plan, ok: bool | None = None) -> None:
    from .metrics import render_metrics, write_metrics

    try:
        write_metrics(str(path), render_metrics(config, observed, p, ok))
    except OSError as e:
        raise ReconcilerError(f"cannot write the metrics file: {e.strerror}", where=str(path)) from None


def _render_plan(plan: Plan, fmt: Format) -> str:
    from .render import plan_markdown, plan_text, to_json

    if fmt == Format.json:
        return to_json(plan.to_json())
    if fmt == Format.markdown:
        return plan_markdown(plan)
    return plan_text(plan)


def _stats(on: bool) -> None:
    """Count this run's storage requests; printed at exit (also after an error)."""
    from .stores.stats import STATS

    STATS.reset()
    _state["stats"] = on


def _debug(debug: bool) -> None:
    if debug:
        _state["debug"] = True


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


@app.command()
def validate(file: FileOpt, debug: DebugOpt = False) -> None:
    """Check the config only (no network, no environment). Exit 0 valid, 1 invalid."""
    from .config import check_config

    _debug(debug)
    checked = check_config(str(file))
    for w in checked.warnings:
        print(f"warning: {w}", file=sys.stderr)
    n = checked.sections
    counts = ", ".join(f"{n.get(k, 0)} {k}" for k in ("services", "buckets", "schedules", "restores"))
    print(f"{file}: valid ({counts})")
    if checked.unset:
        uses = ", ".join(f"{name} ({where})" for name, where in checked.unset)
        print(
            f"note: these variables are not set here, so the values that use them were not checked: {uses}; "
            "plan, apply, drift and status need them"
        )


@app.command()
def plan(
    file: FileOpt,
    now: NowOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the plan (JSON) here, for apply.")] = None,
    format: Annotated[Format, typer.Option("--format", help="text, json or markdown.")] = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when actions are pending.")
    ] = False,
    target: TargetOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Observe, diff, and print the plan."""
    _stats(stats)
    _debug(debug)
    config = _load(file)
    p = _observe_and_plan(config, _now(now), target or [], metrics_file)
    if out is not None:
        from .render import to_json

        out.write_text(to_json(p.to_json()))
    sys.stdout.write(_render_plan(p, format))
    if detailed_exitcode and p.actions:
        raise typer.Exit(2)


@app.command()
def apply(
    file: FileOpt,
    plan_file: Annotated[Path | None, typer.Argument(metavar="[PLAN]", help="A plan saved by plan --out.")] = None,
    now: NowOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=64, help="Actions run at once.")] = 4,
    target: TargetOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Carry out a fresh plan, or exactly a saved one (refused when stale)."""
    _stats(stats)
    from .apply import ApplyContext, check_references, execute, hold_locks, new_run_id, wall_clock
    from .config import parse_duration
    from .connections import Connections
    from .observe import observe
    from .plan import build_plan
    from .render import apply_text
    from .render.console import console_for
    from .targets import select

    _debug(debug)
    config = _load(file)
    saved: Plan | None = _read_plan(plan_file) if plan_file else None
    if saved is not None and saved.config_digest != config.digest:
        _fail(
            StalePlan(
                "the saved plan is stale: the config changed since it was made "
                f"({saved.config_digest} → {config.digest}); run plan again",
                where=str(plan_file),
            )
        )
    if saved is not None:
        check_references(saved, config)
    targets = list(saved.targets) if saved is not None else (target or [])
    plan_now = saved.now if saved is not None and now is None else _now(now)
    console = console_for()
    conns = Connections(config)
    ctx = ApplyContext(config, conns, console, new_run_id(wall_clock()))
    lease = parse_duration(os.environ["RECONCILER_LOCK_LEASE"]) if os.environ.get("RECONCILER_LOCK_LEASE") else None
    lock_args: dict[str, Any] = {"lease": lease} if lease else {}
    sel = select(config, targets)
    try:
        with hold_locks(ctx, sel.buckets, **lock_args) as locks:
            observed = observe(config, conns, wall_clock(), targets)
            for service, dbs in observed.drill_leftovers.items():
                from .apply.drill import drop_leftovers

                dropped = drop_leftovers(conns.clickhouse(service), dbs)
                console.info(
                    f"dropped scratch databases of drills that did not finish on {service}: {', '.join(dropped)}"
                )
            if saved is not None:
                if observed.digest != saved.state_digest:
                    raise StalePlan(
                        "the saved plan is stale: the observed state changed since it was made "
                        f"({saved.state_digest} → {observed.digest}); run plan again",
                        where=str(plan_file),
                    )
                the_plan = saved
            else:
                the_plan = build_plan(config, observed, plan_now, targets)
                sys.stdout.write(_render_plan(the_plan, Format.text))
            if not the_plan.actions:
                from .apply import refresh

                refresh(ctx, sel.schedules)  # warm the index of each schedule for later plans
                print("Nothing to do.")
                return
            if not auto_approve and saved is None:
                _confirm(len(the_plan.actions))
            result = execute(the_plan, ctx, parallelism, locks)
    finally:
        close = getattr(console, "close", None)
        if close:
            close()
    sys.stdout.write(apply_text(result))
    if metrics_file is not None:
        after = observe(config, conns, wall_clock(), targets)
        _write_metrics(metrics_file, config, after, build_plan(config, after, plan_now, targets), result.ok)
    if not result.ok:
        raise typer.Exit(1)


def _confirm(n: int) -> None:
    if not sys.stdin.isatty():
        raise ReconcilerError(
            "refusing to apply without --auto-approve: standard input is not a terminal to confirm on"
        )
    answer = input(f"Apply these {n} actions? Only 'yes' will be accepted: ")
    if answer.strip() != "yes":
        raise ReconcilerError("apply cancelled")


def _read_plan(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ReconcilerError(f"cannot read the plan: {e.strerror}", where=str(path)) from None
    except json.JSONDecodeError as e:
        raise ReconcilerError(f"the plan is not JSON: {e.msg}", where=f"{path}:{e.lineno}:{e.colno}") from None
    from .schemas import validate_plan

    problem = validate_plan(doc)
    if problem:
        raise ReconcilerError(f"the plan does not match the plan schema: {problem}", where=str(path))
    return Plan.from_json(doc)


@app.command()
def drift(
    file: FileOpt,
    now: NowOpt = None,
    format: Annotated[Format, typer.Option("--format", help="text, json or markdown.")] = Format.text,
    target: TargetOpt = None,
    metrics_file: MetricsOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Observe and report drift only. Exit 0 none, 2 drift, 1 error."""
    _stats(stats)
    from .render import drift_text, plan_markdown, to_json

    _debug(debug)
    config = _load(file)
    p = _observe_and_plan(config, _now(now), target or [], metrics_file)
    if format == Format.json:
        sys.stdout.write(
            to_json({"now": p.to_json()["now"], "drift": [d.to_json() for d in p.drift], "warnings": list(p.warnings)})
        )
    elif format == Format.markdown:
        sys.stdout.write(plan_markdown(Plan(p.now, p.config_digest, p.state_digest, (), p.drift, p.warnings)))
    else:
        sys.stdout.write(drift_text(p))
    if p.drift:
        raise typer.Exit(2)


@app.command()
def status(
    file: FileOpt,
    format: Annotated[StatusFormat, typer.Option("--format", help="text or json.")] = StatusFormat.text,
    now: NowOpt = None,
    target: TargetOpt = None,
    stats: StatsOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Inventory per schedule: backups, newest complete, age, validation, sizes."""
    _stats(stats)
    from .connections import Connections
    from .observe import observe
    from .render import status_text, to_json
    from .status import status_report

    _debug(debug)
    config = _load(file)
    conns = Connections(config)
    observed = observe(config, conns, datetime.now(UTC), target or [])
    doc = status_report(config, observed, _now(now))
    doc["runs"] = _last_runs(config, conns, observed)
    sys.stdout.write(to_json(doc) if format == StatusFormat.json else status_text(doc))


def _last_runs(config: Config, conns: Any, observed: Any) -> dict[str, list[dict[str, object]]]:
    from . import layout
    from .observe.inventory import read_runs

    out: dict[str, list[dict[str, object]]] = {}
    now = datetime.now(UTC)
    for name, state in observed.buckets.items():
        if not state.reachable:
            continue
        runs = read_runs(conns.store(name), layout.runs_prefix(config.buckets[name]))
        lock = state.lock
        for r in runs:
            # a run that never recorded its end, and no longer holds a live lock, was interrupted
            alive = lock is not None and lock.lock_id == r.get("run_id") and lock.lease_expires_at > now
            if r.get("status") == "running" and not alive:
                r["status"] = "interrupted"
        out[name] = runs
    return out


@app.command("force-unlock")
def force_unlock_cmd(
    file: FileOpt,
    lock_id: Annotated[str, typer.Argument(metavar="LOCK_ID", help="The run id the lock names.")],
    bucket: Annotated[str, typer.Option("--bucket", help="The bucket (config name) whose lock to remove.")],
    debug: DebugOpt = False,
) -> None:
    """Remove a stuck apply lock."""
    from .apply import force_unlock
    from .connections import Connections

    _debug(debug)
    config = _load(file)
    if bucket not in config.buckets:
        raise ReconcilerError(f"--bucket {bucket} is not a bucket of the config", where=str(file))
    held = force_unlock(Connections(config).store(bucket), config.buckets[bucket], lock_id)
    print(f"Removed the lock of bucket {bucket} held by run {held.lock_id} on {held.host}.")


@app.command()
def schema(name: Annotated[SchemaName, typer.Argument(help="config or plan")] = SchemaName.config) -> None:
    """Print a JSON Schema."""
    from .schemas import load_schema

    sys.stdout.write(json.dumps(load_schema(name.value), indent=2) + "\n")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and turns every error into one line and exit code 1."""
    _state["stats"] = False
    _state["debug"] = False
    try:
        return _main(argv)
    finally:
        if _state.get("stats"):
            from .stores.stats import STATS

            print(STATS.line(), file=sys.stderr)


def _main(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="reconciler")
        return rc if isinstance(rc, int) else 0
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except _EXIT as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except _ABORT:
        print("error: aborted", file=sys.stderr)
        return 1
    except _USAGE_ERRORS as e:
        print(redact.redact(usage_line(e)), file=sys.stderr)
        return 1
    except ReconcilerError as e:
        if _state["debug"]:
            print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")
        lines = e.lines() if isinstance(e, ConfigError) else [e.line()]
        for line in lines:
            print(redact.redact(line), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, the traceback with --debug
        if _state["debug"]:
            print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")
        print(
            redact.redact(f"error: internal error: {e.__class__.__name__}: {e} (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 1


# newer typer carries its own copy of click (typer._click) and older ones use click itself; a
# usage error is an exception of whichever is installed
def _both(name: str) -> tuple[type[BaseException], ...]:
    import importlib

    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


_USAGE_ERRORS = _both("UsageError") + _both("ClickException")
_ABORT = _both("Abort")
_EXIT = _both("Exit")


def usage_line(e: BaseException) -> str:
    """A usage mistake in one line that says what to run for help, e.g.
    ``error: no such option --refresh (reconciler plan --help lists the options)``."""
    ctx = getattr(e, "ctx", None)
    command = getattr(ctx, "command_path", None) or "reconciler"
    hint = f"{command} --help lists the options"
    kind = type(e).__name__
    if kind == "NoSuchOption":
        what = f"no such option {getattr(e, 'option_name', '')}"
        possible = getattr(e, "possibilities", None)
        if possible:
            what += f"; did you mean {' or '.join(sorted(possible))}?"
    elif kind == "MissingParameter":
        param = getattr(e, "param", None)
        names = "/".join(getattr(param, "opts", ()) or ()) or getattr(param, "name", "") or "a parameter"
        is_arg = getattr(param, "param_type_name", "") == "argument"
        what = f"missing {'argument' if is_arg else 'option'} {names.upper() if is_arg else names}"
    elif kind == "BadParameter":
        param = getattr(e, "param", None)
        names = "/".join(getattr(param, "opts", ()) or ()) or getattr(param, "name", "") or "a parameter"
        message = str(getattr(e, "message", "") or e).removeprefix("Value error, ").rstrip(".")
        what = f"invalid value for {names}: {message}"
    elif kind == "BadOptionUsage":
        what = str(getattr(e, "message", "") or e).rstrip(".").replace("Option ", "option ", 1).replace("'", "")
    elif "No such command" in str(e):
        name = str(e).split("'")[1] if "'" in str(e) else str(e)
        what, hint = f"no such command {name}", "reconciler --help lists the commands"
    else:
        text = e.format_message() if hasattr(e, "format_message") else str(e)
        what = text.rstrip(".")
        what = what[:1].lower() + what[1:]
    return f"error: {what} ({hint})"


def run() -> None:
    sys.exit(main())
