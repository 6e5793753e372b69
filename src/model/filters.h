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
 * Two forms of the same matching rules:
 * - on the JSON tree (the runner, on images it holds as jansson values);
 * - compiled, for the images routes over a cached list of up to 100,000
 *   images (model/imgcache.c): a filters_table_t keeps, per image, its types
 *   and attribute values as small structs with interned key numbers, and a
 *   filters_compiled_t resolves a query's keys to those numbers once, so that
 *   matching an image compares integers, doubles and string hashes that lie
 *   next to each other, touching no JSON.
 * tests/unit/test_filters.c checks both forms against one table of cases.
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

/* merge_type_filters: a new object (the caller owns it), task_input_types
 * updated with wftask_type_filters (the task's keys first, in order), or NULL
 * after appending upstream's ValueError text ("Cannot merge type filters
 * `{...}` (from task) and `{...}` (from workflowtask).") to err. Both
 * arguments are borrowed objects. */
json_t *filters_merge_types(json_t *task_input_types, json_t *wftask_type_filters, sb_t *err);

/* ---- compiled ---- */

enum filters_kind {
	FILTERS_INT,         /* JSON integers and booleans (Python's bool is an int) */
	FILTERS_REAL,
	FILTERS_STR,
	FILTERS_NULL,        /* null, and a missing attribute (Python's None) */
	FILTERS_OTHER,       /* lists, objects: equal to no filter value */
};

/* One attribute value of an image in the table. */
typedef struct filters_attr {
	uint32_t key;        /* the interned attribute key */
	uint8_t kind;        /* enum filters_kind */
	uint32_t hash;       /* FILTERS_STR: compared before the bytes */
	uint32_t len;        /* FILTERS_STR: length in bytes */
	union {
		int64_t i;           /* FILTERS_INT */
		double num;          /* FILTERS_REAL */
		size_t off;          /* FILTERS_STR: offset of the bytes in the table's text */
	} v;
} filters_attr_t;

typedef struct filters_type {
	uint32_t key;        /* the interned type key */
	int val;             /* 1 true, 0 false */
} filters_type_t;

typedef struct filters_row {
	size_t attr_first, type_first;
	uint32_t attr_n, type_n;
} filters_row_t;

/* The filter-relevant part of a list of images, read-only once built, so that
 * threads may share it. Fields are the table's own: read them through the
 * functions below. */
typedef struct filters_table {
	size_t n, cap;
	filters_row_t *rows;
	size_t nattrs, cap_attrs;
	filters_attr_t *attrs;
	size_t ntypes, cap_types;
	filters_type_t *types;
	sb_t text;           /* attribute strings, back to back */
	json_t *attr_keys;   /* key -> integer index */
	json_t *type_keys;
	char **type_names;   /* index -> key */
	size_t ntype_names, cap_type_names;
} filters_table_t;

void filters_table_init(filters_table_t *t);
/* Appends one image (borrowed; only its "attributes" and "types" are read). */
void filters_table_add(filters_table_t *t, json_t *image);
void filters_table_release(filters_table_t *t);

size_t filters_table_count(const filters_table_t *t);
/* The type keys of all images, numbered 0..filters_type_count()-1 in order
 * of first appearance; the value of type k in image i: 1, 0, or -1 unset. */
size_t filters_type_count(const filters_table_t *t);
const char *filters_type_key(const filters_table_t *t, size_t k);
int filters_image_type(const filters_table_t *t, size_t i, size_t k);

/* A query's filters resolved against one table (either filter may be NULL).
 * The result holds references to the filters, not to the table, but is only
 * meaningful with the table it was compiled for. Free with
 * filters_compiled_free (NULL is fine). */
typedef struct filters_compiled filters_compiled_t;
filters_compiled_t *filters_compile(const filters_table_t *t, json_t *type_filters, json_t *attribute_filters);
/* 1 when image i of t passes, else 0: the same answer as filters_match() on
 * the image the row was built from. */
int filters_compiled_match(const filters_compiled_t *f, const filters_table_t *t, size_t i);
void filters_compiled_free(filters_compiled_t *f);

#endif
