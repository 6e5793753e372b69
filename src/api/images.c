/* images.c — a dataset's image list: /api/v2/project/{p}/dataset/{d}/images/
 * (add, patch, delete) and .../images/query/ (filters and pages), as
 * upstream's routes/api/v2/images.py, with its matching rules (model/images.c).
 *
 * The list is one JSON array in datasetv2.images. Writes read it under the
 * row lock (FOR UPDATE; SQLite's write lock), change it and store it back in
 * one transaction. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "model/images.h"
#include "model/imgcache.h"

/* The dataset's image list (new reference) under the row lock, for a
 * write; NULL after answering 500. Reads use model/imgcache.c. */
static json_t *load_images(http_req_t *req, db_t *db, int64_t did)
{
	db_res_t *r;
	if (db_exec(db, "SELECT images FROM datasetv2 WHERE id = $1 FOR UPDATE",
		    (db_param_t[]){ P_INT(did) }, 1, &r)) {
		api_db_error(req, db);
		return NULL;
	}
	json_t *images = json_loads(db_nrows(r) ? db_text(r, 0, 0) : "[]", 0, NULL);
	db_res_free(r);
	if (!json_is_array(images)) {
		json_decref(images);
		http_error_500(req, "the images of dataset %lld are not a JSON list", (long long)did);
		return NULL;
	}
	return images;
}

static int store_images(db_t *db, int64_t did, json_t *images)
{
	sb_t js = SB_INIT;
	sb_grow(&js, json_array_size(images) * 160);
	sb_addc(&js, '[');
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		if (i)
			sb_addc(&js, ',');
		image_dump(&js, img);
	}
	sb_addc(&js, ']');
	int rc = db_exec(db, "UPDATE datasetv2 SET images = $1 WHERE id = $2", (db_param_t[]){ P_JSON(js.buf), P_INT(did) }, 2, NULL);
	sb_release(&js);
	return rc;
}

static long find_image(json_t *images, const char *zarr_url)
{
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
		if (!strcmp(json_string_value(json_object_get(img, "zarr_url")), zarr_url))
			return (long)i;
	return -1;
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
	json_t *images = NULL;
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
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	if (!(images = load_images(req, db, did))) {
		db_rollback(db);
		goto out;
	}
	if (find_image(images, zu) >= 0) {
		db_rollback(db);
		sb_t m = SB_INIT, dj = SB_INIT;
		sb_addf(&m, "Image with zarr_url '%s' already in DatasetV2 %lld", zu, (long long)did);
		sb_addc(&dj, '[');
		sb_add_json_str(&dj, m.buf);
		sb_addc(&dj, ']');
		http_error_json(req, 422, dj.buf);
		sb_release(&m);
		sb_release(&dj);
		goto out;
	}
	json_array_append(images, img);
	if (store_images(db, did, images) || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	http_empty(req, 201);
out:
	json_decref(images);
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
	json_t *images = NULL;
	if (access_dataset(req, db, pid, did, 'w', &p, &d))
		goto out;
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	if (!(images = load_images(req, db, did))) {
		db_rollback(db);
		goto out;
	}
	const char *zu = json_string_value(json_object_get(upd, "zarr_url"));
	long idx = find_image(images, zu);
	if (idx < 0) {
		db_rollback(db);
		http_errorf(req, 404, "No image with zarr_url '%s' in DatasetV2 %lld.", zu, (long long)did);
		goto out;
	}
	json_t *img = json_array_get(images, (size_t)idx);
	if (json_object_get(upd, "attributes"))
		json_object_set(img, "attributes", json_object_get(upd, "attributes"));
	if (json_object_get(upd, "types"))
		json_object_set(img, "types", json_object_get(upd, "types"));
	if (store_images(db, did, images) || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	sb_t o = SB_INIT;
	image_dump(&o, img);
	http_json_sb(req, 200, &o);
out:
	json_decref(images);
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
	json_t *images = NULL;
	if (access_dataset(req, db, pid, did, 'w', &p, &d))
		return;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	if (!(images = load_images(req, db, did))) {
		db_rollback(db);
		return;
	}
	long idx = find_image(images, zu);
	if (idx < 0) {
		db_rollback(db);
		http_errorf(req, 404, "No image with zarr_url '%s' in DatasetV2 %lld.", zu, (long long)did);
		json_decref(images);
		return;
	}
	json_array_remove(images, (size_t)idx);
	if (store_images(db, did, images) ||
	    db_exec(db, "DELETE FROM historyimagecache WHERE dataset_id = $1 AND zarr_url = $2",
		    (db_param_t[]){ P_INT(did), P_TEXT(zu) }, 2, NULL) ||
	    db_commit(db)) {
		api_db_abort(req, db);
	} else {
		http_empty(req, 204);
	}
	json_decref(images);
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
	/* the matching images, by index */
	size_t n = imglist_count(l), total = 0;
	size_t *match = xmalloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		if (zu && strcmp(imglist_zarr_url(l, i), json_string_value(zu)))
			continue;
		if (f && !imgfilter_match(f, l, i))
			continue;
		match[total++] = i;
		if (zu)
			break; /* upstream takes the first image with that zarr_url */
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
