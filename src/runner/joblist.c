/* joblist.c — the image list of a running job (upstream's tmp_images), as
 * a model/imgindex.h index rather than a parsed tree.
 *
 * The job starts from the images cache's index of the list, shared with
 * it (imglist_share; imgindex.h's copy-on-write: an API edit made while
 * the job holds it goes to the cache's copy), and scans the stored text
 * itself only when the cache cannot give one; a task's filter is the
 * index's compiled filter; a task's merged output is
 * applied as one batch: the images it names are parsed one by one (a
 * replaced image, an origin, a new one), and the new text is one pass over
 * the old one that copies every untouched image's bytes and writes the
 * others anew, then scanned into the next index. So a step costs its
 * outputs plus one pass over the text, and the job holds one index (about
 * the stored size) instead of a tree of the whole list (about 2.5 kB an
 * image), and shares it with the cache. The text written is handed to the
 * images cache with its index, so that the first request after a step is
 * not a scan. A step that
 * changes no image's bytes (upstream "updates" every image a task without
 * output ran on) is no pass at all, and its list is not written when the
 * row still holds it (joblist_stored_current).
 *
 * The job's list is its own, as upstream's: an image edited through the
 * API while the job runs is overwritten by the job's next write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/images.h"
#include "model/imgcache.h"
#include "model/imgindex.h"
#include "model/task.h"
#include "runner/internal.h"
#include "util/log.h"

struct joblist {
	imgindex_t *x;
	int enriched; /* images carry the status attribute (not stored) */
	/* what the dataset's row held when the job last read or wrote the
	 * list: unless dirty (changed since), the list is that text */
	int dirty;
	char version[64]; /* its db_row_version ("" unknown) */
	uint64_t self;	  /* db_self_change_token then */
	int have_self;
};

joblist_t *joblist_load(const char *text, sb_t *err)
{
	imgindex_t *x = imgindex_build(text && *text ? text : "[]", text && *text ? strlen(text) : 2, err);
	if (!x)
		return NULL;
	joblist_t *l = xcalloc(1, sizeof(*l));
	l->x = x;
	l->dirty = 1;
	return l;
}

joblist_t *joblist_from_cache(job_t *j, int have_self, uint64_t self)
{
	imglist_t *cl = imglist_get(j->db, j->a.dataset_id);
	if (!cl)
		return NULL;
	char version[64];
	joblist_t *l = xcalloc(1, sizeof(*l));
	l->x = imglist_share(cl, version);
	imglist_release(cl);
	joblist_loaded(l, version, have_self, self);
	return l;
}

void joblist_loaded(joblist_t *l, const char *version, int have_self, uint64_t self)
{
	l->dirty = 0;
	snprintf(l->version, sizeof(l->version), "%s", version ? version : "");
	l->have_self = have_self;
	l->self = self;
}

int joblist_stored_current(job_t *j, joblist_t *l)
{
	if (l->dirty)
		return 0;
	uint64_t now;
	int rc = db_self_change_token(j->db, &now);
	if (rc == 0)
		return l->have_self && now == l->self;
	char v[64];
	/* an engine without the token (PostgreSQL) has a cheap version */
	return rc == 1 && l->version[0] &&
	       db_row_version(j->db, "datasetv2", "images", j->a.dataset_id, v, NULL) == 1 && !strcmp(v, l->version);
}

void joblist_free(joblist_t *l)
{
	if (!l)
		return;
	imgindex_free(l->x);
	free(l);
}

/* Image i as a tree (new reference; NULL if its text does not parse). */
static json_t *image_at(const imgindex_t *x, size_t i)
{
	size_t len;
	const char *s = imgindex_json(x, i, &len);
	return json_loadb(s, len, 0, NULL);
}

/* Replaces l's index by a scan of text, which it takes (text is left
 * empty); -1 (l unchanged) if it fails. */
static int rebuild(joblist_t *l, sb_t *text, sb_t *err)
{
	size_t len = text->len;
	imgindex_t *y = imgindex_build_take(sb_detach(text), len, err);
	if (!y)
		return -1;
	imgindex_free(l->x);
	l->x = y;
	return 0;
}

size_t joblist_filter(joblist_t *l, json_t *type_filters, json_t *attribute_filters, json_t *filtered)
{
	imgindex_filter_t *tf = imgindex_filter_new(l->x, type_filters, NULL);
	imgindex_filter_t *af = imgindex_filter_new(l->x, type_filters, attribute_filters);
	size_t n = imgindex_count(l->x), avail = 0;
	for (size_t i = 0; i < n; i++) {
		if (!imgindex_filter_match(tf, l->x, i))
			continue;
		avail++;
		if (imgindex_filter_match(af, l->x, i))
			json_array_append_new(filtered, json_pack("{s:s}", "zarr_url", imgindex_zarr_url(l->x, i)));
	}
	imgindex_filter_free(tf);
	imgindex_filter_free(af);
	return avail;
}

/* enrich_images_unsorted_sync: every image with a status attribute, those
 * the history cache knows of first (in its order), the others "unset". */
int joblist_enrich(job_t *j, joblist_t *l, int64_t wftask_id, sb_t *err)
{
	db_res_t *r = NULL;
	if (db_exec(j->db,
		    "SELECT c.zarr_url, u.status FROM historyimagecache c JOIN historyunit u ON u.id = c.latest_history_unit_id "
		    "WHERE c.dataset_id = $1 AND c.workflowtask_id = $2",
		    (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(wftask_id) }, 2, &r)) {
		sb_adds(err, db_errmsg(j->db));
		return -1;
	}
	size_t n = imgindex_count(l->x);
	/* one image per zarr_url, as upstream's dict by zarr_url: marked at
	 * the position of its first image */
	unsigned char *done = xcalloc(n ? n : 1, 1);
	sb_t t = SB_INIT;
	sb_addc(&t, '[');
	int first = 1;
	for (int pass = 0; pass < 2; pass++) {
		size_t m = pass ? n : (size_t)db_nrows(r);
		for (size_t k = 0; k < m; k++) {
			const char *url = pass ? imgindex_zarr_url(l->x, k) : db_text(r, (int)k, 0);
			long lead = imgindex_find(l->x, url);
			if (lead < 0 || done[lead])
				continue;
			done[lead] = 1;
			json_t *img = image_at(l->x, pass ? k : (size_t)lead);
			if (!img)
				continue;
			json_object_set_new(json_object_get(img, "attributes"), IMAGE_STATUS_KEY,
					    json_string(pass ? "unset" : db_text(r, (int)k, 1)));
			if (!first)
				sb_addc(&t, ',');
			first = 0;
			image_dump(&t, img);
			json_decref(img);
		}
	}
	sb_addc(&t, ']');
	free(done);
	db_res_free(r);
	int rc = rebuild(l, &t, err);
	sb_release(&t);
	if (!rc) {
		/* in another order: written, it would not be the stored text */
		l->enriched = 1;
		l->dirty = 1;
	}
	return rc;
}

/* The image found first with that zarr_url: one of the index (*pos >= 0)
 * or one added by this step (*pos < 0, *add its number). */
struct step {
	const imgindex_t *x;
	json_t **rep;      /* per index position: its replacement, or NULL */
	json_t *added;     /* images appended by this step */
	json_t *added_at;  /* zarr_url -> its number in added */
};

/* The current tree of image url (borrowed), or NULL when there is none.
 * Parses an untouched image into rep, so that it is parsed once. */
static json_t *step_get(struct step *s, const char *url, long *pos, long *add)
{
	*pos = imgindex_find(s->x, url);
	*add = -1;
	if (*pos >= 0) {
		if (!s->rep[*pos])
			s->rep[*pos] = image_at(s->x, (size_t)*pos);
		return s->rep[*pos];
	}
	json_t *v = json_object_get(s->added_at, url);
	if (!v)
		return NULL;
	*add = (long)json_integer_value(v);
	return json_array_get(s->added, (size_t)*add);
}

/* The step's output applied to the list (upstream's post-task block):
 * updates (existing images in place, new ones at the end) then removals.
 * Returns the number of new images, or -1 with err set (the list as it
 * was). */
long joblist_apply(joblist_t *l, json_t *output, json_t *output_types, const char *zarr_dir, jerr_t *err)
{
	json_t *ups = json_object_get(output, "image_list_updates");
	json_t *rms = json_object_get(output, "image_list_removals");
	/* check_zarr_urls_are_unique */
	json_t *count = json_object();
	size_t i;
	json_t *x;
	int dup = 0;
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(pass ? rms : ups, i, x) {
			const char *u = json_string_value(pass ? x : json_object_get(x, "zarr_url"));
			json_t *c = json_object_get(count, u);
			json_object_set_new(count, u, json_integer(c ? json_integer_value(c) + 1 : 1));
			if (c)
				dup = 1;
		}
	}
	if (dup) {
		jerr_set(err, JE_UNKNOWN, 0, "ValueError", "TaskOutput (%zu image_list_updates and %zu image_list_removals) has non-unique zarr_urls:",
			 json_array_size(ups), json_array_size(rms));
		const char *k;
		json_object_foreach(count, k, x)
			if (json_integer_value(x) > 1)
				sb_addf(&err->msg, "\n%s", k);
	}
	json_decref(count);
	if (dup)
		return -1;
	size_t n = imgindex_count(l->x);
	struct step s = { l->x, xcalloc(n ? n : 1, sizeof(json_t *)), json_array(), json_object() };
	/* per index position: the text of its image written anew (an
	 * update changed its bytes), or NULL; an untouched image parsed as
	 * an origin stays untouched */
	char **dumps = xcalloc(n ? n : 1, sizeof(char *));
	size_t nchanged = 0;
	long num_new = -1;
	json_array_foreach(ups, i, x) {
		const char *url = json_string_value(json_object_get(x, "zarr_url"));
		json_t *origin = json_object_get(x, "origin");
		const char *ourl = json_is_string(origin) ? json_string_value(origin) : NULL;
		long pos, add, opos, oadd;
		json_t *old = step_get(&s, url, &pos, &add);
		json_t *attrs, *types, *img;
		if (old) {
			img = json_pack("{s:s}", "zarr_url", url);
			if (!ourl || !strcmp(ourl, url)) {
				attrs = json_copy(json_object_get(old, "attributes"));
				types = json_copy(json_object_get(old, "types"));
				json_t *oo = json_object_get(old, "origin");
				if (oo)
					json_object_set(img, "origin", oo);
			} else {
				json_t *oimg = step_get(&s, ourl, &opos, &oadd);
				attrs = oimg ? json_copy(json_object_get(oimg, "attributes")) : json_object();
				types = oimg ? json_copy(json_object_get(oimg, "types")) : json_object();
				json_object_set(img, "origin", origin);
			}
		} else {
			/* a subfolder, not only a string prefix as upstream's startswith */
			if (!url_is_relative_to(url, zarr_dir) || !strcmp(url, zarr_dir)) {
				jerr_set(err, JE_JOB, 0, NULL,
					 "Cannot create image if zarr_url is not a subfolder of zarr_dir.\nzarr_dir: %s\nzarr_url: %s",
					 zarr_dir, url);
				goto out;
			}
			json_t *oimg = ourl ? step_get(&s, ourl, &opos, &oadd) : NULL;
			attrs = oimg ? json_copy(json_object_get(oimg, "attributes")) : json_object();
			types = oimg ? json_copy(json_object_get(oimg, "types")) : json_object();
			img = json_pack("{s:s,s:O}", "zarr_url", url, "origin", origin ? origin : json_null());
		}
		if (!attrs)
			attrs = json_object();
		if (!types)
			types = json_object();
		json_object_update(attrs, json_object_get(x, "attributes"));
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(attrs, tmp, k, v)
			if (json_is_null(v))
				json_object_del(attrs, k);
		json_object_update(types, json_object_get(x, "types"));
		json_object_update(types, output_types);
		/* stored as jsonb keeps them, as the images API does */
		json_object_set_new(img, "attributes", jsonb_ordered(attrs));
		json_object_set_new(img, "types", jsonb_ordered(types));
		json_decref(attrs);
		json_decref(types);
		if (pos >= 0) {
			/* an update that leaves the image as it is stored (a
			 * task without output "updates" every image it ran on,
			 * as upstream's) keeps its bytes */
			sb_t now = SB_INIT;
			size_t olen;
			const char *ospan = imgindex_json(l->x, (size_t)pos, &olen);
			image_dump(&now, img);
			if (now.len != olen || memcmp(now.buf, ospan, olen)) {
				/* each zarr_url is updated once: this is its text */
				dumps[pos] = sb_detach(&now);
				nchanged++;
			} else {
				sb_release(&now);
			}
			json_decref(s.rep[pos]);
			s.rep[pos] = img;
		} else if (add >= 0) {
			json_array_set_new(s.added, (size_t)add, img);
		} else {
			json_object_set_new(s.added_at, url, json_integer((json_int_t)json_array_size(s.added)));
			json_array_append_new(s.added, img);
		}
	}
	/* the removals: their zarr_urls are distinct, so each removes the
	 * image found first, whatever the order */
	size_t na = json_array_size(s.added);
	unsigned char *drop = xcalloc(n + na + 1, 1);
	json_array_foreach(rms, i, x) {
		long pos, add;
		const char *u = json_string_value(x);
		pos = imgindex_find(l->x, u);
		add = -1;
		if (pos < 0) {
			json_t *v = json_object_get(s.added_at, u);
			add = v ? (long)json_integer_value(v) : -1;
		}
		if (pos < 0 && add < 0) {
			jerr_set(err, JE_JOB, 0, NULL, "Cannot remove missing image (zarr_url=%s).", u);
			free(drop);
			goto out;
		}
		drop[pos >= 0 ? (size_t)pos : n + (size_t)add] = 1;
	}
	/* nothing changed: the list stays as it is, not written anew */
	if (!na && !json_array_size(rms) && !nchanged) {
		free(drop);
		num_new = 0;
		goto out;
	}
	/* one pass: untouched images are copied as they are */
	sb_t t = SB_INIT;
	size_t tlen;
	imgindex_text(l->x, &tlen);
	sb_grow(&t, tlen + 64 * (na + 1));
	sb_addc(&t, '[');
	int first = 1;
	for (size_t k = 0; k < n + na; k++) {
		if (drop[k])
			continue;
		if (!first)
			sb_addc(&t, ',');
		first = 0;
		if (k >= n) {
			image_dump(&t, json_array_get(s.added, k - n));
		} else if (dumps[k]) {
			sb_adds(&t, dumps[k]);
		} else {
			size_t len;
			const char *span = imgindex_json(l->x, k, &len);
			sb_add(&t, span, len);
		}
	}
	sb_addc(&t, ']');
	free(drop);
	sb_t e = SB_INIT;
	if (rebuild(l, &t, &e)) {
		jerr_set(err, JE_UNKNOWN, 0, "ValueError", "the merged image list does not scan: %s", e.buf);
	} else {
		num_new = (long)na;
		l->dirty = 1;
	}
	sb_release(&e);
	sb_release(&t);
out:
	for (size_t k = 0; k < n; k++)
		json_decref(s.rep[k]);
	free(s.rep);
	for (size_t k = 0; k < n; k++)
		free(dumps[k]);
	free(dumps);
	json_decref(s.added);
	json_decref(s.added_at);
	return num_new;
}

/* The text to store: the index's, or (enriched) each image without its
 * status attribute, made in buf. */
static const char *stored_text(joblist_t *l, sb_t *buf, size_t *len)
{
	if (!l->enriched)
		return imgindex_text(l->x, len);
	size_t n = imgindex_count(l->x), tl;
	imgindex_text(l->x, &tl);
	sb_grow(buf, tl);
	sb_addc(buf, '[');
	for (size_t i = 0; i < n; i++) {
		json_t *img = image_at(l->x, i);
		if (i)
			sb_addc(buf, ',');
		if (img) {
			json_object_del(json_object_get(img, "attributes"), IMAGE_STATUS_KEY);
			image_dump(buf, img);
			json_decref(img);
		}
	}
	sb_addc(buf, ']');
	*len = buf->len;
	return buf->buf;
}

int joblist_store(job_t *j, joblist_t *l, joblist_write_t *w)
{
	memset(w, 0, sizeof(*w));
	sb_init(&w->text, 0);
	w->have_self = db_self_change_token(j->db, &w->self) == 0;
	size_t len;
	const char *t = stored_text(l, &w->text, &len);
	return db_json_array_edit(j->db, "datasetv2", "images", j->a.dataset_id, -1, NULL, t, len, 0, (size_t)-1,
				  w->version);
}

void joblist_store_finish(job_t *j, joblist_t *l, joblist_write_t *w, int committed)
{
	if (committed && !l->enriched)
		joblist_loaded(l, w->version, w->have_self, w->self);
	if (committed) {
		/* the cache gets an index of the stored text: the job's own,
		 * shared, or a scan of what it wrote when the job's carries the
		 * status attribute */
		sb_t err = SB_INIT;
		imgindex_t *y = l->enriched ? imgindex_build(w->text.buf, w->text.len, &err) : imgindex_ref(l->x);
		if (y)
			imglist_put(j->db, j->a.dataset_id, y, w->version, w->have_self, w->self);
		else
			log_error("job %lld: %s", (long long)j->a.job_id, err.buf);
		sb_release(&err);
	}
	sb_release(&w->text);
}
