/* The compiled fast path of the write path: packing a round trip's commands into one RESP
 * buffer, and parsing a round trip's replies, each in one call.
 *
 * Optional: the package works the same without it (``_write/attempt.py`` has the pure path and
 * is the reference: the two must produce the same bytes and the same replies). Every function
 * here either succeeds or returns NULL with an exception set, and the caller then takes the pure
 * path; nothing here logs, retries or guesses.
 *
 * pack_commands(commands)        -> bytes   each command a tuple of str/bytes arguments
 * pack_xadds(entries, trim)      -> bytes   stream key -> list of field dicts, one XADD each
 * parse_replies(data, offset, limit) -> (replies, offset)
 *     up to ``limit`` whole RESP2 replies from ``data[offset:]``; bulk and simple strings are
 *     bytes, integers int, nil None, arrays lists, and error replies str (without the '-').
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Redis refuses a bulk string longer than proto-max-bulk-len (512 MB by default). */
#define MAX_BULK_LEN ((Py_ssize_t)512 * 1024 * 1024)
/* Replies nest at most this deep; an XADD round trip's replies do not nest at all. */
#define MAX_DEPTH 8
#define INITIAL_CAPACITY 4096

/* ------------------------------------------------------------------------------------------ */
/* A growing output buffer.                                                                    */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int
buffer_reserve(Buffer *buf, Py_ssize_t extra)
{
    if (extra < 0 || extra > PY_SSIZE_T_MAX - buf->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = buf->len + extra;
    if (need <= buf->cap) {
        return 0;
    }
    Py_ssize_t cap = buf->cap > 0 ? buf->cap : INITIAL_CAPACITY;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(buf->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int
buffer_put(Buffer *buf, const char *bytes, Py_ssize_t len)
{
    if (buffer_reserve(buf, len) < 0) {
        return -1;
    }
    if (len > 0) {
        memcpy(buf->data + buf->len, bytes, (size_t)len);
    }
    buf->len += len;
    return 0;
}

/* "<kind><n>\r\n", as hiredis and redis-py write the headers (n >= 0; by hand: snprintf is
 * most of the cost of packing short arguments). */
static int
buffer_header(Buffer *buf, char kind, Py_ssize_t n)
{
    char digits[24];
    int count = 0;
    size_t value = (size_t)n;
    if (n < 0) {
        PyErr_SetString(PyExc_OverflowError, "negative RESP length");
        return -1;
    }
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && count < (int)sizeof(digits));
    if (buffer_reserve(buf, (Py_ssize_t)count + 3) < 0) {
        return -1;
    }
    char *out = buf->data + buf->len;
    *out++ = kind;
    while (count > 0) {
        *out++ = digits[--count];
    }
    *out++ = '\r';
    *out++ = '\n';
    buf->len = out - buf->data;
    return 0;
}

static int
buffer_bulk(Buffer *buf, const char *bytes, Py_ssize_t len)
{
    if (buffer_header(buf, '$', len) < 0 || buffer_put(buf, bytes, len) < 0) {
        return -1;
    }
    return buffer_put(buf, "\r\n", 2);
}

/* One argument: a str (UTF-8, strict, as redis-py and hiredis encode it) or bytes. Anything
 * else is refused (TypeError): the pure path decides what to do with it. */
static int
buffer_argument(Buffer *buf, PyObject *arg)
{
    if (PyBytes_Check(arg)) {
        return buffer_bulk(buf, PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "argument of type %.100s is neither str nor bytes",
                     Py_TYPE(arg)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0) {
        return -1;
    }
#endif
    if (PyUnicode_IS_ASCII(arg)) {
        return buffer_bulk(buf, (const char *)PyUnicode_DATA(arg), PyUnicode_GET_LENGTH(arg));
    }
    /* A temporary, rather than PyUnicode_AsUTF8AndSize, which would keep a UTF-8 copy on the
     * string for as long as it lives. */
    PyObject *encoded = PyUnicode_AsUTF8String(arg);
    if (encoded == NULL) {
        return -1;
    }
    int status = buffer_bulk(buf, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return status;
}

static PyObject *
buffer_finish(Buffer *buf)
{
    PyObject *result = PyBytes_FromStringAndSize(buf->data != NULL ? buf->data : "", buf->len);
    PyMem_Free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
    return result;
}

static void
buffer_discard(Buffer *buf)
{
    PyMem_Free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Packing.                                                                                    */

static int
pack_one_command(Buffer *buf, PyObject *command)
{
    if (!PyTuple_CheckExact(command) && !PyList_CheckExact(command)) {
        PyErr_Format(PyExc_TypeError, "command of type %.100s is neither tuple nor list",
                     Py_TYPE(command)->tp_name);
        return -1;
    }
    /* A new reference: the command (a list) cannot change under us while it is packed. */
    PyObject *args = PySequence_Tuple(command);
    if (args == NULL) {
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(args);
    int status = -1;
    if (count == 0) {
        PyErr_SetString(PyExc_ValueError, "empty command");
        goto done;
    }
    if (buffer_header(buf, '*', count) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (buffer_argument(buf, PyTuple_GET_ITEM(args, i)) < 0) {
            goto done;
        }
    }
    status = 0;
done:
    Py_DECREF(args);
    return status;
}

static PyObject *
pack_commands(PyObject *module, PyObject *commands)
{
    if (!PyList_CheckExact(commands) && !PyTuple_CheckExact(commands)) {
        PyErr_SetString(PyExc_TypeError, "commands must be a list or a tuple");
        return NULL;
    }
    PyObject *all = PySequence_Tuple(commands);
    if (all == NULL) {
        return NULL;
    }
    Buffer buf = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(all); i++) {
        if (pack_one_command(&buf, PyTuple_GET_ITEM(all, i)) < 0) {
            Py_DECREF(all);
            buffer_discard(&buf);
            return NULL;
        }
    }
    Py_DECREF(all);
    return buffer_finish(&buf);
}

/* One XADD: key, the trim arguments, "*", then each field and its value in the dict's order. */
static int
pack_one_xadd(Buffer *buf, PyObject *key, PyObject *trim, PyObject *fields)
{
    if (!PyDict_CheckExact(fields)) {
        PyErr_Format(PyExc_TypeError, "entry of type %.100s is not a dict", Py_TYPE(fields)->tp_name);
        return -1;
    }
    Py_ssize_t pairs = PyDict_GET_SIZE(fields);
    Py_ssize_t trims = PyTuple_GET_SIZE(trim);
    if (pairs > (PY_SSIZE_T_MAX - 3 - trims) / 2) {
        PyErr_SetString(PyExc_OverflowError, "too many fields");
        return -1;
    }
    if (buffer_header(buf, '*', 3 + trims + 2 * pairs) < 0 || buffer_bulk(buf, "XADD", 4) < 0 ||
        buffer_argument(buf, key) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < trims; i++) {
        if (buffer_argument(buf, PyTuple_GET_ITEM(trim, i)) < 0) {
            return -1;
        }
    }
    if (buffer_bulk(buf, "*", 1) < 0) {
        return -1;
    }
    Py_ssize_t position = 0;
    Py_ssize_t seen = 0;
    PyObject *field;
    PyObject *value;
    /* No Python code runs while the dict is walked (str and bytes are read, never called), so
     * it cannot change size under us; the count check makes sure of it. */
    while (PyDict_Next(fields, &position, &field, &value)) {
        if (++seen > pairs || buffer_argument(buf, field) < 0 || buffer_argument(buf, value) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "entry changed size while packed");
            }
            return -1;
        }
    }
    if (seen != pairs) {
        PyErr_SetString(PyExc_RuntimeError, "entry changed size while packed");
        return -1;
    }
    return 0;
}

static PyObject *
pack_xadds(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pack_xadds(entries, trim) takes two arguments");
        return NULL;
    }
    PyObject *entries = args[0];
    PyObject *trim = args[1];
    if (!PyDict_CheckExact(entries)) {
        PyErr_SetString(PyExc_TypeError, "entries must be a dict");
        return NULL;
    }
    if (!PyTuple_CheckExact(trim)) {
        PyErr_SetString(PyExc_TypeError, "trim must be a tuple");
        return NULL;
    }
    /* Snapshots (new references) of the keys and their entries, so nothing borrowed is held
     * while packing. */
    PyObject *items = PyDict_Items(entries);
    if (items == NULL) {
        return NULL;
    }
    Buffer buf = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        PyObject *key = PyTuple_GET_ITEM(item, 0);
        PyObject *key_entries = PyTuple_GET_ITEM(item, 1);
        if (!PyList_CheckExact(key_entries) && !PyTuple_CheckExact(key_entries)) {
            PyErr_SetString(PyExc_TypeError, "the entries of a key must be a list or a tuple");
            goto error;
        }
        PyObject *snapshot = PySequence_Tuple(key_entries);
        if (snapshot == NULL) {
            goto error;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(snapshot); j++) {
            if (pack_one_xadd(&buf, key, trim, PyTuple_GET_ITEM(snapshot, j)) < 0) {
                Py_DECREF(snapshot);
                goto error;
            }
        }
        Py_DECREF(snapshot);
    }
    Py_DECREF(items);
    return buffer_finish(&buf);
error:
    Py_DECREF(items);
    buffer_discard(&buf);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing replies.                                                                            */

typedef struct {
    const char *data;
    Py_ssize_t len;
} Input;

/* Parse state of one call: -1 error (exception set), 0 incomplete (need more data), 1 done. */
#define PARSE_ERROR -1
#define PARSE_INCOMPLETE 0
#define PARSE_DONE 1

static int
protocol_error(const char *what)
{
    PyErr_Format(PyExc_ValueError, "protocol error: %s", what);
    return PARSE_ERROR;
}

/* The line at ``*pos`` up to CRLF: its start and length; ``*pos`` moves past the CRLF. */
static int
read_line(const Input *in, Py_ssize_t *pos, const char **line, Py_ssize_t *len)
{
    Py_ssize_t start = *pos;
    if (start >= in->len) {
        return PARSE_INCOMPLETE;
    }
    const char *found = memchr(in->data + start, '\r', (size_t)(in->len - start));
    if (found == NULL) {
        return PARSE_INCOMPLETE;
    }
    Py_ssize_t end = found - in->data;
    if (end + 1 >= in->len) {
        return PARSE_INCOMPLETE;
    }
    if (in->data[end + 1] != '\n') {
        return protocol_error("a line does not end with CRLF");
    }
    *line = in->data + start;
    *len = end - start;
    *pos = end + 2;
    return PARSE_DONE;
}

/* A signed decimal integer, the whole line, without overflow. */
static int
parse_integer(const char *text, Py_ssize_t len, long long *out)
{
    Py_ssize_t i = 0;
    int negative = 0;
    if (len > 0 && (text[0] == '-' || text[0] == '+')) {
        negative = text[0] == '-';
        i = 1;
    }
    if (i >= len || len - i > 19) {
        return protocol_error("not an integer");
    }
    unsigned long long value = 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return protocol_error("not an integer");
        }
        value = value * 10 + (unsigned long long)(text[i] - '0');
    }
    if (value > (unsigned long long)LLONG_MAX + (negative ? 1ULL : 0ULL)) {
        return protocol_error("integer out of range");
    }
    *out = negative ? (long long)(0ULL - value) : (long long)value;
    return PARSE_DONE;
}

static int parse_one(const Input *in, Py_ssize_t *pos, int depth, PyObject **out);

static int
parse_array(const Input *in, Py_ssize_t *pos, int depth, long long count, PyObject **out)
{
    if (count < 0) {
        Py_INCREF(Py_None);
        *out = Py_None;
        return PARSE_DONE;
    }
    if (depth >= MAX_DEPTH) {
        return protocol_error("replies nest too deep");
    }
    /* Each element takes at least 3 bytes (":0\r\n" is 4): a count beyond what the buffer can
     * hold is incomplete, and allocating for it is refused. */
    if (count > (in->len - *pos) / 3) {
        return count > MAX_BULK_LEN ? protocol_error("array too long") : PARSE_INCOMPLETE;
    }
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL) {
        return PARSE_ERROR;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        PyObject *element = NULL;
        int status = parse_one(in, pos, depth + 1, &element);
        if (status != PARSE_DONE) {
            Py_DECREF(list); /* the elements already set go with it; the rest are NULL */
            return status;
        }
        PyList_SET_ITEM(list, i, element);
    }
    *out = list;
    return PARSE_DONE;
}

static int
parse_one(const Input *in, Py_ssize_t *pos, int depth, PyObject **out)
{
    Py_ssize_t cursor = *pos;
    const char *line;
    Py_ssize_t len;
    int status = read_line(in, &cursor, &line, &len);
    if (status != PARSE_DONE) {
        return status;
    }
    if (len < 1) {
        return protocol_error("empty reply line");
    }
    char kind = line[0];
    const char *rest = line + 1;
    Py_ssize_t rest_len = len - 1;
    long long number;
    switch (kind) {
    case '+':
        *out = PyBytes_FromStringAndSize(rest, rest_len);
        break;
    case '-':
        *out = PyUnicode_DecodeUTF8(rest, rest_len, "replace");
        break;
    case ':':
        if (parse_integer(rest, rest_len, &number) != PARSE_DONE) {
            return PARSE_ERROR;
        }
        *out = PyLong_FromLongLong(number);
        break;
    case '$':
        if (parse_integer(rest, rest_len, &number) != PARSE_DONE) {
            return PARSE_ERROR;
        }
        if (number < 0) {
            Py_INCREF(Py_None);
            *out = Py_None;
            break;
        }
        if (number > MAX_BULK_LEN) {
            return protocol_error("bulk string too long");
        }
        if ((Py_ssize_t)number + 2 > in->len - cursor) {
            return PARSE_INCOMPLETE;
        }
        if (in->data[cursor + number] != '\r' || in->data[cursor + number + 1] != '\n') {
            return protocol_error("a bulk string does not end with CRLF");
        }
        *out = PyBytes_FromStringAndSize(in->data + cursor, (Py_ssize_t)number);
        cursor += (Py_ssize_t)number + 2;
        break;
    case '*':
        if (parse_integer(rest, rest_len, &number) != PARSE_DONE) {
            return PARSE_ERROR;
        }
        status = parse_array(in, &cursor, depth, number, out);
        if (status != PARSE_DONE) {
            return status;
        }
        break;
    default:
        return protocol_error("unknown reply type");
    }
    if (*out == NULL) {
        return PARSE_ERROR;
    }
    *pos = cursor;
    return PARSE_DONE;
}

static PyObject *
parse_replies(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "parse_replies(data, offset, limit) takes three arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *replies = NULL;
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {
        goto done;
    }
    if (offset < 0 || offset > view.len || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "offset or limit out of range");
        goto done;
    }
    replies = PyList_New(0);
    if (replies == NULL) {
        goto done;
    }
    Input in = {(const char *)view.buf, view.len};
    for (Py_ssize_t i = 0; i < limit; i++) {
        PyObject *reply = NULL;
        int status = parse_one(&in, &offset, 0, &reply);
        if (status == PARSE_ERROR) {
            goto done;
        }
        if (status == PARSE_INCOMPLETE) {
            break;
        }
        int appended = PyList_Append(replies, reply);
        Py_DECREF(reply);
        if (appended < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(On)", replies, offset);
done:
    Py_XDECREF(replies);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"pack_commands", (PyCFunction)pack_commands, METH_O,
     "pack_commands(commands) -> bytes: every command (a tuple of str/bytes) in one RESP buffer."},
    {"pack_xadds", (PyCFunction)(void (*)(void))pack_xadds, METH_FASTCALL,
     "pack_xadds(entries, trim) -> bytes: one XADD key *trim * field value... per entry."},
    {"parse_replies", (PyCFunction)(void (*)(void))parse_replies, METH_FASTCALL,
     "parse_replies(data, offset, limit) -> (replies, offset): the whole RESP2 replies in data."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "otel_redis_exporter._speedups",
    .m_doc = "The compiled fast path: RESP packing and reply parsing in one call per round trip.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
