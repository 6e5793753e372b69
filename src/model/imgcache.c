/* imgcache.c — see imgcache.h. */
#include "model/imgcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/images.h"

#define CACHE_SLOTS 16

enum { K_NUM, K_STR };

struct attrval {
	size_t key;          /* index into the interned attribute keys */
	int kind;            /* numbers and booleans compare as numbers (Python ==) */
	uint32_t hash;       /* K_STR: str_hash() of the string, compared first */
	double num;
	size_t off, len;     /* K_STR: the string in text */
};

/*
 * FNV-1a of a string value. A filter compares hashes before bytes: the
 * bytes lie scattered in a list's text (a cache miss per image), the hashes
 * next to each other.
 */
static uint32_t str_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

struct typeval {
	size_t key;
	int val;
};

struct img {
	size_t json_off, json_len;
	size_t zarr_off;     /* NUL-terminated in text */
	size_t attr_first, attr_n;
	size_t type_first, type_n;
};

struct imglist {
	int64_t dataset_id;
	char version[64];
	int refs;            /* the cache slot counts as one */
	uint64_t last_use;
	size_t n;
	struct img *imgs;
	sb_t text;
	struct attrval *attrs;
	struct typeval *types;
	json_t *attr_keys;   /* key -> index (read-only once built) */
	json_t *type_keys;
	char *agg_attributes, *agg_types;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static imglist_t *slots[CACHE_SLOTS];
static uint64_t clock_tick;

static void list_free(imglist_t *l)
{
	free(l->imgs);
	sb_release(&l->text);
	free(l->attrs);
	free(l->types);
	json_decref(l->attr_keys);
	json_decref(l->type_keys);
	free(l->agg_attributes);
	free(l->agg_types);
	free(l);
}

/* caller holds the lock */
static void unref_locked(imglist_t *l)
{
	if (--l->refs == 0)
		list_free(l);
}

void imglist_release(imglist_t *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&lock);
	unref_locked(l);
	pthread_mutex_unlock(&lock);
}

static size_t intern(json_t *index, const char *key)
{
	json_t *v = json_object_get(index, key);
	if (v)
		return (size_t)json_integer_value(v);
	size_t id = json_object_size(index);
	json_object_set_new(index, key, json_integer((json_int_t)id));
	return id;
}

static imglist_t *build(int64_t id, const char *version, const char *text)
{
	json_t *arr = json_loads(text, 0, NULL);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return NULL;
	}
	imglist_t *l = xcalloc(1, sizeof(*l));
	l->dataset_id = id;
	snprintf(l->version, sizeof(l->version), "%s", version);
	l->n = json_array_size(arr);
	l->imgs = xcalloc(l->n ? l->n : 1, sizeof(struct img));
	sb_init(&l->text, strlen(text) + l->n * 32);
	l->attr_keys = json_object();
	l->type_keys = json_object();
	size_t nattrs = 0, ntypes = 0, cap_a = 16, cap_t = 16;
	l->attrs = xmalloc(cap_a * sizeof(struct attrval));
	l->types = xmalloc(cap_t * sizeof(struct typeval));
	size_t i;
	json_t *img;
	json_array_foreach(arr, i, img) {
		struct img *m = &l->imgs[i];
		m->json_off = l->text.len;
		image_dump(&l->text, img);
		m->json_len = l->text.len - m->json_off;
		m->zarr_off = l->text.len;
		const char *zu = json_string_value(json_object_get(img, "zarr_url"));
		sb_adds(&l->text, zu ? zu : "");
		sb_addc(&l->text, '\0');
		m->attr_first = nattrs;
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(img, "attributes"), k, v) {
			if (nattrs == cap_a)
				l->attrs = xrealloc(l->attrs, (cap_a *= 2) * sizeof(struct attrval));
			struct attrval *a = &l->attrs[nattrs++];
			a->key = intern(l->attr_keys, k);
			if (json_is_string(v)) {
				a->kind = K_STR;
				a->off = l->text.len;
				a->len = json_string_length(v);
				a->hash = str_hash(json_string_value(v), a->len);
				sb_add(&l->text, json_string_value(v), a->len);
			} else {
				a->kind = K_NUM;
				a->num = json_is_boolean(v) ? json_is_true(v) : json_number_value(v);
			}
		}
		m->attr_n = nattrs - m->attr_first;
		m->type_first = ntypes;
		json_object_foreach(json_object_get(img, "types"), k, v) {
			if (ntypes == cap_t)
				l->types = xrealloc(l->types, (cap_t *= 2) * sizeof(struct typeval));
			l->types[ntypes].key = intern(l->type_keys, k);
			l->types[ntypes].val = json_is_true(v);
			ntypes++;
		}
		m->type_n = ntypes - m->type_first;
	}
	sb_t attrs = SB_INIT, types = SB_INIT;
	images_aggregate(arr, &attrs, &types);
	l->agg_attributes = sb_detach(&attrs);
	l->agg_types = sb_detach(&types);
	json_decref(arr);
	return l;
}

imglist_t *imglist_get(db_t *db, int64_t dataset_id)
{
	char version[64];
	char *text = NULL;
	/* a hit (the usual case) needs no copy of the text: a miss reads it again */
	if (db_row_version(db, "datasetv2", "images", dataset_id, version, NULL) != 1)
		return NULL;
	pthread_mutex_lock(&lock);
	for (int s = 0; s < CACHE_SLOTS; s++) {
		imglist_t *l = slots[s];
		if (l && l->dataset_id == dataset_id && !strcmp(l->version, version)) {
			l->refs++;
			l->last_use = ++clock_tick;
			pthread_mutex_unlock(&lock);
			return l;
		}
	}
	pthread_mutex_unlock(&lock);
	/* read again, with the text: version and text then agree on SQLite */
	if (db_row_version(db, "datasetv2", "images", dataset_id, version, &text) != 1)
		return NULL;
	if (!text) {
		db_res_t *r;
		if (db_exec(db, "SELECT images FROM datasetv2 WHERE id = $1", (db_param_t[]){ P_INT(dataset_id) }, 1, &r))
			return NULL;
		text = xstrdup(db_nrows(r) && db_text(r, 0, 0) ? db_text(r, 0, 0) : "[]");
		db_res_free(r);
	}
	imglist_t *l = build(dataset_id, version, text);
	free(text);
	if (!l)
		return NULL;
	pthread_mutex_lock(&lock);
	int victim = -1;
	for (int s = 0; s < CACHE_SLOTS; s++) {
		if (slots[s] && slots[s]->dataset_id == dataset_id) {
			victim = s; /* an older version of the same list */
			break;
		}
		if (!slots[s] && victim < 0)
			victim = s;
	}
	if (victim < 0) {
		victim = 0;
		for (int s = 1; s < CACHE_SLOTS; s++)
			if (slots[s]->last_use < slots[victim]->last_use)
				victim = s;
	}
	if (slots[victim])
		unref_locked(slots[victim]);
	slots[victim] = l;
	l->refs = 2; /* the slot and the caller */
	l->last_use = ++clock_tick;
	pthread_mutex_unlock(&lock);
	return l;
}

size_t imglist_count(const imglist_t *l)
{
	return l->n;
}

const char *imglist_json(const imglist_t *l, size_t i, size_t *len)
{
	*len = l->imgs[i].json_len;
	return l->text.buf + l->imgs[i].json_off;
}

const char *imglist_zarr_url(const imglist_t *l, size_t i)
{
	return l->text.buf + l->imgs[i].zarr_off;
}

const char *imglist_attributes(const imglist_t *l)
{
	return l->agg_attributes;
}

const char *imglist_types(const imglist_t *l)
{
	return l->agg_types;
}

size_t imglist_type_count(const imglist_t *l)
{
	return json_object_size(l->type_keys);
}

const char *imglist_type_key(const imglist_t *l, size_t k)
{
	const char *key;
	json_t *v;
	json_object_foreach(l->type_keys, key, v)
		if ((size_t)json_integer_value(v) == k)
			return key;
	return NULL;
}

int imglist_image_type(const imglist_t *l, size_t i, size_t k)
{
	const struct img *m = &l->imgs[i];
	for (size_t j = 0; j < m->type_n; j++)
		if (l->types[m->type_first + j].key == k)
			return l->types[m->type_first + j].val;
	return -1;
}

/* ---- filters ---- */

struct tf {
	long key;            /* -1: no image has this type (so it counts as false) */
	int want;
};

struct fval {
	int kind;
	uint32_t hash;
	double num;
	const char *str;
	size_t len;
};

struct af {
	long key;            /* -1: no image has this attribute: nothing matches */
	size_t first, n;     /* into vals */
};

struct imgfilter {
	size_t ntf, naf;
	struct tf *tf;
	struct af *af;
	struct fval *vals;
	json_t *keep;        /* keeps filter strings alive */
};

imgfilter_t *imgfilter_new(const imglist_t *l, json_t *type_filters, json_t *attribute_filters)
{
	imgfilter_t *f = xcalloc(1, sizeof(*f));
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
		json_t *idx = json_object_get(l->type_keys, k);
		f->tf[f->ntf].key = idx ? (long)json_integer_value(idx) : -1;
		f->tf[f->ntf].want = json_is_true(v);
		f->ntf++;
	}
	size_t used = 0;
	json_object_foreach(attribute_filters, k, v) {
		json_t *idx = json_object_get(l->attr_keys, k);
		struct af *a = &f->af[f->naf++];
		a->key = idx ? (long)json_integer_value(idx) : -1;
		a->first = used;
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) {
			struct fval *fv = &f->vals[used++];
			if (json_is_string(x)) {
				fv->kind = K_STR;
				fv->str = json_string_value(x);
				fv->len = json_string_length(x);
				fv->hash = str_hash(fv->str, fv->len);
			} else {
				fv->kind = K_NUM;
				fv->num = json_is_boolean(x) ? json_is_true(x) : json_number_value(x);
			}
		}
		a->n = used - a->first;
	}
	return f;
}

int imgfilter_match(const imgfilter_t *f, const imglist_t *l, size_t i)
{
	const struct img *m = &l->imgs[i];
	for (size_t t = 0; t < f->ntf; t++) {
		int have = 0;
		if (f->tf[t].key >= 0)
			for (size_t j = 0; j < m->type_n; j++)
				if ((long)l->types[m->type_first + j].key == f->tf[t].key) {
					have = l->types[m->type_first + j].val;
					break;
				}
		if (have != f->tf[t].want)
			return 0;
	}
	for (size_t a = 0; a < f->naf; a++) {
		if (f->af[a].key < 0)
			return 0;
		const struct attrval *av = NULL;
		for (size_t j = 0; j < m->attr_n; j++)
			if ((long)l->attrs[m->attr_first + j].key == f->af[a].key) {
				av = &l->attrs[m->attr_first + j];
				break;
			}
		if (!av)
			return 0;
		int found = 0;
		for (size_t k = 0; k < f->af[a].n && !found; k++) {
			const struct fval *fv = &f->vals[f->af[a].first + k];
			if (fv->kind != av->kind)
				continue;
			if (fv->kind == K_NUM)
				found = fv->num == av->num;
			else
				found = fv->hash == av->hash && fv->len == av->len &&
					!memcmp(fv->str, l->text.buf + av->off, av->len);
		}
		if (!found)
			return 0;
	}
	return 1;
}

void imgfilter_free(imgfilter_t *f)
{
	if (!f)
		return;
	free(f->tf);
	free(f->af);
	free(f->vals);
	json_decref(f->keep);
	free(f);
}
