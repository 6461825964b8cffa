/* The inventory's content hash, absorbing columns into per-row 64-bit states in C.
 *
 *   absorb(out, columns) -> None
 *
 * out: writable uint64 buffer, one state per row. columns: sequence of
 *   ("f8", float64 buffer)   a measured value: its word is the value in whole millionths
 *                            (rint(x * 1e6) as int64; NaN and ±inf one NULL word)
 *   ("u8", uint64 buffer)    a ready word per row (integers, booleans, text hashes)
 * Each column's word w is absorbed in column order as the numpy code of
 * omw_sites.store.inventory did it (the stored hashes must not change):
 *   h ^= w; h *= 0xBF58476D1CE4E5B9; h ^= h >> 32.
 * Rows are independent: callers may absorb row ranges in parallel (the GIL is released).
 * Rows are taken in blocks so the states stay in cache while every column passes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define M1 0xBF58476D1CE4E5B9ULL
#define NULL_WORD 0x6A09E667F3BCC909ULL
#define BLOCK 2048

typedef struct {
    int is_float;
    Py_buffer view;
} column;

static inline uint64_t micro_word(double x) {
    double m = rint(x * 1e6);
    if (!isfinite(m)) return NULL_WORD;
    /* out of int64's range: what numpy's cast gives on x86-64 (INT64_MIN) */
    if (m >= 9223372036854775808.0 || m < -9223372036854775808.0) return 0x8000000000000000ULL;
    return (uint64_t)(int64_t)m;
}

static PyObject *absorb(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *out_obj, *specs;
    if (!PyArg_ParseTuple(args, "OO", &out_obj, &specs)) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    Py_ssize_t n = out.len / 8;
    PyObject *seq = PySequence_Fast(specs, "columns must be a sequence");
    if (seq == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t ncols = PySequence_Fast_GET_SIZE(seq), got = 0;
    column *cols = PyMem_Calloc(ncols ? ncols : 1, sizeof(column));
    int ok = cols != NULL;
    if (!ok) PyErr_NoMemory();
    for (Py_ssize_t j = 0; ok && j < ncols; j++) {
        PyObject *spec = PySequence_Fast_GET_ITEM(seq, j);
        const char *kind = NULL;
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 ||
            (kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0))) == NULL ||
            (strcmp(kind, "f8") != 0 && strcmp(kind, "u8") != 0)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "column %zd: expected (\"f8\" | \"u8\", buffer)", j);
            ok = 0;
            break;
        }
        cols[j].is_float = kind[0] == 'f';
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(spec, 1), &cols[j].view, PyBUF_C_CONTIGUOUS) < 0) {
            ok = 0;
            break;
        }
        got = j + 1;
        if (cols[j].view.len != n * 8) {
            PyErr_Format(PyExc_ValueError, "column %zd: %zd bytes for %zd rows (8 per row)", j,
                         cols[j].view.len, n);
            ok = 0;
        }
    }
    Py_DECREF(seq);
    if (ok) {
        uint64_t *h = (uint64_t *)out.buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t lo = 0; lo < n; lo += BLOCK) {
            Py_ssize_t hi = lo + BLOCK < n ? lo + BLOCK : n;
            for (Py_ssize_t j = 0; j < ncols; j++) {
                if (cols[j].is_float) {
                    const double *x = (const double *)cols[j].view.buf;
                    for (Py_ssize_t r = lo; r < hi; r++) {
                        uint64_t v = (h[r] ^ micro_word(x[r])) * M1;
                        h[r] = v ^ (v >> 32);
                    }
                } else {
                    const uint64_t *w = (const uint64_t *)cols[j].view.buf;
                    for (Py_ssize_t r = lo; r < hi; r++) {
                        uint64_t v = (h[r] ^ w[r]) * M1;
                        h[r] = v ^ (v >> 32);
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS;
    }
    for (Py_ssize_t j = 0; j < got; j++) PyBuffer_Release(&cols[j].view);
    PyMem_Free(cols);
    PyBuffer_Release(&out);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"absorb", absorb, METH_VARARGS,
     "absorb(out, columns) -> None\nAbsorb each column's word per row into out (uint64), in "
     "column order, without the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hash", "The inventory's content hash: column absorption in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hash(void) { return PyModule_Create(&module); }
