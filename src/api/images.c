/* images.c — a dataset's image list: /api/v2/project/{p}/dataset/{d}/images/
 * (add, patch, delete) and .../images/query/ (filters and pages), as
 * upstream's routes/api/v2/images.py, with its matching rules (model/images.c).
 *
 * The list is one JSON array in datasetv2.images. A write of one image
 * finds it in the dataset's cached index (model/imgcache.h), checked
 * against the row under the row lock (FOR UPDATE; SQLite's write lock),
 * and stores the edit in one transaction: a splice of the text, never a
 * parse of the whole list. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "model/images.h"
#include "model/imgcache.h"

/* A write of one image, as model/imgcache.h tells: in-process writers of
 * the dataset serialised, the row locked, the cached index checked against
 * the row inside the transaction. */
typedef struct img_write {
	int64_t did;
	imglist_t *l;
	imglist_edit_t e;
	int edited;
} img_write_t;

/* 0 with w->l held, or -1 after answering 500. */
static int write_open(http_req_t *req, db_t *db, int64_t did, img_write_t *w)
{
	memset(w, 0, sizeof(*w));
	w->did = did;
	imglist_write_begin(did);
	if (db_begin(db)) {
		api_db_error(req, db);
		imglist_write_end(did);
		return -1;
	}
	if (db_exec(db, "SELECT id FROM datasetv2 WHERE id = $1 FOR UPDATE", (db_param_t[]){ P_INT(did) }, 1, NULL) ||
	    !(w->l = imglist_get(db, did))) {
		api_db_error(req, db);
		db_rollback(db);
		imglist_write_end(did);
		return -1;
	}
	return 0;
}

/* Stores the edit (imgindex.h's at/img): 0, or -1 after answering 500. */
static int write_edit(http_req_t *req, db_t *db, img_write_t *w, long at, const char *img)
{
	w->edited = 1;
	if (imglist_edit(db, w->l, at, img, &w->e)) {
		api_db_error(req, db);
		return -1;
	}
	return 0;
}

/* Commits the stored edit when commit is set (else rolls back) and lets
 * go; 0 when committed, else -1 (after answering 500 if the commit failed). */
static int write_close(http_req_t *req, db_t *db, img_write_t *w, int commit)
{
	int committed = 0;
	if (commit && !db_commit(db))
		committed = 1;
	else if (commit)
		api_db_abort(req, db);
	else
		db_rollback(db);
	if (w->edited)
		imglist_edit_finish(db, w->l, &w->e, committed);
	else
		imglist_release(w->l);
	imglist_write_end(w->did);
	return committed ? 0 : -1;
}

static void already_there(http_req_t *req, const char *zu, int64_t did)
{
	sb_t m = SB_INIT, dj = SB_INIT;
	sb_addf(&m, "Image with zarr_url '%s' already in DatasetV2 %lld", zu, (long long)did);
	sb_addc(&dj, '[');
	sb_add_json_str(&dj, m.buf);
	sb_addc(&dj, ']');
	http_error_json(req, 422, dj.buf);
	sb_release(&m);
	sb_release(&dj);
}

void api_images_add(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	json_t *img = v_body_model(req, image_validate, 0);
	if (!img)
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	img_write_t w;
	if (access_dataset(req, db, pid, did, 'w', &p, &d))
		goto out;
	const char *zu = json_string_value(json_object_get(img, "zarr_url"));
	/* upstream compares as strings here (startswith), which lets
	 * <zarr_dir>x/img into the dataset: ours wants a '/' after the prefix
	 * (same message; docs/security.md) */
	if (!url_is_relative_to(zu, d.zarr_dir)) {
		http_errorf(req, 422, "Cannot create image with zarr_url which is not relative to %s.", d.zarr_dir);
		goto out;
	}
	if (!strcmp(zu, d.zarr_dir)) {
		http_errorf(req, 422, "`SingleImage.zarr_url` cannot be equal to `Dataset.zarr_dir`: %s", d.zarr_dir);
		goto out;
	}
	if (write_open(req, db, did, &w))
		goto out;
	if (imglist_find(w.l, zu) >= 0) {
		write_close(req, db, &w, 0);
		already_there(req, zu, did);
		goto out;
	}
	sb_t js = SB_INIT;
	image_dump(&js, img);
	int ok = !write_edit(req, db, &w, -1, js.buf);
	sb_release(&js);
	if (!write_close(req, db, &w, ok))
		http_empty(req, 201);
out:
	json_decref(img);
}

static json_t *validate_update(json_t *in, json_t *loc, verr_t *e)
{
	/* SingleImageUpdate: zarr_url, and attributes/types (null = unchanged) */
	if (!json_is_object(in)) {
		v_add_not_object(e, json_incref(loc), in);
		return NULL;
	}
	json_t *probe = json_object();
	json_object_set(probe, "zarr_url", json_object_get(in, "zarr_url") ? json_object_get(in, "zarr_url") : json_null());
	json_t *a = json_object_get(in, "attributes"), *t = json_object_get(in, "types");
	if (a && !json_is_null(a))
		json_object_set(probe, "attributes", a);
	if (t && !json_is_null(t))
		json_object_set(probe, "types", t);
	size_t before = json_array_size(e->list);
	if (!json_object_get(in, "zarr_url")) {
		json_t *l = json_copy(loc);
		json_array_append_new(l, json_string("zarr_url"));
		verr_add(e, "missing", l, "Field required", in, NULL);
		json_decref(probe);
		return NULL;
	}
	json_t *img = image_validate(probe, loc, e);
	json_decref(probe);
	if (!img || json_array_size(e->list) != before) {
		json_decref(img);
		return NULL;
	}
	json_t *out = json_object();
	json_object_set(out, "zarr_url", json_object_get(img, "zarr_url"));
	if (a && !json_is_null(a))
		json_object_set(out, "attributes", json_object_get(img, "attributes"));
	if (t && !json_is_null(t))
		json_object_set(out, "types", json_object_get(img, "types"));
	json_decref(img);
	return out;
}

void api_images_patch(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	json_t *upd = v_body_model(req, validate_update, 0);
	if (!upd)
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	img_write_t w;
	json_t *img = NULL;
	if (access_dataset(req, db, pid, did, 'w', &p, &d) || write_open(req, db, did, &w))
		goto out;
	const char *zu = json_string_value(json_object_get(upd, "zarr_url"));
	long idx = imglist_find(w.l, zu);
	if (idx < 0) {
		write_close(req, db, &w, 0);
		http_errorf(req, 404, "No image with zarr_url '%s' in DatasetV2 %lld.", zu, (long long)did);
		goto out;
	}
	size_t len;
	const char *old = imglist_json(w.l, (size_t)idx, &len);
	img = json_loadb(old, len, 0, NULL);
	if (!json_is_object(img)) {
		write_close(req, db, &w, 0);
		http_error_500(req, "image %ld of dataset %lld is not a JSON object", idx, (long long)did);
		goto out;
	}
	if (json_object_get(upd, "attributes"))
		json_object_set(img, "attributes", json_object_get(upd, "attributes"));
	if (json_object_get(upd, "types"))
		json_object_set(img, "types", json_object_get(upd, "types"));
	sb_t js = SB_INIT;
	image_dump(&js, img);
	int ok = !write_edit(req, db, &w, idx, js.buf);
	if (!write_close(req, db, &w, ok))
		http_json_sb(req, 200, &js);
	else
		sb_release(&js);
out:
	json_decref(img);
	json_decref(upd);
}

void api_images_delete(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	const char *zu = http_query(req, "zarr_url");
	if (!zu) {
		verr_t e;
		verr_init(&e);
		verr_add(&e, "missing", json_pack("[s,s]", "query", "zarr_url"), "Field required", NULL, NULL);
		verr_reply(&e, req);
		return;
	}
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	img_write_t w;
	if (access_dataset(req, db, pid, did, 'w', &p, &d) || write_open(req, db, did, &w))
		return;
	long idx = imglist_find(w.l, zu);
	if (idx < 0) {
		write_close(req, db, &w, 0);
		http_errorf(req, 404, "No image with zarr_url '%s' in DatasetV2 %lld.", zu, (long long)did);
		return;
	}
	int ok = !write_edit(req, db, &w, idx, NULL);
	if (ok && db_exec(db, "DELETE FROM historyimagecache WHERE dataset_id = $1 AND zarr_url = $2",
			  (db_param_t[]){ P_INT(did), P_TEXT(zu) }, 2, NULL)) {
		api_db_error(req, db);
		ok = 0;
	}
	if (!write_close(req, db, &w, ok))
		http_empty(req, 204);
}

/* ImageQueryWithZarrUrl (optional body): type_filters, attribute_filters,
 * zarr_url; unknown keys ignored. */
static json_t *validate_query(json_t *in, json_t *loc, verr_t *e)
{
	if (json_is_null(in))
		return json_object();
	if (!json_is_object(in)) {
		v_add_not_object(e, json_incref(loc), in);
		return NULL;
	}
	json_t *out = json_object();
	json_t *l = json_pack("[s,s]", "body", "type_filters");
	json_t *tf = json_object_get(in, "type_filters");
	json_t *v = tf ? type_filters_validate(tf, l, e) : json_object();
	json_decref(l);
	if (v)
		json_object_set_new(out, "type_filters", v);
	l = json_pack("[s,s]", "body", "attribute_filters");
	json_t *af = json_object_get(in, "attribute_filters");
	v = af ? attribute_filters_validate(af, l, e) : json_object();
	json_decref(l);
	if (v)
		json_object_set_new(out, "attribute_filters", v);
	json_t *zu = json_object_get(in, "zarr_url");
	if (zu && !json_is_null(zu)) {
		if (!json_is_string(zu))
			verr_add(e, "string_type", json_pack("[s,s]", "body", "zarr_url"), "Input should be a valid string", zu, NULL);
		else
			json_object_set(out, "zarr_url", zu);
	}
	return out;
}

void api_images_query(http_req_t *req)
{
	int64_t pid, did, page, page_size;
	if (access_path_ids(req, &pid, &did) || v_pagination(req, &page, &page_size))
		return;
	json_t *q;
	if (req->body.len) {
		if (!(q = v_body_model(req, validate_query, 0)))
			return;
	} else {
		q = json_object();
	}
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	if (access_dataset(req, db, pid, did, 'r', &p, &d)) {
		json_decref(q);
		return;
	}
	imglist_t *l = imglist_get(db, did);
	if (!l) {
		api_db_error(req, db);
		json_decref(q);
		return;
	}
	json_t *tf = json_object_get(q, "type_filters"), *af = json_object_get(q, "attribute_filters");
	json_t *zu = json_object_get(q, "zarr_url");
	imgfilter_t *f = json_object_size(tf) || json_object_size(af) ? imgfilter_new(l, tf, af) : NULL;
	/* the matching images, by index; one by its zarr_url (upstream takes
	 * the first image with it) */
	size_t n = imglist_count(l), total = 0;
	size_t *match = xmalloc((n ? n : 1) * sizeof(size_t));
	if (zu) {
		long i = imglist_find(l, json_string_value(zu));
		if (i >= 0 && (!f || imgfilter_match(f, l, (size_t)i)))
			match[total++] = (size_t)i;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!f || imgfilter_match(f, l, i))
				match[total++] = i;
	}
	if (!page_size)
		page_size = (int64_t)total;
	size_t from = 0, to = 0;
	if (total > 0) {
		int64_t last = (int64_t)(total / (size_t)page_size) + (total % (size_t)page_size > 0);
		if (page > last)
			page = last;
		from = (size_t)((page - 1) * page_size);
		to = from + (size_t)page_size < total ? from + (size_t)page_size : total;
	}
	const char *attrs = imglist_attributes(l), *types = imglist_types(l);
	sb_t o = SB_INIT;
	sb_grow(&o, (to - from) * 200 + strlen(attrs) + strlen(types) + 128);
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%zu,\"items\":[", (long long)page,
		(long long)page_size, total);
	for (size_t k = from; k < to; k++) {
		size_t len;
		const char *js = imglist_json(l, match[k], &len);
		if (k > from)
			sb_addc(&o, ',');
		sb_add(&o, js, len);
	}
	sb_adds(&o, "],\"attributes\":");
	sb_adds(&o, attrs);
	sb_adds(&o, ",\"types\":");
	sb_adds(&o, types);
	sb_addc(&o, '}');
	http_json_sb(req, 200, &o);
	free(match);
	imgfilter_free(f);
	imglist_release(l);
	json_decref(q);
}
