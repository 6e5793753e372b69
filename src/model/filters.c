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

/* ---- compiled: the table ---- */

/*
 * FNV-1a of a string value. A filter compares hashes before bytes: the
 * hashes lie next to each other in the attrs array, the bytes elsewhere.
 */
static uint32_t str_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

void filters_table_init(filters_table_t *t)
{
	memset(t, 0, sizeof(*t));
	sb_init(&t->text, 0);
	t->attr_keys = json_object();
	t->type_keys = json_object();
}

void filters_table_release(filters_table_t *t)
{
	free(t->rows);
	free(t->attrs);
	free(t->types);
	sb_release(&t->text);
	json_decref(t->attr_keys);
	json_decref(t->type_keys);
	for (size_t k = 0; k < t->ntype_names; k++)
		free(t->type_names[k]);
	free(t->type_names);
	memset(t, 0, sizeof(*t));
}

static uint32_t intern(json_t *index, const char *key)
{
	json_t *v = json_object_get(index, key);
	if (v)
		return (uint32_t)json_integer_value(v);
	size_t id = json_object_size(index);
	json_object_set_new(index, key, json_integer((json_int_t)id));
	return (uint32_t)id;
}

#define GROW(arr, n, cap)                                                   \
	do {                                                                \
		if ((n) == (cap)) {                                         \
			(cap) = (cap) ? 2 * (cap) : 16;                     \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));    \
		}                                                           \
	} while (0)

void filters_table_add(filters_table_t *t, json_t *image)
{
	GROW(t->rows, t->n, t->cap);
	filters_row_t *r = &t->rows[t->n++];
	r->attr_first = t->nattrs;
	r->type_first = t->ntypes;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(image, "attributes"), k, v) {
		GROW(t->attrs, t->nattrs, t->cap_attrs);
		filters_attr_t *a = &t->attrs[t->nattrs++];
		memset(a, 0, sizeof(*a));
		a->key = intern(t->attr_keys, k);
		a->kind = (uint8_t)kind_of(v);
		if (a->kind == FILTERS_INT) {
			a->v.i = int_of(v);
		} else if (a->kind == FILTERS_REAL) {
			a->v.num = json_real_value(v);
		} else if (a->kind == FILTERS_STR) {
			a->len = (uint32_t)json_string_length(v);
			a->hash = str_hash(json_string_value(v), a->len);
			a->v.off = t->text.len;
			sb_add(&t->text, json_string_value(v), a->len);
		}
	}
	r->attr_n = (uint32_t)(t->nattrs - r->attr_first);
	json_object_foreach(json_object_get(image, "types"), k, v) {
		GROW(t->types, t->ntypes, t->cap_types);
		uint32_t key = intern(t->type_keys, k);
		if (key == t->ntype_names) {
			GROW(t->type_names, t->ntype_names, t->cap_type_names);
			t->type_names[t->ntype_names++] = xstrdup(k);
		}
		t->types[t->ntypes].key = key;
		t->types[t->ntypes].val = json_is_true(v);
		t->ntypes++;
	}
	r->type_n = (uint32_t)(t->ntypes - r->type_first);
}

size_t filters_table_count(const filters_table_t *t)
{
	return t->n;
}

size_t filters_type_count(const filters_table_t *t)
{
	return t->ntype_names;
}

const char *filters_type_key(const filters_table_t *t, size_t k)
{
	return k < t->ntype_names ? t->type_names[k] : NULL;
}

int filters_image_type(const filters_table_t *t, size_t i, size_t k)
{
	const filters_row_t *r = &t->rows[i];
	for (uint32_t j = 0; j < r->type_n; j++)
		if (t->types[r->type_first + j].key == k)
			return t->types[r->type_first + j].val;
	return -1;
}

/* ---- compiled: a query ---- */

struct tf {
	long key;            /* -1: no image has this type (so it counts as false) */
	int want;
};

struct fval {
	int kind;
	uint32_t hash;
	int64_t i;
	double num;
	const char *str;
	size_t len;
};

struct af {
	long key;            /* -1: no image has this attribute */
	size_t first, n;     /* into vals */
	int has_null;        /* a missing attribute (None) matches */
};

struct filters_compiled {
	size_t ntf, naf;
	struct tf *tf;
	struct af *af;
	struct fval *vals;
	json_t *keep;        /* keeps the filters' strings alive */
};

filters_compiled_t *filters_compile(const filters_table_t *t, json_t *type_filters, json_t *attribute_filters)
{
	filters_compiled_t *f = xcalloc(1, sizeof(*f));
	f->keep = json_pack("[O?,O?]", type_filters, attribute_filters);
	f->tf = xcalloc(json_object_size(type_filters) + 1, sizeof(struct tf));
	f->af = xcalloc(json_object_size(attribute_filters) + 1, sizeof(struct af));
	size_t nvals = 0;
	const char *k;
	json_t *v;
	json_object_foreach(attribute_filters, k, v)
		nvals += json_array_size(v);
	f->vals = xcalloc(nvals + 1, sizeof(struct fval));
	json_object_foreach(type_filters, k, v) {
		json_t *idx = json_object_get(t->type_keys, k);
		f->tf[f->ntf].key = idx ? (long)json_integer_value(idx) : -1;
		f->tf[f->ntf].want = json_is_true(v);
		f->ntf++;
	}
	size_t used = 0;
	json_object_foreach(attribute_filters, k, v) {
		json_t *idx = json_object_get(t->attr_keys, k);
		struct af *a = &f->af[f->naf++];
		a->key = idx ? (long)json_integer_value(idx) : -1;
		a->first = used;
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) {
			struct fval *fv = &f->vals[used++];
			fv->kind = kind_of(x);
			if (fv->kind == FILTERS_INT) {
				fv->i = int_of(x);
			} else if (fv->kind == FILTERS_REAL) {
				fv->num = json_real_value(x);
			} else if (fv->kind == FILTERS_STR) {
				fv->str = json_string_value(x);
				fv->len = json_string_length(x);
				fv->hash = str_hash(fv->str, fv->len);
			} else if (fv->kind == FILTERS_NULL) {
				a->has_null = 1;
			}
		}
		a->n = used - a->first;
	}
	return f;
}

static int value_eq(const struct fval *fv, const filters_attr_t *av, const char *text)
{
	switch (av->kind) {
	case FILTERS_INT:
		return fv->kind == FILTERS_INT ? fv->i == av->v.i
		     : fv->kind == FILTERS_REAL ? int_eq_real(av->v.i, fv->num) : 0;
	case FILTERS_REAL:
		return fv->kind == FILTERS_REAL ? fv->num == av->v.num
		     : fv->kind == FILTERS_INT ? int_eq_real(fv->i, av->v.num) : 0;
	case FILTERS_STR:
		return fv->kind == FILTERS_STR && fv->hash == av->hash && fv->len == av->len &&
		       !memcmp(fv->str, text + av->v.off, av->len);
	case FILTERS_NULL:
		return fv->kind == FILTERS_NULL;
	default:
		return 0;
	}
}

int filters_compiled_match(const filters_compiled_t *f, const filters_table_t *t, size_t i)
{
	const filters_row_t *r = &t->rows[i];
	/* indexes, not base + offset: a table whose images have no types (or
	 * no attributes) has a NULL array, and NULL + 0 is undefined in C */
	for (size_t n = 0; n < f->ntf; n++) {
		int have = 0;
		if (f->tf[n].key >= 0)
			for (uint32_t j = 0; j < r->type_n; j++)
				if ((long)t->types[r->type_first + j].key == f->tf[n].key) {
					have = t->types[r->type_first + j].val;
					break;
				}
		if (have != f->tf[n].want)
			return 0;
	}
	for (size_t a = 0; a < f->naf; a++) {
		const filters_attr_t *av = NULL;
		if (f->af[a].key >= 0)
			for (uint32_t j = 0; j < r->attr_n; j++)
				if ((long)t->attrs[r->attr_first + j].key == f->af[a].key) {
					av = &t->attrs[r->attr_first + j];
					break;
				}
		if (!av) {
			if (!f->af[a].has_null)
				return 0;
			continue;
		}
		int found = 0;
		for (size_t k = 0; k < f->af[a].n && !found; k++)
			found = value_eq(&f->vals[f->af[a].first + k], av, t->text.buf);
		if (!found)
			return 0;
	}
	return 1;
}

void filters_compiled_free(filters_compiled_t *f)
{
	if (!f)
		return;
	free(f->tf);
	free(f->af);
	free(f->vals);
	json_decref(f->keep);
	free(f);
}
