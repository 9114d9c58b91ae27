"""Concurrent applies with real processes (issue 9, part 2; docs/commands.md, §9): one apply at a time
per bucket prefix, and applies on different prefixes of one bucket never wait for each other.

To make "at the same time" certain rather than likely, the applies talk to S3 through the
loopback proxy (tests/support/tcp_proxy.py), which holds an apply's final sidecar update — the apply
then sits in the middle of its run, lock held — until the test releases it."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket, parse_iso
from tests.e2e.test_crash_more import LEASE, SLOT, World, worlds
from tests.support.processes import poll
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


@pytest.fixture
def world(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, s3_server: Any, s3_bucket: Bucket
) -> Iterator[Callable[..., World]]:
    with worlds(tmp_path, tmp_path_factory, s3_server, s3_bucket) as make:
        yield make


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[TcpProxy]:
    p = TcpProxy(s3_server.port).start()
    try:
        yield p
    finally:
        p.stop()


def test_two_applies_on_one_prefix_one_exports_the_other_names_the_holder(
    world: Callable[..., World], proxy: TcpProxy
) -> None:
    w = world(endpoint=proxy.endpoint)
    # whichever wins the lock is held at the end of its export until the other has given up
    held = proxy.hold_request(f"PUT /{w.bucket}/{w.folder}reconciler.json ".encode(), b"If-Match:")
    first, second = w.apply(), w.apply()  # started together
    procs = [first, second]
    poll("the winner to finish its export", held.caught.is_set, timeout=120)
    loser = poll("the other apply to give up", lambda: next((p for p in procs if not p.alive), None), timeout=120)
    winner = second if loser is first else first
    assert winner.alive, winner.text()
    assert loser.finish() == 1, loser.text()
    held.release()
    assert winner.finish() == 0, winner.text()

    # exactly one ran: one run record, one export, one backup of the slot
    runs = w.runs()
    assert len(runs) == 1, runs
    ((run_id, run),) = runs.items()
    assert run["status"] == "ok" and [a["type"] for a in run["actions"]] == ["export", "validate"], run
    assert w.manifests() == [w.folder + ".backup"] and w.folders() == [SLOT]
    assert w.lock() is None
    assert f"(run {run_id})" in "\n".join(winner.out)

    # the other: exit 1, nothing on stdout, one line naming the holder and its lease expiry
    assert loser.out == [], loser.text()
    assert len(loser.err) == 1, loser.text()
    line = loser.err[0]
    assert line.startswith(f"error: another apply holds the lock of s3://{w.bucket}/clickhouse/.reconciler/: "), line
    assert f"run {run_id} on {socket.gethostname()} (pid " in line, line
    m = re.search(r"lease expires (\S+);", line)
    assert m, line
    expires = parse_iso(m.group(1)).timestamp()
    # a lease of the holder while it ran (renewed every LEASE/3): in the future when it was read
    assert parse_iso(run["started_at"]).timestamp() - LEASE < expires <= time.time() + LEASE
    assert f"force-unlock --bucket primary {run_id}" in line


def test_applies_on_two_prefixes_of_one_bucket_run_side_by_side(world: Callable[..., World], proxy: TcpProxy) -> None:
    worlds = [world(prefix=p, endpoint=proxy.endpoint) for p in ("a", "b")]  # two configs, two chdb paths
    holds = [proxy.hold_request(f"PUT /{w.bucket}/{w.folder}reconciler.json ".encode(), b"If-Match:") for w in worlds]
    procs = [w.apply() for w in worlds]  # started together
    for w, hold, proc in zip(worlds, holds, procs, strict=True):
        poll(f"the apply on prefix {w.prefix} to reach the end of its export", hold.caught.is_set, proc)
    # both are in the middle of their runs at this moment, each holding its prefix's lock
    locks = [w.lock() for w in worlds]
    assert all(locks) and locks[0]["lock_id"] != locks[1]["lock_id"], locks  # type: ignore[index]
    for hold in holds:
        hold.release()
    codes = [p.finish() for p in procs]
    assert codes == [0, 0], "\n=====\n".join(p.text() for p in procs)

    spans = []
    for w in worlds:
        assert w.manifests() == [w.folder + ".backup"], w.prefix
        assert w.sidecar()["state"] == "complete"
        assert w.lock() is None
        ((run_id, run),) = w.runs().items()
        assert run["status"] == "ok" and [a["type"] for a in run["actions"]] == ["export", "validate"]
        spans.append((parse_iso(run["started_at"]), parse_iso(run["finished_at"])))
    # neither waited for the other: the two runs overlap in time
    (s1, f1), (s2, f2) = spans
    assert max(s1, s2) < min(f1, f2), f"the runs did not overlap: {spans}"
    assert {k.split("/")[0] for k in worlds[0].keys_at("")} == {"a", "b"}  # each in its own prefix
