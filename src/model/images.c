/* images.c — see images.h. */
#include "model/images.h"
#include "model/task.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *zarr_url_normalise(const char *in, const char **why)
{
	while (isspace((unsigned char)*in))
		in++;
	size_t n = strlen(in);
	while (n && isspace((unsigned char)in[n - 1]))
		n--;
	char *s = xstrndup(in, n);
	/* ".." as a path component anywhere */
	for (const char *p = s; (p = strstr(p, "..")); p += 2) {
		int start = p == s || p[-1] == '/';
		int end = p[2] == '\0' || p[2] == '/';
		if (start && end) {
			*why = "String must not contain '/../'.";
			free(s);
			return NULL;
		}
	}
	if (s[0] == '/') {
		sb_t out = SB_INIT;
		/* POSIX normpath keeps exactly two leading slashes */
		if (s[1] == '/' && s[2] != '/')
			sb_addc(&out, '/');
		const char *p = s;
		while (*p) {
			while (*p == '/')
				p++;
			const char *c = p;
			while (*p && *p != '/')
				p++;
			size_t len = (size_t)(p - c);
			if (!len || (len == 1 && c[0] == '.'))
				continue;
			sb_addc(&out, '/');
			sb_add(&out, c, len);
		}
		if (!out.len || (out.len == 1 && out.buf[0] == '/'))
			sb_adds(&out, out.len ? "" : "/");
		free(s);
		return sb_detach(&out);
	}
	if (!strncmp(s, "s3://", 5)) {
		size_t len = strlen(s);
		while (len > 5 && s[len - 1] == '/')
			s[--len] = '\0';
		return s;
	}
	free(s);
	*why = "URLs must begin with '/' or 's3://'.";
	return NULL;
}

int url_is_relative_to(const char *url, const char *base)
{
	int us3 = !strncmp(url, "s3://", 5), bs3 = !strncmp(base, "s3://", 5);
	if (us3 != bs3)
		return 0;
	size_t n = strlen(base);
	if (strncmp(url, base, n))
		return 0;
	return url[n] == '\0' || url[n] == '/' || (n && base[n - 1] == '/');
}

/* realpath() of the longest existing ancestor of the normalised absolute
 * path p, with the components that do not exist appended (malloc'd). */
static char *resolve_existing(const char *p)
{
	size_t n = strlen(p);
	char *head = xstrndup(p, n);
	for (;;) {
		char *real = realpath(head[0] ? head : "/", NULL);
		if (real) {
			sb_t out = SB_INIT;
			sb_adds(&out, real);
			free(real);
			const char *rest = p + strlen(head);
			if (*rest && !(out.len && out.buf[out.len - 1] == '/' && *rest == '/'))
				sb_adds(&out, rest);
			else if (*rest)
				sb_adds(&out, rest + 1);
			free(head);
			return sb_detach(&out);
		}
		char *slash = strrchr(head, '/');
		if (!slash || slash == head) {
			free(head);
			return xstrndup(p, n);
		}
		*slash = '\0';
	}
}

int url_is_really_relative_to(const char *url, const char *base)
{
	if (!url_is_relative_to(url, base))
		return 0;
	if (!strncmp(url, "s3://", 5) || url[0] != '/' || base[0] != '/')
		return 1;
	char *ru = resolve_existing(url), *rb = resolve_existing(base);
	int ok = url_is_relative_to(ru, rb);
	free(ru);
	free(rb);
	return ok;
}

static json_t *loc_add(json_t *loc, const char *key)
{
	json_t *l = json_copy(loc);
	json_array_append_new(l, json_string(key));
	return l;
}

static void value_error(verr_t *e, json_t *loc, const char *msg, json_t *input)
{
	sb_t m = SB_INIT;
	sb_addf(&m, "Value error, %s", msg);
	verr_add(e, "value_error", loc, m.buf, input, json_pack("{s:{}}", "error"));
	sb_release(&m);
}

static json_t *zarr_field(json_t *v, json_t *loc, verr_t *e, int nullable)
{
	if (nullable && json_is_null(v))
		return json_null();
	/* the longest a path may be as historyimagecache's primary key (ours) */
	vfield_t f = { .name = "zarr_url", .type = V_NONEMPTY, .max_length = V_INDEXED_MAX_LENGTH };
	json_t *s = v_value(&f, v, loc, e);
	if (!s)
		return NULL;
	const char *why = NULL;
	char *norm = zarr_url_normalise(json_string_value(s), &why);
	json_decref(s);
	if (!norm) {
		value_error(e, json_incref(loc), why, v);
		return NULL;
	}
	json_t *r = json_string(norm);
	free(norm);
	return r;
}

/* upstream stores images as jsonb: attributes and types come back in
 * jsonb's key order, so we store them in that order on both engines */
static json_t *jsonb_order(json_t *obj)
{
	json_t *out = jsonb_ordered(obj);
	json_decref(obj);
	return out;
}

/* valdict_keys: keys stripped, none empty, none repeated after stripping. */
static json_t *strip_keys(json_t *d, json_t *loc, verr_t *e)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(d, k, v) {
		const char *s = k;
		while (isspace((unsigned char)*s))
			s++;
		size_t n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		char *key = xstrndup(s, n);
		if (!*key || json_object_get(out, key)) {
			char *dump = json_dumps(d, JSON_COMPACT);
			sb_t m = SB_INIT;
			if (!*key)
				sb_adds(&m, "Empty string in keys.");
			else
				sb_addf(&m, "Dictionary contains multiple identical keys: '%s'.", dump);
			value_error(e, json_incref(loc), m.buf, d);
			sb_release(&m);
			free(dump);
			free(key);
			json_decref(out);
			return NULL;
		}
		json_object_set(out, key, v);
		free(key);
	}
	return out;
}

static int scalar_attr(json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

json_t *image_validate(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "model_type", json_incref(loc), "Input should be a valid dictionary or instance of SingleImage", in,
			 json_pack("{s:s}", "class_name", "SingleImage"));
		return NULL;
	}
	size_t before = json_array_size(e->list);
	json_t *out = json_object();
	json_t *zu = json_object_get(in, "zarr_url");
	json_t *l = loc_add(loc, "zarr_url");
	if (!zu)
		verr_add(e, "missing", json_incref(l), "Field required", in, NULL);
	else if ((zu = zarr_field(zu, l, e, 0)))
		json_object_set_new(out, "zarr_url", zu);
	json_decref(l);
	json_t *origin = json_object_get(in, "origin");
	l = loc_add(loc, "origin");
	if (!origin)
		json_object_set_new(out, "origin", json_null());
	else if ((origin = zarr_field(origin, l, e, 1)))
		json_object_set_new(out, "origin", origin);
	json_decref(l);
	json_t *attrs = json_object_get(in, "attributes");
	l = loc_add(loc, "attributes");
	if (!attrs) {
		json_object_set_new(out, "attributes", json_object());
	} else if (!json_is_object(attrs)) {
		verr_add(e, "dict_type", json_incref(l), "Input should be a valid dictionary", attrs, NULL);
	} else {
		const char *k;
		json_t *v;
		int ok = 1;
		json_object_foreach(attrs, k, v) {
			if (!scalar_attr(v)) {
				json_t *kl = loc_add(l, k);
				verr_add(e, json_is_null(v) ? "none_required" : "string_type", kl,
					 "Input should be a valid string, integer, number or boolean", v, NULL);
				ok = 0;
			}
		}
		json_t *stripped = ok ? strip_keys(attrs, l, e) : NULL;
		if (stripped)
			json_object_set_new(out, "attributes", jsonb_order(stripped));
	}
	json_decref(l);
	json_t *types = json_object_get(in, "types");
	l = loc_add(loc, "types");
	if (!types) {
		json_object_set_new(out, "types", json_object());
	} else {
		json_t *t = type_filters_validate(types, l, e);
		if (t)
			json_object_set_new(out, "types", jsonb_order(t));
	}
	json_decref(l);
	if (json_array_size(e->list) != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *type_filters_validate(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", in, NULL);
		return NULL;
	}
	json_t *out = json_object();
	vfield_t f = { .name = "", .type = V_BOOL };
	const char *k;
	json_t *v;
	int ok = 1;
	json_object_foreach(in, k, v) {
		json_t *kl = loc_add(loc, k);
		json_t *b = v_value(&f, v, kl, e);
		json_decref(kl);
		if (!b) {
			ok = 0;
			continue;
		}
		json_object_set_new(out, k, b);
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	json_t *stripped = strip_keys(out, loc, e);
	json_decref(out);
	return stripped;
}

static const char *py_type(json_t *v)
{
	return json_is_boolean(v) ? "bool" : json_is_integer(v) ? "int" : json_is_real(v) ? "float" : "str";
}

json_t *attribute_filters_validate(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", in, NULL);
		return NULL;
	}
	const char *k;
	json_t *v;
	int ok = 1;
	json_object_foreach(in, k, v) {
		json_t *kl = loc_add(loc, k);
		if (!json_is_array(v)) {
			verr_add(e, "list_type", json_incref(kl), "Input should be a valid list", v, NULL);
			ok = 0;
		} else {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) if (!scalar_attr(x)) {
				json_t *il = json_copy(kl);
				json_array_append_new(il, json_integer((json_int_t)i));
				verr_add(e, "string_type", il, "Input should be a valid string, integer, number or boolean", x, NULL);
				ok = 0;
			}
		}
		json_decref(kl);
	}
	if (!ok)
		return NULL;
	json_t *out = strip_keys(in, loc, e);
	if (!out)
		return NULL;
	json_object_foreach(out, k, v) {
		sb_t m = SB_INIT;
		if (json_array_size(v) == 0) {
			sb_addf(&m, "attribute_filters[%s] cannot be an empty list.", k);
		} else {
			const char *t = py_type(json_array_get(v, 0));
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) if (strcmp(py_type(x), t)) {
				char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				sb_addf(&m, "attribute_filters[%s] has values with non-homogeneous types: %s.", k, d);
				free(d);
				break;
			}
		}
		if (m.len) {
			value_error(e, json_incref(loc), m.buf, in);
			sb_release(&m);
			json_decref(out);
			return NULL;
		}
		sb_release(&m);
	}
	return out;
}

static void dump_value(sb_t *out, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	sb_adds(out, s);
	free(s);
}

void image_dump(sb_t *out, json_t *img)
{
	sb_adds(out, "{\"zarr_url\":");
	dump_value(out, json_object_get(img, "zarr_url"));
	sb_adds(out, ",\"origin\":");
	json_t *o = json_object_get(img, "origin");
	dump_value(out, o ? o : json_null());
	sb_adds(out, ",\"attributes\":");
	json_t *a = json_object_get(img, "attributes");
	if (a)
		dump_value(out, a);
	else
		sb_adds(out, "{}");
	sb_adds(out, ",\"types\":");
	json_t *t = json_object_get(img, "types");
	if (t)
		dump_value(out, t);
	else
		sb_adds(out, "{}");
	sb_addc(out, '}');
}

static int kind(json_t *v)
{
	return json_is_string(v) ? 1 : 0; /* numbers and booleans sort together */
}

static int cmp_values(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	if (json_is_string(a))
		return strcmp(json_string_value(a), json_string_value(b));
	double x = json_is_boolean(a) ? json_is_true(a) : json_number_value(a);
	double y = json_is_boolean(b) ? json_is_true(b) : json_number_value(b);
	return (x > y) - (x < y);
}

/* A key identifying a value under Python's == (1, 1.0 and true collide). */
static void value_key(json_t *v, sb_t *key)
{
	sb_reset(key);
	if (json_is_string(v)) {
		sb_addc(key, 's');
		sb_add(key, json_string_value(v), json_string_length(v));
	} else {
		double x = json_is_boolean(v) ? json_is_true(v) : json_number_value(v);
		sb_addf(key, "n%.17g", x);
	}
}

void images_aggregate(json_t *images, sb_t *attributes, sb_t *types)
{
	/* key -> distinct values in first-seen order; hashed sets keep this
	 * linear in the number of images */
	json_t *lists = json_object(), *sets = json_object(), *tseen = json_object();
	sb_t key = SB_INIT;
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(img, "attributes"), k, v) {
			json_t *list = json_object_get(lists, k), *set = json_object_get(sets, k);
			if (!list) {
				list = json_array();
				set = json_object();
				json_object_set_new(lists, k, list);
				json_object_set_new(sets, k, set);
			}
			value_key(v, &key);
			if (!json_object_getn(set, key.buf, key.len)) {
				json_object_setn_new(set, key.buf, key.len, json_true());
				json_array_append(list, v);
			}
		}
		json_object_foreach(json_object_get(img, "types"), k, v)
			if (!json_object_get(tseen, k))
				json_object_set_new(tseen, k, json_true());
	}
	sb_release(&key);
	sb_addc(attributes, '{');
	const char *k;
	json_t *list;
	int first = 1;
	json_object_foreach(lists, k, list) {
		size_t n = json_array_size(list);
		json_t **vals = xmalloc((n ? n : 1) * sizeof(json_t *));
		int homogeneous = 1;
		for (size_t j = 0; j < n; j++) {
			vals[j] = json_array_get(list, j);
			if (kind(vals[j]) != kind(vals[0]))
				homogeneous = 0;
		}
		/* sorted when comparable, else as found (upstream's fallback) */
		if (homogeneous)
			qsort(vals, n, sizeof(json_t *), cmp_values);
		if (!first)
			sb_addc(attributes, ',');
		first = 0;
		sb_add_json_str(attributes, k);
		sb_adds(attributes, ":[");
		for (size_t j = 0; j < n; j++) {
			if (j)
				sb_addc(attributes, ',');
			dump_value(attributes, vals[j]);
		}
		sb_addc(attributes, ']');
		free(vals);
	}
	sb_addc(attributes, '}');
	sb_addc(types, '[');
	json_t *v;
	first = 1;
	json_object_foreach(tseen, k, v) {
		if (!first)
			sb_addc(types, ',');
		first = 0;
		sb_add_json_str(types, k);
	}
	sb_addc(types, ']');
	json_decref(lists);
	json_decref(sets);
	json_decref(tseen);
}
