/* output.c — validation of what a task wrote (upstream's task_interface.py
 * and _process_task_output): TaskOutput for non-init units, InitTaskOutput
 * for a compound task's init, with pydantic-shaped messages; and
 * deduplicate_list. Pure value work on the JSON tree: no database, no
 * files. Used by kinds.c (per unit) and workflow.c (merging). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "model/images.h"
#include "model/pyrepr.h"
#include "runner/internal.h"

/* ---- pydantic-shaped messages for task outputs ---- */

static void pyd_errors(sb_t *out, const char *model, json_t *errs)
{
	size_t n = json_array_size(errs);
	sb_addf(out, "%zu validation error%s for %s", n, n == 1 ? "" : "s", model);
	size_t i;
	json_t *e;
	json_array_foreach(errs, i, e) {
		sb_addc(out, '\n');
		json_t *loc = json_object_get(e, "loc");
		size_t k;
		json_t *l;
		json_array_foreach(loc, k, l) {
			if (k)
				sb_addc(out, '.');
			if (json_is_integer(l))
				sb_addf(out, "%lld", (long long)json_integer_value(l));
			else
				sb_adds(out, json_string_value(l));
		}
		const char *type = json_string_value(json_object_get(e, "type"));
		json_t *input = json_object_get(e, "input");
		sb_addf(out, "\n  %s [type=%s, input_value=", json_string_value(json_object_get(e, "msg")), type);
		py_repr_json(out, input ? input : json_null());
		sb_addf(out, ", input_type=%s]", py_type_name(input ? input : json_null()));
		sb_addf(out, "\n    For further information visit https://errors.pydantic.dev/2.13/v/%s", type);
	}
}

static void verr_push(verr_t *e, const char *type, json_t *loc, const char *msg, json_t *input)
{
	verr_add(e, type, loc, msg, input, NULL);
}

/* SingleImageTaskOutput: SingleImage whose attributes may be null. */
static json_t *image_output_validate(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "model_type", json_incref(loc),
			 "Input should be a valid dictionary or instance of SingleImageTaskOutput", in,
			 json_pack("{s:s}", "class_name", "SingleImageTaskOutput"));
		return NULL;
	}
	json_t *copy = json_copy(in);
	json_t *attrs = json_object_get(copy, "attributes");
	json_t *nulls = json_array();
	if (json_is_object(attrs)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(attrs, tmp, k, v) {
			if (json_is_null(v)) {
				json_array_append_new(nulls, json_string(k));
				json_object_del(attrs, k);
			}
		}
	}
	json_t *out = image_validate(copy, loc, e);
	json_decref(copy);
	if (out) {
		json_t *a = json_object_get(out, "attributes");
		size_t i;
		json_t *k;
		json_array_foreach(nulls, i, k) {
			/* keys are stripped as the others */
			const char *s = json_string_value(k);
			while (isspace((unsigned char)*s))
				s++;
			size_t n = strlen(s);
			while (n && isspace((unsigned char)s[n - 1]))
				n--;
			char *key = xstrndup(s, n);
			json_object_set_new(a, key, json_null());
			free(key);
		}
	}
	json_decref(nulls);
	return out;
}

/* loc is stolen */
static json_t *zarr_url_value(json_t *v, json_t *loc, verr_t *e)
{
	if (!json_is_string(v)) {
		verr_push(e, "string_type", loc, "Input should be a valid string", v);
		return NULL;
	}
	const char *why = NULL;
	char *norm = zarr_url_normalise(json_string_value(v), &why);
	if (!norm) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Value error, %s", why);
		verr_add(e, "value_error", loc, m.buf, v, json_pack("{s:{}}", "error"));
		sb_release(&m);
		return NULL;
	}
	json_decref(loc);
	json_t *r = json_string(norm);
	free(norm);
	return r;
}

static void extra_forbidden(json_t *obj, const char **allowed, json_t *base, verr_t *e)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int ok = 0;
		for (const char **a = allowed; *a; a++)
			ok |= !strcmp(*a, k);
		if (!ok) {
			json_t *loc = json_copy(base);
			json_array_append_new(loc, json_string(k));
			verr_push(e, "extra_forbidden", loc, "Extra inputs are not permitted", v);
		}
	}
}

static json_t *list_field(json_t *obj, const char *name, verr_t *e)
{
	json_t *v = json_object_get(obj, name);
	if (!v || json_is_array(v))
		return v;
	verr_push(e, "list_type", json_pack("[s]", name), "Input should be a valid list", v);
	return NULL;
}

/* The end of both output validations: unknown top-level keys, then either
 * out (the validated output) or NULL with upstream's message naming what
 * and the model. Frees e; out is stolen. */
static json_t *output_validated(json_t *result, const char **allowed, verr_t *e, const char *what, const char *model,
				json_t *out, sb_t *msg)
{
	json_t *empty = json_array();
	extra_forbidden(result, allowed, empty, e);
	json_decref(empty);
	if (json_array_size(e->list)) {
		sb_addf(msg, "Validation of %s failed.\nOriginal error: ", what);
		pyd_errors(msg, model, e->list);
		sb_adds(msg, "\nOriginal data: ");
		py_repr_json(msg, result);
		sb_adds(msg, ".");
		json_decref(out);
		out = NULL;
	}
	verr_free(e);
	return out;
}

/* TaskOutput(**result): a new {"image_list_updates": [...],
 * "image_list_removals": [...]}, or NULL with upstream's message in msg.
 * result must be an object. */
static json_t *task_output_validate(json_t *result, sb_t *msg)
{
	verr_t e;
	verr_init(&e);
	static const char *allowed[] = { "image_list_updates", "image_list_removals", NULL };
	json_t *out = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
	json_t *ups = list_field(result, "image_list_updates", &e);
	size_t i;
	json_t *x;
	json_array_foreach(ups, i, x) {
		json_t *loc = json_pack("[s,I]", "image_list_updates", (json_int_t)i);
		json_t *img = image_output_validate(x, loc, &e);
		json_decref(loc);
		if (img)
			json_array_append_new(json_object_get(out, "image_list_updates"), img);
	}
	json_t *rms = list_field(result, "image_list_removals", &e);
	json_array_foreach(rms, i, x) {
		json_t *u = zarr_url_value(x, json_pack("[s,I]", "image_list_removals", (json_int_t)i), &e);
		if (u)
			json_array_append_new(json_object_get(out, "image_list_removals"), u);
	}
	return output_validated(result, allowed, &e, "task output", "TaskOutput", out, msg);
}

/* InitTaskOutput(**result): the parallelization list, or NULL with msg. */
json_t *output_init_validate(json_t *result, sb_t *msg)
{
	verr_t e;
	verr_init(&e);
	static const char *allowed[] = { "parallelization_list", NULL };
	static const char *item_allowed[] = { "zarr_url", "init_args", NULL };
	json_t *out = json_array();
	json_t *list = list_field(result, "parallelization_list", &e);
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		json_t *base = json_pack("[s,I]", "parallelization_list", (json_int_t)i);
		if (!json_is_object(x)) {
			verr_add(&e, "model_type", json_incref(base), "Input should be a valid dictionary or instance of InitArgsModel",
				 x, json_pack("{s:s}", "class_name", "InitArgsModel"));
			json_decref(base);
			continue;
		}
		json_t *item = json_object();
		json_t *zu = json_object_get(x, "zarr_url");
		json_t *loc = json_copy(base);
		json_array_append_new(loc, json_string("zarr_url"));
		if (!zu) {
			verr_push(&e, "missing", loc, "Field required", x);
		} else {
			json_t *u = zarr_url_value(zu, loc, &e);
			if (u)
				json_object_set_new(item, "zarr_url", u);
		}
		json_t *ia = json_object_get(x, "init_args");
		if (!ia) {
			json_object_set_new(item, "init_args", json_object());
		} else if (!json_is_object(ia)) {
			json_t *l2 = json_copy(base);
			json_array_append_new(l2, json_string("init_args"));
			verr_push(&e, "dict_type", l2, "Input should be a valid dictionary", ia);
		} else {
			json_object_set(item, "init_args", ia);
		}
		extra_forbidden(x, item_allowed, base, &e);
		json_decref(base);
		json_array_append_new(out, item);
	}
	return output_validated(result, allowed, &e, "init-task output", "InitTaskOutput", out, msg);
}

/* deduplicate_list (internal.h). */
json_t *output_dedupe(json_t *list)
{
	json_t *seen = json_object(), *out = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		char *key = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			json_array_append(out, x);
		}
		free(key);
	}
	json_decref(seen);
	json_decref(list);
	return out;
}

/* _process_task_output (internal.h). */
int output_process(unit_t *u, outcome_t *o, sb_t *typeerr)
{
	if (u->exc) {
		o->exc = xstrdup(u->exc);
		return 0;
	}
	if (!u->result || json_is_null(u->result)) {
		o->output = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
		return 0;
	}
	if (!json_is_object(u->result)) {
		sb_addf(typeerr, "fractal_server.runner.v2.task_interface.TaskOutput() argument after ** must be a mapping, not %s",
			py_type_name(u->result));
		return -1;
	}
	sb_t m = SB_INIT;
	o->output = task_output_validate(u->result, &m);
	if (!o->output) {
		o->exc = sb_detach(&m);
		o->invalid_output = 1;
	}
	sb_release(&m);
	return 0;
}
