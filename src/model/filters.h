/* filters.h — upstream's image filters and type-filter merge, in one place
 * (fractal_server/images/tools.py: match_filter, merge_type_filters).
 *
 * The rules: an image passes the type filters when, for every key, its type
 * (false when the image lacks it) equals the filter's; it passes the attribute
 * filters when, for every key, its value (None when the image lacks it) is
 * one of the filter's values under Python's == (1 == 1.0 == True, ints and
 * floats compared exactly, strings by content, nothing equal across strings
 * and numbers; validated filters hold no None, so a missing attribute never
 * matches). Merging a task's input types with a workflow task's type
 * filters fails when a key is in both with different values.
 *
 * Here on the JSON tree (the runner, on images it holds as jansson
 * values); the images routes match over a dataset's compact index with the
 * same rules (model/imgindex.c, through filters_value_eq_scalar), and
 * tests/unit/test_imgindex.c checks both against one table of cases.
 * Nothing here knows about HTTP or the database. */
#ifndef FILTERS_H
#define FILTERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sb.h"

/* ---- the JSON tree ---- */

/* match_filter's type part: image is a SingleImage object (its "types" may be
 * missing), type_filters an object of booleans. 1 when it passes, else 0. */
int filters_match_types(json_t *image, json_t *type_filters);
/* match_filter's attribute part: attribute_filters maps keys to lists of
 * scalars. 1 when the image passes, else 0. */
int filters_match_attributes(json_t *image, json_t *attribute_filters);
/* Both parts; either filter may be NULL (no filter). */
int filters_match(json_t *image, json_t *type_filters, json_t *attribute_filters);
/* Python's a == b for two JSON scalars (null == null; lists and objects
 * equal nothing: filters never hold them). */
int filters_value_eq(json_t *a, json_t *b);

/* The same, between a JSON scalar v and a value given by its kind (enum
 * filters_kind below) and payload: i (FILTERS_INT), num (FILTERS_REAL) or
 * the len bytes at s (FILTERS_STR). For indexes that keep values unboxed. */
int filters_value_eq_scalar(json_t *v, int kind, int64_t i, double num, const char *s, size_t len);

/* merge_type_filters: a new object (the caller owns it), task_input_types
 * updated with wftask_type_filters (the task's keys first, in order), or NULL
 * after appending upstream's ValueError text ("Cannot merge type filters
 * `{...}` (from task) and `{...}` (from workflowtask).") to err. Both
 * arguments are borrowed objects. */
json_t *filters_merge_types(json_t *task_input_types, json_t *wftask_type_filters, sb_t *err);

/* The kinds of scalar values, for indexes that keep values unboxed
 * (model/imgindex.c) and filters_value_eq_scalar(). */
enum filters_kind {
	FILTERS_INT,         /* JSON integers and booleans (Python's bool is an int) */
	FILTERS_REAL,
	FILTERS_STR,
	FILTERS_NULL,        /* null, and a missing attribute (Python's None) */
	FILTERS_OTHER,       /* lists, objects: equal to no filter value */
};

#endif
