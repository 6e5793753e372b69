/* imgcache.c — see imgcache.h. */
#include "model/imgcache.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"
#include "model/imgindex.h"
#include "util/log.h"

#define MAX_ENTRIES 256
#define WRITE_STRIPES 64

struct imglist {
	int64_t dataset_id;
	/* the row's db_row_version when the index was found current; ""
	 * while it is that of the index's text, not yet computed (after our
	 * own edits on SQLite, where it is a hash of the whole text): see
	 * version_of */
	char version[64];
	uint64_t gen;        /* edits applied (under rw's write lock) */
	int refs;            /* under lock; the cache counts as one while cached */
	int cached;
	uint64_t last_use;
	uint64_t token;      /* db_change_token() when last found current */
	int token_ok;
	size_t bytes;        /* as counted in total */
	pthread_rwlock_t rw; /* readers vs. applying an edit */
	imgindex_t *x;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static imglist_t *entries[MAX_ENTRIES];
static size_t nentries, total;
static uint64_t clock_tick;
static size_t budget = (size_t)512 << 20;

static pthread_mutex_t stripes[WRITE_STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;
static __thread int64_t writing_did;

static void stripes_init(void)
{
	for (int i = 0; i < WRITE_STRIPES; i++)
		pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe(int64_t did)
{
	pthread_once(&stripes_once, stripes_init);
	return &stripes[(uint64_t)did % WRITE_STRIPES];
}

int imgcache_configure(sb_t *err)
{
	unsigned long long v = budget;
	if (settings_uint("FRACTAL_IMAGES_CACHE_BYTES", &v, err))
		return -1;
	pthread_mutex_lock(&lock);
	budget = (size_t)v;
	pthread_mutex_unlock(&lock);
	return 0;
}

void imgcache_stats(size_t *n, size_t *bytes)
{
	pthread_mutex_lock(&lock);
	*n = nentries;
	*bytes = total;
	pthread_mutex_unlock(&lock);
}

size_t imgcache_bytes(void)
{
	pthread_mutex_lock(&lock);
	size_t n = total;
	pthread_mutex_unlock(&lock);
	return n;
}

static void entry_free(imglist_t *l)
{
	imgindex_free(l->x);
	pthread_rwlock_destroy(&l->rw);
	free(l);
}

/* caller holds the lock */
static void unref_locked(imglist_t *l)
{
	if (--l->refs == 0)
		entry_free(l);
}

static void uncache_locked(size_t k)
{
	imglist_t *l = entries[k];
	total -= l->bytes;
	l->cached = 0;
	entries[k] = entries[--nentries];
	unref_locked(l);
}

/* the least recently used go until the budget holds (keep stays) */
static void evict_locked(const imglist_t *keep)
{
	while (total > budget || nentries == MAX_ENTRIES) {
		long victim = -1;
		for (size_t k = 0; k < nentries; k++)
			if (entries[k] != keep && (victim < 0 || entries[k]->last_use < entries[victim]->last_use))
				victim = (long)k;
		if (victim < 0)
			return;
		uncache_locked((size_t)victim);
	}
}

/* The cached entry of that version (or, version NULL, found current at
 * change token tok), with a new reference, or NULL. A token read before
 * the version was checked (have_tok) is remembered on a hit. An entry
 * whose version is not yet computed ("") has it computed here from its
 * text (db_text_version), outside the cache's lock: the one pass over
 * the text that our own edits spared, paid only when another connection
 * has committed since. */
static imglist_t *lookup(db_t *db, int64_t did, const char *version, int have_tok, uint64_t tok)
{
	imglist_t *found = NULL;
	int hit = 0;
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < nentries; k++) {
		imglist_t *l = entries[k];
		if (l->dataset_id != did)
			continue;
		if (!version ? l->token_ok && l->token == tok : !l->version[0] || !strcmp(l->version, version)) {
			found = l;
			found->refs++;
			hit = !version || l->version[0];
		}
		break;
	}
	if (found && !hit) {
		pthread_mutex_unlock(&lock);
		char v[64];
		pthread_rwlock_rdlock(&found->rw);
		size_t len;
		const char *t = imgindex_text(found->x, &len);
		int rc = db_text_version(db, t, len, v);
		uint64_t gen = found->gen;
		pthread_rwlock_unlock(&found->rw);
		pthread_mutex_lock(&lock);
		if (rc == 0 && !found->version[0] && found->gen == gen)
			snprintf(found->version, sizeof(found->version), "%s", v);
		hit = rc == 0 && !strcmp(v, version);
		if (!hit) {
			unref_locked(found);
			found = NULL;
		}
	}
	if (found) {
		found->last_use = ++clock_tick;
		if (version && have_tok)
			found->token = tok, found->token_ok = 1;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

/* Caches l (replacing an older entry of its dataset) unless it alone is
 * over the budget. */
static void insert(imglist_t *l)
{
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < nentries; k++)
		if (entries[k]->dataset_id == l->dataset_id) {
			uncache_locked(k);
			break;
		}
	if (l->bytes <= budget) {
		evict_locked(NULL);
		entries[nentries++] = l;
		l->cached = 1;
		l->refs++;
		l->last_use = ++clock_tick;
		total += l->bytes;
		evict_locked(l);
	}
	pthread_mutex_unlock(&lock);
}

/* A new entry for x (taken), cached by insert(); one reference is the
 * caller's. */
static imglist_t *entry_new(int64_t did, imgindex_t *x, const char *version, int token_ok, uint64_t tok)
{
	imglist_t *l = xcalloc(1, sizeof(*l));
	l->dataset_id = did;
	snprintf(l->version, sizeof(l->version), "%s", version);
	l->refs = 1;
	l->x = x;
	l->token = tok;
	l->token_ok = token_ok;
	l->bytes = imgindex_bytes(x) + sizeof(*l);
	pthread_rwlock_init(&l->rw, NULL);
	insert(l);
	return l;
}

static imglist_t *build(db_t *db, int64_t did, int have_tok, uint64_t tok)
{
	char version[64];
	char *text = NULL;
	int rc = db_row_version(db, "datasetv2", "images", did, version, &text);
	if (rc != 1) {
		free(text);
		return NULL;
	}
	/* a writer of this process may have just applied its edit */
	imglist_t *l = lookup(db, did, version, have_tok, tok);
	if (l) {
		free(text);
		return l;
	}
	sb_t err = SB_INIT;
	/* the text read becomes the index's (no copy, when it is ours) */
	size_t len = strlen(text);
	imgindex_t *x = imgindex_build_take(text, len, &err);
	/* the index this one replaces was let go of before the scan: what
	 * of it malloc's heap kept (blocks under its mmap threshold) goes
	 * back, else at 10^6 images some 110 MB of it stay resident */
	if (len > (size_t)16 << 20)
		malloc_trim(0);
	if (!x) {
		log_error("dataset %lld: %s", (long long)did, err.buf);
		sb_release(&err);
		return NULL;
	}
	return entry_new(did, x, version, have_tok, tok);
}

/* Lets go of the cache's reference to did's entry when it is of another
 * version than the row's (version), before a scan builds the new one: at
 * 10^6 images the old index (about 350 MB) held through the scan was most of
 * the peak of the first query after another process's write. A request
 * still reading the old entry keeps it until it is done. */
static void uncache_stale(int64_t did, const char *version)
{
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < nentries; k++)
		if (entries[k]->dataset_id == did) {
			if (entries[k]->version[0] && strcmp(entries[k]->version, version))
				uncache_locked(k);
			break;
		}
	pthread_mutex_unlock(&lock);
}

static int have_entry(int64_t did)
{
	int found = 0;
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < nentries && !found; k++)
		found = entries[k]->dataset_id == did;
	pthread_mutex_unlock(&lock);
	return found;
}

imglist_t *imglist_get(db_t *db, int64_t dataset_id)
{
	/* nothing committed anywhere since the index was last found current:
	 * it still is (SQLite, where the version costs a read of the text) */
	uint64_t tok = 0;
	int have_tok = db_change_token(db, &tok) == 0;
	imglist_t *l = have_tok ? lookup(db, dataset_id, NULL, 1, tok) : NULL;
	if (l) {
		pthread_rwlock_rdlock(&l->rw);
		return l;
	}
	/* with no entry for the dataset, the version alone is not read: the
	 * scan reads it with the text (at 10^6 images a read of the text and
	 * its hash cost about as much as the scan) */
	char version[64];
	if (have_entry(dataset_id)) {
		if (db_row_version(db, "datasetv2", "images", dataset_id, version, NULL) != 1)
			return NULL;
		l = lookup(db, dataset_id, version, have_tok, tok);
		if (!l)
			uncache_stale(dataset_id, version);
	}
	if (!l) {
		/* out of date or absent: scan again, but after any writer of
		 * this process has applied its edit (unless that writer is us) */
		int mine = writing_did == dataset_id;
		if (!mine)
			pthread_mutex_lock(stripe(dataset_id));
		l = build(db, dataset_id, have_tok, tok);
		if (!mine)
			pthread_mutex_unlock(stripe(dataset_id));
		if (!l)
			return NULL;
	}
	pthread_rwlock_rdlock(&l->rw);
	return l;
}

void imglist_release(imglist_t *l)
{
	if (!l)
		return;
	pthread_rwlock_unlock(&l->rw);
	pthread_mutex_lock(&lock);
	unref_locked(l);
	pthread_mutex_unlock(&lock);
}

size_t imglist_count(const imglist_t *l)
{
	return imgindex_count(l->x);
}

const char *imglist_json(const imglist_t *l, size_t i, size_t *len)
{
	return imgindex_json(l->x, i, len);
}

imgindex_t *imglist_share(const imglist_t *l, char version[64])
{
	if (version) {
		pthread_mutex_lock(&lock);
		snprintf(version, 64, "%s", l->version);
		pthread_mutex_unlock(&lock);
	}
	return imgindex_ref(l->x);
}

const char *imglist_zarr_url(const imglist_t *l, size_t i)
{
	return imgindex_zarr_url(l->x, i);
}

long imglist_find(const imglist_t *l, const char *zarr_url)
{
	return imgindex_find(l->x, zarr_url);
}

const char *imglist_attributes(const imglist_t *l)
{
	return imgindex_attributes(l->x);
}

const char *imglist_types(const imglist_t *l)
{
	return imgindex_types(l->x);
}

size_t imglist_type_count(const imglist_t *l)
{
	return imgindex_type_count(l->x);
}

const char *imglist_type_key(const imglist_t *l, size_t k)
{
	return imgindex_type_key(l->x, k);
}

int imglist_image_type(const imglist_t *l, size_t i, size_t k)
{
	return imgindex_image_type(l->x, i, k);
}

imgfilter_t *imgfilter_new(const imglist_t *l, json_t *type_filters, json_t *attribute_filters)
{
	return imgindex_filter_new(l->x, type_filters, attribute_filters);
}

int imgfilter_match(const imgfilter_t *f, const imglist_t *l, size_t i)
{
	return imgindex_filter_match(f, l->x, i);
}

void imgfilter_free(imgfilter_t *f)
{
	imgindex_filter_free(f);
}

/* ---- writes ---- */

void imglist_write_begin(int64_t dataset_id)
{
	pthread_mutex_lock(stripe(dataset_id));
	writing_did = dataset_id;
}

void imglist_write_end(int64_t dataset_id)
{
	writing_did = 0;
	pthread_mutex_unlock(stripe(dataset_id));
}

int imglist_edit(db_t *db, imglist_t *l, long at, const char *img, imglist_edit_t *e)
{
	memset(e, 0, sizeof(*e));
	sb_init(&e->text, 0);
	e->at = at;
	e->img = img ? xstrdup(img) : NULL;
	e->gen = l->gen;
	e->from = imgindex_splice_text(l->x, at, img, &e->text, &e->changed);
	size_t len;
	imgindex_text(l->x, &len);
	/* inside the transaction nobody else commits (SQLite's write lock) */
	e->have_self = db_self_change_token(db, &e->self) == 0;
	int rc = db_json_array_edit(db, "datasetv2", "images", l->dataset_id, at, img, e->text.buf,
				    e->changed == (size_t)-1 ? e->text.len : len, e->from, e->changed, e->version);
	e->stored = rc == 0;
	return rc;
}

void imglist_edit_finish(db_t *db, imglist_t *l, imglist_edit_t *e, int committed)
{
	pthread_rwlock_unlock(&l->rw);
	if (committed && e->stored) {
		/* the database's token now, then whether any other connection
		 * committed since our transaction began: if none did, the
		 * database is what our edit made it at that token */
		uint64_t tok = 0, self = 0;
		int current = e->have_self && db_change_token(db, &tok) == 0 && db_self_change_token(db, &self) == 0 &&
			      self == e->self;
		pthread_rwlock_wrlock(&l->rw);
		/* otherwise the version stays the old one, and the next
		 * request scans the stored text again */
		int applied = 0;
		if (l->gen == e->gen) {
			/* a running job or an export reads a shared index: the
			 * edit goes to a copy, which the entry keeps (imgindex.h) */
			imgindex_t *x = imgindex_shared(l->x) ? imgindex_clone(l->x) : l->x;
			applied = !imgindex_apply(x, e->at, e->img, &e->text, e->from, e->changed);
			if (x != l->x) {
				imgindex_free(applied ? l->x : x);
				if (applied)
					l->x = x;
			}
		}
		if (applied) {
			pthread_mutex_lock(&lock);
			l->gen++;
			snprintf(l->version, sizeof(l->version), "%s", e->version);
			pthread_mutex_unlock(&lock);
		}
		pthread_mutex_lock(&lock);
		l->token_ok = applied && current;
		l->token = tok;
		pthread_mutex_unlock(&lock);
		size_t bytes = imgindex_bytes(l->x) + sizeof(*l);
		pthread_rwlock_unlock(&l->rw);
		pthread_mutex_lock(&lock);
		if (l->cached) {
			total = total - l->bytes + bytes;
			l->bytes = bytes;
			evict_locked(l);
			if (l->bytes > budget)
				for (size_t k = 0; k < nentries; k++)
					if (entries[k] == l) {
						uncache_locked(k);
						break;
					}
		}
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_lock(&lock);
	unref_locked(l);
	pthread_mutex_unlock(&lock);
	free(e->img);
	sb_release(&e->text);
}

void imglist_put(db_t *db, int64_t did, imgindex_t *x, const char *version, int have_self, uint64_t self)
{
	/* as imglist_edit_finish: current at the token now when no other
	 * connection committed since the write */
	uint64_t tok = 0, now = 0;
	int current = have_self && db_change_token(db, &tok) == 0 && db_self_change_token(db, &now) == 0 && now == self;
	imglist_t *l = entry_new(did, x, version, current, tok);
	pthread_mutex_lock(&lock);
	unref_locked(l);
	pthread_mutex_unlock(&lock);
}
