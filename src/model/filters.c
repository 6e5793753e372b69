/* filters.c — see filters.h. */
#include "model/filters.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"

/* ---- Python's == on scalars ---- */

/* int == float as Python compares them: exactly, not through a double
 * (2**53 + 1 != 2.0**53). */
static int int_eq_real(int64_t i, double d)
{
	if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
		return 0;
	return (int64_t)d == i;
}

static int kind_of(json_t *v)
{
	if (json_is_integer(v) || json_is_boolean(v))
		return FILTERS_INT;
	if (json_is_real(v))
		return FILTERS_REAL;
	if (json_is_string(v))
		return FILTERS_STR;
	if (!v || json_is_null(v))
		return FILTERS_NULL;
	return FILTERS_OTHER;
}

static int64_t int_of(json_t *v)
{
	return json_is_boolean(v) ? json_is_true(v) : (int64_t)json_integer_value(v);
}

int filters_value_eq(json_t *a, json_t *b)
{
	int ka = kind_of(a), kb = kind_of(b);
	if (ka == FILTERS_STR || kb == FILTERS_STR)
		return ka == kb && json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	if (ka == FILTERS_INT && kb == FILTERS_INT)
		return int_of(a) == int_of(b);
	if (ka == FILTERS_REAL && kb == FILTERS_REAL)
		return json_real_value(a) == json_real_value(b);
	if (ka == FILTERS_INT && kb == FILTERS_REAL)
		return int_eq_real(int_of(a), json_real_value(b));
	if (ka == FILTERS_REAL && kb == FILTERS_INT)
		return int_eq_real(int_of(b), json_real_value(a));
	return ka == FILTERS_NULL && kb == FILTERS_NULL;
}

int filters_value_eq_scalar(json_t *v, int kind, int64_t i, double num, const char *s, size_t len)
{
	int kv = kind_of(v);
	switch (kind) {
	case FILTERS_INT:
		return kv == FILTERS_INT ? int_of(v) == i : kv == FILTERS_REAL ? int_eq_real(i, json_real_value(v)) : 0;
	case FILTERS_REAL:
		return kv == FILTERS_REAL ? json_real_value(v) == num : kv == FILTERS_INT ? int_eq_real(int_of(v), num) : 0;
	case FILTERS_STR:
		return kv == FILTERS_STR && json_string_length(v) == len && !memcmp(json_string_value(v), s, len);
	case FILTERS_NULL:
		return kv == FILTERS_NULL;
	default:
		return 0;
	}
}

/* ---- the JSON tree ---- */

int filters_match_types(json_t *image, json_t *type_filters)
{
	json_t *types = json_object_get(image, "types");
	const char *k;
	json_t *v;
	json_object_foreach(type_filters, k, v) {
		json_t *t = json_object_get(types, k);
		if ((t && json_is_true(t)) != json_is_true(v))
			return 0;
	}
	return 1;
}

int filters_match_attributes(json_t *image, json_t *attribute_filters)
{
	json_t *attrs = json_object_get(image, "attributes");
	const char *k;
	json_t *vals;
	json_object_foreach(attribute_filters, k, vals) {
		json_t *a = json_object_get(attrs, k);
		if (!a)
			a = json_null();
		int found = 0;
		size_t i;
		json_t *x;
		json_array_foreach(vals, i, x)
			if (filters_value_eq(a, x)) {
				found = 1;
				break;
			}
		if (!found)
			return 0;
	}
	return 1;
}

int filters_match(json_t *image, json_t *type_filters, json_t *attribute_filters)
{
	return filters_match_types(image, type_filters) && filters_match_attributes(image, attribute_filters);
}

json_t *filters_merge_types(json_t *task_input_types, json_t *wftask_type_filters, sb_t *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(task_input_types, k, v) {
		json_t *o = json_object_get(wftask_type_filters, k);
		if (o && json_is_true(o) != json_is_true(v)) {
			sb_adds(err, "Cannot merge type filters `");
			py_repr_json(err, task_input_types);
			sb_adds(err, "` (from task) and `");
			py_repr_json(err, wftask_type_filters);
			sb_adds(err, "` (from workflowtask).");
			return NULL;
		}
	}
	json_t *m = json_is_object(task_input_types) ? json_copy(task_input_types) : json_object();
	json_object_update(m, wftask_type_filters);
	return m;
}
