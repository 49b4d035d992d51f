/*
 * CPython entry points for rangecoder.c's channel functions (stable ABI, 3.11+).
 *
 * ctypes costs a few microseconds per call in argument conversion, more than
 * coding a short channel takes. These two functions take the arrays' buffers
 * directly, so a call costs what the coding does plus about a microsecond:
 *
 *   encode_channels(pmfs, symbols)       -> bytearray of uint32 words, or None
 *   decode_channels(pmfs, counts, words) -> numpy int32 array, every channel's
 *                                           symbols one after the other, or None
 *
 * None means "not for this path": an array that is not 1-D, C-contiguous,
 * float64 (pmfs) / int32 (symbols) / uint32 (words), counts that are not
 * non-negative integers, input the coder refuses, or memory it could not get. The caller then takes the checked path, which names the problem.
 * Optional: where this module does not build, sc2deploy uses ctypes.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030B0000
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int64_t s2c_encode_channels(const unsigned char *in, double *scratch, uint32_t *out);
int64_t s2c_decode_channels(const unsigned char *in, double *scratch, int32_t *out);

#define STACK_TABLE 64 /* as in rangecoder.c: tables up to this size need no scratch */

/* A struct format of one native item: "d", "=d", "@d", or "<d" on a little-endian machine. */
static int format_is(const char *format, char code)
{
    const uint16_t one = 1;
    if (format == NULL) return code == 'B';
    if (format[0] == '=' || format[0] == '@' || (format[0] == '<' && *(const char *)&one))
        format++;
    return format[0] == code && format[1] == '\0';
}

/* The buffers of a sequence of 1-D arrays of one format; returns 0, or -1 (not ours). */
static int get_buffers(PyObject *seq, Py_ssize_t k, char code, Py_ssize_t itemsize,
                       Py_buffer *views, Py_ssize_t *got)
{
    Py_ssize_t i;
    *got = 0;
    for (i = 0; i < k; i++) {
        PyObject *item = PySequence_GetItem(seq, i);
        int ok;
        if (item == NULL) return -1;
        ok = PyObject_GetBuffer(item, &views[i], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0;
        Py_DECREF(item);
        if (!ok) return -1;
        (*got)++;
        if (views[i].ndim != 1 || views[i].itemsize != itemsize
            || !format_is(views[i].format, code))
            return -1;
    }
    return 0;
}

static void release(Py_buffer *views, Py_ssize_t got)
{
    Py_ssize_t i;
    for (i = 0; i < got; i++) PyBuffer_Release(&views[i]);
}

/* int32 format codes: 'i' everywhere numpy runs; 'l' where long is 4 bytes. */
static int is_int32(Py_buffer *v)
{
    return v->ndim == 1 && v->itemsize == 4
        && (format_is(v->format, 'i') || format_is(v->format, 'l'));
}

static int is_uint32(Py_buffer *v)
{
    return v->ndim == 1 && v->itemsize == 4
        && (format_is(v->format, 'I') || format_is(v->format, 'L'));
}

/*
 * The packed input of s2c_{en,de}code_channels: int64 k, n[k], m[k], extra,
 * then the pmfs and the tail (symbols or words), each copied as it is.
 */
static unsigned char *pack(Py_buffer *pmfs, const int64_t *counts, Py_ssize_t k,
                           const int64_t *extra, Py_buffer *tail, Py_ssize_t n_tail,
                           int64_t *longest)
{
    size_t size = 8 * (size_t)(1 + 2 * k + (extra != NULL)), pos;
    Py_ssize_t i;
    unsigned char *buf;
    int64_t value;
    *longest = 0;
    for (i = 0; i < k; i++) size += (size_t)pmfs[i].len;
    for (i = 0; i < n_tail; i++) size += (size_t)tail[i].len;
    buf = malloc(size ? size : 1);
    if (buf == NULL) return NULL;
    value = k;
    memcpy(buf, &value, 8);
    for (i = 0; i < k; i++) {
        value = pmfs[i].len / 8;
        if (value > *longest) *longest = value;
        memcpy(buf + 8 * (1 + i), &value, 8);
        memcpy(buf + 8 * (1 + k + i), &counts[i], 8);
    }
    pos = 8 * (size_t)(1 + 2 * k);
    if (extra != NULL) { memcpy(buf + pos, extra, 8); pos += 8; }
    for (i = 0; i < k; i++) { memcpy(buf + pos, pmfs[i].buf, (size_t)pmfs[i].len); pos += (size_t)pmfs[i].len; }
    for (i = 0; i < n_tail; i++) { memcpy(buf + pos, tail[i].buf, (size_t)tail[i].len); pos += (size_t)tail[i].len; }
    return buf;
}

/* 2 max(n) + 2 doubles where a table is larger than the stack's (else none). */
static double *scratch_for(int64_t longest, int *failed)
{
    double *scratch = NULL;
    *failed = 0;
    if (longest > STACK_TABLE) {
        scratch = malloc(sizeof(double) * (size_t)(2 * longest + 2));
        *failed = scratch == NULL;
    }
    return scratch;
}

static PyObject *encode_channels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t k, got_p = 0, got_s = 0, i;
    Py_buffer *views = NULL;
    int64_t *counts = NULL, longest = 0, total = 0, n_words = -1;
    unsigned char *packed = NULL;
    double *scratch = NULL;
    uint32_t *out = NULL;
    PyObject *result = NULL;
    int failed = 0;
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_channels(pmfs, symbols): 2 arguments");
        return NULL;
    }
    k = PySequence_Size(args[0]);
    if (k < 0 || PySequence_Size(args[1]) != k) { PyErr_Clear(); Py_RETURN_NONE; }
    views = calloc((size_t)(2 * k + 1), sizeof(Py_buffer));
    counts = malloc(sizeof(int64_t) * (size_t)(k + 1));
    if (views == NULL || counts == NULL) goto done;
    if (get_buffers(args[0], k, 'd', 8, views, &got_p)) goto done;
    for (i = 0; i < k; i++) {
        PyObject *item = PySequence_GetItem(args[1], i);
        int ok;
        if (item == NULL) goto done;
        ok = PyObject_GetBuffer(item, &views[k + i], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0;
        Py_DECREF(item);
        if (!ok) goto done;
        got_s++;
        if (!is_int32(&views[k + i])) goto done;
        counts[i] = views[k + i].len / 4;
        total += counts[i];
    }
    packed = pack(views, counts, k, NULL, views + k, k, &longest);
    scratch = scratch_for(longest, &failed);
    out = malloc(sizeof(uint32_t) * (size_t)(total + 3));
    if (packed == NULL || failed || out == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    n_words = s2c_encode_channels(packed, scratch, out);
    Py_END_ALLOW_THREADS
    if (n_words >= 0)
        result = PyByteArray_FromStringAndSize((const char *)out, (Py_ssize_t)(4 * n_words));
done:
    release(views, got_p);
    if (views != NULL) release(views + k, got_s);
    free(views); free(counts); free(packed); free(scratch); free(out);
    if (result == NULL) { PyErr_Clear(); Py_RETURN_NONE; } /* out of memory too */
    return result;
}

/* numpy.empty(n, numpy.int32), numpy imported at the first call (a new reference, or NULL). */
static PyObject *empty_int32(int64_t n)
{
    static PyObject *empty = NULL, *int32 = NULL;
    PyObject *size, *out;
    if (empty == NULL) {
        PyObject *numpy = PyImport_ImportModule("numpy");
        if (numpy == NULL) return NULL;
        empty = PyObject_GetAttrString(numpy, "empty");
        int32 = PyObject_GetAttrString(numpy, "int32");
        Py_DECREF(numpy);
        if (empty == NULL || int32 == NULL) { Py_CLEAR(empty); Py_CLEAR(int32); return NULL; }
    }
    size = PyLong_FromLongLong(n);
    if (size == NULL) return NULL;
    out = PyObject_CallFunctionObjArgs(empty, size, int32, NULL);
    Py_DECREF(size);
    return out;
}

static PyObject *decode_channels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t k, got_p = 0, i;
    Py_buffer *views = NULL, words, out;
    int have_words = 0, have_out = 0, failed = 0;
    int64_t *counts = NULL, longest = 0, total = 0, n_words, status = -1;
    unsigned char *packed = NULL;
    double *scratch = NULL;
    PyObject *result = NULL;
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_channels(pmfs, counts, words): 3 arguments");
        return NULL;
    }
    k = PySequence_Size(args[0]);
    if (k < 0 || PySequence_Size(args[1]) != k) { PyErr_Clear(); Py_RETURN_NONE; }
    views = calloc((size_t)(k + 1), sizeof(Py_buffer));
    counts = malloc(sizeof(int64_t) * (size_t)(k + 1));
    if (views == NULL || counts == NULL) goto done;
    for (i = 0; i < k; i++) {
        PyObject *item = PySequence_GetItem(args[1], i);
        long long c;
        if (item == NULL) goto done;
        c = PyLong_AsLongLong(item); /* ints and numpy integers (__index__) */
        Py_DECREF(item);
        if (c == -1 && PyErr_Occurred()) goto done;
        if (c < 0 || c > ((int64_t)1 << 40)) goto done; /* the checked path says why */
        counts[i] = c;
        total += c;
    }
    if (get_buffers(args[0], k, 'd', 8, views, &got_p)) goto done;
    if (PyObject_GetBuffer(args[2], &words, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)) goto done;
    have_words = 1;
    if (!is_uint32(&words)) goto done;
    n_words = words.len / 4;
    packed = pack(views, counts, k, &n_words, &words, 1, &longest);
    scratch = scratch_for(longest, &failed);
    if (packed == NULL || failed) goto done;
    result = empty_int32(total);
    if (result == NULL || PyObject_GetBuffer(result, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE))
        goto done;
    have_out = 1;
    Py_BEGIN_ALLOW_THREADS
    status = s2c_decode_channels(packed, scratch, (int32_t *)out.buf);
    Py_END_ALLOW_THREADS
done:
    release(views, got_p);
    if (have_words) PyBuffer_Release(&words);
    if (have_out) PyBuffer_Release(&out);
    free(views); free(counts); free(packed); free(scratch);
    if (status != 0) Py_CLEAR(result);
    PyErr_Clear(); /* every failure: the checked path takes the input and names it */
    if (result == NULL) Py_RETURN_NONE;
    return result;
}

static PyMethodDef methods[] = {
    {"encode_channels", (PyCFunction)(void (*)(void))encode_channels, METH_FASTCALL,
     "encode_channels(pmfs, symbols) -> bytearray of uint32 words, or None"},
    {"decode_channels", (PyCFunction)(void (*)(void))decode_channels, METH_FASTCALL,
     "decode_channels(pmfs, counts, words) -> numpy int32 array of the symbols, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rangecoder_py",
    "CPython entry points of the portable C range coder's channel functions.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rangecoder_py(void) { return PyModule_Create(&module); }
