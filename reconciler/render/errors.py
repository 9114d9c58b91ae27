"""Usage mistakes read as such: click's exceptions (an unknown flag, a missing option, a bad
value) as one line that says where the help is, never as an internal error."""

from __future__ import annotations

import contextlib
import importlib


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """Click's exception ``name``: typer vendors click as typer._click in newer versions."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


#: what click raises for a usage mistake, a Ctrl-C at a prompt, and an explicit exit
USAGE = _classes("UsageError") + _classes("ClickException")
ABORT = _classes("Abort")
EXIT = _classes("Exit")


def usage_line(e: BaseException) -> str:
    """A usage mistake in one line that says where the help is, e.g.
    ``error: no such option --refresh (reconciler plan --help lists the options)``."""
    ctx = getattr(e, "ctx", None)
    hint = f"{getattr(ctx, 'command_path', None) or 'reconciler'} --help lists the options"
    kind, param = type(e).__name__, getattr(e, "param", None)
    names = "/".join(getattr(param, "opts", ()) or ()) or getattr(param, "name", "") or "a parameter"
    message = str(getattr(e, "message", "") or e)
    if kind == "NoSuchOption":
        what = f"no such option {getattr(e, 'option_name', '')}"
        if possible := getattr(e, "possibilities", None):
            what += f"; did you mean {' or '.join(sorted(possible))}?"
    elif kind == "MissingParameter":
        is_arg = getattr(param, "param_type_name", "") == "argument"
        what = f"missing argument {names.upper()}" if is_arg else f"missing option {names}"
    elif kind == "BadParameter":
        what = f"invalid value for {names}: {message.removeprefix('Value error, ').rstrip('.')}"
    elif kind == "BadOptionUsage":
        what = message.rstrip(".").replace("Option ", "option ", 1).replace("'", "")
    elif "No such command" in message:
        name = message.split("'")[1] if "'" in message else message
        what, hint = f"no such command {name}", "reconciler --help lists the commands"
    else:
        what = message.rstrip(".")
        what = what[:1].lower() + what[1:]
    return f"error: {what} ({hint})"
