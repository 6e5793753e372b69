/* dataset.c — /api/v2/project/{id}/dataset/... and /api/v2/dataset/, as
 * upstream's routes/api/v2/dataset.py. A dataset's zarr_dir is computed at
 * creation from one of the user's project dirs; its images live in the
 * images column (see images.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "model/images.h"
#include "model/imgcache.h"
#include "model/imgindex.h"
#include "model/resource.h"
#include "util/jsonspan.h"
#include "util/timeutil.h"

#define SAFE_NAME_PATTERN "^([a-zA-Z0-9_. -]+)$"
#define DATASET_COLS "id, name, project_id, timestamp_created, zarr_dir, is_starred"

/* upstream's sanitize_string: lower case, punctuation and spaces -> "_" */
static void sanitize(sb_t *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		sb_addc(out, (char)(ispunct(c) || isspace(c) ? '_' : tolower(c)));
	}
}

static void reply_dataset(http_req_t *req, db_t *db, int64_t project_id, int64_t dataset_id, int status)
{
	project_row_t p;
	dataset_row_t d;
	if (access_dataset(req, db, project_id, dataset_id, 'r', &p, &d))
		return;
	sb_t o = SB_INIT;
	access_dataset_json(&o, &d, &p);
	http_json_sb(req, status, &o);
}

static const char *check_project_dir(json_t **val, sb_t *msg)
{
	const char *s = json_string_value(*val);
	if (!strncmp(s, "s3://", 5))
		return NULL;
	sb_t err = SB_INIT;
	char *p = abs_path_normalise(s, "project_dir", &err);
	sb_release(&err);
	if (!p) {
		if (s[0] != '/')
			sb_addf(msg, "String must be an absolute path (given '%s').", s);
		else
			sb_adds(msg, "String must not contain '/../'.");
		return msg->buf;
	}
	json_decref(*val);
	*val = json_string(p);
	free(p);
	return NULL;
}

/* SafeRelativePathStr: no "..", normpath'd, relative, safe characters */
static const char *check_subfolder(json_t **val, sb_t *msg)
{
	const char *s = json_string_value(*val);
	if (s[0] == '/') {
		sb_addf(msg, "String must not be an absolute path (given '%s').", s);
		return msg->buf;
	}
	sb_t tmp = SB_INIT;
	sb_addf(&tmp, "/%s", s);
	const char *why = NULL;
	char *norm = zarr_url_normalise(tmp.buf, &why);
	sb_release(&tmp);
	if (!norm) {
		sb_adds(msg, why);
		return msg->buf;
	}
	for (const char *p = norm; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_. /-", *p)) {
			free(norm);
			sb_addf(msg, "String should match pattern '^([a-zA-Z0-9_. /-]+)$'");
			return msg->buf;
		}
	json_decref(*val);
	*val = json_string(norm + 1);
	free(norm);
	return NULL;
}

void api_dataset_create(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .required = 1, .pattern = SAFE_NAME_PATTERN },
		{ .name = "project_dir", .type = V_NONEMPTY, .nullable = 1, .check = check_project_dir },
		{ .name = "zarr_subfolder", .type = V_NONEMPTY, .nullable = 1, .check = check_subfolder },
	};
	json_t *b = v_body(req, fields, 3, 1);
	if (!b)
		return;
	json_t *pdir = json_object_get(b, "project_dir"), *sub = json_object_get(b, "zarr_subfolder");
	if ((!pdir || json_is_null(pdir)) && sub && !json_is_null(sub)) {
		verr_t e;
		verr_init(&e);
		json_t *in = json_loadb(req->body.buf, req->body.len, 0, NULL);
		verr_add(&e, "value_error", json_pack("[s]", "body"),
			 "Value error, Cannot provide `zarr_subfolder` without `project_dir`", in, json_pack("{s:{}}", "error"));
		json_decref(in);
		verr_reply(&e, req);
		json_decref(b);
		return;
	}
	db_t *db = req->db;
	project_row_t p;
	db_res_t *r = NULL, *u = NULL;
	sb_t zarr = SB_INIT;
	if (access_project(req, db, pid, 'w', &p))
		goto out;
	if (db_exec(db, "SELECT project_dirs FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(req->user->id) }, 1, &u)) {
		api_db_error(req, db);
		goto out;
	}
	json_t *dirs = json_loads(db_text(u, 0, 0), 0, NULL);
	const char *project_dir = NULL;
	if (pdir && json_is_string(pdir)) {
		size_t i;
		json_t *v;
		json_array_foreach(dirs, i, v) if (!strcmp(json_string_value(v), json_string_value(pdir)))
			project_dir = json_string_value(pdir);
		if (!project_dir) {
			http_errorf(req, 403, "You are not allowed to use dataset.project_dir='%s'.", json_string_value(pdir));
			json_decref(dirs);
			goto out;
		}
	} else {
		project_dir = json_string_value(json_array_get(dirs, 0));
	}
	char *base = arena_strdup(&req->arena, project_dir ? project_dir : "/");
	json_decref(dirs);
	const char *name = json_string_value(json_object_get(b, "name"));
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_begin(db) ||
	    db_exec(db, "INSERT INTO datasetv2 (name, project_id, timestamp_created, zarr_dir, images, is_starred) "
			"VALUES ($1, $2, $3, '__PLACEHOLDER__', '[]', $4) RETURNING id",
		    (db_param_t[]){ P_TEXT(name), P_INT(pid), P_TS(now), P_BOOL(0) }, 4, &r))
		goto dberr;
	int64_t did = db_int(r, 0, 0);
	/* url_join(project_dir, zarr_subfolder), then normalize_url */
	sb_adds(&zarr, base);
	sb_addc(&zarr, '/');
	if (sub && json_is_string(sub)) {
		sb_adds(&zarr, json_string_value(sub));
	} else {
		sb_addf(&zarr, "fractal/%lld_", (long long)pid);
		sanitize(&zarr, p.name);
		sb_addf(&zarr, "/%lld_", (long long)did);
		sanitize(&zarr, name);
	}
	const char *why = NULL;
	char *norm = zarr_url_normalise(zarr.buf, &why);
	if (!norm) {
		db_rollback(db);
		http_errorf(req, 422, "%s", why);
		goto out;
	}
	if (project_dir && !url_is_really_relative_to(norm, base)) {
		/* zarr_subfolder through a symbolic link that leaves the project
		 * dir (ours: upstream joins the strings only) */
		db_rollback(db);
		http_errorf(req, 422, "dataset.zarr_dir='%s' is not relative to any of user's project dirs.", norm);
		free(norm);
		goto out;
	}
	int rc = db_exec(db, "UPDATE datasetv2 SET zarr_dir = $1 WHERE id = $2", (db_param_t[]){ P_TEXT(norm), P_INT(did) }, 2, NULL);
	free(norm);
	if (rc || db_commit(db))
		goto dberr;
	reply_dataset(req, db, pid, did, 201);
	goto out;
dberr:
	api_db_abort(req, db);
out:
	sb_release(&zarr);
	db_res_free(r);
	db_res_free(u);
	json_decref(b);
}

void api_dataset_list(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'r', &p))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT " DATASET_COLS " FROM datasetv2 WHERE project_id = $1 ORDER BY is_starred DESC, name",
		    (db_param_t[]){ P_INT(pid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		dataset_row_t d = { .id = db_int(r, i, 0), .name = db_text(r, i, 1), .project_id = db_int(r, i, 2),
				    .timestamp_created = db_text(r, i, 3), .zarr_dir = db_text(r, i, 4),
				    .is_starred = db_bool(r, i, 5) };
		if (i)
			sb_addc(&o, ',');
		access_dataset_json(&o, &d, &p);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_dataset_get(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	reply_dataset(req, req->db, pid, did, 200);
}

void api_dataset_patch(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	const vfield_t fields[] = { { .name = "name", .type = V_NONEMPTY, .pattern = SAFE_NAME_PATTERN } };
	json_t *b = v_body(req, fields, 1, 1);
	if (!b)
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	if (!access_dataset(req, db, pid, did, 'w', &p, &d)) {
		json_t *name = json_object_get(b, "name");
		if (name && db_exec(db, "UPDATE datasetv2 SET name = $1 WHERE id = $2",
				    (db_param_t[]){ P_TEXT(json_string_value(name)), P_INT(did) }, 2, NULL))
			api_db_error(req, db);
		else
			reply_dataset(req, db, pid, did, 200);
	}
	json_decref(b);
}

static void star(http_req_t *req, int on)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	if (access_dataset(req, db, pid, did, 'w', &p, &d))
		return;
	access_set_starred(req, db, "datasetv2", did, on);
}

void api_dataset_star(http_req_t *req)
{
	star(req, 1);
}

void api_dataset_unstar(http_req_t *req)
{
	star(req, 0);
}

void api_dataset_delete(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	if (access_dataset(req, db, pid, did, 'w', &p, &d))
		return;
	access_delete_unless_jobs(req, db, "dataset", "dataset_id", did, "DELETE FROM datasetv2 WHERE id = $1");
}

static void release_index(void *x)
{
	imgindex_free(x);
}

void api_dataset_export(http_req_t *req)
{
	int64_t pid, did;
	if (access_path_ids(req, &pid, &did))
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	if (access_dataset(req, db, pid, did, 'r', &p, &d))
		return;
	imglist_t *l = imglist_get(db, did);
	if (!l) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_adds(&o, "{\"name\":");
	sb_add_json_str(&o, d.name);
	sb_adds(&o, ",\"zarr_dir\":");
	sb_add_json_str(&o, d.zarr_dir);
	sb_adds(&o, ",\"images\":");
	/* the list's text is answered from the index itself, held (shared,
	 * so that an edit meanwhile goes to a copy) until it is sent: no copy
	 * of the whole list for as long as the client reads */
	imgindex_t *x = imglist_share(l, NULL);
	imglist_release(l);
	size_t len;
	const char *text = imgindex_text(x, &len);
	http_json_span(req, 200, &o, text, len, "}", release_index, x);
}

/* An import's images, validated one at a time into the list to store, so
 * that the images of a large body never are a jansson tree (about 1 kB per
 * image; a 10^6-image body was 1.5 GB at its peak): they come either one
 * by one from the body's text or, on the general path, from the tree. */
typedef struct {
	verr_t *e;
	const char *zarr_dir; /* NULL when it was refused */
	sb_t text;	      /* "[img,img,...": the images valid so far */
	char *outside;	      /* the first zarr_url not under zarr_dir */
} import_t;

static void import_one(import_t *im, json_t *img, size_t i)
{
	json_t *loc = json_pack("[s,s,i]", "body", "images", (int)i);
	json_t *v = image_validate(img, loc, im->e);
	json_decref(loc);
	if (!v)
		return;
	const char *zu = json_string_value(json_object_get(v, "zarr_url"));
	if (im->zarr_dir && !im->outside && !url_is_relative_to(zu, im->zarr_dir))
		im->outside = xstrdup(zu);
	if (!json_array_size(im->e->list)) { /* after an error only errors count */
		sb_addc(&im->text, im->text.len ? ',' : '[');
		image_dump(&im->text, v);
	}
	json_decref(v);
}

/* The items of the list text p (len bytes, "[...]" inside a NUL-terminated
 * body) through import_one; -1 when an item is not JSON (the general path
 * then answers jansson's error for the whole body). */
static int import_text(import_t *im, const char *p, size_t len)
{
	const char *end = p + len;
	p = json_skip_ws(p + 1);
	if (*p == ']')
		return p + 1 == end ? 0 : -1;
	for (size_t i = 0;; i++) {
		const char *q = json_skip_value(p);
		if (!q || q > end)
			return -1;
		json_t *img = json_loadb(p, (size_t)(q - p), JSON_DECODE_ANY, NULL);
		if (!img)
			return -1;
		import_one(im, img, i);
		json_decref(img);
		p = json_skip_ws(q);
		if (*p == ']')
			return p + 1 == end ? 0 : -1;
		if (*p != ',')
			return -1;
		p = json_skip_ws(p + 1);
	}
}

void api_dataset_import(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	/* DatasetImport: extra keys (legacy filters) are accepted and ignored */
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .required = 1, .pattern = SAFE_NAME_PATTERN },
		{ .name = "zarr_dir", .type = V_NONEMPTY, .required = 1 },
		{ .name = "images", .type = V_ANY },
	};
	const char *list = NULL;
	size_t list_len = 0;
	json_t *b = v_body_split(req, "images", fields, 3, 0, &list, &list_len);
	if (!b && !(b = v_body(req, fields, 3, 0)))
		return;
	verr_t e;
	verr_init(&e);
	const char *why = NULL;
	char *zarr_dir = zarr_url_normalise(json_string_value(json_object_get(b, "zarr_dir")), &why);
	if (!zarr_dir) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Value error, %s", why);
		verr_add(&e, "value_error", json_pack("[s,s]", "body", "zarr_dir"), m.buf, json_object_get(b, "zarr_dir"),
			 json_pack("{s:{}}", "error"));
		sb_release(&m);
	}
	size_t before = json_array_size(e.list);
	import_t im = { .e = &e, .zarr_dir = zarr_dir, .text = SB_INIT };
	if (list && import_text(&im, list, list_len)) {
		/* an item that is not JSON: the general path's error */
		sb_release(&im.text);
		free(im.outside);
		im = (import_t){ .e = &e, .zarr_dir = zarr_dir, .text = SB_INIT };
		while (json_array_size(e.list) > before)
			json_array_remove(e.list, before);
		json_decref(b);
		list = NULL;
		if (!(b = v_body(req, fields, 3, 0)))
			goto out;
	}
	json_t *in = json_object_get(b, "images");
	if (!list && in && !json_is_array(in)) {
		verr_add(&e, "list_type", json_pack("[s,s]", "body", "images"), "Input should be a valid list", in, NULL);
	} else if (!list && in) {
		size_t i;
		json_t *img;
		json_array_foreach(in, i, img)
			import_one(&im, img, i);
	}
	if (!json_array_size(e.list) && im.outside) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Value error, image.zarr_url='%s' is not relative to self.zarr_dir='%s'.", im.outside, zarr_dir);
		json_t *body = json_loadb(req->body.buf, req->body.len, 0, NULL);
		verr_add(&e, "value_error", json_pack("[s]", "body"), m.buf, body, json_pack("{s:{}}", "error"));
		json_decref(body);
		sb_release(&m);
	}
	if (verr_reply(&e, req))
		goto out;
	if (!im.text.len)
		sb_addc(&im.text, '[');
	sb_addc(&im.text, ']');
	/* a large list is stored with the room the image writes leave for
	 * appends (model/imgindex.h), so that the first image added after the
	 * import is not a rewrite of the whole text (about 2 s at 10^6
	 * images); PostgreSQL's jsonb drops the spaces */
	if (im.text.len >= ((size_t)1 << 20))
		for (size_t r = imgindex_reserve(im.text.len); r; r--)
			sb_addc(&im.text, ' ');
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'w', &p))
		goto out;
	db_res_t *u;
	if (db_exec(db, "SELECT project_dirs FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(req->user->id) }, 1, &u)) {
		api_db_error(req, db);
		goto out;
	}
	json_t *dirs = json_loads(db_text(u, 0, 0), 0, NULL);
	db_res_free(u);
	int ok = 0;
	size_t i;
	json_t *v;
	/* a symbolic link in the project dir must not lead elsewhere (ours) */
	json_array_foreach(dirs, i, v)
		ok |= url_is_really_relative_to(zarr_dir, json_string_value(v));
	json_decref(dirs);
	if (!ok) {
		http_errorf(req, 422, "dataset.zarr_dir='%s' is not relative to any of user's project dirs.", zarr_dir);
		goto out;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r;
	int rc = db_exec(db, "INSERT INTO datasetv2 (name, project_id, timestamp_created, zarr_dir, images, is_starred) "
			 "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
			 (db_param_t[]){ P_TEXT(json_string_value(json_object_get(b, "name"))), P_INT(pid), P_TS(now),
					 P_TEXT(zarr_dir), P_JSON(im.text.buf), P_BOOL(0) }, 6, &r);
	sb_release(&im.text);
	if (rc) {
		api_db_error(req, db);
		goto out;
	}
	reply_dataset(req, db, pid, db_int(r, 0, 0), 201);
	db_res_free(r);
out:
	if (e.list)
		verr_free(&e);
	sb_release(&im.text);
	free(im.outside);
	free(zarr_dir);
	json_decref(b);
}

/* GET /api/v2/dataset/: every dataset of every project the user is linked
 * to, paginated, with its owner's e-mail and image count. */
void api_dataset_all(http_req_t *req)
{
	int64_t page, page_size;
	int only_owned = 0;
	if (v_query_bool(req, "only_owned", &only_owned) || v_pagination(req, &page, &page_size))
		return;
	const char *pname = http_query(req, "project_name"), *dname = http_query(req, "dataset_name");
	db_t *db = req->db;
	const char *where = "FROM datasetv2 d JOIN projectv2 p ON p.id = d.project_id "
			    "JOIN linkuserprojectv2 l ON l.project_id = p.id WHERE l.user_id = $1 "
			    "AND (CAST($2 AS TEXT) IS NULL OR lower(p.name) LIKE '%' || lower($2) || '%') "
			    "AND (CAST($3 AS TEXT) IS NULL OR lower(d.name) LIKE '%' || lower($3) || '%') "
			    "AND ($4 = $5 OR l.is_owner = $6)";
	db_param_t params[] = { P_INT(req->user->id), P_TEXT(pname), P_TEXT(dname), P_INT(only_owned), P_INT(0), P_BOOL(1),
				P_INT(page_size ? page_size : INT64_MAX), P_INT(v_page_offset(page, page_size)) };
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT count(d.id) %s", where);
	db_res_t *c, *r;
	if (db_exec(db, sql.buf, params, 6, &c)) {
		sb_release(&sql);
		api_db_error(req, db);
		return;
	}
	int64_t total = db_int(c, 0, 0);
	db_res_free(c);
	sb_reset(&sql);
	sb_addf(&sql, "SELECT d.id, d.name, d.project_id, d.timestamp_created, d.zarr_dir, d.is_starred, "
		      "p.id, p.name, p.description, p.is_starred, p.timestamp_created, "
		      "(SELECT u.email FROM user_oauth u JOIN linkuserprojectv2 o ON o.user_id = u.id "
		      "WHERE o.project_id = d.project_id AND o.is_owner = $6), jsonb_array_length(d.images) "
		      "%s ORDER BY d.is_starred DESC, d.timestamp_created DESC LIMIT $7 OFFSET $8", where);
	int rc = db_exec(db, sql.buf, params, 8, &r);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%lld,\"items\":[", (long long)page,
		(long long)(page_size ? page_size : total), (long long)total);
	for (int i = 0; i < db_nrows(r); i++) {
		dataset_row_t d = { .id = db_int(r, i, 0), .name = db_text(r, i, 1), .project_id = db_int(r, i, 2),
				    .timestamp_created = db_text(r, i, 3), .zarr_dir = db_text(r, i, 4),
				    .is_starred = db_bool(r, i, 5) };
		project_row_t p = { .id = db_int(r, i, 6), .name = db_text(r, i, 7), .description = db_text(r, i, 8),
				    .is_starred = db_bool(r, i, 9), .timestamp_created = db_text(r, i, 10) };
		if (i)
			sb_addc(&o, ',');
		access_dataset_json(&o, &d, &p);
		o.buf[--o.len] = '\0'; /* reopen the object for the expanded fields */
		sb_adds(&o, ",\"owner_email\":");
		if (db_text(r, i, 11))
			sb_add_json_str(&o, db_text(r, i, 11));
		else
			sb_adds(&o, "null");
		sb_addf(&o, ",\"image_count\":%lld}", (long long)db_int(r, i, 12));
	}
	sb_adds(&o, "]}");
	db_res_free(r);
	http_json_sb(req, 200, &o);
}
