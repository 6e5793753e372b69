/* fuzz_validate.c — libFuzzer target for the request-body validators:
 * model/validate.c (pydantic's lax coercions, patterns, lengths, e-mails)
 * and the models built on it in model/images.c, model/task.c and
 * model/resource.c (images and filters, task create/update, manifests,
 * resources and profiles).
 *
 * The first byte chooses the model, the rest is the JSON body (refused
 * first when too deep, as api/params.c does). Beyond "no crash, no leak,
 * no undefined behaviour": every error is {type, loc, msg, input} with loc
 * a list, the error list renders as pydantic's text and dumps as JSON, and
 * for the generic model and for images what passed validates again to
 * itself with no error (pydantic's coercions are idempotent). */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/images.h"
#include "model/resource.h"
#include "model/task.h"
#include "model/validate.h"

static const char *check_upper(json_t **val, sb_t *msg)
{
	const char *s = json_string_value(*val);
	if (s && strchr(s, 'x')) {
		sb_addf(msg, "no x in %s", s);
		return msg->buf;
	}
	json_t *u = json_string("UPPER");
	json_decref(*val);
	*val = u;
	return NULL;
}

/* one field of every kind the API's models use */
static const vfield_t generic[] = {
	{ .name = "any", .type = V_ANY },
	{ .name = "str", .type = V_STR, .max_length = 8 },
	{ .name = "name", .type = V_NONEMPTY, .required = 1, .max_length = V_INDEXED_MAX_LENGTH },
	{ .name = "slug", .type = V_STR, .nullable = 1, .pattern = "^[a-z0-9_-]+$" },
	{ .name = "int", .type = V_INT },
	{ .name = "nonneg", .type = V_NONNEG, .nullable = 1 },
	{ .name = "float", .type = V_FLOAT },
	{ .name = "bool", .type = V_BOOL },
	{ .name = "email", .type = V_EMAIL },
	{ .name = "dict", .type = V_DICT, .nullable = 1 },
	{ .name = "strs", .type = V_LIST, .item = V_NONEMPTY, .min_length = 1 },
	{ .name = "ints", .type = V_LIST, .item = V_INT },
	{ .name = "checked", .type = V_STR, .check = check_upper },
};
#define NGENERIC ((int)(sizeof(generic) / sizeof(generic[0])))

static void check_errors(verr_t *e)
{
	size_t i;
	json_t *err;
	json_array_foreach(e->list, i, err) {
		assert(json_is_string(json_object_get(err, "type")));
		assert(json_is_array(json_object_get(err, "loc")));
		assert(json_is_string(json_object_get(err, "msg")));
		assert(json_object_get(err, "input"));
	}
	sb_t r = SB_INIT;
	verr_render(e->list, "Model", &r);
	if (json_array_size(e->list))
		assert(strstr(r.buf, "validation error"));
	sb_release(&r);
	char *d = json_dumps(e->list, JSON_ENCODE_ANY);
	assert(d);
	free(d);
}

/* out validates again to itself, with no error */
static void check_again(json_t *out, json_t *(*fn)(json_t *, json_t *, verr_t *))
{
	verr_t e2;
	verr_init(&e2);
	json_t *loc = json_array();
	json_t *again = fn(out, loc, &e2);
	assert(json_array_size(e2.list) == 0);
	assert(again && json_equal(again, out));
	json_decref(again);
	json_decref(loc);
	verr_free(&e2);
}

static int ends_in_space(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	return n && isspace((unsigned char)v[n - 1]);
}

static json_t *generic_object(json_t *in, json_t *loc, verr_t *e)
{
	return v_object(in, generic, NGENERIC, 1, loc, e);
}

static void text_checks(const char *s, size_t n)
{
	int64_t mb;
	if (mem_to_mb(s, n, &mb) == 0)
		assert(mb >= 0);
	char *z = malloc(n + 1);
	memcpy(z, s, n);
	z[n] = '\0';
	const char *why = NULL;
	char *norm = zarr_url_normalise(z, &why);
	if (norm) {
		/* what was normalised is its own normal form, unless it ends in
		 * whitespace: stripping comes before normpath, as in upstream's
		 * normalize_url ("/a/..\t/" gives "/a/..\t", which fails again) */
		const char *why2 = NULL;
		char *again = zarr_url_normalise(norm, &why2);
		if (!ends_in_space(norm))
			assert(again && !strcmp(again, norm));
		free(again);
		(void)url_is_relative_to(z, norm);
		free(norm);
	} else {
		assert(why);
	}
	sb_t err = SB_INIT, msg = SB_INIT;
	char *abs = abs_path_normalise(z, "path", &err);
	free(abs);
	(void)task_validate_cmd(z, NULL, NULL, &msg);
	(void)task_type_valid(z);
	sb_release(&err);
	sb_release(&msg);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned model = data[0] % 10;
	if (model == 9) {
		text_checks((const char *)data + 1, size - 1);
		return 0;
	}
	json_t *in = fuzz_json(data + 1, size - 1);
	if (!in)
		return 0;
	verr_t e;
	verr_init(&e);
	json_t *loc = json_pack("[s]", "body"), *out = NULL;
	switch (model) {
	case 0:
		if (json_is_object(in)) {
			out = generic_object(in, loc, &e);
			assert(json_is_object(out));
			if (!json_array_size(e.list))
				check_again(out, generic_object);
		}
		break;
	case 1:
		out = task_create_check(in, loc, &e);
		break;
	case 2:
		out = task_update_check(in, loc, &e);
		break;
	case 3:
		out = manifest_check(in, loc, &e);
		if (out && !json_array_size(e.list)) {
			json_t *tasks = manifest_tasks(out, "/pkg", "/pkg/venv/bin/python", "1.0", &e);
			json_decref(tasks);
		}
		break;
	case 4:
		out = task_ids_check(in, loc, &e);
		break;
	case 5:
		out = image_validate(in, loc, &e);
		/* as for zarr_url_normalise below: a zarr_url that ends in
		 * whitespace after normalising ("/a /" gives "/a ") is stripped
		 * again by a second validation, as upstream does */
		if (out && !ends_in_space(json_string_value(json_object_get(out, "zarr_url"))))
			check_again(out, image_validate);
		break;
	case 6:
		out = resource_check(in, loc, 0, &e);
		json_decref(out);
		out = resource_check(in, loc, 1, &e);
		break;
	case 7:
		out = profile_check(in, loc, 0, &e);
		json_decref(out);
		out = profile_check(in, loc, 1, &e);
		break;
	case 8: {
		sb_t err = SB_INIT;
		out = resource_validate(in, &err);
		if (!out)
			assert(err.len);
		json_t *p = profile_validate(in, "local", &err);
		json_decref(p);
		p = profile_validate(in, "slurm_ssh", &err);
		json_decref(p);
		sb_release(&err);
		break;
	}
	}
	check_errors(&e);
	if (out) {
		char *d = json_dumps(out, JSON_ENCODE_ANY);
		assert(d);
		free(d);
		/* Python's json.dumps text reads back as the same value */
		char *py = json_dump_py(out);
		json_t *back = json_loads(py, JSON_DECODE_ANY, NULL);
		assert(back && json_equal(back, out));
		json_decref(back);
		free(py);
	}
	json_decref(out);
	json_decref(loc);
	verr_free(&e);
	json_decref(in);
	return 0;
}
