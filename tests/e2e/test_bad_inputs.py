"""Hostile and malformed configs (issue 9, part 5): every one is refused with exactly the lines
it names, exit 1, no traceback, nothing written and no network touched.

Each file in ``tests/bad_inputs/`` begins with ``# expect: <line>`` comments: the exact lines the
CLI prints on stderr, in order, with ``{file}`` for the path given to ``-f``. What cannot be
committed (a file over 1 MiB, a file of zero bytes, a directory) is made here. A few configs
go through ``plan`` and ``apply`` against the S3 server too: a refused config writes nothing
to the bucket either.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import cli
from reconciler.config.yaml_loader import MAX_BYTES
from reconciler.model import Bucket
from tests.support.e2e import Result, keys, run, s3_bucket_doc, write_config

BAD_INPUTS = Path(__file__).parent.parent / "bad_inputs"
FILES = sorted(BAD_INPUTS.glob("*.yaml"))

#: the ${VAR}s the configs use; BI_UNSET_SECRET is the one whose absence is tested
ENV = {
    "BI_DSN": "chdb:///tmp/reconciler-bad-inputs-never-opened",
    "BI_KEY_ID": "AKIA-bad-inputs-key",
    "BI_SECRET": "bad-inputs-secret-3e9f",
    "BI_CH_KEY": "bad-inputs-ch-key",
    "BI_CH_SECRET": "bad-inputs-ch-secret-71aa",
}

#: files whose expected line is right but which the CLI still prints wrongly; strict, so the
#: fix makes these tests fail until the entry is removed
KNOWN_BUGS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _no_debug_left_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process ``--debug`` run leaves ``cli._state["debug"]`` set (see the report): start
    each test without it, and put back what was there after."""
    monkeypatch.setitem(cli._state, "debug", False)


def command_of(path: Path) -> tuple[str, ...]:
    """``# command: plan`` after the expected lines: the command that refuses the file (default
    validate; an unset variable is refused only by the commands that connect)."""
    for raw in path.read_bytes().split(b"\n"):
        if raw.startswith(b"# command: "):
            return tuple(raw[len(b"# command: ") :].decode().split())
    return ()


def expected_lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_bytes().split(b"\n"):
        if not raw.startswith(b"# expect: "):
            break
        out.append(raw[len(b"# expect: ") :].decode("utf-8"))
    return out


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BI_UNSET_SECRET", raising=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any connection attempt is recorded and refused: validate must not make one."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any, *args: Any) -> Any:
        attempts.append(address)
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory: nothing may appear in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def refuse(config: Path, expected: list[str], root: Path, *args: str) -> Result:
    """``validate -f config`` exits 1 with exactly ``expected`` on stderr, writing nothing."""
    before = tree(root)
    r = run(*(args or ("validate",)), "-f", str(config))
    shown = [line.replace("{file}", str(config)) for line in expected]
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert r.err.splitlines() == shown
    assert r.out == ""
    assert tree(root) == before, "validate wrote a file"
    return r


def test_there_are_enough_bad_inputs() -> None:
    assert len(FILES) >= 50
    for path in FILES:
        assert expected_lines(path), f"{path.name} has no `# expect:` line"
        assert path.name[:3].isdigit() and path.name[3] == "-", path.name


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[p.name])) if p.name in KNOWN_BUGS else p
        for p in FILES
    ],
    ids=[p.stem for p in FILES],
)
def test_bad_input_is_refused(path: Path, tmp_path: Path, env: None, no_network: list[Any], workdir: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    config = folder / path.name
    shutil.copyfile(path, config)
    r = refuse(config, expected_lines(path), tmp_path, *command_of(path))
    assert no_network == []
    assert "LITERAL" not in r.err  # a literal secret (they all hold LITERAL) is refused, never repeated


# --------------------------------------------------------------------------------------------
# What is not committed
# --------------------------------------------------------------------------------------------


def test_file_over_one_mib_is_refused_unread(tmp_path: Path, env: None, no_network: list[Any], workdir: Path) -> None:
    config = tmp_path / "huge.yaml"
    line = "# " + "x" * 1021 + "\n"
    config.write_text("version: 1\n" + line * (MAX_BYTES // len(line) + 1))
    assert config.stat().st_size > MAX_BYTES
    refuse(config, ["error: the config file is larger than 1024 KiB; a config is never that big ({file})"], tmp_path)


def test_file_of_many_values_under_the_limit_is_bounded(tmp_path: Path, env: None, workdir: Path) -> None:
    """Just under 1 MiB of flow list items: more values than a config ever has, refused fast."""
    config = tmp_path / "many.yaml"
    config.write_text("version: 1\nservices: [" + "1," * (MAX_BYTES // 2 - 20) + "1]\n")
    assert config.stat().st_size <= MAX_BYTES
    # the 100 001st node is item 99 995 (after the document, `version`, 1, `services` and the
    # list itself), at column 12 + 2 * 99 995
    started = time.monotonic()
    refuse(
        config,
        ["error: the file holds more than 100000 values; a config is never that big ({file}:2:200002)"],
        tmp_path,
    )
    assert time.monotonic() - started < 2


def test_zero_byte_file(tmp_path: Path, env: None, workdir: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_bytes(b"")
    refuse(
        config,
        ["error: the config file is empty; the config must be a mapping with `version: 1` at the top ({file}:1:1)"],
        tmp_path,
    )


def test_missing_file_and_directory(tmp_path: Path, env: None, workdir: Path) -> None:
    refuse(
        tmp_path / "nope.yaml",
        ["error: the config file does not exist; check the path given with -f ({file})"],
        tmp_path,
    )
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    refuse(folder, ["error: cannot read the config file: Is a directory ({file})"], tmp_path)


def test_deep_nesting_generated(tmp_path: Path, env: None, workdir: Path) -> None:
    """100 000 levels of block mappings would overflow the composer's recursion: stopped at 64."""
    config = tmp_path / "deep.yaml"
    config.write_text("version: 1\nservices: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n")
    refuse(config, ["error: the config nests deeper than 64 levels ({file}:2:263)"], tmp_path)


# --------------------------------------------------------------------------------------------
# plan and apply refuse before touching the bucket
# --------------------------------------------------------------------------------------------

#: mistakes made to the valid config below; each is refused by plan and apply as by validate
BREAKAGES = {
    "unknown-key": lambda d: d["schedules"]["daily"].update(retain=7),
    "literal-secret": lambda d: d["buckets"]["primary"]["credentials"].update(secret_access_key="lit-secret-0b1c"),
    "never-fires": lambda d: d["schedules"]["daily"].update(cron="0 3 30 2 *"),
    "tde": lambda d: d["services"]["analytics"].update(cloud={"provider": "aws", "region": "us-east-1", "tde": True}),
    "prefix-escape": lambda d: d["buckets"]["primary"].update(prefix="clickhouse/../elsewhere"),
    "unset-var": lambda d: d["services"]["analytics"].update(dsn="${BI_UNSET_SECRET}"),
}


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, env: None) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)


def base_doc(bucket: Bucket) -> dict[str, Any]:
    return {
        "services": {"analytics": {"dsn": "${BI_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(bucket)},
        "schedules": {"daily": {"service": "analytics", "bucket": "primary", "cron": "0 3 * * *"}},
    }


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_plan_and_apply_of_a_bad_config_write_nothing(
    breakage: str, tmp_path: Path, s3_env: None, s3_server: Any, s3_bucket: Bucket, workdir: Path
) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket.bucket, Key="clickhouse/analytics/daily/sentinel/data.bin", Body=b"x")
    doc = base_doc(s3_bucket)
    BREAKAGES[breakage](doc)
    config = write_config(tmp_path / "bad.yaml", doc)
    # validate needs no environment: an unset variable is only refused by the commands that connect
    validated = run("plan" if breakage == "unset-var" else "validate", "-f", str(config))
    assert validated.code == 1 and validated.err.startswith("error: ") and "Traceback" not in validated.err
    assert "lit-secret-0b1c" not in validated.err
    before = keys(s3, s3_bucket.bucket)
    out = tmp_path / "plan.json"
    for args in (("plan", "--out", str(out)), ("apply", "--auto-approve"), ("drift",), ("status",)):
        r = (
            run(*args, "-f", str(config), "--now", "2026-11-25T06:00:00Z")
            if args[0] != "status"
            else run(*args, "-f", str(config))
        )
        assert r.code == 1, (args, r.out, r.err)
        assert r.err == validated.err, args
        assert r.out == ""
    assert not out.exists()
    assert keys(s3, s3_bucket.bucket) == before


def test_the_base_of_the_breakages_is_valid(tmp_path: Path, s3_env: None, s3_bucket: Bucket, workdir: Path) -> None:
    config = write_config(tmp_path / "good.yaml", base_doc(s3_bucket))
    assert yaml.safe_load(config.read_text())["version"] == 1
    r = run("validate", "-f", str(config))
    assert r.code == 0, r.err
    assert os.listdir(workdir) == []
