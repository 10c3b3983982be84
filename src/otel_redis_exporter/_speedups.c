/* The compiled fast path of the write path: encoding a batch's records into flat entries,
 * packing a round trip's commands into one RESP buffer, and parsing a round trip's replies,
 * each in one call.
 *
 * Optional: the package works the same without it (``_encode/flat.py`` and ``_write/attempt.py``
 * have the pure path and are the reference: the two must produce the same entries, the same
 * bytes and the same replies). Every function
 * here either succeeds or returns NULL with an exception set, and the caller then takes the pure
 * path; nothing here logs, retries or guesses.
 *
 * pack_commands(commands)        -> bytes   each command a tuple of str/bytes arguments
 * pack_xadds(entries, trim)      -> bytes   stream key -> list of field dicts, one XADD each
 * encode_flat(types, records, now_ns, uid_prefix, limit, budget, out, tails, tail, fallback)
 *     -> None; see "Encoding SDK log records" below
 * entry_sizes(entries, overhead) -> list[int]
 *     for each entry (stream key -> list of field dicts, in order): overhead + the length of
 *     every field name and value (``delivery.entry_size``: characters of a str, bytes of bytes)
 * parse_replies(data, offset, limit) -> (replies, offset)
 *     up to ``limit`` whole RESP2 replies from ``data[offset:]``; bulk and simple strings are
 *     bytes, integers int, nil None, arrays lists, and error replies str (without the '-').
 * send_held(fd, data, offset, budget) -> offset
 * recv_held(fd, size, budget)         -> bytes | None
 *     a socket's sends and receives that keep the interpreter lock; see "I/O that keeps the
 *     interpreter lock" below
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#endif

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
/* Sizes of queued entries.                                                                    */

/* len() of an exact str or bytes; -1 with TypeError for anything else (whose len() might run
 * Python code): the caller then measures the pure way. */
static Py_ssize_t
text_length(PyObject *text)
{
    if (PyUnicode_CheckExact(text)) {
        return PyUnicode_GET_LENGTH(text);
    }
    if (PyBytes_CheckExact(text)) {
        return PyBytes_GET_SIZE(text);
    }
    PyErr_Format(PyExc_TypeError, "field of type %.100s is neither str nor bytes", Py_TYPE(text)->tp_name);
    return -1;
}

static Py_ssize_t
one_entry_size(PyObject *fields, Py_ssize_t overhead)
{
    if (!PyDict_CheckExact(fields)) {
        PyErr_Format(PyExc_TypeError, "entry of type %.100s is not a dict", Py_TYPE(fields)->tp_name);
        return -1;
    }
    Py_ssize_t size = overhead;
    Py_ssize_t position = 0;
    PyObject *field;
    PyObject *value;
    while (PyDict_Next(fields, &position, &field, &value)) {
        Py_ssize_t name_len = text_length(field);
        Py_ssize_t value_len = name_len < 0 ? -1 : text_length(value);
        if (value_len < 0) {
            return -1;
        }
        size += name_len + value_len; /* each below PY_SSIZE_T_MAX / 4: they are in memory */
    }
    return size;
}

/* Only exact dicts, lists, str and bytes are read, and no Python code runs while they are: none
 * of them can change under us. */
static PyObject *
entry_sizes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "entry_sizes(entries: dict, overhead: int)");
        return NULL;
    }
    Py_ssize_t overhead = PyLong_AsSsize_t(args[1]);
    if (overhead == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *entries = args[0];
    Py_ssize_t count = 0;
    Py_ssize_t position = 0;
    PyObject *key;
    PyObject *group;
    while (PyDict_Next(entries, &position, &key, &group)) {
        if (!PyList_CheckExact(group)) {
            PyErr_Format(PyExc_TypeError, "group of type %.100s is not a list", Py_TYPE(group)->tp_name);
            return NULL;
        }
        count += PyList_GET_SIZE(group);
    }
    PyObject *sizes = PyList_New(count);
    if (sizes == NULL) {
        return NULL;
    }
    Py_ssize_t at = 0;
    position = 0;
    while (PyDict_Next(entries, &position, &key, &group)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(group); i++) {
            Py_ssize_t size = one_entry_size(PyList_GET_ITEM(group, i), overhead);
            PyObject *number = size < 0 ? NULL : PyLong_FromSsize_t(size);
            if (number == NULL) {
                Py_DECREF(sizes);
                return NULL;
            }
            PyList_SET_ITEM(sizes, at++, number);
        }
    }
    return sizes;
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
/* Encoding SDK log records into flat entries.                                                 */
/*
 * encode_flat(types, records, now_ns, uid_prefix, limit, budget, out, tails, tail, fallback)
 *
 * The common case of ``BatchEncoder`` (``_encode/flat.py``, the reference) for each record: an
 * exact str body, flat attributes (exact str/int/bool/None/float and lists or tuples of those),
 * span context, severity, timestamps and the uid. The entry is appended to the list ``tail``
 * returns for the record's resource and scope (cached in ``tails`` by their ids, as the pure
 * path caches them, so the two can share the cache). Any record this code does not fully
 * understand (another type, a subclass, a value to cut, a value that raises) is handed to
 * ``fallback(index, record)`` instead, and the pure path encodes it in its place. No Python code
 * runs while an attribute dict is read: values are only looked at, never called.
 *
 * ``types`` is (BoundedAttributes, TraceFlags): the SDK classes read here beyond exact builtins.
 */

/* Field names, created once per call (the module keeps no state). */
typedef struct {
    PyObject *log_record, *resource, *instrumentation_scope, *observed_timestamp, *timestamp,
        *severity_number, *severity_text, *body, *trace_id, *span_id, *trace_flags, *event_name,
        *attributes, *dropped, *dropped_attributes, *dict_, *value;
    PyObject *f_v, *f_uid, *f_timestamp, *f_observed_timestamp, *f_timestamp_unset,
        *f_severity_number, *f_severity_text, *f_body, *f_trace_id, *f_span_id, *f_trace_flags,
        *f_event_name, *f_attributes, *f_dropped_attributes_count, *one;
} Names;

#define NAME_COUNT ((Py_ssize_t)(sizeof(Names) / sizeof(PyObject *)))

static const char *const name_texts[] = {
    "log_record", "resource", "instrumentation_scope", "observed_timestamp", "timestamp",
    "severity_number", "severity_text", "body", "trace_id", "span_id", "trace_flags", "event_name",
    "attributes", "dropped", "dropped_attributes", "_dict", "value",
    "v", "log.record.uid", "timestamp", "observed_timestamp", "timestamp_unset",
    "severity_number", "severity_text", "body", "trace_id", "span_id", "trace_flags",
    "event_name", "attributes", "dropped_attributes_count", "1",
};

static void
names_clear(Names *names)
{
    PyObject **slot = (PyObject **)names;
    for (Py_ssize_t i = 0; i < NAME_COUNT; i++) {
        Py_CLEAR(slot[i]);
    }
}

static int
names_init(Names *names)
{
    PyObject **slot = (PyObject **)names;
    Py_BUILD_ASSERT(sizeof(name_texts) / sizeof(name_texts[0]) == sizeof(Names) / sizeof(PyObject *));
    memset(names, 0, sizeof(Names));
    for (Py_ssize_t i = 0; i < NAME_COUNT; i++) {
        slot[i] = PyUnicode_InternFromString(name_texts[i]);
        if (slot[i] == NULL) {
            names_clear(names);
            return -1;
        }
    }
    return 0;
}

/* Severity number objects seen in this call and their decimal text (most batches have a few). */
#define SEVERITY_CACHE 8

typedef struct {
    Names names;
    Buffer json;
    Py_ssize_t limit;
    PyObject *bounded_type;
    PyObject *flags_type;
    const char *uid_prefix; /* ASCII, or NULL for no uid */
    Py_ssize_t uid_prefix_len;
    /* The last record's resource and scope (held, so their ids stay theirs) and its tail. */
    PyObject *last_resource;
    PyObject *last_scope;
    PyObject *last_tail;
    PyObject *severity_key[SEVERITY_CACHE];
    PyObject *severity_text[SEVERITY_CACHE];
    int severities;
} Encoder;

/* Outcome of encoding one record: done, handed back to the pure path, or a fatal error. */
#define RECORD_DONE 1
#define RECORD_FALLBACK 0
#define RECORD_ERROR -1

/* An ASCII str of ``len`` bytes. */
static PyObject *
ascii_text(const char *bytes, Py_ssize_t len)
{
    PyObject *text = PyUnicode_New(len, 127);
    if (text != NULL && len > 0) {
        memcpy(PyUnicode_DATA(text), bytes, (size_t)len);
    }
    return text;
}

/* Decimal digits of ``value`` written backwards from ``end``; returns the first digit. */
static char *
decimal_digits(char *end, long long value)
{
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--end = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    if (value < 0) {
        *--end = '-';
    }
    return end;
}

/* str() of an exact int (what the pure path writes for timestamps and counts). */
static PyObject *
int_text(PyObject *value)
{
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow) {
        return PyObject_Str(value); /* an exact int: no Python code runs */
    }
    char digits[24];
    char *start = decimal_digits(digits + sizeof(digits), number);
    return ascii_text(start, digits + sizeof(digits) - start);
}

/* Whether ``text`` holds a lone surrogate (which UTF-8 cannot encode: the pure path rewrites it). */
static int
has_surrogate(PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        return 0;
    }
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF) {
            return 1;
        }
    }
    return 0;
}

/* A str field value the pure path would write unchanged: an exact str without lone
 * surrogates (``safe_text(text) is text``). */
static int
plain_text(PyObject *text)
{
    if (!PyUnicode_CheckExact(text)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    return PyUnicode_IS_ASCII(text) || !has_surrogate(text);
}

/* ``text`` as the stdlib's json writes it with ensure_ascii=True. */
static int
json_string(Buffer *buf, PyObject *text)
{
    static const char hex[] = "0123456789abcdef";
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return -1;
    }
#endif
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    /* At most 6 bytes a character (\uXXXX), 12 for an astral one (a surrogate pair), and the
     * quotes. */
    Py_ssize_t widest = kind == PyUnicode_4BYTE_KIND ? 12 : 6;
    if (len > (PY_SSIZE_T_MAX - 2) / widest) {
        PyErr_NoMemory();
        return -1;
    }
    if (buffer_reserve(buf, widest * len + 2) < 0) {
        return -1;
    }
    char *out = buf->data + buf->len;
    *out++ = '"';
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t i = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        /* Most text is plain ASCII: its leading run of characters written as they are is
         * copied in one go, the rest goes character by character. */
        const Py_UCS1 *chars = data;
        while (i < len && chars[i] >= ' ' && chars[i] <= '~' && chars[i] != '\\' && chars[i] != '"') {
            i++;
        }
        memcpy(out, chars, (size_t)i);
        out += i;
    }
    for (; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= ' ' && c <= '~' && c != '\\' && c != '"') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '\\': *out++ = '\\'; continue;
        case '"': *out++ = '"'; continue;
        case '\b': *out++ = 'b'; continue;
        case '\f': *out++ = 'f'; continue;
        case '\n': *out++ = 'n'; continue;
        case '\r': *out++ = 'r'; continue;
        case '\t': *out++ = 't'; continue;
        default: break;
        }
        if (c >= 0x10000) {
            Py_UCS4 v = c - 0x10000;
            Py_UCS4 high = 0xD800 | ((v >> 10) & 0x3FF);
            *out++ = 'u';
            *out++ = hex[(high >> 12) & 0xF];
            *out++ = hex[(high >> 8) & 0xF];
            *out++ = hex[(high >> 4) & 0xF];
            *out++ = hex[high & 0xF];
            c = 0xDC00 | (v & 0x3FF);
            *out++ = '\\';
        }
        *out++ = 'u';
        *out++ = hex[(c >> 12) & 0xF];
        *out++ = hex[(c >> 8) & 0xF];
        *out++ = hex[(c >> 4) & 0xF];
        *out++ = hex[c & 0xF];
    }
    *out++ = '"';
    buf->len = out - buf->data;
    return 0;
}

/* Ints longer than this go through the sanitizer (``MAX_DECIMAL_INT_BITS`` in flat.py). */
#define MAX_DECIMAL_INT_BITS 14000
#define DECIMAL_DIGITS_OF_MAX_BITS 4215 /* len(str(2**MAX_DECIMAL_INT_BITS)) */

/* ``repr(x)`` of the floats most attributes hold, without the general algorithm (David Gay's
 * shortest digits, which ``repr`` runs and which costs more than the rest of an attribute map).
 *
 * Where ``repr`` writes plain decimals (1e-4 <= |x| < 1e16), it writes the fewest digits that
 * read back as x: the fewest decimals k for which some integer m has m / 10**k == x. That test is
 * exact for m < 2**53 (m and 10**k, k <= 22, are exact doubles and IEEE division rounds
 * correctly), and m is within one of x * 10**k. When exactly one such m exists for the smallest
 * such k, those are repr's digits; anything else (two candidates, m past 2**53) returns 0 and the
 * caller runs the general algorithm. Returns the length written to ``out``, or 0. */
#define FLOAT_TEXT_MAX 48

static int
float_text(double x, char *out)
{
    static const double powers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                    1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    const double exact_max = 9007199254740992.0; /* 2**53 */
    int negative = signbit(x) != 0;
    double magnitude = fabs(x);
    int len = 0;
    if (magnitude == 0.0) {
        if (negative) {
            out[len++] = '-';
        }
        memcpy(out + len, "0.0", 3);
        return len + 3;
    }
    if (!(magnitude >= 1e-4 && magnitude < 1e16)) {
        return 0;
    }
    for (int k = 0; k < (int)(sizeof(powers) / sizeof(powers[0])); k++) {
        double scaled = magnitude * powers[k];
        if (scaled >= exact_max - 1) {
            return 0;
        }
        long long nearest = (long long)(scaled + 0.5);
        long long found = 0;
        int candidates = 0;
        for (long long m = nearest - 1; m <= nearest + 1; m++) {
            if (m > 0 && (double)m / powers[k] == magnitude) {
                found = m;
                candidates++;
            }
        }
        if (candidates > 1) {
            return 0;
        }
        if (candidates == 0) {
            continue;
        }
        /* found = integer digits, then k decimals ("N.0" when k is 0). */
        char digits[24];
        char *end = digits + sizeof(digits);
        char *start = decimal_digits(end, found);
        int count = (int)(end - start);
        if (negative) {
            out[len++] = '-';
        }
        if (count <= k) { /* 0.000ddd */
            out[len++] = '0';
            out[len++] = '.';
            for (int i = 0; i < k - count; i++) {
                out[len++] = '0';
            }
            memcpy(out + len, start, (size_t)count);
            return len + count;
        }
        memcpy(out + len, start, (size_t)(count - k));
        len += count - k;
        out[len++] = '.';
        if (k == 0) {
            out[len++] = '0';
            return len;
        }
        memcpy(out + len, start + count - k, (size_t)k);
        return len + k;
    }
    return 0;
}

/* One JSON scalar of a flat attribute: 1 written, 0 not flat (the pure path's job), -1 error.
 * Exact types only: nothing here calls Python code. */
static int
json_scalar(Encoder *enc, PyObject *value)
{
    Buffer *buf = &enc->json;
    if (PyUnicode_CheckExact(value)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(value) < 0) {
            return -1;
        }
#endif
        if (PyUnicode_GET_LENGTH(value) > enc->limit) {
            return 0;
        }
        return json_string(buf, value) < 0 ? -1 : 1;
    }
    if (value == Py_None) {
        return buffer_put(buf, "null", 4) < 0 ? -1 : 1;
    }
    if (value == Py_True) {
        return buffer_put(buf, "true", 4) < 0 ? -1 : 1;
    }
    if (value == Py_False) {
        return buffer_put(buf, "false", 5) < 0 ? -1 : 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow) {
            char digits[24];
            char *start = decimal_digits(digits + sizeof(digits), number);
            return buffer_put(buf, start, digits + sizeof(digits) - start) < 0 ? -1 : 1;
        }
        /* Past 64 bits: decimal text, unless the int may be longer than MAX_DECIMAL_INT_BITS,
         * which the pure path writes as hex (2**14000 has 4215 digits; one that long or longer
         * is its job). */
        PyObject *text = PyLong_Type.tp_repr(value);
        if (text == NULL) {
            return -1;
        }
        Py_ssize_t digits = PyUnicode_GET_LENGTH(text) - (PyUnicode_READ_CHAR(text, 0) == '-');
        if (digits >= DECIMAL_DIGITS_OF_MAX_BITS) {
            Py_DECREF(text);
            return 0;
        }
        int status = buffer_put(buf, PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text));
        Py_DECREF(text);
        return status < 0 ? -1 : 1;
    }
    if (PyFloat_CheckExact(value)) {
        double number = PyFloat_AS_DOUBLE(value);
        if (!isfinite(number)) {
            return 0;
        }
        char fixed[FLOAT_TEXT_MAX];
        int len = float_text(number, fixed);
        if (len > 0) {
            return buffer_put(buf, fixed, len) < 0 ? -1 : 1;
        }
        char *text = PyOS_double_to_string(number, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL) {
            return -1;
        }
        int status = buffer_put(buf, text, (Py_ssize_t)strlen(text));
        PyMem_Free(text);
        return status < 0 ? -1 : 1;
    }
    return 0;
}

/* The attributes as ``encode_attributes`` writes a flat map of at most ``max_items`` items
 * (``_flat`` in flat.py): 1 written, 0 not flat, -1 error. */
static int
json_attributes(Encoder *enc, PyObject *attributes, Py_ssize_t max_items)
{
    Buffer *buf = &enc->json;
    Py_ssize_t count = PyDict_GET_SIZE(attributes);
    if (count > max_items) {
        return 0;
    }
    if (buffer_put(buf, "{", 1) < 0) {
        return -1;
    }
    Py_ssize_t position = 0;
    Py_ssize_t seen = 0;
    PyObject *key;
    PyObject *value;
    while (PyDict_Next(attributes, &position, &key, &value)) {
        if (++seen > count || !PyUnicode_CheckExact(key)) {
            return 0;
        }
        if ((seen > 1 && buffer_put(buf, ",", 1) < 0) || json_string(buf, key) < 0 ||
            buffer_put(buf, ":", 1) < 0) {
            return -1;
        }
        if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
            /* Items of a list are read by index: none of them is called, so it cannot change. */
            Py_ssize_t items = PySequence_Fast_GET_SIZE(value);
            if (items > max_items) {
                return 0;
            }
            if (buffer_put(buf, "[", 1) < 0) {
                return -1;
            }
            for (Py_ssize_t i = 0; i < items; i++) {
                PyObject *item = PySequence_Fast_GET_ITEM(value, i);
                if (PyList_CheckExact(item) || PyTuple_CheckExact(item)) {
                    return 0;
                }
                if (i > 0 && buffer_put(buf, ",", 1) < 0) {
                    return -1;
                }
                int status = json_scalar(enc, item);
                if (status != 1) {
                    return status;
                }
            }
            if (buffer_put(buf, "]", 1) < 0) {
                return -1;
            }
            continue;
        }
        int status = json_scalar(enc, value);
        if (status != 1) {
            return status;
        }
    }
    if (seen != count) {
        return 0;
    }
    return buffer_put(buf, "}", 1) < 0 ? -1 : 1;
}

/* ``getattr(obj, name, None)``: a new reference, or NULL with an exception set. */
static PyObject *
optional_attribute(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        value = Py_None;
    }
    return value;
}

/* ``log.<name> or fallback`` for a timestamp: an exact int or None. 1 set (a new reference),
 * 0 unset, -1 not understood. */
static int
timestamp_of(PyObject *value, PyObject **out)
{
    if (value == Py_None) {
        return 0;
    }
    if (!PyLong_CheckExact(value)) {
        return -1;
    }
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (number == 0 && !overflow) {
        return 0;
    }
    Py_INCREF(value);
    *out = value;
    return 1;
}

/* Set ``fields[name] = value`` and drop the reference to ``value``. */
static int
set_field(PyObject *fields, PyObject *name, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int status = PyDict_SetItem(fields, name, value);
    Py_DECREF(value);
    return status;
}

/* ``str(severity.value)``, cached by the severity object for this call. */
static PyObject *
severity_text_of(Encoder *enc, PyObject *severity)
{
    for (int i = 0; i < enc->severities; i++) {
        if (enc->severity_key[i] == severity) {
            Py_INCREF(enc->severity_text[i]);
            return enc->severity_text[i];
        }
    }
    PyObject *value = PyObject_GetAttr(severity, enc->names.value);
    if (value == NULL) {
        return NULL;
    }
    PyObject *text = NULL;
    if (PyLong_CheckExact(value)) {
        text = int_text(value);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "severity value is not an int");
    }
    Py_DECREF(value);
    if (text != NULL && enc->severities < SEVERITY_CACHE) {
        Py_INCREF(severity);
        Py_INCREF(text);
        enc->severity_key[enc->severities] = severity;
        enc->severity_text[enc->severities] = text;
        enc->severities++;
    }
    return text;
}

/* ``n`` lowercase hex digits of ``value``. */
static void
hex_digits(char *out, unsigned long long value, int n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = n - 1; i >= 0; i--) {
        out[i] = hex[value & 0xF];
        value >>= 4;
    }
}

/* trace_id, span_id and trace_flags, when both ids are set: 1 done, 0 not understood, -1 error. */
static int
encode_span(Encoder *enc, PyObject *log, PyObject *fields)
{
    Names *n = &enc->names;
    int result = 0;
    PyObject *trace_id = PyObject_GetAttr(log, n->trace_id);
    PyObject *span_id = trace_id != NULL ? PyObject_GetAttr(log, n->span_id) : NULL;
    PyObject *flags = NULL;
    PyObject *high = NULL;
    if (span_id == NULL) {
        result = -1;
        goto done;
    }
    if ((trace_id != Py_None && !PyLong_CheckExact(trace_id)) ||
        (span_id != Py_None && !PyLong_CheckExact(span_id))) {
        goto done;
    }
    if (trace_id == Py_None || span_id == Py_None || !PyObject_IsTrue(trace_id) ||
        !PyObject_IsTrue(span_id)) {
        result = 1; /* no span context: nothing to write */
        goto done;
    }
    /* 32 and 16 hex digits of ids that fit; any other id is the pure path's (format()). */
    unsigned long long span = PyLong_AsUnsignedLongLong(span_id);
    if (span == (unsigned long long)-1 && PyErr_Occurred()) {
        goto done;
    }
    unsigned long long trace_low = PyLong_AsUnsignedLongLongMask(trace_id);
    if (trace_low == (unsigned long long)-1 && PyErr_Occurred()) {
        goto done;
    }
    PyObject *shift = PyLong_FromLong(64);
    if (shift == NULL) {
        result = -1;
        goto done;
    }
    high = PyNumber_Rshift(trace_id, shift);
    Py_DECREF(shift);
    if (high == NULL) {
        goto done;
    }
    unsigned long long trace_high = PyLong_AsUnsignedLongLong(high); /* negative ids overflow */
    if (trace_high == (unsigned long long)-1 && PyErr_Occurred()) {
        goto done;
    }
    char digits[32];
    hex_digits(digits, trace_high, 16);
    hex_digits(digits + 16, trace_low, 16);
    if (set_field(fields, n->f_trace_id, ascii_text(digits, 32)) < 0) {
        result = -1;
        goto done;
    }
    hex_digits(digits, span, 16);
    if (set_field(fields, n->f_span_id, ascii_text(digits, 16)) < 0) {
        result = -1;
        goto done;
    }
    /* ``log.trace_flags or 0``, an int of 0..255: exact, or the SDK's TraceFlags (an int
     * subclass that overrides nothing read here). */
    flags = PyObject_GetAttr(log, n->trace_flags);
    if (flags == NULL) {
        result = -1;
        goto done;
    }
    long value = 0;
    if (flags != Py_None) {
        if (!PyLong_CheckExact(flags) && (PyObject *)Py_TYPE(flags) != enc->flags_type) {
            goto done;
        }
        value = PyLong_AsLong(flags);
        if (value == -1 && PyErr_Occurred()) {
            goto done;
        }
    }
    if (value < 0 || value > 255) {
        goto done;
    }
    char text[4];
    char *start = decimal_digits(text + sizeof(text), value);
    if (set_field(fields, n->f_trace_flags, ascii_text(start, text + sizeof(text) - start)) < 0) {
        result = -1;
        goto done;
    }
    result = 1;
done:
    if (result == 0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            result = -1;
        }
        else {
            PyErr_Clear();
        }
    }
    Py_XDECREF(high);
    Py_XDECREF(flags);
    Py_XDECREF(trace_id);
    Py_XDECREF(span_id);
    return result;
}

/* The attributes dict to read in place: an exact dict, or the inner dict of a BoundedAttributes
 * (a new reference); NULL without an exception when the pure path must read it.
 * BoundedAttributes has no public way to read its items but its ``__iter__``, which copies them
 * under its lock, in Python, per record. Its ``_dict`` is read instead, as the pure path reads it
 * (``_plain_dict`` in flat.py): the GIL is held and no Python code runs (and nothing is allocated
 * that could start the garbage collector) while it is read, so it cannot change under us, which
 * is what the pure path's copy of a mutable one gets too. ``_encode/compiled.py`` checks at import
 * that the SDK's BoundedAttributes still keeps its items there. */
static PyObject *
attributes_dict(Encoder *enc, PyObject *attributes)
{
    if (PyDict_CheckExact(attributes)) {
        Py_INCREF(attributes);
        return attributes;
    }
    if ((PyObject *)Py_TYPE(attributes) != enc->bounded_type) {
        return NULL;
    }
    PyObject *inner = PyObject_GetAttr(attributes, enc->names.dict_);
    if (inner != NULL && !PyDict_CheckExact(inner)) {
        Py_CLEAR(inner);
    }
    return inner;
}

/* ``fields["attributes"]`` and ``fields["dropped_attributes_count"]``: 1 done, 0 not
 * understood, -1 error. ``left`` is the entry's budget left after the body. */
static int
encode_attributes_of(Encoder *enc, PyObject *record, PyObject *log, PyObject *fields, Py_ssize_t left)
{
    Names *n = &enc->names;
    int result = 0;
    PyObject *inner = NULL;
    PyObject *dropped = NULL;
    PyObject *attributes = PyObject_GetAttr(log, n->attributes);
    if (attributes == NULL) {
        return 0;
    }
    int bounded = (PyObject *)Py_TYPE(attributes) == enc->bounded_type;
    if (attributes != Py_None) {
        inner = attributes_dict(enc, attributes);
        if (inner == NULL) {
            goto done;
        }
        if (PyDict_GET_SIZE(inner) > 0) {
            /* The pure path's _flat: at most left // _MIN_PAIR_BYTES items, and JSON that fits. */
            if (left < 0) {
                goto done;
            }
            enc->json.len = 0;
            int status = json_attributes(enc, inner, left / 6);
            if (status != 1) {
                result = status;
                goto done;
            }
            if (enc->json.len > left) {
                goto done; /* the pure path cuts it to the budget */
            }
            if (set_field(fields, n->f_attributes, ascii_text(enc->json.data, enc->json.len)) < 0) {
                result = -1;
                goto done;
            }
        }
    }
    dropped = bounded ? PyObject_GetAttr(attributes, n->dropped)
                      : PyObject_GetAttr(record, n->dropped_attributes);
    if (dropped == NULL || !PyLong_CheckExact(dropped)) {
        goto done;
    }
    int any = PyObject_IsTrue(dropped);
    if (any < 0) {
        goto done;
    }
    if (any && set_field(fields, n->f_dropped_attributes_count, int_text(dropped)) < 0) {
        result = -1;
        goto done;
    }
    result = 1;
done:
    Py_XDECREF(dropped);
    Py_XDECREF(inner);
    Py_DECREF(attributes);
    return result;
}

/* An empty dict with room for an entry's fields (about 20: a record's and its tail's), so it is
 * not resized three times while they are set. ``_PyDict_NewPresized`` is CPython's own (Cython
 * calls it too); where it is gone, a plain dict. */
#define ENTRY_FIELDS 20

static PyObject *
new_fields(void)
{
#if PY_VERSION_HEX < 0x030E0000
    return _PyDict_NewPresized(ENTRY_FIELDS);
#else
    return PyDict_New();
#endif
}

/* ``fields[field] = log.<name>`` when it is a non-empty str the pure path writes as it is
 * (``safe_text``); skipped when None or empty. ``optional``: a missing attribute is None (as
 * ``event_name``, which older SDKs do not have). 1 done, 0 not understood, -1 error. */
static int
text_field(PyObject *fields, PyObject *log, PyObject *name, PyObject *field, int optional)
{
    PyObject *value = optional ? optional_attribute(log, name) : PyObject_GetAttr(log, name);
    if (value == NULL) {
        return -1;
    }
    int status = 1;
    if (value != Py_None) {
        if (!plain_text(value)) {
            status = 0;
        }
        else if (PyUnicode_GET_LENGTH(value) > 0 && PyDict_SetItem(fields, field, value) < 0) {
            status = -1;
        }
    }
    Py_DECREF(value);
    return status;
}

/* The uid of record ``index``: the prefix and 4 base32 characters (``record_uid`` in uid.py). */
static PyObject *
record_uid(Encoder *enc, Py_ssize_t index)
{
    static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    PyObject *uid = PyUnicode_New(enc->uid_prefix_len + 4, 127);
    if (uid == NULL) {
        return NULL;
    }
    char *out = PyUnicode_DATA(uid);
    memcpy(out, enc->uid_prefix, (size_t)enc->uid_prefix_len);
    out += enc->uid_prefix_len;
    size_t value = (size_t)index;
    out[0] = crockford[(value >> 15) & 31];
    out[1] = crockford[(value >> 10) & 31];
    out[2] = crockford[(value >> 5) & 31];
    out[3] = crockford[value & 31];
    return uid;
}

/* The fields of one record, without its tail: RECORD_DONE with ``*out`` set, RECORD_FALLBACK
 * with no exception set, or RECORD_ERROR. Field order is BatchEncoder.encode's. */
static int
encode_record(Encoder *enc, PyObject *record, PyObject *log, Py_ssize_t index, PyObject *now_ns,
              Py_ssize_t budget, PyObject **out)
{
    Names *n = &enc->names;
    int result = RECORD_FALLBACK;
    PyObject *fields = NULL;
    PyObject *stamp = NULL;
    PyObject *observed_attr = NULL;
    PyObject *observed = NULL;
    PyObject *timestamp = NULL;
    PyObject *value = NULL;
    PyObject *body = NULL;

    /* observed = log.observed_timestamp or log.timestamp or now_ns; timestamp = log.timestamp or observed */
    stamp = PyObject_GetAttr(log, n->timestamp);
    observed_attr = stamp != NULL ? PyObject_GetAttr(log, n->observed_timestamp) : NULL;
    if (observed_attr == NULL) {
        goto done;
    }
    int has_timestamp = timestamp_of(stamp, &timestamp);
    int has_observed = timestamp_of(observed_attr, &observed);
    if (has_timestamp < 0 || has_observed < 0) {
        goto done;
    }
    if (!has_observed) {
        observed = has_timestamp ? timestamp : now_ns;
        Py_INCREF(observed);
    }
    if (!has_timestamp) {
        timestamp = observed;
        Py_INCREF(timestamp);
    }
    fields = new_fields();
    if (fields == NULL || PyDict_SetItem(fields, n->f_v, n->one) < 0) {
        goto error;
    }
    if (enc->uid_prefix != NULL && set_field(fields, n->f_uid, record_uid(enc, index)) < 0) {
        goto error;
    }
    if (set_field(fields, n->f_timestamp, int_text(timestamp)) < 0 ||
        set_field(fields, n->f_observed_timestamp, int_text(observed)) < 0) {
        goto error;
    }
    if (!has_timestamp && PyDict_SetItem(fields, n->f_timestamp_unset, n->one) < 0) {
        goto error;
    }

    value = PyObject_GetAttr(log, n->severity_number);
    if (value == NULL) {
        goto done;
    }
    if (value != Py_None && set_field(fields, n->f_severity_number, severity_text_of(enc, value)) < 0) {
        goto done;
    }
    Py_CLEAR(value);
    if (text_field(fields, log, n->severity_text, n->f_severity_text, 0) != 1) {
        goto done;
    }

    /* The body: an exact str the pure path writes as it is (encode_body: not cut, no lone
     * surrogates); anything else is its job. */
    Py_ssize_t body_len = 0;
    body = PyObject_GetAttr(log, n->body);
    if (body == NULL) {
        goto done;
    }
    if (body != Py_None) {
        if (!plain_text(body)) {
            goto done;
        }
        body_len = PyUnicode_GET_LENGTH(body);
        int fits = body_len <= enc->limit && (PyUnicode_IS_ASCII(body) || body_len <= budget);
        if (!fits) {
            goto done;
        }
        if (PyDict_SetItem(fields, n->f_body, body) < 0) {
            goto error;
        }
    }

    int status = encode_span(enc, log, fields);
    if (status != 1) {
        result = status < 0 ? RECORD_ERROR : RECORD_FALLBACK;
        goto done;
    }
    if (text_field(fields, log, n->event_name, n->f_event_name, 1) != 1) {
        goto done;
    }
    status = encode_attributes_of(enc, record, log, fields, budget - body_len);
    if (status != 1) {
        result = status < 0 ? RECORD_ERROR : RECORD_FALLBACK;
        goto done;
    }
    result = RECORD_DONE;
    goto done;
error:
    result = RECORD_ERROR;
done:
    if (result != RECORD_DONE) {
        Py_CLEAR(fields);
    }
    /* An exception from the record's own values means only that the pure path takes it. */
    if (result != RECORD_DONE && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
            result = RECORD_FALLBACK;
        }
        else {
            result = RECORD_ERROR;
        }
    }
    *out = fields;
    Py_XDECREF(stamp);
    Py_XDECREF(observed_attr);
    Py_XDECREF(observed);
    Py_XDECREF(timestamp);
    Py_XDECREF(value);
    Py_XDECREF(body);
    return result;
}

/* The tail of a record: ``tails[(id(resource), id(scope))]``, computed by ``tail(record, out)``
 * on a miss (a new reference to the (fields, entries) tuple), or NULL with an exception set. */
static PyObject *
tail_of(PyObject *record, PyObject *resource, PyObject *scope, PyObject *out, PyObject *tails,
        PyObject *tail)
{
    PyObject *first = PyLong_FromVoidPtr(resource);
    PyObject *second = PyLong_FromVoidPtr(scope);
    PyObject *key = first != NULL && second != NULL ? PyTuple_Pack(2, first, second) : NULL;
    Py_XDECREF(first);
    Py_XDECREF(second);
    if (key == NULL) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(tails, key);
    if (found != NULL) {
        Py_INCREF(found);
    }
    else if (!PyErr_Occurred()) {
        found = PyObject_CallFunctionObjArgs(tail, record, out, NULL);
        if (found != NULL && (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2 ||
                              !PyDict_CheckExact(PyTuple_GET_ITEM(found, 0)) ||
                              !PyList_CheckExact(PyTuple_GET_ITEM(found, 1)))) {
            PyErr_SetString(PyExc_TypeError, "tail() must return a (dict, list) tuple");
            Py_CLEAR(found);
        }
        if (found != NULL && PyDict_SetItem(tails, key, found) < 0) {
            Py_CLEAR(found);
        }
    }
    Py_DECREF(key);
    return found;
}

/* One record, its tail included: RECORD_DONE (appended), RECORD_FALLBACK, RECORD_ERROR. */
static int
encode_one(Encoder *enc, PyObject *record, Py_ssize_t index, PyObject *now_ns, Py_ssize_t budget,
           PyObject *out, PyObject *tails, PyObject *tail)
{
    Names *n = &enc->names;
    PyObject *log = PyObject_GetAttr(record, n->log_record);
    PyObject *resource = log != NULL ? PyObject_GetAttr(record, n->resource) : NULL;
    PyObject *scope = resource != NULL ? PyObject_GetAttr(record, n->instrumentation_scope) : NULL;
    PyObject *found = NULL;
    if (scope != NULL && resource == enc->last_resource && scope == enc->last_scope) {
        found = enc->last_tail;
        Py_INCREF(found);
    }
    else if (scope != NULL) {
        found = tail_of(record, resource, scope, out, tails, tail);
        if (found != NULL) {
            Py_INCREF(resource);
            Py_INCREF(scope);
            Py_INCREF(found);
            Py_XSETREF(enc->last_resource, resource);
            Py_XSETREF(enc->last_scope, scope);
            Py_XSETREF(enc->last_tail, found);
        }
    }
    PyObject *fields = NULL;
    int result = RECORD_ERROR;
    if (found != NULL) {
        result = encode_record(enc, record, log, index, now_ns, budget, &fields);
    }
    if (result == RECORD_DONE) {
        if (PyDict_Update(fields, PyTuple_GET_ITEM(found, 0)) < 0 ||
            PyList_Append(PyTuple_GET_ITEM(found, 1), fields) < 0) {
            result = RECORD_ERROR;
        }
    }
    else if (result == RECORD_ERROR && PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear(); /* the record's attributes or tail raised: the pure path's placeholder */
        result = RECORD_FALLBACK;
    }
    Py_XDECREF(fields);
    Py_XDECREF(found);
    Py_XDECREF(scope);
    Py_XDECREF(resource);
    Py_XDECREF(log);
    return result;
}

static PyObject *
encode_flat(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "encode_flat(types, records, now_ns, uid_prefix, limit, budget, out, tails, "
                        "tail, fallback) takes ten arguments");
        return NULL;
    }
    PyObject *types = args[0];
    PyObject *now_ns = args[2];
    PyObject *prefix = args[3];
    PyObject *out = args[6];
    PyObject *tails = args[7];
    PyObject *tail = args[8];
    PyObject *fallback = args[9];
    if (!PyLong_CheckExact(now_ns) || !PyDict_CheckExact(out) || !PyDict_CheckExact(tails) ||
        !PyTuple_CheckExact(types) || PyTuple_GET_SIZE(types) != 2 ||
        !(prefix == Py_None || PyUnicode_CheckExact(prefix))) {
        PyErr_SetString(PyExc_TypeError, "encode_flat: unexpected argument types");
        return NULL;
    }
    Encoder enc;
    memset(&enc, 0, sizeof(enc));
    enc.limit = PyLong_AsSsize_t(args[4]);
    Py_ssize_t budget = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    enc.bounded_type = PyTuple_GET_ITEM(types, 0);
    enc.flags_type = PyTuple_GET_ITEM(types, 1);
    if (prefix != Py_None) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(prefix) < 0) {
            return NULL;
        }
#endif
        if (!PyUnicode_IS_ASCII(prefix)) {
            PyErr_SetString(PyExc_ValueError, "encode_flat: the uid prefix is not ASCII");
            return NULL;
        }
        enc.uid_prefix = (const char *)PyUnicode_DATA(prefix);
        enc.uid_prefix_len = PyUnicode_GET_LENGTH(prefix);
    }
    /* A snapshot: the callbacks run Python code, which could change a list of records. */
    PyObject *records = PySequence_Tuple(args[1]);
    if (records == NULL) {
        return NULL;
    }
    if (names_init(&enc.names) < 0) {
        Py_DECREF(records);
        return NULL;
    }
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(records); i++) {
        PyObject *record = PyTuple_GET_ITEM(records, i);
        int status = encode_one(&enc, record, i, now_ns, budget, out, tails, tail);
        if (status == RECORD_FALLBACK) {
            PyObject *index = PyLong_FromSsize_t(i);
            PyObject *done = index != NULL ? PyObject_CallFunctionObjArgs(fallback, index, record, NULL) : NULL;
            Py_XDECREF(index);
            status = done != NULL ? RECORD_DONE : RECORD_ERROR;
            Py_XDECREF(done);
        }
        if (status == RECORD_ERROR) {
            goto done;
        }
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    for (int i = 0; i < enc.severities; i++) {
        Py_DECREF(enc.severity_key[i]);
        Py_DECREF(enc.severity_text[i]);
    }
    Py_XDECREF(enc.last_resource);
    Py_XDECREF(enc.last_scope);
    Py_XDECREF(enc.last_tail);
    buffer_discard(&enc.json);
    names_clear(&enc.names);
    Py_DECREF(records);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* I/O that keeps the interpreter lock.                                                        */
/*
 * A healthy server answers a round trip within a millisecond or two. Letting go of the
 * interpreter lock around each send and receive costs more than that whenever another thread is
 * busy in Python: taking the lock back waits for that thread to give it up, up to the switch
 * interval (5 ms by default) each time. These two calls do a socket's work without letting go,
 * waiting at most ``budget`` seconds for the socket to be ready; the caller then does what is left
 * the usual way (socket.sendall, socket.recv), which lets other threads run while the server is
 * slow. Plain sockets only: a TLS socket's bytes are not the protocol's.
 *
 * send_held(fd, data, offset, budget) -> the offset in data up to which it was sent
 * recv_held(fd, size, budget) -> up to size bytes (b"" at the end of the stream), or None when
 *     nothing arrived within budget
 * Socket errors raise OSError. Where this is not built (Windows), nothing is sent or received.
 */

#ifndef _WIN32
#ifdef MSG_NOSIGNAL
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)
#else /* macOS: Python ignores SIGPIPE anyway */
#define SEND_FLAGS MSG_DONTWAIT
#endif

static double
monotonic_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Wait up to ``seconds`` for ``events`` on ``fd`` (lock kept): 1 ready, 0 not, -1 error set. */
static int
wait_ready(int fd, short events, double seconds)
{
    struct pollfd poller = {.fd = fd, .events = events, .revents = 0};
    int ready = poll(&poller, 1, (int)ceil(seconds * 1000.0));
    if (ready < 0) {
        if (errno == EINTR) {
            return 0;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return ready > 0;
}
#endif

static int
held_arguments(PyObject *const *args, int *fd, double *budget, Py_ssize_t budget_at)
{
    long value = PyLong_AsLong(args[0]);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0 || value > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "not a file descriptor");
        return -1;
    }
    *fd = (int)value;
    *budget = PyFloat_AsDouble(args[budget_at]);
    if (*budget == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(*budget >= 0.0) || *budget > 1.0) {
        PyErr_SetString(PyExc_ValueError, "the budget is between 0 and 1 second");
        return -1;
    }
    return 0;
}

static PyObject *
send_held(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    double budget;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "send_held(fd, data, offset, budget)");
        return NULL;
    }
    if (held_arguments(args, &fd, &budget, 3) < 0) {
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[2]);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (offset < 0 || offset > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "offset outside the data");
        return NULL;
    }
#ifndef _WIN32
    double deadline = monotonic_s() + budget;
    while (offset < view.len) {
        ssize_t sent = send(fd, (const char *)view.buf + offset, (size_t)(view.len - offset), SEND_FLAGS);
        if (sent >= 0) {
            offset += sent;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            PyBuffer_Release(&view);
            return NULL;
        }
        double left = deadline - monotonic_s();
        int ready = left > 0 ? wait_ready(fd, POLLOUT, left) : 0;
        if (ready < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (left <= 0) {
            break;
        }
    }
#else
    (void)fd;
    (void)budget;
#endif
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(offset);
}

static PyObject *
recv_held(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    double budget;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "recv_held(fd, size, budget)");
        return NULL;
    }
    if (held_arguments(args, &fd, &budget, 2) < 0) {
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size <= 0 || size > MAX_BULK_LEN) {
        PyErr_SetString(PyExc_ValueError, "size out of range");
        return NULL;
    }
#ifndef _WIN32
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        return NULL;
    }
    double deadline = monotonic_s() + budget;
    for (;;) {
        ssize_t got = recv(fd, PyBytes_AS_STRING(out), (size_t)size, MSG_DONTWAIT);
        if (got >= 0) {
            if (got < size && _PyBytes_Resize(&out, got) < 0) {
                return NULL;
            }
            return out;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            Py_DECREF(out);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        double left = deadline - monotonic_s();
        int ready = left > 0 ? wait_ready(fd, POLLIN, left) : 0;
        if (ready <= 0) {
            Py_DECREF(out);
            if (ready < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
#else
    (void)fd;
    (void)budget;
    Py_RETURN_NONE;
#endif
}

/* ------------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"pack_commands", (PyCFunction)pack_commands, METH_O,
     "pack_commands(commands) -> bytes: every command (a tuple of str/bytes) in one RESP buffer."},
    {"pack_xadds", (PyCFunction)(void (*)(void))pack_xadds, METH_FASTCALL,
     "pack_xadds(entries, trim) -> bytes: one XADD key *trim * field value... per entry."},
    {"entry_sizes", (PyCFunction)(void (*)(void))entry_sizes, METH_FASTCALL,
     "entry_sizes(entries, overhead) -> list[int]: overhead plus the length of each field and value."},
    {"parse_replies", (PyCFunction)(void (*)(void))parse_replies, METH_FASTCALL,
     "parse_replies(data, offset, limit) -> (replies, offset): the whole RESP2 replies in data."},
    {"encode_flat", (PyCFunction)(void (*)(void))encode_flat, METH_FASTCALL,
     "encode_flat(types, records, now_ns, uid_prefix, limit, budget, out, tails, tail, fallback)"
     " -> None: the flat entries of records into out, the records it does not take to fallback."},
    {"send_held", (PyCFunction)(void (*)(void))send_held, METH_FASTCALL,
     "send_held(fd, data, offset, budget) -> offset: send without letting go of the lock."},
    {"recv_held", (PyCFunction)(void (*)(void))recv_held, METH_FASTCALL,
     "recv_held(fd, size, budget) -> bytes | None: receive without letting go of the lock."},
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
