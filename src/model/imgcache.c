/* imgcache.c — see imgcache.h. */
#include "model/imgcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/filters.h"
#include "model/images.h"

#define CACHE_SLOTS 16

struct img {
	size_t json_off, json_len;
	size_t zarr_off;     /* NUL-terminated in text */
};

struct imglist {
	int64_t dataset_id;
	char version[64];
	int refs;            /* the cache slot counts as one */
	uint64_t last_use;
	size_t bytes;        /* what it holds, roughly (imgcache_stats) */
	size_t n;
	struct img *imgs;
	sb_t text;
	filters_table_t filt; /* types and attribute values, for filters */
	char *agg_attributes, *agg_types;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static imglist_t *slots[CACHE_SLOTS];
static uint64_t clock_tick;

static void list_free(imglist_t *l)
{
	free(l->imgs);
	sb_release(&l->text);
	filters_table_release(&l->filt);
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
	filters_table_init(&l->filt);
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
		filters_table_add(&l->filt, img);
	}
	sb_t attrs = SB_INIT, types = SB_INIT;
	images_aggregate(arr, &attrs, &types);
	l->agg_attributes = sb_detach(&attrs);
	l->agg_types = sb_detach(&types);
	json_decref(arr);
	l->bytes = sizeof(*l) + l->text.alloc + (l->n ? l->n : 1) * sizeof(struct img) + strlen(l->agg_attributes) +
		   strlen(l->agg_types) + l->filt.cap * sizeof(filters_row_t) + l->filt.cap_attrs * sizeof(filters_attr_t) +
		   l->filt.cap_types * sizeof(filters_type_t) + l->filt.text.alloc + l->filt.cap_type_names * sizeof(char *);
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

void imgcache_stats(size_t *entries, size_t *bytes)
{
	*entries = *bytes = 0;
	pthread_mutex_lock(&lock);
	for (int s = 0; s < CACHE_SLOTS; s++)
		if (slots[s]) {
			(*entries)++;
			*bytes += slots[s]->bytes;
		}
	pthread_mutex_unlock(&lock);
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
	return filters_type_count(&l->filt);
}

const char *imglist_type_key(const imglist_t *l, size_t k)
{
	return filters_type_key(&l->filt, k);
}

int imglist_image_type(const imglist_t *l, size_t i, size_t k)
{
	return filters_image_type(&l->filt, i, k);
}

imgfilter_t *imgfilter_new(const imglist_t *l, json_t *type_filters, json_t *attribute_filters)
{
	return filters_compile(&l->filt, type_filters, attribute_filters);
}

int imgfilter_match(const imgfilter_t *f, const imglist_t *l, size_t i)
{
	return filters_compiled_match(f, &l->filt, i);
}

void imgfilter_free(imgfilter_t *f)
{
	filters_compiled_free(f);
}
