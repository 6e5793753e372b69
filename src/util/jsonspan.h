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

#endif
