/* Column-wise bulk insert into one SQLite table, without the GIL.
 *
 * The GeoPackage backend writes a first load of 1M sites × ~115 columns. GDAL's own write
 * of that takes 15–21 s on the project's box, Python's sqlite3.executemany ~40 s, the ADBC
 * SQLite driver ~12 s; binding the values straight from the column buffers, 32 rows per
 * statement, takes 8.3–11.3 s on an otherwise idle core with the SQLite built in below
 * (12–14 s with Debian's), most of it SQLite's own record building.
 * This module does only that: it reads numpy / Arrow buffers, binds them, and steps one
 * prepared INSERT (several rows per statement). Everything about the
 * GeoPackage itself (schema, geometry blobs, R-tree, triggers) stays in Python.
 *
 *   insert(path, sql_many, rows_per_statement, sql_one, columns, nrows, pragmas)
 *
 * columns: one tuple per bound parameter of a row, in parameter order:
 *   ("f8", float64 buffer)                 NaN is bound as NULL
 *   ("i8", int64 buffer, valid or None)    valid: one uint8 per row, 0 = NULL
 *   ("b1", uint8 buffer, valid or None)    bound as 0 / 1
 *   ("text", int64 offsets (n + 1), uint8 data, valid or None)   UTF-8
 *   ("blob", int64 offsets (n + 1), uint8 data, valid or None)
 *   ("text" | "blob", int64 starts (n), int64 ends (n), uint8 data, valid or None)
 *        row r is data[starts[r]:ends[r]]: rows put in another order by permuting the
 *        starts and ends alone
 *   ("gpkg", uint8 headers (n × 40), int64 offsets (n + 1), uint8 wkb, valid or None)
 *        a GeoPackage geometry blob: the row's 40-byte header (8 bytes when its flags
 *        byte says the geometry is empty: no envelope) followed by its WKB
 *   ("null",)
 *
 * The rows are inserted in one transaction on a connection of this call; on any error
 * it is rolled back and a RuntimeError names the row (or the rows of the failing
 * multi-row statement). Ctrl-C is honoured every 64k rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#ifdef OMW_VENDORED_SQLITE
/* A private copy of SQLite (third_party/sqlite, built into this module by setup.py):
 * every API function static, so nothing clashes with the SQLite that Python's sqlite3
 * module and GDAL load in the same process. The system library (Debian 12: 3.40.1) is
 * built without lookaside memory and with global memory statistics, so every allocation
 * takes a global mutex; with the options below, 1M rows of sites took 9.6–11.3 s of
 * inserts instead of 12.2–13.3 s (alternating runs on one box, site-ID and updated_at
 * indexes kept up). The options are SQLite's recommended ones
 * (https://sqlite.org/compile.html#recommended_compile_time_options), except that
 * connections stay safe to use from any one thread at a time. */
#define SQLITE_API static
#define SQLITE_THREADSAFE 2
#define SQLITE_DEFAULT_MEMSTATUS 0
#define SQLITE_DQS 0
#define SQLITE_LIKE_DOESNT_MATCH_BLOBS 1
#define SQLITE_MAX_EXPR_DEPTH 0
#define SQLITE_OMIT_DEPRECATED 1
#define SQLITE_OMIT_LOAD_EXTENSION 1
#define SQLITE_OMIT_SHARED_CACHE 1
#define SQLITE_USE_ALLOCA 1
#define SQLITE_ENABLE_RTREE 1 /* GeoPackage files declare R-tree virtual tables */
#include "sqlite3.c"
#else
#include <sqlite3.h>
#endif

enum kind { K_F8, K_I8, K_B1, K_TEXT, K_BLOB, K_GPKG, K_NULL };

#define GPKG_HEADER 40 /* magic, version, flags, srs_id, envelope of 4 doubles */
#define GPKG_EMPTY 0x10 /* flags bit: empty geometry, no envelope */

typedef struct {
    enum kind kind;
    Py_buffer data, offsets, ends, valid, headers;
    int has_data, has_offsets, has_ends, has_valid, has_headers;
    const int64_t *start, *end; /* text / blob / gpkg: row r is data[start[r]:end[r]] */
    char *scratch; /* K_GPKG: one blob per row of a statement */
    Py_ssize_t slot; /* K_GPKG: bytes per scratch slot */
} column;

static void release(column *cols, Py_ssize_t ncols) {
    for (Py_ssize_t i = 0; i < ncols; i++) {
        if (cols[i].has_data) PyBuffer_Release(&cols[i].data);
        if (cols[i].has_offsets) PyBuffer_Release(&cols[i].offsets);
        if (cols[i].has_ends) PyBuffer_Release(&cols[i].ends);
        if (cols[i].has_valid) PyBuffer_Release(&cols[i].valid);
        if (cols[i].has_headers) PyBuffer_Release(&cols[i].headers);
        PyMem_Free(cols[i].scratch);
    }
    PyMem_Free(cols);
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t min_bytes, const char *what,
                      Py_ssize_t col) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len < min_bytes) {
        PyErr_Format(PyExc_ValueError, "column %zd: %s buffer holds %zd bytes, needs %zd", col,
                     what, view->len, min_bytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int parse_column(PyObject *spec, column *c, Py_ssize_t i, Py_ssize_t n,
                        Py_ssize_t max_rows_per_statement) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_Format(PyExc_TypeError, "column %zd: expected a tuple (kind, buffers...)", i);
        return -1;
    }
    const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (k == NULL) return -1;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    Py_ssize_t need = 1;
    PyObject *valid = Py_None;
    if (strcmp(k, "f8") == 0) {
        c->kind = K_F8;
        need = 2;
    } else if (strcmp(k, "i8") == 0 || strcmp(k, "b1") == 0) {
        c->kind = k[0] == 'i' ? K_I8 : K_B1;
        need = 3;
    } else if (strcmp(k, "text") == 0 || strcmp(k, "blob") == 0) {
        c->kind = k[0] == 't' ? K_TEXT : K_BLOB;
        need = size == 5 ? 5 : 4; /* starts and ends, or offsets */
    } else if (strcmp(k, "gpkg") == 0) {
        c->kind = K_GPKG;
        need = 5;
    } else if (strcmp(k, "null") == 0) {
        c->kind = K_NULL;
    } else {
        PyErr_Format(PyExc_ValueError, "column %zd: unknown kind %s", i, k);
        return -1;
    }
    if (size != need) {
        PyErr_Format(PyExc_ValueError, "column %zd (%s): expected %zd items, got %zd", i, k,
                     need, size);
        return -1;
    }
    switch (c->kind) {
    case K_F8:
        if (get_buffer(PyTuple_GET_ITEM(spec, 1), &c->data, n * 8, "values", i) < 0) return -1;
        c->has_data = 1;
        break;
    case K_I8:
    case K_B1:
        if (get_buffer(PyTuple_GET_ITEM(spec, 1), &c->data, n * (c->kind == K_I8 ? 8 : 1),
                       "values", i) < 0)
            return -1;
        c->has_data = 1;
        valid = PyTuple_GET_ITEM(spec, 2);
        break;
    case K_TEXT:
    case K_BLOB:
    case K_GPKG: {
        Py_ssize_t at = 1, longest = 0;
        if (c->kind == K_GPKG) {
            if (get_buffer(PyTuple_GET_ITEM(spec, at++), &c->headers, n * GPKG_HEADER,
                           "headers", i) < 0)
                return -1;
            c->has_headers = 1;
        }
        if (need == 5 && c->kind != K_GPKG) {
            if (get_buffer(PyTuple_GET_ITEM(spec, at++), &c->offsets, n * 8, "starts", i) < 0)
                return -1;
            c->has_offsets = 1;
            if (get_buffer(PyTuple_GET_ITEM(spec, at++), &c->ends, n * 8, "ends", i) < 0)
                return -1;
            c->has_ends = 1;
            c->start = (const int64_t *)c->offsets.buf;
            c->end = (const int64_t *)c->ends.buf;
        } else {
            if (get_buffer(PyTuple_GET_ITEM(spec, at++), &c->offsets, (n + 1) * 8, "offsets",
                           i) < 0)
                return -1;
            c->has_offsets = 1;
            c->start = (const int64_t *)c->offsets.buf;
            c->end = c->start + 1;
        }
        if (get_buffer(PyTuple_GET_ITEM(spec, at++), &c->data, 0, "data", i) < 0) return -1;
        c->has_data = 1;
        for (Py_ssize_t r = 0; r < n; r++) {
            if (c->start[r] < 0 || c->end[r] < c->start[r] || c->end[r] > c->data.len ||
                c->end[r] - c->start[r] > INT32_MAX - GPKG_HEADER) {
                PyErr_Format(PyExc_ValueError, "column %zd: bad offsets at row %zd", i, r);
                return -1;
            }
            if (c->end[r] - c->start[r] > longest) longest = c->end[r] - c->start[r];
        }
        if (c->kind == K_GPKG) {
            c->slot = GPKG_HEADER + longest;
            c->scratch = PyMem_Malloc((size_t)(c->slot * max_rows_per_statement));
            if (c->scratch == NULL) {
                PyErr_NoMemory();
                return -1;
            }
        }
        valid = PyTuple_GET_ITEM(spec, at);
        break;
    }
    case K_NULL:
        break;
    }
    if (valid != Py_None) {
        if (get_buffer(valid, &c->valid, n, "validity", i) < 0) return -1;
        c->has_valid = 1;
    }
    return 0;
}

/* Bind source row r of every column as the parameters first… of st; q is the row's place
 * in a multi-row statement (its scratch slot for built blobs). */
static int bind_row(sqlite3_stmt *st, const column *cols, Py_ssize_t ncols, Py_ssize_t r,
                    int first, Py_ssize_t q) {
    int rc = SQLITE_OK;
    for (Py_ssize_t j = 0; j < ncols && rc == SQLITE_OK; j++) {
        const column *c = &cols[j];
        int p = first + (int)j;
        if (c->has_valid && ((const uint8_t *)c->valid.buf)[r] == 0) {
            rc = sqlite3_bind_null(st, p);
            continue;
        }
        switch (c->kind) {
        case K_F8: {
            double v = ((const double *)c->data.buf)[r];
            rc = isnan(v) ? sqlite3_bind_null(st, p) : sqlite3_bind_double(st, p, v);
            break;
        }
        case K_I8:
            rc = sqlite3_bind_int64(st, p, ((const int64_t *)c->data.buf)[r]);
            break;
        case K_B1:
            rc = sqlite3_bind_int(st, p, ((const uint8_t *)c->data.buf)[r] != 0);
            break;
        case K_TEXT:
        case K_BLOB: {
            const char *s = (const char *)c->data.buf + c->start[r];
            int len = (int)(c->end[r] - c->start[r]);
            rc = c->kind == K_TEXT ? sqlite3_bind_text(st, p, s, len, SQLITE_STATIC)
                                   : sqlite3_bind_blob(st, p, s, len, SQLITE_STATIC);
            break;
        }
        case K_GPKG: {
            const char *head = (const char *)c->headers.buf + r * GPKG_HEADER;
            int hlen = (head[3] & GPKG_EMPTY) ? 8 : GPKG_HEADER;
            int len = (int)(c->end[r] - c->start[r]);
            char *out = c->scratch + q * c->slot;
            memcpy(out, head, hlen);
            memcpy(out + hlen, (const char *)c->data.buf + c->start[r], len);
            rc = sqlite3_bind_blob(st, p, out, hlen + len, SQLITE_STATIC);
            break;
        }
        case K_NULL:
            rc = sqlite3_bind_null(st, p);
            break;
        }
    }
    return rc;
}

static PyObject *bulk_insert(PyObject *self, PyObject *args) {
    const char *path, *sql_many, *sql_one, *pragmas;
    Py_ssize_t per_stmt, nrows;
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "ssnsOns", &path, &sql_many, &per_stmt, &sql_one, &specs, &nrows,
                          &pragmas))
        return NULL;
    if (per_stmt < 1 || nrows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows_per_statement must be ≥ 1 and nrows ≥ 0");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(specs, "columns must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t ncols = PySequence_Fast_GET_SIZE(seq);
    column *cols = PyMem_Calloc(ncols ? ncols : 1, sizeof(column));
    if (cols == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < ncols; i++) {
        if (parse_column(PySequence_Fast_GET_ITEM(seq, i), &cols[i], i, nrows, per_stmt) < 0) {
            Py_DECREF(seq);
            release(cols, ncols);
            return NULL;
        }
    }
    Py_DECREF(seq);

    sqlite3 *db = NULL;
    sqlite3_stmt *many = NULL, *one = NULL;
    char errmsg[1024] = "";
    Py_ssize_t failed_row = -1, failed_rows = 0;
    int interrupted = 0;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, 60000);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int in_tx = rc == SQLITE_OK;
    if (rc == SQLITE_OK && per_stmt > 1 && nrows >= per_stmt)
        rc = sqlite3_prepare_v2(db, sql_many, -1, &many, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql_one, -1, &one, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(one) != ncols) {
        snprintf(errmsg, sizeof errmsg, "the INSERT takes %d values per row, %zd columns given",
                 sqlite3_bind_parameter_count(one), ncols);
        rc = SQLITE_MISUSE;
    }
    if (rc == SQLITE_OK && many != NULL &&
        sqlite3_bind_parameter_count(many) != ncols * per_stmt) {
        snprintf(errmsg, sizeof errmsg, "the multi-row INSERT takes %d values, not %zd × %zd",
                 sqlite3_bind_parameter_count(many), per_stmt, ncols);
        rc = SQLITE_MISUSE;
    }
    Py_ssize_t r = 0, next_check = 65536;
    while (rc == SQLITE_OK && r < nrows) {
        sqlite3_stmt *st = (many != NULL && nrows - r >= per_stmt) ? many : one;
        Py_ssize_t k = st == many ? per_stmt : 1;
        for (Py_ssize_t q = 0; q < k && rc == SQLITE_OK; q++)
            rc = bind_row(st, cols, ncols, r + q, 1 + (int)(q * ncols), q);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        if (rc != SQLITE_OK) {
            failed_row = r, failed_rows = k;
            break;
        }
        sqlite3_reset(st);
        r += k;
        if (r >= next_check) {
            next_check = r + 65536;
            PyEval_RestoreThread(ts);
            interrupted = PyErr_CheckSignals() < 0;
            ts = PyEval_SaveThread();
            if (interrupted) break;
        }
    }
    if (rc != SQLITE_OK && errmsg[0] == '\0' && db != NULL)
        snprintf(errmsg, sizeof errmsg, "%s", sqlite3_errmsg(db));
    if (rc == SQLITE_OK && !interrupted) {
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) snprintf(errmsg, sizeof errmsg, "COMMIT: %s", sqlite3_errmsg(db));
        else in_tx = 0;
    }
    if (many) sqlite3_reset(many), sqlite3_finalize(many);
    if (one) sqlite3_reset(one), sqlite3_finalize(one);
    if (in_tx) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (db) sqlite3_close(db);
    PyEval_RestoreThread(ts);
    release(cols, ncols);
    if (interrupted) return NULL; /* the signal handler's exception (KeyboardInterrupt) */
    if (rc != SQLITE_OK) {
        if (failed_rows == 1)
            PyErr_Format(PyExc_RuntimeError, "%s: insert failed at row %zd: %s", path,
                         failed_row, errmsg);
        else if (failed_rows > 1) /* one statement of several rows: one of them */
            PyErr_Format(PyExc_RuntimeError, "%s: insert failed in rows %zd to %zd: %s", path,
                         failed_row, failed_row + failed_rows - 1, errmsg);
        else
            PyErr_Format(PyExc_RuntimeError, "%s: %s", path, errmsg);
        return NULL;
    }
    return PyLong_FromSsize_t(nrows);
}

static PyMethodDef methods[] = {
    {"insert", bulk_insert, METH_VARARGS,
     "insert(path, sql_many, rows_per_statement, sql_one, columns, nrows, pragmas) -> rows\n"
     "Insert nrows rows bound column-wise from buffers, in one transaction."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sqlite_bulk",
    "Column-wise bulk insert into a SQLite table without the GIL.", -1, methods,
};

PyMODINIT_FUNC PyInit__sqlite_bulk(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "sqlite_version", sqlite3_libversion()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
