/* imgcache.h — parsed image lists, cached by the dataset row's version.
 *
 * Parsing a dataset's images (one JSON array of up to 100,000 objects) is
 * the cost of every images request; the list changes far less often than
 * it is read. So each request asks the database only for the row's version
 * (db_row_version) and reuses a compact, read-only copy while it matches:
 * every image kept as its canonical JSON text (SingleImage field order, ready
 * to copy into an answer) plus what filters need (a filters_table_t of
 * model/filters.h: types and attribute values with interned keys), and the
 * dataset-wide attribute and type aggregates
 * precomputed. Entries are shared by request threads without copying; a
 * reference count keeps an entry alive while a request uses it. */
#ifndef IMGCACHE_H
#define IMGCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/sb.h"

typedef struct imglist imglist_t;

/* The dataset's images (a new reference; release with imglist_release), or
 * NULL on a database error (message in db_errmsg) or for a missing row. */
imglist_t *imglist_get(db_t *db, int64_t dataset_id);
void imglist_release(imglist_t *l);

/* The lists in the cache now and the bytes they hold (for /metrics). */
void imgcache_stats(size_t *entries, size_t *bytes);

size_t imglist_count(const imglist_t *l);
/* The canonical JSON of image i (not NUL-terminated: use its length). */
const char *imglist_json(const imglist_t *l, size_t i, size_t *len);
const char *imglist_zarr_url(const imglist_t *l, size_t i);
/* Precomputed "attributes" object and "types" list of the whole dataset. */
const char *imglist_attributes(const imglist_t *l);
const char *imglist_types(const imglist_t *l);

/* The type keys of the whole list, numbered 0..imglist_type_count()-1,
 * and the value of type k in image i: 1 true, 0 false, -1 not set. */
size_t imglist_type_count(const imglist_t *l);
const char *imglist_type_key(const imglist_t *l, size_t k);
int imglist_image_type(const imglist_t *l, size_t i, size_t k);

/* A compiled filter for one query (model/filters.h's compiled form, over
 * the list's filters table). Free with imgfilter_free. */
typedef struct filters_compiled imgfilter_t;
imgfilter_t *imgfilter_new(const imglist_t *l, json_t *type_filters, json_t *attribute_filters);
int imgfilter_match(const imgfilter_t *f, const imglist_t *l, size_t i);
void imgfilter_free(imgfilter_t *f);

#endif
