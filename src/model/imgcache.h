/* imgcache.h — each dataset's image list as a model/imgindex.h index,
 * cached by the dataset row's version and kept in step with our own writes.
 *
 * The stored text (datasetv2.images) stays the source of truth: every
 * request asks the database only for the row's version (db_row_version)
 * and uses the index while it matches; a write by another process changes
 * the version, and the next request scans the text again. Our own writes
 * to one image go through imglist_edit(): the engine stores the edit (a
 * splice of the text on SQLite, a jsonb edit on PostgreSQL) and, once the
 * transaction commits, imglist_edit_finish() applies the same edit to the
 * index, so that the next request finds it current.
 *
 * Memory: the indexes held share one byte budget (FRACTAL_IMAGES_CACHE_BYTES,
 * default 512 MiB); past it the least recently used go, and an index larger
 * than the whole budget serves its request and is not kept.
 *
 * Threads: a reader holds the entry's read lock from imglist_get() to
 * imglist_release(); applying an edit takes its write lock. Writers of one
 * dataset in this process are serialised by imglist_write_begin/end (around
 * their transaction), and a reader that finds the index out of date waits
 * for them before scanning again. */
#ifndef IMGCACHE_H
#define IMGCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/sb.h"

typedef struct imglist imglist_t;
struct imgindex;

/* Reads FRACTAL_IMAGES_CACHE_BYTES; -1 with a message in err when it is not
 * a non-negative integer. Called once at start (the default holds until). */
int imgcache_configure(sb_t *err);
/* Bytes held by the cached indexes now (for benchmarks and logs). */
size_t imgcache_bytes(void);

/* The dataset's images (held until imglist_release), or NULL on a database
 * error (message in db_errmsg) or for a missing row or unreadable list. */
imglist_t *imglist_get(db_t *db, int64_t dataset_id);
void imglist_release(imglist_t *l);

/* The lists in the cache now and the bytes they hold (for /metrics). */
void imgcache_stats(size_t *entries, size_t *bytes);

size_t imglist_count(const imglist_t *l);
/* The canonical JSON of image i (not NUL-terminated: use its length). */
const char *imglist_json(const imglist_t *l, size_t i, size_t *len);
const char *imglist_zarr_url(const imglist_t *l, size_t i);
/* The index itself, with a reference of the caller's (imgindex_free when
 * done), and (version not NULL) the row's version it is of ("": not
 * computed, SQLite): what an export answers from, and what a
 * job starts from, where it would scan the text again. The cache never
 * edits an index so shared: an edit goes to a copy (imgindex_clone), so
 * that the holder's stays as it was. */
struct imgindex *imglist_share(const imglist_t *l, char version[64]);
/* The first image with that zarr_url, or -1. */
long imglist_find(const imglist_t *l, const char *zarr_url);
/* Precomputed "attributes" object and "types" list of the whole dataset. */
const char *imglist_attributes(const imglist_t *l);
const char *imglist_types(const imglist_t *l);

/* The type keys of the whole list, numbered 0..imglist_type_count()-1,
 * and the value of type k in image i: 1 true, 0 false, -1 not set. */
size_t imglist_type_count(const imglist_t *l);
const char *imglist_type_key(const imglist_t *l, size_t k);
int imglist_image_type(const imglist_t *l, size_t i, size_t k);

/* A compiled filter for one query. Free with imgfilter_free. */
typedef struct imgindex_filter imgfilter_t;
imgfilter_t *imgfilter_new(const imglist_t *l, json_t *type_filters, json_t *attribute_filters);
int imgfilter_match(const imgfilter_t *f, const imglist_t *l, size_t i);
void imgfilter_free(imgfilter_t *f);

/* ---- writes of one image ----
 * imglist_write_begin(did);  db_begin; lock the row; l = imglist_get(...);
 * imglist_find; imglist_edit(...); db_commit; imglist_edit_finish(db, l, &e, ok);
 * imglist_write_end(did). */
void imglist_write_begin(int64_t dataset_id);
void imglist_write_end(int64_t dataset_id);

typedef struct imglist_edit {
	long at;             /* imgindex.h's edit: at, img */
	char *img;
	sb_t text;           /* the list after the edit */
	size_t from, changed; /* the bytes of it rewritten (imgindex.h) */
	char version[64];    /* the row's version after it ("": the text's) */
	uint64_t gen;        /* the index's edit count it applies to */
	int stored;          /* the database took it */
	uint64_t self;       /* db_self_change_token() inside the transaction */
	int have_self;
} imglist_edit_t;

/* Stores the edit (at, img as in imgindex.h: replace, remove, append) in
 * the dataset's row, inside the caller's transaction. 0, or -1 on a
 * database error (message in db_errmsg); e is filled either way and must
 * go to imglist_edit_finish. */
int imglist_edit(db_t *db, imglist_t *l, long at, const char *img, imglist_edit_t *e);
/* After the transaction (on the same connection): when committed, applies
 * the edit to the index (if nothing replaced it meanwhile), and when no
 * other connection committed since the transaction began, marks the index
 * current at the database's change token, so that the next request need
 * not check the version; then releases l as imglist_release and frees
 * what e holds. */
void imglist_edit_finish(db_t *db, imglist_t *l, imglist_edit_t *e, int committed);

/* ---- a whole list written anew (the job runner) ----
 * After the caller committed a write of the dataset's whole list (on db),
 * caches x (taken) as its index: x is a scan of the text stored, version
 * what db_json_array_edit gave for the write, self the connection's
 * db_self_change_token read inside that transaction before the write
 * (have_self 0 if it has none). Replaces the entry of an older version;
 * an x over the whole budget is freed. A caller that goes on reading x
 * hands imgindex_ref(x) instead (the cache then never edits it in place). */
void imglist_put(db_t *db, int64_t dataset_id, struct imgindex *x, const char *version, int have_self, uint64_t self);

#endif
