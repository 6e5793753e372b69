/* slurm_config.c — see slurm_config.h: get_slurm_config, the batching
 * heuristics, slurm_mem_to_MB and the runner's per-job additions.
 *
 * The configuration is built the way upstream builds it: first a dict
 * (slurm_dict) assembled key by key from the runner configuration and the
 * task's meta, in upstream's insertion order, then that dict validated as
 * the SlurmConfig model, so that pydantic's errors (their order, the dict
 * shown as input_value of a missing field) come out as upstream's. */
#include "runner/slurm_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"
#include "model/validate.h"

typedef __int128 i128;

void slurm_err_release(slurm_err_t *e)
{
	e->type = NULL;
	sb_release(&e->msg);
}

static int fail(slurm_err_t *e, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(slurm_err_t *e, const char *type, const char *fmt, ...)
{
	e->type = type;
	sb_reset(&e->msg);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* An f-string "{before}{v!r}{after}" as the exception's text */
static int fail_repr(slurm_err_t *e, const char *type, const char *before, json_t *v, const char *after)
{
	e->type = type;
	sb_reset(&e->msg);
	sb_adds(&e->msg, before);
	py_repr_json(&e->msg, v);
	sb_adds(&e->msg, after);
	return -1;
}

/* str.isspace() of an ASCII character, as int() and str.strip() see it */
static int py_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* ---- Python's conversions of meta values ---- */

/* int(v): 0 and *out, or -1 with Python's error. */
static int py_int(json_t *v, int64_t *out, slurm_err_t *e)
{
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		*out = json_integer_value(v);
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		*out = json_is_true(v);
		return 0;
	case JSON_REAL: {
		double d = json_real_value(v);
		if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
			break;
		*out = (int64_t)d; /* truncation toward zero, as int() */
		return 0;
	}
	case JSON_STRING: {
		/* int(str): blanks around, a sign, digits with single underscores between them */
		const char *s = json_string_value(v);
		size_t n = json_string_length(v), i = 0;
		while (n && py_space((unsigned char)s[n - 1]))
			n--;
		while (i < n && py_space((unsigned char)s[i]))
			i++;
		int neg = 0;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			neg = s[i++] == '-';
		i128 val = 0;
		int ok = i < n, prev_digit = 0, big = 0;
		for (; ok && i < n; i++) {
			if (isdigit((unsigned char)s[i])) {
				if (!big)
					val = val * 10 + (s[i] - '0');
				big |= val > (i128)INT64_MAX + 1;
				prev_digit = 1;
			} else {
				ok = s[i] == '_' && prev_digit && i + 1 < n && isdigit((unsigned char)s[i + 1]);
				prev_digit = 0;
			}
		}
		if (ok && !big && (neg || val <= INT64_MAX)) {
			*out = (int64_t)(neg ? -val : val);
			return 0;
		}
		if (ok)
			break;
		sb_t r = SB_INIT;
		py_repr_str(&r, json_string_value(v), json_string_length(v));
		fail(e, "ValueError", "invalid literal for int() with base 10: %s", r.buf);
		sb_release(&r);
		return -1;
	}
	default:
		return fail(e, "TypeError",
			    "int() argument must be a string, a bytes-like object or a real number, not '%s'",
			    py_type_name(v));
	}
	/* where Python's int would carry on (a deviation: ours is int64) */
	return fail_repr(e, "ValueError", "", v, " is beyond a 64-bit integer");
}

/* interpret_as_bool(v) (fractal_server.string_tools): 0/1, or -1. */
static int interpret_as_bool(json_t *v, slurm_err_t *e)
{
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v)) {
		if (!strcasecmp(json_string_value(v), "true"))
			return 1;
		if (!strcasecmp(json_string_value(v), "false"))
			return 0;
		return fail(e, "ValueError", "String must be 'true' or 'false'.");
	}
	sb_t s = SB_INIT;
	py_str_json(&s, v);
	fail(e, "TypeError", "Expected bool or str, got <class '%s'>: '%s'.", py_type_name(v), s.buf);
	sb_release(&s);
	return -1;
}

static json_t *mem_error(json_t *raw, slurm_err_t *e)
{
	fail_repr(e, SLURM_CONFIG_ERROR, "[_parse_mem_value] raw_mem=", raw,
		  ", invalid specification of memory requirements (valid examples: 93, 71M, 93G, 71T).");
	return NULL;
}

json_t *slurm_mem_to_mb(json_t *raw, slurm_err_t *e)
{
	switch (json_typeof(raw)) {
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
		return json_incref(raw);
	case JSON_STRING: {
		const char *s = json_string_value(raw);
		size_t n = json_string_length(raw);
		int64_t mb;
		if (n == 0) {
			fail(e, "IndexError", "string index out of range");
			return NULL;
		}
		if (mem_to_mb(s, n, &mb))
			return mem_error(raw, e);
		return json_integer(mb);
	}
	case JSON_ARRAY: {
		/* raw_mem[0].isdigit(), then raw_mem.isdigit() on the list */
		json_t *first = json_array_get(raw, 0);
		if (!first) {
			fail(e, "IndexError", "list index out of range");
			return NULL;
		}
		if (!json_is_string(first)) {
			fail(e, "AttributeError", "'%s' object has no attribute 'isdigit'", py_type_name(first));
			return NULL;
		}
		const char *s = json_string_value(first);
		size_t n = json_string_length(first), k = 0;
		while (k < n && isdigit((unsigned char)s[k]))
			k++;
		if (n == 0 || k < n)
			return mem_error(raw, e);
		fail(e, "AttributeError", "'list' object has no attribute 'isdigit'");
		return NULL;
	}
	case JSON_OBJECT:
		fail(e, "KeyError", "0");
		return NULL;
	default:
		fail(e, "TypeError", "'%s' object is not subscriptable", py_type_name(raw));
		return NULL;
	}
}

/* ---- the dict ---- */

/* SlurmConfigSet's fields in model order (model_dump's order), without mem. */
static const char *const set_fields[] = {
	"partition", "cpus_per_task", "constraint", "gres", "exclude", "nodelist", "nodes",
	"time", "account", "extra_lines", "gpus", "shebang_line", "use_mem_per_cpu",
};
static const char *const batching_fields[] = {
	"target_num_jobs", "max_num_jobs", "target_cpus_per_job", "max_cpus_per_job",
	"target_mem_per_job", "max_mem_per_job",
};

/* A SlurmConfigSet's fields into d: model_dump(exclude_unset=True,
 * exclude={"mem"}), where null counts as unset (see slurm_config.h), then
 * its mem as mem_per_task_MB. */
static int add_set(json_t *d, json_t *set, slurm_err_t *e)
{
	for (size_t i = 0; i < sizeof(set_fields) / sizeof(*set_fields); i++) {
		json_t *v = json_object_get(set, set_fields[i]);
		if (v && !json_is_null(v))
			json_object_set(d, set_fields[i], v);
	}
	json_t *mem = json_object_get(set, "mem");
	if (mem && !json_is_null(mem)) {
		/* stored configurations hold MB already; a sparse one may say "1G" */
		json_t *mb = slurm_mem_to_mb(mem, e);
		if (!mb)
			return -1;
		json_object_set_new(d, "mem_per_task_MB", mb);
	}
	return 0;
}

/* Python's == between two hashable JSON values (numbers and bools by value) */
static int py_eq(json_t *a, json_t *b)
{
	if (json_is_string(a) || json_is_string(b))
		return json_is_string(a) && json_is_string(b) && json_equal(a, b);
	if (json_is_null(a) || json_is_null(b))
		return json_is_null(a) && json_is_null(b);
	double x = json_is_boolean(a) ? json_is_true(a) : json_number_value(a);
	double y = json_is_boolean(b) ? json_is_true(b) : json_number_value(b);
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) == json_integer_value(b);
	return x == y;
}

/* extra_lines = config lines + meta lines, repeated ones removed: a new
 * list, or NULL with Python's TypeError. */
static json_t *merge_extra_lines(json_t *d, json_t *meta, slurm_err_t *e)
{
	json_t *cfg = json_object_get(d, "extra_lines");
	json_t *add = meta ? json_object_get(meta, "extra_lines") : NULL;
	if (add && !json_is_array(add)) {
		fail(e, "TypeError", "can only concatenate list (not \"%s\") to list", py_type_name(add));
		return NULL;
	}
	json_t *all = json_array();
	if (json_is_array(cfg))
		json_array_extend(all, cfg);
	if (add)
		json_array_extend(all, add);
	size_t i;
	json_t *x;
	json_array_foreach(all, i, x) {
		if (json_is_array(x) || json_is_object(x)) {
			fail(e, "TypeError", "unhashable type: '%s'", py_type_name(x));
			json_decref(all);
			return NULL;
		}
	}
	/* upstream's list(set(...)) has no defined order: first occurrences, in order */
	json_t *out = json_array();
	json_array_foreach(all, i, x) {
		int seen = 0;
		for (size_t k = 0; k < json_array_size(out) && !seen; k++)
			seen = py_eq(json_array_get(out, k), x);
		if (!seen)
			json_array_append(out, x);
	}
	json_decref(all);
	return out;
}

/* slurm_dict of _get_slurm_config_internal: a new object, or NULL. */
static json_t *slurm_dict(json_t *rc, json_t *meta, const char *task_name, slurm_err_t *e)
{
	json_t *d = json_object();
	json_t *dflt = json_object_get(rc, "default_slurm_config");
	json_t *gpu = json_object_get(rc, "gpu_slurm_config");
	json_t *batching = json_object_get(rc, "batching_config");
	json_t *exports = json_object_get(rc, "user_local_exports");
	if (add_set(d, dflt, e))
		goto fail;
	for (size_t i = 0; i < sizeof(batching_fields) / sizeof(*batching_fields); i++) {
		json_t *v = json_object_get(batching, batching_fields[i]);
		if (!v)
			continue; /* SlurmConfig reports it missing */
		json_t *c = i >= 4 && json_is_string(v) ? slurm_mem_to_mb(v, e) : json_incref(v);
		if (!c)
			goto fail;
		json_object_set_new(d, batching_fields[i], c);
	}
	json_object_set_new(d, "user_local_exports", json_is_object(exports) ? json_incref(exports) : json_object());

	int needs_gpu = 0;
	json_t *v;
	if (meta && (v = json_object_get(meta, "needs_gpu")) && (needs_gpu = interpret_as_bool(v, e)) < 0)
		goto fail;
	if (needs_gpu && json_is_object(gpu) && add_set(d, gpu, e))
		goto fail;

	if (meta && (v = json_object_get(meta, "cpus_per_task"))) {
		int64_t cpus = 0;
		if (py_int(v, &cpus, e))
			goto fail;
		json_object_set_new(d, "cpus_per_task", json_integer(cpus));
	}
	if (meta && (v = json_object_get(meta, "mem"))) {
		json_t *mb = slurm_mem_to_mb(v, e);
		if (!mb)
			goto fail;
		json_object_set_new(d, "mem_per_task_MB", mb);
	}
	sb_t name = SB_INIT;
	for (const char *p = task_name; *p; p++)
		sb_addc(&name, *p == ' ' ? '_' : *p);
	json_object_set_new(d, "job_name", json_stringn(name.buf, name.len));
	sb_release(&name);

	if (meta) {
		json_t *account = json_object_get(meta, "account");
		if (account && !json_is_null(account)) {
			fail_repr(e, SLURM_CONFIG_ERROR, "Invalid account=", account,
				  " property in WorkflowTask `meta` attribute.\nSLURM account must be set in the request "
				  "body of the apply-workflow endpoint, or by modifying the user properties.");
			goto fail;
		}
		static const char *const keys[] = { "time", "gres", "gpus", "constraint", "nodelist", "nodes", "exclude" };
		for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
			if ((v = json_object_get(meta, keys[i])) && !json_is_null(v))
				json_object_set(d, keys[i], v);
	}
	json_t *lines = merge_extra_lines(d, meta, e);
	if (!lines)
		goto fail;
	json_object_set_new(d, "extra_lines", lines);
	json_t *tpj = meta ? json_object_get(meta, "tasks_per_job") : NULL;
	json_t *ptpj = meta ? json_object_get(meta, "parallel_tasks_per_job") : NULL;
	json_object_set(d, "tasks_per_job", tpj ? tpj : json_null());
	json_object_set(d, "parallel_tasks_per_job", ptpj ? ptpj : json_null());
	return d;
fail:
	json_decref(d);
	return NULL;
}

/* ---- SlurmConfig ---- */

#define REQ(n, t) { .name = n, .type = t, .required = 1 }
#define OPT(n, t) { .name = n, .type = t, .nullable = 1 }

/* SlurmConfig's fields in model order (the order of its errors). */
static const vfield_t config_fields[] = {
	REQ("partition", V_STR),
	REQ("cpus_per_task", V_INT),
	REQ("mem_per_task_MB", V_INT),
	{ .name = "prefix", .type = V_STR },
	{ .name = "shebang_line", .type = V_STR },
	{ .name = "use_mem_per_cpu", .type = V_BOOL },
	OPT("job_name", V_STR),
	OPT("constraint", V_STR),
	OPT("gres", V_STR),
	OPT("gpus", V_STR),
	OPT("time", V_STR),
	OPT("account", V_STR),
	OPT("nodelist", V_STR),
	OPT("nodes", V_INT),
	OPT("exclude", V_STR),
	{ .name = "extra_lines", .type = V_LIST, .item = V_STR },
	{ .name = "user_local_exports", .type = V_DICT },
	OPT("tasks_per_job", V_INT),
	OPT("parallel_tasks_per_job", V_INT),
	REQ("target_cpus_per_job", V_INT),
	REQ("max_cpus_per_job", V_INT),
	REQ("target_mem_per_job", V_INT),
	REQ("max_mem_per_job", V_INT),
	REQ("target_num_jobs", V_INT),
	REQ("max_num_jobs", V_INT),
};

/* where the validated fields go: strings (NULL for None), integers
 * (SLURM_NONE for None) */
#define AT(field) offsetof(slurm_config_t, field)
static const struct {
	const char *key;
	size_t at;
} str_fields[] = {
	{ "partition", AT(partition) }, { "shebang_line", AT(shebang_line) }, { "job_name", AT(job_name) },
	{ "constraint", AT(constraint) }, { "gres", AT(gres) },             { "gpus", AT(gpus) },
	{ "time", AT(time) },             { "account", AT(account) },       { "nodelist", AT(nodelist) },
	{ "exclude", AT(exclude) },
}, int_fields[] = {
	{ "cpus_per_task", AT(cpus_per_task) },
	{ "mem_per_task_MB", AT(mem_per_task_MB) },
	{ "nodes", AT(nodes) },
	{ "tasks_per_job", AT(tasks_per_job) },
	{ "parallel_tasks_per_job", AT(parallel_tasks_per_job) },
	{ "target_cpus_per_job", AT(target_cpus_per_job) },
	{ "max_cpus_per_job", AT(max_cpus_per_job) },
	{ "target_mem_per_job", AT(target_mem_per_job) },
	{ "max_mem_per_job", AT(max_mem_per_job) },
	{ "target_num_jobs", AT(target_num_jobs) },
	{ "max_num_jobs", AT(max_num_jobs) },
};
#define NFIELDS(t) (sizeof(t) / sizeof(*(t)))

/* dict[str, str] values: the stored configuration has them validated */
static int exports_ok(json_t *d, json_t *loc, verr_t *ve)
{
	const char *k;
	json_t *v;
	int ok = 1;
	json_object_foreach(d, k, v) {
		if (!json_is_string(v)) {
			json_t *l = json_copy(loc);
			json_array_append_new(l, json_string("user_local_exports"));
			json_array_append_new(l, json_string(k));
			verr_add(ve, "string_type", l, "Input should be a valid string", v, NULL);
			ok = 0;
		}
	}
	return ok;
}

int slurm_config_get(json_t *runner_config, json_t *meta, const char *task_name, slurm_config_t *out,
		     slurm_err_t *e)
{
	memset(out, 0, sizeof(*out));
	if (meta && !json_is_object(meta))
		meta = NULL;
	json_t *d = slurm_dict(runner_config, meta, task_name, e);
	if (!d)
		return -1;
	verr_t ve;
	verr_init(&ve);
	json_t *loc = json_array();
	json_t *v = v_object(d, config_fields, (int)NFIELDS(config_fields), 1, loc, &ve);
	json_t *exports = json_object_get(v, "user_local_exports");
	if (exports)
		exports_ok(exports, loc, &ve);
	json_decref(loc);
	if (json_array_size(ve.list)) {
		e->type = SLURM_VALIDATION_ERROR;
		sb_reset(&e->msg);
		verr_render(ve.list, "SlurmConfig", &e->msg);
		verr_free(&ve);
		json_decref(v);
		json_decref(d);
		return -1;
	}
	verr_free(&ve);
	for (size_t i = 0; i < NFIELDS(str_fields); i++) {
		json_t *x = json_object_get(v, str_fields[i].key);
		*(char **)((char *)out + str_fields[i].at) = json_is_string(x) ? xstrdup(json_string_value(x)) : NULL;
	}
	for (size_t i = 0; i < NFIELDS(int_fields); i++) {
		json_t *x = json_object_get(v, int_fields[i].key);
		*(int64_t *)((char *)out + int_fields[i].at) = json_is_integer(x) ? json_integer_value(x) : SLURM_NONE;
	}
	if (!out->shebang_line)
		out->shebang_line = xstrdup("#!/bin/sh");
	out->use_mem_per_cpu = json_is_true(json_object_get(v, "use_mem_per_cpu"));
	json_t *lines = json_object_get(v, "extra_lines");
	out->n_extra_lines = json_array_size(lines);
	out->extra_lines = xcalloc(out->n_extra_lines + 1, sizeof(char *));
	for (size_t i = 0; i < out->n_extra_lines; i++)
		out->extra_lines[i] = xstrdup(json_string_value(json_array_get(lines, i)));
	out->user_local_exports = exports ? json_incref(exports) : json_object();
	json_decref(v);
	json_decref(d);
	return 0;
}

void slurm_config_free(slurm_config_t *c)
{
	for (size_t i = 0; i < NFIELDS(str_fields); i++)
		free(*(char **)((char *)c + str_fields[i].at));
	for (size_t i = 0; i < c->n_extra_lines; i++)
		free(c->extra_lines[i]);
	free(c->extra_lines);
	json_decref(c->user_local_exports);
	memset(c, 0, sizeof(*c));
}

/* ---- the runner's additions ---- */

int slurm_worker_init_check(const char *worker_init, slurm_err_t *e)
{
	static const char bad[] = "#SBATCH --account=";
	for (const char *line = worker_init; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, bad, sizeof(bad) - 1))
			continue;
		size_t n = strcspn(line, "\n");
		return fail(e, "RuntimeError",
			    "Invalid line in `common_script_lines`: '%.*s'.\nSLURM account must be set via the request "
			    "body of the apply-workflow endpoint, or by modifying the user properties.",
			    (int)n, line);
	}
	return 0;
}

void slurm_config_finish(slurm_config_t *c, const char *account, const char *worker_init)
{
	if (account) {
		free(c->account);
		c->account = xstrdup(account);
	}
	for (const char *line = worker_init; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		c->extra_lines = xrealloc(c->extra_lines, (c->n_extra_lines + 2) * sizeof(char *));
		c->extra_lines[c->n_extra_lines++] = xstrndup(line, strcspn(line, "\n"));
		c->extra_lines[c->n_extra_lines] = NULL;
	}
}

/* ---- batching (_batching.py) ----
 * Python's integers: // floors, ceil(a / b) is exact for any size we hold;
 * products in 128 bits so that nothing wraps. */

void slurm_add_int128(sb_t *sb, __int128 v)
{
	char buf[48], *p = buf + sizeof(buf);
	int neg = v < 0;
	*--p = 0;
	do {
		int d = (int)(v % 10);
		*--p = (char)('0' + (d < 0 ? -d : d));
		v /= 10;
	} while (v);
	if (neg)
		*--p = '-';
	sb_adds(sb, p);
}

static int floordiv(i128 a, i128 b, i128 *q, slurm_err_t *e)
{
	if (b == 0)
		return fail(e, "ZeroDivisionError", "integer division or modulo by zero");
	*q = a / b;
	if (a % b != 0 && ((a < 0) != (b < 0)))
		(*q)--;
	return 0;
}

/* math.ceil(a / b), b's ZeroDivisionError being true division's */
static int ceildiv(i128 a, i128 b, i128 *q, slurm_err_t *e)
{
	if (b == 0)
		return fail(e, "ZeroDivisionError", "division by zero");
	floordiv(-a, b, q, e);
	*q = -*q;
	return 0;
}

/* _estimate_parallel_tasks_per_job */
static int estimate(i128 cpus, i128 mem, i128 max_cpus, i128 max_mem, i128 *p, slurm_err_t *e)
{
	if (cpus > max_cpus || mem > max_mem) {
		*p = 1;
		return 0;
	}
	i128 by_cpus = 0, by_mem = 0;
	if (floordiv(max_cpus, cpus, &by_cpus, e) || floordiv(max_mem, mem, &by_mem, e))
		return -1;
	*p = by_cpus < by_mem ? by_cpus : by_mem;
	return 0;
}

static int requested(slurm_err_t *e, const char *what, i128 value, const char *limit, int64_t max)
{
	e->type = SLURM_HEURISTICS_ERROR;
	sb_reset(&e->msg);
	sb_addf(&e->msg, "[heuristics] Requested %s=", what);
	slurm_add_int128(&e->msg, value);
	sb_addf(&e->msg, " but %s=%lld.", limit, (long long)max);
	return -1;
}

static int64_t clamp(i128 v)
{
	return v > INT64_MAX ? INT64_MAX : v <= INT64_MIN ? INT64_MIN + 1 : (int64_t)v;
}

int slurm_batching(slurm_config_t *c, int64_t tot_tasks, slurm_err_t *e)
{
	int64_t tpj = c->tasks_per_job, ptpj = c->parallel_tasks_per_job;
	int has_tpj = tpj != SLURM_NONE && tpj != 0, has_ptpj = ptpj != SLURM_NONE && ptpj != 0;
	i128 cpus = c->cpus_per_task, mem = c->mem_per_task_MB, tot = tot_tasks, p, num_jobs;
	if (has_tpj != has_ptpj)
		return fail(e, SLURM_HEURISTICS_ERROR,
			    "tasks_per_job and parallel_tasks_per_job must be both set or both unset");
	if (cpus > c->max_cpus_per_job)
		return requested(e, "cpus_per_task", cpus, "max_cpus_per_job", c->max_cpus_per_job);
	if (mem > c->max_mem_per_job)
		return requested(e, "mem_per_task", mem, "max_mem_per_job", c->max_mem_per_job);

	/* 1: the meta's values, checked (above the targets is only a warning upstream) */
	if (has_tpj) {
		if (ptpj > tpj)
			ptpj = tpj;
		if ((i128)ptpj * cpus > c->max_cpus_per_job)
			return requested(e, "cpus_per_job", (i128)ptpj * cpus, "max_cpus_per_job", c->max_cpus_per_job);
		if ((i128)ptpj * mem > c->max_mem_per_job)
			return requested(e, "mem_per_job", (i128)ptpj * mem, "max_mem_per_job", c->max_mem_per_job);
		ceildiv(tot, tpj, &num_jobs, e);
		if (num_jobs > c->max_num_jobs)
			return requested(e, "num_jobs", num_jobs, "max_num_jobs", c->max_num_jobs);
		c->tasks_per_job = tpj;
		c->parallel_tasks_per_job = ptpj;
		return 0;
	}
	/* 2: as many as the target resources allow, no in-job queue */
	if (estimate(cpus, mem, c->target_cpus_per_job, c->target_mem_per_job, &p, e) || ceildiv(tot, p, &num_jobs, e))
		return -1;
	if (num_jobs <= c->target_num_jobs)
		goto done;
	/* 3: the same with the maximum resources */
	if (estimate(cpus, mem, c->max_cpus_per_job, c->max_mem_per_job, &p, e) || ceildiv(tot, p, &num_jobs, e))
		return -1;
	if (num_jobs <= c->max_num_jobs)
		goto done;
	/* 4: maximum resources, and an in-job queue to keep to max_num_jobs */
	c->parallel_tasks_per_job = clamp(p);
	if (ceildiv(tot, c->max_num_jobs, &num_jobs, e))
		return -1;
	c->tasks_per_job = clamp(num_jobs);
	return 0;
done:
	c->tasks_per_job = c->parallel_tasks_per_job = clamp(p);
	return 0;
}
