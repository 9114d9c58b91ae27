"""ClickHouse's backup-file checksum in pure Python: slow (a few MB/s), but correct.

The same algorithm as the C extension ``reconciler.clickhouse._cityhash102`` (see its source for the
description): CityHash128WithSeed of CityHash v1.0.2, chained over 2048-byte blocks from the
state (0, 0). Used to cross-check the C code in tests, and only as a last resort when the
extension is not built.

The 128-bit loop is written as in CityHash v1.0.2's original source (one 64-byte step, then
``swap(z, x)``, twice per 128 bytes), not as the C file's unrolled form, so that the two
implementations check each other.

CityHash, by Geoff Pike and Jyrki Alakuijala, Copyright (c) 2011 Google, Inc., under the MIT
licence (its full text is in cityhash102.c beside this file).
"""

from __future__ import annotations

import struct

BLOCK_SIZE = 2048

M = 0xFFFFFFFFFFFFFFFF
k0 = 0xC3A5C85C97CB3127
k1 = 0xB492B66FBE98F273
k2 = 0x9AE16A3B2F90404F
k3 = 0xC949D7C7509E6557
K_MUL = 0x9DDFEA08EB382D69

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def _fetch64(s: bytes | memoryview, i: int) -> int:
    return int(_U64.unpack_from(s, i)[0])


def _fetch32(s: bytes | memoryview, i: int) -> int:
    return int(_U32.unpack_from(s, i)[0])


def _rotate(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & M


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash128to64(low: int, high: int) -> int:
    a = ((low ^ high) * K_MUL) & M
    a ^= a >> 47
    b = ((high ^ a) * K_MUL) & M
    b ^= b >> 47
    return (b * K_MUL) & M


def _hash_len16(u: int, v: int) -> int:
    return _hash128to64(u & M, v & M)


def _hash_len0to16(s: bytes | memoryview, i: int, n: int) -> int:
    if n > 8:
        a = _fetch64(s, i)
        b = _fetch64(s, i + n - 8)
        return _hash_len16(a, _rotate((b + n) & M, n)) ^ b
    if n >= 4:
        a = _fetch32(s, i)
        return _hash_len16(n + (a << 3), _fetch32(s, i + n - 4))
    if n > 0:
        a = s[i]
        b = s[i + (n >> 1)]
        c = s[i + n - 1]
        y = a + (b << 8)
        z = (n + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * k2) ^ (z * k3)) & M) * k2) & M
    return k2


def _weak_hash_len32_with_seeds(s: bytes | memoryview, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = struct.unpack_from("<4Q", s, i)
    a = (a + w) & M
    b = _rotate((b + a + z) & M, 21)
    c = a
    a = (a + x + y) & M
    b = (b + _rotate(a, 44)) & M
    return (a + z) & M, (b + c) & M


def _city_murmur(s: bytes | memoryview, i: int, n: int, low: int, high: int) -> tuple[int, int]:
    a, b = low, high
    if n <= 16:
        a = (_shift_mix((a * k1) & M) * k1) & M
        c = (b * k1 + _hash_len0to16(s, i, n)) & M
        d = _shift_mix((a + (_fetch64(s, i) if n >= 8 else c)) & M)
    else:
        c = _hash_len16((_fetch64(s, i + n - 8) + k1) & M, a)
        d = _hash_len16((b + n) & M, (c + _fetch64(s, i + n - 16)) & M)
        a = (a + d) & M
        left = n - 16
        while True:
            a ^= (_shift_mix((_fetch64(s, i) * k1) & M) * k1) & M
            a = (a * k1) & M
            b ^= a
            c ^= (_shift_mix((_fetch64(s, i + 8) * k1) & M) * k1) & M
            c = (c * k1) & M
            d ^= c
            i += 16
            left -= 16
            if left <= 0:
                break
    a = _hash_len16(a, c)
    b = _hash_len16(d, b)
    return a ^ b, _hash_len16(b, a)


def cityhash128_with_seed(data: bytes | bytearray | memoryview, low: int = 0, high: int = 0) -> tuple[int, int]:
    """CityHash v1.0.2 ``CityHash128WithSeed(data, len, uint128(low, high))`` as (low64, high64)."""
    s = memoryview(data).cast("B")
    return _city128(s, 0, len(s), low & M, high & M)


def _city128(s: bytes | memoryview, i: int, n: int, low: int, high: int) -> tuple[int, int]:
    if n < 128:
        return _city_murmur(s, i, n, low, high)
    x, y = low, high
    z = (n * k1) & M
    v0 = (_rotate(y ^ k1, 49) * k1 + _fetch64(s, i)) & M
    v1 = (_rotate(v0, 42) * k1 + _fetch64(s, i + 8)) & M
    w0 = (_rotate((y + z) & M, 35) * k1 + x) & M
    w1 = (_rotate((x + _fetch64(s, i + 88)) & M, 53) * k1) & M
    while True:
        for _ in range(2):
            x = (_rotate((x + y + v0 + _fetch64(s, i + 16)) & M, 37) * k1) & M
            y = (_rotate((y + v1 + _fetch64(s, i + 48)) & M, 42) * k1) & M
            x ^= w1
            y ^= v0
            z = _rotate(z ^ w0, 33)
            v0, v1 = _weak_hash_len32_with_seeds(s, i, (v1 * k1) & M, (x + w0) & M)
            w0, w1 = _weak_hash_len32_with_seeds(s, i + 32, (z + w1) & M, y)
            z, x = x, z
            i += 64
        n -= 128
        if n < 128:
            break
    y = (y + _rotate(w0, 37) * k0 + z) & M
    x = (x + _rotate((v0 + z) & M, 49) * k0) & M
    tail_done = 0
    while tail_done < n:
        tail_done += 32
        y = (_rotate((y - x) & M, 42) * k0 + v1) & M
        w0 = (w0 + _fetch64(s, i + n - tail_done + 16)) & M
        x = (_rotate(x, 49) * k0 + w0) & M
        w0 = (w0 + v0) & M
        v0, v1 = _weak_hash_len32_with_seeds(s, i + n - tail_done, v0, v1)
    x = _hash_len16(x, v0)
    y = _hash_len16(y, w0)
    return (
        (_hash_len16((x + v1) & M, w1) + y) & M,
        _hash_len16((x + w1) & M, (y + v1) & M),
    )


def hex_of(low: int, high: int) -> str:
    """ClickHouse's ``getHexUIntLowercase`` of the UInt128 ``(high << 64) | low``."""
    return f"{high:016x}{low:016x}"


class Hasher:
    """The pure-Python twin of ``reconciler.clickhouse._cityhash102.Hasher``."""

    def __init__(self, data: bytes | bytearray | memoryview | None = None) -> None:
        self._low = 0
        self._high = 0
        self._buf = bytearray()
        self._size = 0
        if data is not None:
            self.update(data)

    @property
    def size(self) -> int:
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if isinstance(data, str):
            raise TypeError("Strings must be encoded before hashing")
        view = memoryview(data).cast("B")
        n = len(view)
        self._size += n
        pos = 0
        if self._buf:
            take = min(BLOCK_SIZE - len(self._buf), n)
            self._buf += view[:take]
            pos = take
            if len(self._buf) < BLOCK_SIZE:
                return
            self._low, self._high = _city128(bytes(self._buf), 0, BLOCK_SIZE, self._low, self._high)
            self._buf.clear()
        while n - pos >= BLOCK_SIZE:
            self._low, self._high = _city128(view, pos, BLOCK_SIZE, self._low, self._high)
            pos += BLOCK_SIZE
        if pos < n:
            self._buf += view[pos:]

    def digest_pair(self) -> tuple[int, int]:
        """(low64, high64)."""
        if self._buf:
            return _city128(bytes(self._buf), 0, len(self._buf), self._low, self._high)
        return self._low, self._high

    def hexdigest(self) -> str:
        return hex_of(*self.digest_pair())

    def copy(self) -> Hasher:
        other = Hasher()
        other._low, other._high, other._size = self._low, self._high, self._size
        other._buf = bytearray(self._buf)
        return other


def checksum(data: bytes | bytearray | memoryview) -> str:
    h = Hasher()
    h.update(data)
    return h.hexdigest()
