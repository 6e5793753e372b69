/* jsonspan.h — the raw text of chosen top-level members of a stored JSON
 * object, found by scanning instead of building the whole tree.
 *
 * The job routes answer three small "dump" objects per job, but the stored
 * workflow dump also holds the whole task list (manifests, args schemas);
 * parsing it with jansson per row was most of a job list's cost. A scan
 * that skips what it does not need reads each byte once and allocates
 * nothing. */
#ifndef JSONSPAN_H
#define JSONSPAN_H

#include <stddef.h>

/* For each key of keys (NULL-terminated; plain ASCII, no escapes), sets
 * vals[k] to the start of its value inside s and lens[k] to its length, or
 * vals[k] to NULL when the object has no such member. The spans point into
 * s (nothing to free). Returns 0, or -1 when s is not a JSON object as far
 * as the scan can tell (then vals and lens are unspecified). */
int json_object_spans(const char *s, const char *const *keys, const char **vals, size_t *lens);

/* The scanner's steps, for other scans (model/imgindex.c): past JSON
 * whitespace; past the one value starting at p (a string, an object or
 * array with everything inside it, or a bare literal), or NULL when the
 * text ends first. s must be NUL-terminated. */
const char *json_skip_ws(const char *p);
const char *json_skip_value(const char *p);
/* The number of elements of the JSON array s (NUL-terminated), 0 when s
 * is another JSON value, or -1 when s is not one JSON value as far as the
 * scan can tell; what SQLite's json_array_length answers, read in one pass
 * without building a tree (db/sqlite.c: a dataset list's image counts). */
long json_array_count(const char *s);

/* The deepest nesting of arrays and objects accepted from outside (a
 * request body, a task manifest): well below jansson's
 * JSON_PARSER_MAX_DEPTH (2048), so that a stored value wrapped into the
 * documents we build around it (a workflow export, a template, a job's
 * workflow dump) can always be read back. */
#define JSON_MAX_INPUT_DEPTH 1000

/* 1 when the JSON text s (n bytes, not necessarily valid) nests arrays and
 * objects deeper than max, with *pos at the bracket that goes past it; else
 * 0. Brackets inside strings do not count. jansson refuses texts deeper
 * than JSON_PARSER_MAX_DEPTH (2048) when it reads them, so that what is
 * stored must stay well below it once wrapped into a larger document. */
int json_text_too_deep(const char *s, size_t n, int max, size_t *pos);

#endif
