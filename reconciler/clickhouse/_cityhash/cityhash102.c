/*
 * ClickHouse's backup-file checksum, as the CPython extension module ``reconciler._cityhash102``.
 *
 * ClickHouse records in a backup's manifest (``.backup``) the checksum of each file: CityHash128
 * version 1.0.2 (the version ClickHouse vendors as contrib/cityhash102, namespace
 * CityHash_v1_0_2; later CityHash versions give different values) chained over 2048-byte blocks,
 * as ClickHouse's HashingWriteBuffer / HashingReadBuffer compute it:
 *
 *     state = (low 0, high 0)
 *     for each full 2048-byte block:  state = CityHash128WithSeed(block, 2048, state)
 *     a final partial block:          state = CityHash128WithSeed(tail, len(tail), state)
 *     the checksum is the UInt128 (high << 64) | low, printed as 32 lowercase hex digits
 *
 * A file of exactly N * 2048 bytes has no final partial block; an empty file has the state
 * (0, 0) (ClickHouse writes no <checksum> for it).
 *
 * The hash below is a C99 transcription of CityHash v1.0.2's CityHash128WithSeed, including its
 * helpers CityMurmur, HashLen0to16, Hash128to64 and WeakHashLen32WithSeeds; the 128-byte loop is
 * written unrolled as in ClickHouse's copy (the pure-Python twin, reconciler/_cityhash/pure.py,
 * keeps the original loop with swap(z, x), and the tests check that both agree). Words are read
 * little-endian (Fetch64 / Fetch32 byte-swap on a big-endian machine), so the result does not
 * depend on the host.
 *
 * CityHash, by Geoff Pike and Jyrki Alakuijala. Copyright (c) 2011 Google, Inc.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 * and associated documentation files (the "Software"), to deal in the Software without
 * restriction, including without limitation the rights to use, copy, modify, merge, publish,
 * distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 * Software is furnished to do so, subject to the following conditions: The above copyright notice
 * and this permission notice shall be included in all copies or substantial portions of the
 * Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 * INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE
 * AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 * DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
 * OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
 *
 * The module releases the GIL while it hashes more than a few kilobytes, so that several files
 * can be verified in parallel threads. A Hasher has a lock of its own, like hashlib's objects.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pythread.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BLOCK_SIZE 2048
/* below this many bytes the GIL is kept: releasing it costs more than the hash */
#define GIL_MINSIZE 8192

typedef struct {
    uint64_t low;
    uint64_t high;
} u128;

/* ---- CityHash v1.0.2 --------------------------------------------------------------------- */

static const uint64_t k0 = 0xc3a5c85c97cb3127ULL;
static const uint64_t k1 = 0xb492b66fbe98f273ULL;
static const uint64_t k2 = 0x9ae16a3b2f90404fULL;
static const uint64_t k3 = 0xc949d7c7509e6557ULL;

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CH_BIG_ENDIAN 1
#elif defined(__BIG_ENDIAN__) || defined(_BIG_ENDIAN)
#define CH_BIG_ENDIAN 1
#else
#define CH_BIG_ENDIAN 0
#endif

static inline uint64_t bswap64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_bswap64(x);
#else
    return ((x & 0xff00000000000000ULL) >> 56) | ((x & 0x00ff000000000000ULL) >> 40) |
           ((x & 0x0000ff0000000000ULL) >> 24) | ((x & 0x000000ff00000000ULL) >> 8) |
           ((x & 0x00000000ff000000ULL) << 8) | ((x & 0x0000000000ff0000ULL) << 24) |
           ((x & 0x000000000000ff00ULL) << 40) | ((x & 0x00000000000000ffULL) << 56);
#endif
}

static inline uint32_t bswap32(uint32_t x) {
    return ((x & 0xff000000U) >> 24) | ((x & 0x00ff0000U) >> 8) | ((x & 0x0000ff00U) << 8) | ((x & 0x000000ffU) << 24);
}

static inline uint64_t Fetch64(const unsigned char *p) {
    uint64_t r;
    memcpy(&r, p, sizeof(r));
#if CH_BIG_ENDIAN
    r = bswap64(r);
#endif
    return r;
}

static inline uint32_t Fetch32(const unsigned char *p) {
    uint32_t r;
    memcpy(&r, p, sizeof(r));
#if CH_BIG_ENDIAN
    r = bswap32(r);
#else
    (void)bswap32;
#endif
    return r;
}

/* right rotation; every caller passes 0 < shift < 64 */
static inline uint64_t Rotate(uint64_t v, int shift) {
    return (v >> shift) | (v << (64 - shift));
}

static inline uint64_t ShiftMix(uint64_t v) {
    return v ^ (v >> 47);
}

static inline uint64_t Hash128to64(uint64_t low, uint64_t high) {
    const uint64_t kMul = 0x9ddfea08eb382d69ULL;
    uint64_t a = (low ^ high) * kMul;
    a ^= (a >> 47);
    uint64_t b = (high ^ a) * kMul;
    b ^= (b >> 47);
    b *= kMul;
    return b;
}

/* HashLen16(u, v) = Hash128to64(uint128(u, v)): u is the low half, v the high half */
static inline uint64_t HashLen16(uint64_t u, uint64_t v) {
    return Hash128to64(u, v);
}

static uint64_t HashLen0to16(const unsigned char *s, size_t len) {
    if (len > 8) {
        uint64_t a = Fetch64(s);
        uint64_t b = Fetch64(s + len - 8);
        return HashLen16(a, Rotate(b + len, (int)len)) ^ b;
    }
    if (len >= 4) {
        uint64_t a = Fetch32(s);
        return HashLen16(len + (a << 3), Fetch32(s + len - 4));
    }
    if (len > 0) {
        uint8_t a = s[0];
        uint8_t b = s[len >> 1];
        uint8_t c = s[len - 1];
        uint32_t y = (uint32_t)a + ((uint32_t)b << 8);
        uint32_t z = (uint32_t)len + ((uint32_t)c << 2);
        return ShiftMix((uint64_t)y * k2 ^ (uint64_t)z * k3) * k2;
    }
    return k2;
}

/* the pair (first, second) of CityHash's WeakHashLen32WithSeeds */
typedef struct {
    uint64_t first;
    uint64_t second;
} pair64;

static inline pair64 WeakHashLen32WithSeeds6(uint64_t w, uint64_t x, uint64_t y, uint64_t z, uint64_t a, uint64_t b) {
    pair64 r;
    a += w;
    b = Rotate(b + a + z, 21);
    uint64_t c = a;
    a += x;
    a += y;
    b += Rotate(a, 44);
    r.first = a + z;
    r.second = b + c;
    return r;
}

static inline pair64 WeakHashLen32WithSeeds(const unsigned char *s, uint64_t a, uint64_t b) {
    return WeakHashLen32WithSeeds6(Fetch64(s), Fetch64(s + 8), Fetch64(s + 16), Fetch64(s + 24), a, b);
}

/* CityMurmur: CityHash128WithSeed for len < 128 */
static u128 CityMurmur(const unsigned char *s, size_t len, u128 seed) {
    uint64_t a = seed.low;
    uint64_t b = seed.high;
    uint64_t c, d;
    if (len <= 16) {
        a = ShiftMix(a * k1) * k1;
        c = b * k1 + HashLen0to16(s, len);
        d = ShiftMix(a + (len >= 8 ? Fetch64(s) : c));
    } else {
        /* signed l = len - 16 > 0; the loop runs while l > 0, 16 bytes at a time */
        ptrdiff_t l = (ptrdiff_t)len - 16;
        c = HashLen16(Fetch64(s + len - 8) + k1, a);
        d = HashLen16(b + len, c + Fetch64(s + len - 16));
        a += d;
        do {
            a ^= ShiftMix(Fetch64(s) * k1) * k1;
            a *= k1;
            b ^= a;
            c ^= ShiftMix(Fetch64(s + 8) * k1) * k1;
            c *= k1;
            d ^= c;
            s += 16;
            l -= 16;
        } while (l > 0);
    }
    a = HashLen16(a, c);
    b = HashLen16(d, b);
    u128 r;
    r.low = a ^ b;
    r.high = HashLen16(b, a);
    return r;
}

static u128 CityHash128WithSeed(const unsigned char *s, size_t len, u128 seed) {
    if (len < 128) {
        return CityMurmur(s, len, seed);
    }

    /* len >= 128: 56 bytes of state v, w, x, y, z */
    pair64 v, w;
    uint64_t x = seed.low;
    uint64_t y = seed.high;
    uint64_t z = len * k1;
    v.first = Rotate(y ^ k1, 49) * k1 + Fetch64(s);
    v.second = Rotate(v.first, 42) * k1 + Fetch64(s + 8);
    w.first = Rotate(y + z, 35) * k1 + x;
    w.second = Rotate(x + Fetch64(s + 88), 53) * k1;

    /* CityHash64's inner loop, twice per 128 bytes (the second half with x and z swapped) */
    do {
        x = Rotate(x + y + v.first + Fetch64(s + 16), 37) * k1;
        y = Rotate(y + v.second + Fetch64(s + 48), 42) * k1;
        x ^= w.second;
        y ^= v.first;
        z = Rotate(z ^ w.first, 33);
        v = WeakHashLen32WithSeeds(s, v.second * k1, x + w.first);
        w = WeakHashLen32WithSeeds(s + 32, z + w.second, y);
        s += 64;

        z = Rotate(z + y + v.first + Fetch64(s + 16), 37) * k1;
        y = Rotate(y + v.second + Fetch64(s + 48), 42) * k1;
        z ^= w.second;
        y ^= v.first;
        x = Rotate(x ^ w.first, 33);
        v = WeakHashLen32WithSeeds(s, v.second * k1, z + w.first);
        w = WeakHashLen32WithSeeds(s + 32, x + w.second, y);
        s += 64;
        len -= 128;
    } while (len >= 128);

    y += Rotate(w.first, 37) * k0 + z;
    x += Rotate(v.first + z, 49) * k0;
    /* 0 < len < 128: up to 4 chunks of 32 bytes from the end (reaching back into hashed bytes) */
    for (size_t tail_done = 0; tail_done < len;) {
        tail_done += 32;
        y = Rotate(y - x, 42) * k0 + v.second;
        w.first += Fetch64(s + len - tail_done + 16);
        x = Rotate(x, 49) * k0 + w.first;
        w.first += v.first;
        v = WeakHashLen32WithSeeds(s + len - tail_done, v.first, v.second);
    }
    x = HashLen16(x, v.first);
    y = HashLen16(y, w.first);
    u128 r;
    r.low = HashLen16(x + v.second, w.second) + y;
    r.high = HashLen16(x + w.second, y + v.second);
    return r;
}

/* ---- the chained checksum ---------------------------------------------------------------- */

typedef struct {
    u128 state;
    size_t buffered;                /* bytes in block, always < BLOCK_SIZE between calls */
    unsigned long long total;       /* bytes hashed so far */
    unsigned char block[BLOCK_SIZE];
} chain_t;

static void chain_init(chain_t *c) {
    c->state.low = 0;
    c->state.high = 0;
    c->buffered = 0;
    c->total = 0;
}

/* exactly ClickHouse's IHashingBuffer::calculateHash */
static void chain_update(chain_t *c, const unsigned char *data, size_t len) {
    c->total += len;
    if (c->buffered + len < BLOCK_SIZE) {
        if (len) {
            memcpy(c->block + c->buffered, data, len);
            c->buffered += len;
        }
        return;
    }
    if (c->buffered) {
        size_t n = BLOCK_SIZE - c->buffered;
        memcpy(c->block + c->buffered, data, n);
        c->state = CityHash128WithSeed(c->block, BLOCK_SIZE, c->state);
        data += n;
        len -= n;
        c->buffered = 0;
    }
    while (len >= BLOCK_SIZE) {
        c->state = CityHash128WithSeed(data, BLOCK_SIZE, c->state);
        data += BLOCK_SIZE;
        len -= BLOCK_SIZE;
    }
    if (len) {
        memcpy(c->block, data, len);
        c->buffered = len;
    }
}

/* IHashingBuffer::getHash: the state does not change */
static u128 chain_final(const chain_t *c) {
    if (c->buffered)
        return CityHash128WithSeed(c->block, c->buffered, c->state);
    return c->state;
}

static PyObject *hex_of(u128 h) {
    static const char digits[] = "0123456789abcdef";
    char out[32];
    for (int i = 0; i < 16; i++) {
        out[i] = digits[(h.high >> (60 - 4 * i)) & 0xf];
        out[16 + i] = digits[(h.low >> (60 - 4 * i)) & 0xf];
    }
    return PyUnicode_FromStringAndSize(out, 32);
}

static PyObject *pair_of(u128 h) {
    return Py_BuildValue("(KK)", (unsigned long long)h.low, (unsigned long long)h.high);
}

/* ---- class Hasher ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock; /* made on the first large update, as hashlib does */
    chain_t chain;
} HasherObject;

static PyTypeObject HasherType;

/* take the hasher's lock (if it has one); wait for it with the GIL released */
#define ENTER_HASHER(self)                                               \
    do {                                                                 \
        if ((self)->lock && !PyThread_acquire_lock((self)->lock, NOWAIT_LOCK)) { \
            Py_BEGIN_ALLOW_THREADS                                       \
            PyThread_acquire_lock((self)->lock, WAIT_LOCK);              \
            Py_END_ALLOW_THREADS                                         \
        }                                                                \
    } while (0)

#define LEAVE_HASHER(self)                        \
    do {                                          \
        if ((self)->lock)                         \
            PyThread_release_lock((self)->lock);  \
    } while (0)

static int hasher_update_buffer(HasherObject *self, PyObject *obj) {
    Py_buffer view;
    if (PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "Strings must be encoded before hashing");
        return -1;
    }
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if (self->lock == NULL && view.len >= GIL_MINSIZE)
        self->lock = PyThread_allocate_lock(); /* NULL on failure: then hash with the GIL held */
    if (self->lock != NULL && view.len >= GIL_MINSIZE) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        chain_update(&self->chain, (const unsigned char *)view.buf, (size_t)view.len);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    } else {
        ENTER_HASHER(self);
        chain_update(&self->chain, (const unsigned char *)view.buf, (size_t)view.len);
        LEAVE_HASHER(self);
    }
    PyBuffer_Release(&view);
    return 0;
}

static PyObject *Hasher_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    HasherObject *self;
    (void)args;
    (void)kwds;
    self = (HasherObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->lock = NULL;
    chain_init(&self->chain);
    return (PyObject *)self;
}

static int Hasher_init(HasherObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", NULL};
    PyObject *data = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Hasher", kwlist, &data))
        return -1;
    ENTER_HASHER(self);
    chain_init(&self->chain);
    LEAVE_HASHER(self);
    if (data != NULL && data != Py_None)
        return hasher_update_buffer(self, data);
    return 0;
}

static void Hasher_dealloc(HasherObject *self) {
    if (self->lock)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Hasher_update(HasherObject *self, PyObject *data) {
    if (hasher_update_buffer(self, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hasher_hexdigest(HasherObject *self, PyObject *Py_UNUSED(ignored)) {
    u128 h;
    ENTER_HASHER(self);
    h = chain_final(&self->chain);
    LEAVE_HASHER(self);
    return hex_of(h);
}

static PyObject *Hasher_digest_pair(HasherObject *self, PyObject *Py_UNUSED(ignored)) {
    u128 h;
    ENTER_HASHER(self);
    h = chain_final(&self->chain);
    LEAVE_HASHER(self);
    return pair_of(h);
}

static PyObject *Hasher_copy(HasherObject *self, PyObject *Py_UNUSED(ignored)) {
    HasherObject *other = (HasherObject *)Hasher_new(Py_TYPE(self), NULL, NULL);
    if (other == NULL)
        return NULL;
    ENTER_HASHER(self);
    other->chain = self->chain;
    LEAVE_HASHER(self);
    return (PyObject *)other;
}

static PyObject *Hasher_get_size(HasherObject *self, void *closure) {
    unsigned long long total;
    (void)closure;
    ENTER_HASHER(self);
    total = self->chain.total;
    LEAVE_HASHER(self);
    return PyLong_FromUnsignedLongLong(total);
}

static PyMethodDef Hasher_methods[] = {
    {"update", (PyCFunction)Hasher_update, METH_O,
     "update(data)\n--\n\nAdd bytes (any contiguous buffer: bytes, bytearray, memoryview)."},
    {"hexdigest", (PyCFunction)Hasher_hexdigest, METH_NOARGS,
     "hexdigest()\n--\n\nThe checksum of the bytes so far, as ClickHouse writes it: 32 lowercase hex digits, "
     "the high 64 bits first. The hasher can go on being updated."},
    {"digest_pair", (PyCFunction)Hasher_digest_pair, METH_NOARGS,
     "digest_pair()\n--\n\nThe checksum as (low64, high64), CityHash's uint128 order."},
    {"copy", (PyCFunction)Hasher_copy, METH_NOARGS, "copy()\n--\n\nA hasher in the same state."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Hasher_getset[] = {
    {"size", (getter)Hasher_get_size, NULL, "bytes hashed so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HasherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "reconciler._cityhash102.Hasher",
    .tp_basicsize = sizeof(HasherObject),
    .tp_itemsize = 0,
    .tp_dealloc = (destructor)Hasher_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Hasher(data=None)\n--\n\n"
              "ClickHouse's backup-file checksum (CityHash128 v1.0.2 chained over 2048-byte blocks), incremental.",
    .tp_methods = Hasher_methods,
    .tp_getset = Hasher_getset,
    .tp_init = (initproc)Hasher_init,
    .tp_new = Hasher_new,
};

/* ---- module functions ---------------------------------------------------------------------- */

static PyObject *mod_checksum(PyObject *module, PyObject *data) {
    Py_buffer view;
    chain_t *c;
    u128 h;
    (void)module;
    if (PyUnicode_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "Strings must be encoded before hashing");
        return NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    c = (chain_t *)PyMem_RawMalloc(sizeof(chain_t));
    if (c == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    chain_init(c);
    if (view.len >= GIL_MINSIZE) {
        Py_BEGIN_ALLOW_THREADS
        chain_update(c, (const unsigned char *)view.buf, (size_t)view.len);
        h = chain_final(c);
        Py_END_ALLOW_THREADS
    } else {
        chain_update(c, (const unsigned char *)view.buf, (size_t)view.len);
        h = chain_final(c);
    }
    PyMem_RawFree(c);
    PyBuffer_Release(&view);
    return hex_of(h);
}

static PyObject *mod_cityhash128_with_seed(PyObject *module, PyObject *args) {
    Py_buffer view;
    unsigned long long low, high;
    u128 seed, h;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*KK:cityhash128_with_seed", &view, &low, &high))
        return NULL;
    seed.low = low;
    seed.high = high;
    h = CityHash128WithSeed((const unsigned char *)view.buf, (size_t)view.len, seed);
    PyBuffer_Release(&view);
    return pair_of(h);
}

static PyMethodDef module_methods[] = {
    {"checksum", (PyCFunction)mod_checksum, METH_O,
     "checksum(data)\n--\n\nClickHouse's backup-file checksum of data, as 32 lowercase hex digits."},
    {"cityhash128_with_seed", (PyCFunction)mod_cityhash128_with_seed, METH_VARARGS,
     "cityhash128_with_seed(data, seed_low, seed_high)\n--\n\n"
     "CityHash v1.0.2 CityHash128WithSeed of data (one call, no chaining) as (low64, high64)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reconciler._cityhash102",
    .m_doc = "ClickHouse's backup-file checksum: CityHash128 v1.0.2 chained over 2048-byte blocks.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__cityhash102(void) {
    PyObject *m;
    if (PyType_Ready(&HasherType) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&HasherType);
    if (PyModule_AddObject(m, "Hasher", (PyObject *)&HasherType) < 0) {
        Py_DECREF(&HasherType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "BLOCK_SIZE", BLOCK_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
