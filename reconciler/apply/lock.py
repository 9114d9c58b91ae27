"""The apply lock: one apply at a time per bucket prefix (docs/commands.md).

Created only if absent (conditional create), holding run id, host, start and lease expiry.
A live apply renews its lease; a lock whose lease has expired may be taken over, by a
conditional replace on the etag that was read, so two takers cannot both win. An apply whose
renewals keep failing (a store outage) past its lease counts its lock as lost from then on: it
starts nothing new, and what it started is adopted by the next apply.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from ..bucket import layout
from ..bucket.records import encode_lock, read_lock
from ..errors import LockHeld, PreconditionFailed, ReconcilerError
from ..model import UTC, Bucket, LockInfo, iso
from ..stores.base import Store
from .context import ApplyContext

Clock = Callable[[], datetime]


def _wall() -> datetime:
    return datetime.now(UTC)


class BucketLock:
    def __init__(self, store: Store, bucket: Bucket, run_id: str, lease: timedelta, clock: Clock = _wall) -> None:
        self.store = store
        self.bucket = bucket
        self.key = layout.lock_key(bucket)
        self.run_id = run_id
        self.lease = lease
        self.clock = clock
        self.info: LockInfo | None = None
        self.taken_over: LockInfo | None = None
        self.lost = False
        self._lost_why: str | None = None
        #: the last renewal failed (a store outage); a renewal still under way is not a failure
        self.renewal_failed = False
        self._mutex = threading.Lock()

    def acquire(self) -> LockInfo:
        now = self.clock()
        mine = LockInfo(
            lock_id=self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            lease_expires_at=now + self.lease,
        )
        try:
            etag = self.store.create(self.key, encode_lock(mine))
        except PreconditionFailed:
            held = read_lock(self.store, self.key)
            if held is None:  # released between our attempt and the read: try once more
                etag = self._create_or_raise(mine)
            elif held.lock_id == self.run_id:
                # our own create got through and its reply was lost; the retry found it
                etag = held.etag
            elif held.lease_expires_at > now:
                raise LockHeld(
                    f"another apply holds the lock of {self.bucket.url(layout.control_prefix(self.bucket))}: "
                    f"run {held.lock_id} on {held.host} (pid {held.pid}), started {iso(held.started_at)}, "
                    f"lease expires {iso(held.lease_expires_at)}; if it is dead, wait for the lease or run "
                    f"force-unlock --bucket {self.bucket.name} {held.lock_id}",
                    where=self.bucket.name,
                ) from None
            else:
                try:
                    etag = self.store.replace(self.key, encode_lock(mine), held.etag)
                except PreconditionFailed:
                    raise LockHeld(
                        f"another apply took over the expired lock of bucket {self.bucket.name} at the same moment",
                        where=self.bucket.name,
                    ) from None
                self.taken_over = held
        self.info = LockInfo(**{**mine.__dict__, "etag": etag})
        return self.info

    def _create_or_raise(self, mine: LockInfo) -> str:
        try:
            return self.store.create(self.key, encode_lock(mine))
        except PreconditionFailed:
            raise LockHeld(
                f"another apply holds the lock of bucket {self.bucket.name}", where=self.bucket.name
            ) from None

    def lost_because(self) -> str | None:
        """Why this apply may no longer count on its lock (taken over, or its lease ran out while
        renewals failed); None while it holds it. Once lost, it stays lost for this apply (a late
        renewal that got through does not undo what others may have done meanwhile)."""
        if self.lost:
            return self._lost_why or f"the apply lock of bucket {self.bucket.name} was taken over by another apply"
        info = self.info
        if info is not None and self.renewal_failed and self.clock() >= info.lease_expires_at:
            self._lost_why = (
                f"the lease of the apply lock of bucket {self.bucket.name} ran out at {iso(info.lease_expires_at)} "
                "while its renewals failed"
            )
            self.lost = True
            return self._lost_why
        return None

    def renew(self) -> None:
        """Extend the lease; if the lock was taken from us, say so and stop renewing."""
        with self._mutex:
            if self.info is None or self.lost:
                return
            renewed = LockInfo(**{**self.info.__dict__, "lease_expires_at": self.clock() + self.lease})
            try:
                etag = self.store.replace(self.key, encode_lock(renewed), self.info.etag)
            except PreconditionFailed:
                now_held = read_lock(self.store, self.key)
                if now_held is None or now_held.lock_id != self.run_id:
                    self.lost = True
                    return
                etag = now_held.etag  # our own renewal got through and its reply was lost
                renewed = LockInfo(**{**renewed.__dict__, "lease_expires_at": now_held.lease_expires_at})
            self.info = LockInfo(**{**renewed.__dict__, "etag": etag})
            self.renewal_failed = False

    def release(self) -> None:
        with self._mutex:
            if self.info is None or self.lost:
                return
            # if someone took it over, or the store is down, the lease expires on its own
            with contextlib.suppress(PreconditionFailed, ReconcilerError):
                self.store.delete(self.key, etag=self.info.etag)
            self.info = None


DEFAULT_LEASE = timedelta(minutes=10)


class LeaseKeeper:
    """Renews the leases of held locks in the background while an apply runs."""

    def __init__(self, locks: list[BucketLock], every: float) -> None:
        self.locks = locks
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for lock in self.locks:
                # a passing store fault: try again at the next tick, before the lease ends; if
                # they keep failing until it ends, the lock counts as lost (lost_because)
                try:
                    lock.renew()
                except ReconcilerError:
                    lock.renewal_failed = True
                    lock.lost_because()  # decided now: a renewal that gets through later undoes nothing


def force_unlock(store: Store, bucket: Bucket, lock_id: str) -> LockInfo:
    """Remove the lock if it is the one named (as Terraform's force-unlock takes the lock id)."""
    key = layout.lock_key(bucket)
    held = read_lock(store, key)
    if held is None:
        raise ReconcilerError(f"bucket {bucket.name} has no apply lock", where=bucket.url(key))
    if held.lock_id != lock_id:
        raise ReconcilerError(
            f"the lock of bucket {bucket.name} is held by {held.lock_id}, not {lock_id}; nothing removed",
            where=bucket.url(key),
        )
    try:
        store.delete(key, etag=held.etag)
    except PreconditionFailed:
        raise ReconcilerError(f"the lock of bucket {bucket.name} changed while removing it; nothing removed") from None
    return held


@contextmanager
def hold_locks(
    ctx: ApplyContext, buckets: Iterable[str], lease: timedelta = DEFAULT_LEASE
) -> Iterator[list[BucketLock]]:
    """Take the lock of every bucket prefix the run touches (in a fixed order, so that two
    applies over overlapping buckets cannot deadlock), renew them while the run lasts, and
    release them at the end, also on error."""
    locks: list[BucketLock] = []
    seen: set[tuple[str, str, str, str]] = set()
    try:
        for name in sorted(buckets):
            bucket = ctx.config.buckets[name]
            if layout.lock_scope(bucket) in seen:
                continue
            seen.add(layout.lock_scope(bucket))
            lock = BucketLock(ctx.conns.store(name), bucket, ctx.run_id, lease, ctx.clock)
            lock.acquire()
            locks.append(lock)
            if lock.taken_over:
                t = lock.taken_over
                ctx.console.warn(
                    f"took over the lock of bucket {name} from run {t.lock_id} on {t.host}, "
                    f"whose lease expired at {iso(t.lease_expires_at)}"
                )
        with LeaseKeeper(locks, every=max(1.0, lease.total_seconds() / 3)):
            yield locks
    finally:
        for lock in reversed(locks):
            lock.release()
