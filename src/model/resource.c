/* resource.c — see resource.h.
 *
 * The rules are upstream's pydantic models (app/schemas/v2/resource.py,
 * profile.py, runner/config/, tasks/config/), written here as tables of
 * fields that one small interpreter walks, so that the order of fields
 * (which fixes the order of errors and of the stored keys), defaults,
 * extra-key policy and the model-level checks read like the models do.
 * Models that upstream declares with extra="forbid" refuse unknown keys;
 * the others drop them. */
#include "model/resource.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"
#include "util/timeutil.h"

/* ---- the field kinds and the model tables ---- */

enum fkind {
	F_TAG,           /* the union's discriminator, already checked */
	F_STR,           /* str */
	F_NONEMPTY,      /* NonEmptyStr */
	F_NAME,          /* NonEmptyStr of a unique name: at most V_INDEXED_MAX_LENGTH (ours) */
	F_ABSPATH,       /* AbsolutePathStr */
	F_INT,           /* int */
	F_POSINT,        /* PositiveInt */
	F_BOOL,          /* bool */
	F_NONE,          /* None: only null */
	F_MEM,           /* MemMBType: PositiveInt | NonEmptyStr, then in MB */
	F_PIXIMEM,       /* PixiMemoryStr: NonEmptyStr ending in K/M/G/T */
	F_LIST_STR,      /* list[str] */
	F_LIST_NONEMPTY, /* list[NonEmptyStr] */
	F_DICTSTRSTR,    /* DictStrStr */
	F_PYVERSIONS,    /* dict[PythonVersion, AbsolutePathStr] */
	F_PIXI,          /* dict[NonEmptyStr, Any], then TasksPixiSettings if not empty */
	F_MODEL,         /* a nested model */
};

typedef struct model model_t;

typedef struct mfield {
	const char *name;
	enum fkind kind;
	int nullable;            /* "X | None" */
	const char *dflt;        /* the default as JSON text; NULL: required */
	const model_t *sub;      /* F_MODEL */
} mfield_t;

/* A model-level check (model_validator(mode="after")) on the validated
 * object: NULL, or the message of its ValueError (built in msg). */
typedef const char *(*after_fn)(json_t *obj, sb_t *msg);

struct model {
	const char *name;        /* the class name, for "model_type" errors */
	const mfield_t *fields;
	int nfields;
	int forbid_extra;
	after_fn after;
};

struct vctx {
	verr_t *e;
	int from_attributes;
};

/* ---- locations and errors ---- */

static json_t *loc_add(json_t *loc, const char *key)
{
	json_t *l = json_copy(loc);
	json_array_append_new(l, json_string(key));
	return l;
}

static size_t nerr(struct vctx *c)
{
	return json_array_size(c->e->list);
}

static void add_err(struct vctx *c, const char *type, json_t *loc, const char *msg, json_t *input, json_t *ctx)
{
	verr_add(c->e, type, json_copy(loc), msg, input, ctx);
}

static void value_error(struct vctx *c, json_t *loc, const char *why, json_t *input)
{
	sb_t msg = SB_INIT;
	sb_addf(&msg, "Value error, %s", why);
	add_err(c, "value_error", loc, msg.buf, input, json_pack("{s:{}}", "error"));
	sb_release(&msg);
}

/* ---- strings and paths ---- */

static void strip(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* AbsolutePathStr after its NonEmptyStr part: the first of upstream's
 * three checks that fails gives its message (in msg); else NULL and the
 * os.path.normpath form in out. */
static const char *abspath_rule(const char *s, sb_t *out, sb_t *msg)
{
	if (s[0] != '/') {
		sb_addf(msg, "String must be an absolute path (given '%s').", s);
		return msg->buf;
	}
	for (const char *p = s; *p;) {
		const char *b = p;
		while (*p && *p != '/')
			p++;
		if (p - b == 2 && b[0] == '.' && b[1] == '.') {
			sb_adds(msg, "String must not contain '/../'.");
			return msg->buf;
		}
		while (*p == '/')
			p++;
	}
	/* POSIX keeps exactly two leading slashes; more collapse to one */
	sb_adds(out, s[1] == '/' && s[2] != '/' ? "//" : "/");
	size_t root = out->len;
	for (const char *p = s; *p;) {
		while (*p == '/')
			p++;
		const char *b = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - b);
		if (len == 0 || (len == 1 && b[0] == '.'))
			continue;
		if (out->len > root)
			sb_addc(out, '/');
		sb_add(out, b, len);
	}
	return NULL;
}

char *abs_path_normalise(const char *in, const char *field, sb_t *err)
{
	size_t n = strlen(in);
	strip(&in, &n);
	if (n == 0) {
		sb_addf(err, "%s: String should have at least 1 character", field);
		return NULL;
	}
	char *s = xstrndup(in, n);
	sb_t out = SB_INIT, msg = SB_INIT;
	const char *why = abspath_rule(s, &out, &msg);
	free(s);
	if (why) {
		sb_addf(err, "%s: %s", field, why);
		sb_release(&out);
		sb_release(&msg);
		return NULL;
	}
	sb_release(&msg);
	return sb_detach(&out);
}

const char *check_abspath(json_t **val, sb_t *msg)
{
	sb_t out = SB_INIT;
	const char *why = abspath_rule(json_string_value(*val), &out, msg);
	if (!why) {
		json_decref(*val);
		*val = json_stringn(out.buf, out.len);
	}
	sb_release(&out);
	return why;
}

static const char *check_pixi_mem(json_t **val, sb_t *msg)
{
	const char *s = json_string_value(*val);
	char last = s[strlen(s) - 1];
	if (!strchr("KMGT", last)) {
		sb_addf(msg, "Invalid memory requirement '%s' for `pixi`, please set a K/M/G/T units suffix.", s);
		return msg->buf;
	}
	return NULL;
}

/* ---- values ----
 * Every validator below returns a new reference to the value in its
 * dumped form (the caller decrefs), or NULL after adding its errors. */

static json_t *vvalue(struct vctx *c, enum vtype type, enum vtype item, vcheck_fn check, json_t *v, json_t *loc)
{
	vfield_t f = { .type = type, .item = item, .check = check };
	return v_value(&f, v, loc, c->e);
}

static json_t *pos_int(struct vctx *c, json_t *v, json_t *loc)
{
	json_t *r = vvalue(c, V_INT, V_ANY, NULL, v, loc);
	if (r && json_integer_value(r) <= 0) {
		add_err(c, "greater_than", loc, "Input should be greater than 0", v, json_pack("{s:i}", "gt", 0));
		json_decref(r);
		return NULL;
	}
	return r;
}

/* MemMBType. The union is pydantic's "smart" one: a non-empty string is
 * an exact match for the str branch (then converted to MB), a number is
 * taken by the int branch; when both fail each reports its errors under
 * its branch name. */
static json_t *mem_mb(struct vctx *c, json_t *v, json_t *loc)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		strip(&s, &n);
		if (n) {
			char *t = xstrndup(s, n);
			int64_t mb;
			int rc = mem_to_mb(t, n, &mb);
			if (rc) {
				sb_t why = SB_INIT;
				sb_adds(&why, "[_parse_mem_value] raw_mem=");
				py_repr_str(&why, t, n);
				sb_adds(&why, ", invalid specification of memory requirements (valid examples: 93, 71M, 93G, 71T).");
				value_error(c, loc, why.buf, v);
				sb_release(&why);
			}
			free(t);
			return rc ? NULL : json_integer(mb);
		}
	} else if (json_is_number(v) || json_is_boolean(v)) {
		verr_t quiet;
		verr_init(&quiet);
		vfield_t f = { .type = V_INT };
		json_t *r = v_value(&f, v, loc, &quiet);
		verr_free(&quiet);
		if (r && json_integer_value(r) > 0)
			return r;
		json_decref(r);
	}
	json_t *li = loc_add(loc, "constrained-int"), *ls = loc_add(loc, "constrained-str");
	json_decref(pos_int(c, v, li));
	json_decref(vvalue(c, V_NONEMPTY, V_ANY, NULL, v, ls));
	json_decref(li);
	json_decref(ls);
	return NULL;
}

/* valdict_keys: keys stripped, none empty, none repeated; a key that
 * changed moves to the end (upstream pops and re-inserts it). Returns a
 * new object (caller decrefs), or NULL with the message in msg. */
static json_t *valdict_keys(json_t *d, sb_t *msg)
{
	json_t *keys = json_array();
	const char *k;
	json_t *x;
	int empty = 0;
	json_object_foreach(d, k, x) {
		const char *s = k;
		size_t n = strlen(k);
		strip(&s, &n);
		empty |= n == 0;
		json_array_append_new(keys, json_stringn(s, n));
	}
	if (empty) {
		sb_adds(msg, "Empty string in [");
		size_t i;
		json_array_foreach(keys, i, x) {
			if (i)
				sb_adds(msg, ", ");
			py_repr_str(msg, json_string_value(x), json_string_length(x));
		}
		sb_adds(msg, "].");
		json_decref(keys);
		return NULL;
	}
	json_t *out = json_object();
	size_t i;
	json_array_foreach(keys, i, x) {
		if (json_object_get(out, json_string_value(x))) {
			sb_adds(msg, "Dictionary contains multiple identical keys: '");
			py_repr_json(msg, d);
			sb_adds(msg, "'.");
			json_decref(out);
			json_decref(keys);
			return NULL;
		}
		json_object_set_new(out, json_string_value(x), json_null());
	}
	json_object_clear(out);
	for (int pass = 0; pass < 2; pass++) {
		i = 0;
		json_object_foreach(d, k, x) {
			const char *nk = json_string_value(json_array_get(keys, i++));
			if ((strcmp(nk, k) != 0) == pass)
				json_object_set(out, nk, x);
		}
	}
	json_decref(keys);
	return out;
}

static json_t *dict_str_str(struct vctx *c, json_t *v, json_t *loc)
{
	if (!json_is_object(v)) {
		add_err(c, "dict_type", loc, "Input should be a valid dictionary", v, NULL);
		return NULL;
	}
	size_t before = nerr(c);
	json_t *d = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x) {
		json_t *kl = loc_add(loc, k);
		json_t *r = vvalue(c, V_NONEMPTY, V_ANY, NULL, x, kl);
		if (r)
			json_object_set_new(d, k, r);
		json_decref(kl);
	}
	json_t *out = NULL;
	if (nerr(c) == before) {
		sb_t msg = SB_INIT;
		out = valdict_keys(d, &msg);
		if (!out)
			value_error(c, loc, msg.buf, v);
		sb_release(&msg);
	}
	json_decref(d);
	return out;
}

#define PYTHON_VERSIONS "'3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'"

static json_t *python_versions(struct vctx *c, json_t *v, json_t *loc)
{
	static const char *const known[] = { "3.9", "3.10", "3.11", "3.12", "3.13", "3.14" };
	if (!json_is_object(v)) {
		add_err(c, "dict_type", loc, "Input should be a valid dictionary", v, NULL);
		return NULL;
	}
	size_t before = nerr(c);
	json_t *out = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x) {
		json_t *kl = loc_add(loc, k);
		int ok = 0;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= !strcmp(k, known[i]);
		if (!ok) {
			json_t *kk = loc_add(kl, "[key]");
			json_t *kv = json_string(k);
			add_err(c, "literal_error", kk, "Input should be " PYTHON_VERSIONS, kv,
				json_pack("{s:s}", "expected", PYTHON_VERSIONS));
			json_decref(kv);
			json_decref(kk);
		}
		json_t *r = vvalue(c, V_NONEMPTY, V_ANY, check_abspath, x, kl);
		if (r)
			json_object_set_new(out, k, r);
		json_decref(kl);
	}
	if (nerr(c) > before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *validate_model(struct vctx *c, const model_t *m, json_t *in, json_t *loc);
static const model_t pixi_model;

/* tasks_pixi_config: keys stripped; an empty object stays empty, anything
 * else must be a TasksPixiSettings and is stored as its full dump. That
 * model is validated by a plain constructor call upstream, hence without
 * FastAPI's from_attributes. */
static json_t *pixi_config(struct vctx *c, json_t *v, json_t *loc)
{
	if (!json_is_object(v)) {
		add_err(c, "dict_type", loc, "Input should be a valid dictionary", v, NULL);
		return NULL;
	}
	size_t before = nerr(c);
	json_t *d = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x) {
		const char *s = k;
		size_t n = strlen(k);
		strip(&s, &n);
		if (n == 0) {
			json_t *kl = loc_add(loc, k), *kk = loc_add(kl, "[key]");
			json_t *kv = json_string(k);
			add_err(c, "string_too_short", kk, "String should have at least 1 character", kv,
				json_pack("{s:i}", "min_length", 1));
			json_decref(kv);
			json_decref(kk);
			json_decref(kl);
			continue;
		}
		char *key = xstrndup(s, n);
		json_object_set(d, key, x);
		free(key);
	}
	if (nerr(c) > before) {
		json_decref(d);
		return NULL;
	}
	if (json_object_size(d) == 0)
		return d;
	struct vctx inner = { c->e, 0 };
	json_t *r = validate_model(&inner, &pixi_model, d, loc);
	json_decref(d);
	return r;
}

static json_t *field(struct vctx *c, const mfield_t *f, json_t *v, json_t *loc)
{
	if (json_is_null(v) && (f->nullable || f->kind == F_NONE))
		return json_null();
	switch (f->kind) {
	case F_TAG:
		return json_incref(v);
	case F_STR:
		return vvalue(c, V_STR, V_ANY, NULL, v, loc);
	case F_NONEMPTY:
		return vvalue(c, V_NONEMPTY, V_ANY, NULL, v, loc);
	case F_NAME: {
		vfield_t nf = { .type = V_NONEMPTY, .max_length = V_INDEXED_MAX_LENGTH };
		return v_value(&nf, v, loc, c->e);
	}
	case F_ABSPATH:
		return vvalue(c, V_NONEMPTY, V_ANY, check_abspath, v, loc);
	case F_INT:
		return vvalue(c, V_INT, V_ANY, NULL, v, loc);
	case F_POSINT:
		return pos_int(c, v, loc);
	case F_BOOL:
		return vvalue(c, V_BOOL, V_ANY, NULL, v, loc);
	case F_NONE:
		add_err(c, "none_required", loc, "Input should be None", v, NULL);
		return NULL;
	case F_MEM:
		return mem_mb(c, v, loc);
	case F_PIXIMEM:
		return vvalue(c, V_NONEMPTY, V_ANY, check_pixi_mem, v, loc);
	case F_LIST_STR:
		return vvalue(c, V_LIST, V_STR, NULL, v, loc);
	case F_LIST_NONEMPTY:
		return vvalue(c, V_LIST, V_NONEMPTY, NULL, v, loc);
	case F_DICTSTRSTR:
		return dict_str_str(c, v, loc);
	case F_PYVERSIONS:
		return python_versions(c, v, loc);
	case F_PIXI:
		return pixi_config(c, v, loc);
	case F_MODEL:
		return validate_model(c, f->sub, v, loc);
	}
	return NULL;
}

/* One model: every field in order (errors for all of them), then unknown
 * keys if forbidden, then the model-level check if all went well. */
static json_t *validate_model(struct vctx *c, const model_t *m, json_t *in, json_t *loc)
{
	if (!json_is_object(in)) {
		if (c->from_attributes) {
			add_err(c, "model_attributes_type", loc,
				"Input should be a valid dictionary or object to extract fields from", in, NULL);
		} else {
			sb_t msg = SB_INIT;
			sb_addf(&msg, "Input should be a valid dictionary or instance of %s", m->name);
			add_err(c, "model_type", loc, msg.buf, in, json_pack("{s:s}", "class_name", m->name));
			sb_release(&msg);
		}
		return NULL;
	}
	size_t before = nerr(c);
	json_t *out = json_object();
	for (int i = 0; i < m->nfields; i++) {
		const mfield_t *f = &m->fields[i];
		json_t *v = json_object_get(in, f->name);
		json_t *floc = loc_add(loc, f->name);
		if (!v) {
			if (f->dflt)
				json_object_set_new(out, f->name, json_loads(f->dflt, JSON_DECODE_ANY, NULL));
			else
				add_err(c, "missing", floc, "Field required", in, NULL);
		} else {
			json_t *r = field(c, f, v, floc);
			if (r)
				json_object_set_new(out, f->name, r);
		}
		json_decref(floc);
	}
	if (m->forbid_extra) {
		const char *k;
		json_t *v;
		json_object_foreach(in, k, v) {
			int known = 0;
			for (int i = 0; i < m->nfields && !known; i++)
				known = !strcmp(m->fields[i].name, k);
			if (!known) {
				json_t *kl = loc_add(loc, k);
				add_err(c, "extra_forbidden", kl, "Extra inputs are not permitted", v, NULL);
				json_decref(kl);
			}
		}
	}
	if (nerr(c) > before) {
		json_decref(out);
		return NULL;
	}
	if (m->after) {
		sb_t msg = SB_INIT;
		const char *why = m->after(out, &msg);
		if (why) {
			value_error(c, loc, why, in);
			json_decref(out);
			out = NULL;
		}
		sb_release(&msg);
	}
	return out;
}

/* ---- model-level checks ---- */

static const char *str_of(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static const char *python_after(json_t *obj, sb_t *msg)
{
	const char *def = str_of(obj, "default_version");
	json_t *versions = json_object_get(obj, "versions");
	if (json_object_get(versions, def))
		return NULL;
	sb_adds(msg, "The default Python version ('");
	sb_adds(msg, def);
	sb_adds(msg, "') is not available in ");
	py_repr_keys(msg, versions);
	sb_adds(msg, ".");
	return msg->buf;
}

static const char *pixi_slurm_after(json_t *obj, sb_t *msg)
{
	int mem = !json_is_null(json_object_get(obj, "mem"));
	int per_cpu = !json_is_null(json_object_get(obj, "mem_per_cpu"));
	if (mem == per_cpu) {
		sb_adds(msg, "You must set either `mem` or `mem_per_cpu`.");
		return msg->buf;
	}
	return NULL;
}

/* Every pixi version lives in <common parent>/<version>. */
static const char *pixi_after(json_t *obj, sb_t *msg)
{
	const char *def = str_of(obj, "default_version");
	json_t *versions = json_object_get(obj, "versions");
	if (!json_object_get(versions, def)) {
		sb_addf(msg, "Default version '%s' not in available version ", def);
		py_repr_keys(msg, versions);
		sb_adds(msg, ".");
		return msg->buf;
	}
	sb_t base = SB_INIT;
	py_path_parent(&base, str_of(versions, def));
	const char *k;
	json_t *x;
	json_object_foreach(versions, k, x) {
		sb_t path = SB_INIT, parent = SB_INIT, name = SB_INIT;
		py_path_str(&path, json_string_value(x));
		py_path_parent(&parent, json_string_value(x));
		py_path_name(&name, json_string_value(x));
		if (strcmp(parent.buf, base.buf)) {
			sb_adds(msg, "pixi_path=PosixPath(");
			py_repr_str(msg, path.buf, path.len);
			sb_adds(msg, ") is not located within the pixi_base_dir=PosixPath(");
			py_repr_str(msg, base.buf, base.len);
			sb_adds(msg, ").");
		} else if (strcmp(name.buf, k)) {
			sb_adds(msg, "pixi_path.name=");
			py_repr_str(msg, name.buf, name.len);
			sb_adds(msg, " is not equal to key=");
			py_repr_str(msg, k, strlen(k));
		}
		sb_release(&path);
		sb_release(&parent);
		sb_release(&name);
		if (msg->len)
			break;
	}
	sb_release(&base);
	return msg->len ? msg->buf : NULL;
}

static const char *ssh_resource_after(json_t *obj, sb_t *msg)
{
	json_t *pixi = json_object_get(obj, "tasks_pixi_config");
	if (json_object_size(pixi) && json_is_null(json_object_get(pixi, "SLURM_CONFIG"))) {
		sb_adds(msg, "`tasks_pixi_config` must include `SLURM_CONFIG`.");
		return msg->buf;
	}
	return NULL;
}

/* ---- the models ---- */

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const mfield_t python_fields[] = {
	{ "default_version", F_NONEMPTY, 0, NULL, NULL },
	{ "versions", F_PYVERSIONS, 0, NULL, NULL },
	{ "pip_cache_dir", F_ABSPATH, 1, "null", NULL },
};
static const model_t python_model = { "TasksPythonSettings", python_fields, NF(python_fields), 0, python_after };

static const mfield_t pixi_slurm_fields[] = {
	{ "partition", F_NONEMPTY, 0, NULL, NULL },
	{ "cpus", F_POSINT, 0, NULL, NULL },
	{ "mem", F_PIXIMEM, 1, "null", NULL },
	{ "mem_per_cpu", F_PIXIMEM, 1, "null", NULL },
	{ "time", F_NONEMPTY, 0, NULL, NULL },
	{ "preamble", F_LIST_STR, 0, "[]", NULL },
};
static const model_t pixi_slurm_model = { "PixiSLURMConfig", pixi_slurm_fields, NF(pixi_slurm_fields), 0,
					  pixi_slurm_after };

static const mfield_t pixi_fields[] = {
	{ "versions", F_DICTSTRSTR, 0, NULL, NULL },
	{ "default_version", F_STR, 0, NULL, NULL },
	{ "PIXI_CONCURRENT_SOLVES", F_INT, 0, "4", NULL },
	{ "PIXI_CONCURRENT_DOWNLOADS", F_INT, 0, "4", NULL },
	{ "TOKIO_WORKER_THREADS", F_INT, 0, "2", NULL },
	{ "DEFAULT_ENVIRONMENT", F_STR, 0, "\"default\"", NULL },
	{ "DEFAULT_PLATFORM", F_STR, 0, "\"linux-64\"", NULL },
	{ "SLURM_CONFIG", F_MODEL, 1, "null", &pixi_slurm_model },
};
static const model_t pixi_model = { "TasksPixiSettings", pixi_fields, NF(pixi_fields), 0, pixi_after };

static const mfield_t runner_local_fields[] = {
	{ "parallel_tasks_per_job", F_INT, 1, "null", NULL },
};
static const model_t runner_local_model = { "JobRunnerConfigLocal", runner_local_fields, NF(runner_local_fields), 1,
					    NULL };

static const mfield_t slurm_set_fields[] = {
	{ "partition", F_NONEMPTY, 1, "null", NULL },
	{ "cpus_per_task", F_POSINT, 1, "null", NULL },
	{ "mem", F_MEM, 1, "null", NULL },
	{ "constraint", F_NONEMPTY, 1, "null", NULL },
	{ "gres", F_NONEMPTY, 1, "null", NULL },
	{ "exclude", F_NONEMPTY, 1, "null", NULL },
	{ "nodelist", F_NONEMPTY, 1, "null", NULL },
	{ "nodes", F_INT, 1, "null", NULL },
	{ "time", F_NONEMPTY, 1, "null", NULL },
	{ "account", F_NONEMPTY, 1, "null", NULL },
	{ "extra_lines", F_LIST_NONEMPTY, 0, "[]", NULL },
	{ "gpus", F_NONEMPTY, 1, "null", NULL },
	{ "shebang_line", F_STR, 0, "\"#!/bin/sh\"", NULL },
	{ "use_mem_per_cpu", F_BOOL, 0, "false", NULL },
};
static const model_t slurm_set_model = { "SlurmConfigSet", slurm_set_fields, NF(slurm_set_fields), 1, NULL };

static const mfield_t batching_fields[] = {
	{ "target_num_jobs", F_POSINT, 0, NULL, NULL },
	{ "max_num_jobs", F_POSINT, 0, NULL, NULL },
	{ "target_cpus_per_job", F_POSINT, 0, NULL, NULL },
	{ "max_cpus_per_job", F_POSINT, 0, NULL, NULL },
	{ "target_mem_per_job", F_MEM, 0, NULL, NULL },
	{ "max_mem_per_job", F_MEM, 0, NULL, NULL },
};
static const model_t batching_model = { "BatchingConfigSet", batching_fields, NF(batching_fields), 1, NULL };

static const mfield_t runner_slurm_fields[] = {
	{ "default_slurm_config", F_MODEL, 0, NULL, &slurm_set_model },
	{ "gpu_slurm_config", F_MODEL, 1, "null", &slurm_set_model },
	{ "batching_config", F_MODEL, 0, NULL, &batching_model },
	{ "user_local_exports", F_DICTSTRSTR, 0, "{}", NULL },
};
static const model_t runner_slurm_model = { "JobRunnerConfigSLURM", runner_slurm_fields, NF(runner_slurm_fields), 1,
					    NULL };

/* The fields every resource has, in ValidResourceBase's order; the
 * subclasses redefine some in place and append their own. */
#define RESOURCE_BASE(runner)                                                  \
	{ "type", F_TAG, 0, NULL, NULL },                                      \
	{ "name", F_NAME, 0, NULL, NULL },                                     \
	{ "tasks_python_config", F_MODEL, 0, NULL, &python_model },            \
	{ "tasks_pixi_config", F_PIXI, 0, NULL, NULL },                        \
	{ "tasks_local_dir", F_ABSPATH, 0, NULL, NULL },                       \
	{ "jobs_local_dir", F_ABSPATH, 0, NULL, NULL },                        \
	{ "jobs_runner_config", F_MODEL, 0, NULL, runner },                    \
	{ "jobs_poll_interval", F_INT, 0, "5", NULL },                         \
	{ "prevent_new_submissions", F_BOOL, 0, "false", NULL }

static const mfield_t resource_local_fields[] = {
	RESOURCE_BASE(&runner_local_model),
	{ "jobs_slurm_python_worker", F_NONE, 0, "null", NULL },
	{ "host", F_NONE, 0, "null", NULL },
};
static const mfield_t resource_sudo_fields[] = {
	RESOURCE_BASE(&runner_slurm_model),
	{ "jobs_slurm_python_worker", F_ABSPATH, 0, NULL, NULL },
	{ "host", F_NONE, 0, "null", NULL },
};
static const mfield_t resource_ssh_fields[] = {
	RESOURCE_BASE(&runner_slurm_model),
	{ "host", F_NONEMPTY, 0, NULL, NULL },
	{ "jobs_slurm_python_worker", F_ABSPATH, 0, NULL, NULL },
};
static const model_t resource_models[] = {
	{ "ValidResourceLocal", resource_local_fields, NF(resource_local_fields), 0, NULL },
	{ "ValidResourceSlurmSudo", resource_sudo_fields, NF(resource_sudo_fields), 0, NULL },
	{ "ValidResourceSlurmSSH", resource_ssh_fields, NF(resource_ssh_fields), 0, ssh_resource_after },
};

static const mfield_t profile_local_fields[] = {
	{ "name", F_NAME, 0, NULL, NULL },
	{ "resource_type", F_TAG, 0, NULL, NULL },
	{ "username", F_NONE, 0, "null", NULL },
	{ "ssh_key_path", F_NONE, 0, "null", NULL },
	{ "jobs_remote_dir", F_NONE, 0, "null", NULL },
	{ "tasks_remote_dir", F_NONE, 0, "null", NULL },
	{ "pixi_cache_dir", F_NONE, 0, "null", NULL },
};
static const mfield_t profile_sudo_fields[] = {
	{ "name", F_NAME, 0, NULL, NULL },
	{ "resource_type", F_TAG, 0, NULL, NULL },
	{ "username", F_NONEMPTY, 0, NULL, NULL },
	{ "ssh_key_path", F_NONE, 0, "null", NULL },
	{ "jobs_remote_dir", F_NONE, 0, "null", NULL },
	{ "tasks_remote_dir", F_NONE, 0, "null", NULL },
	{ "pixi_cache_dir", F_NONE, 0, "null", NULL },
};
static const mfield_t profile_ssh_fields[] = {
	{ "name", F_NAME, 0, NULL, NULL },
	{ "resource_type", F_TAG, 0, NULL, NULL },
	{ "username", F_NONEMPTY, 0, NULL, NULL },
	{ "ssh_key_path", F_ABSPATH, 0, NULL, NULL },
	{ "jobs_remote_dir", F_ABSPATH, 0, NULL, NULL },
	{ "tasks_remote_dir", F_ABSPATH, 0, NULL, NULL },
	{ "pixi_cache_dir", F_ABSPATH, 1, "null", NULL },
};
static const model_t profile_models[] = {
	{ "ValidProfileLocal", profile_local_fields, NF(profile_local_fields), 0, NULL },
	{ "ValidProfileSlurmSudo", profile_sudo_fields, NF(profile_sudo_fields), 0, NULL },
	{ "ValidProfileSlurmSSH", profile_ssh_fields, NF(profile_ssh_fields), 0, NULL },
};

/* ---- the discriminated unions ---- */

/* ResourceType's members, in the order of upstream's Tag()s, and how
 * pydantic lists them (their repr()). */
static const char *const TAGS[] = { "local", "slurm_sudo", "slurm_ssh" };
#define EXPECTED_TAGS "<ResourceType.LOCAL: 'local'>, <ResourceType.SLURM_SUDO: 'slurm_sudo'>, " \
		      "<ResourceType.SLURM_SSH: 'slurm_ssh'>"
#define DISCRIMINATOR "get_discriminator_value()"

/* Upstream's discriminator is a function reading key from an object (and
 * giving None for anything else); a value that is no member's tag fails,
 * and otherwise the member's model validates the whole input, its errors
 * located under the tag. */
static json_t *tagged_union(struct vctx *c, json_t *in, json_t *loc, const char *key, const model_t *models)
{
	json_t *tag = json_is_object(in) ? json_object_get(in, key) : NULL;
	if (!tag || json_is_null(tag)) {
		add_err(c, "union_tag_not_found", loc, "Unable to extract tag using discriminator " DISCRIMINATOR, in,
			json_pack("{s:s}", "discriminator", DISCRIMINATOR));
		return NULL;
	}
	if (json_is_string(tag))
		for (int i = 0; i < 3; i++)
			if (!strcmp(json_string_value(tag), TAGS[i])) {
				json_t *tl = loc_add(loc, TAGS[i]);
				json_t *r = validate_model(c, &models[i], in, tl);
				json_decref(tl);
				return r;
			}
	sb_t t = SB_INIT, msg = SB_INIT;
	py_str_json(&t, tag);
	sb_addf(&msg, "Input tag '%s' found using " DISCRIMINATOR " does not match any of the expected tags: " EXPECTED_TAGS,
		t.buf);
	add_err(c, "union_tag_invalid", loc, msg.buf, in,
		json_pack("{s:s,s:s,s:s}", "discriminator", DISCRIMINATOR, "tag", t.buf, "expected_tags", EXPECTED_TAGS));
	sb_release(&t);
	sb_release(&msg);
	return NULL;
}

json_t *resource_check(json_t *in, json_t *loc, int from_attributes, verr_t *e)
{
	struct vctx c = { e, from_attributes };
	return tagged_union(&c, in, loc, "type", resource_models);
}

json_t *profile_check(json_t *in, json_t *loc, int from_attributes, verr_t *e)
{
	struct vctx c = { e, from_attributes };
	return tagged_union(&c, in, loc, "resource_type", profile_models);
}

/* Upstream validates through a @validate_call function whose one argument
 * is passed by position: error locations start with 0. */
static json_t *validate_for_cli(json_t *in, int profile, sb_t *err)
{
	verr_t e;
	verr_init(&e);
	json_t *loc = json_pack("[i]", 0);
	json_t *r = profile ? profile_check(in, loc, 0, &e) : resource_check(in, loc, 0, &e);
	if (!r)
		verr_render(e.list, profile ? "cast_serialize_profile" : "cast_serialize_resource", err);
	json_decref(loc);
	verr_free(&e);
	return r;
}

json_t *resource_validate(json_t *in, sb_t *err)
{
	return validate_for_cli(in, 0, err);
}

json_t *profile_validate(json_t *in, const char *resource_type, sb_t *err)
{
	json_t *r = validate_for_cli(in, 1, err);
	const char *t = r ? str_of(r, "resource_type") : NULL;
	if (r && resource_type && strcmp(t, resource_type)) {
		sb_addf(err, "resource.type='%s' differs from new_profile.resource_type='%s'.", resource_type, t);
		json_decref(r);
		return NULL;
	}
	return r;
}

/* ---- rows ---- */

static char *dump(json_t *obj, const char *key)
{
	return json_dumps(json_object_get(obj, key), JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

int resource_insert(db_t *db, json_t *res, int64_t *id)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	char *runner = dump(res, "jobs_runner_config");
	char *py = dump(res, "tasks_python_config");
	char *pixi = dump(res, "tasks_pixi_config");
	db_param_t p[] = {
		P_TEXT(str_of(res, "type")), P_TEXT(str_of(res, "name")), P_TS(now), P_TEXT(str_of(res, "host")),
		P_TEXT(str_of(res, "jobs_local_dir")), P_JSON(runner), P_TEXT(str_of(res, "jobs_slurm_python_worker")),
		P_INT(json_integer_value(json_object_get(res, "jobs_poll_interval"))),
		P_TEXT(str_of(res, "tasks_local_dir")), P_JSON(py), P_JSON(pixi),
		P_BOOL(json_is_true(json_object_get(res, "prevent_new_submissions"))),
	};
	db_res_t *r;
	int rc = db_exec(db, "INSERT INTO resource (type, name, timestamp_created, host, jobs_local_dir, "
			 "jobs_runner_config, jobs_slurm_python_worker, jobs_poll_interval, tasks_local_dir, "
			 "tasks_python_config, tasks_pixi_config, prevent_new_submissions) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id", p, 12, &r);
	free(runner);
	free(py);
	free(pixi);
	if (rc)
		return -1;
	*id = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

int profile_insert(db_t *db, json_t *prof, int64_t resource_id, int64_t *id)
{
	db_param_t p[] = {
		P_INT(resource_id), P_TEXT(str_of(prof, "resource_type")), P_TEXT(str_of(prof, "name")),
		P_TEXT(str_of(prof, "username")), P_TEXT(str_of(prof, "ssh_key_path")),
		P_TEXT(str_of(prof, "jobs_remote_dir")), P_TEXT(str_of(prof, "tasks_remote_dir")),
		P_TEXT(str_of(prof, "pixi_cache_dir")),
	};
	db_res_t *r;
	if (db_exec(db, "INSERT INTO profile (resource_id, resource_type, name, username, ssh_key_path, "
		    "jobs_remote_dir, tasks_remote_dir, pixi_cache_dir) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		    "RETURNING id", p, 8, &r))
		return -1;
	*id = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

int resource_update(db_t *db, json_t *res, int64_t id)
{
	char *runner = dump(res, "jobs_runner_config");
	char *py = dump(res, "tasks_python_config");
	char *pixi = dump(res, "tasks_pixi_config");
	db_param_t p[] = {
		P_TEXT(str_of(res, "type")), P_TEXT(str_of(res, "name")), P_TEXT(str_of(res, "host")),
		P_TEXT(str_of(res, "jobs_local_dir")), P_JSON(runner), P_TEXT(str_of(res, "jobs_slurm_python_worker")),
		P_INT(json_integer_value(json_object_get(res, "jobs_poll_interval"))),
		P_TEXT(str_of(res, "tasks_local_dir")), P_JSON(py), P_JSON(pixi),
		P_BOOL(json_is_true(json_object_get(res, "prevent_new_submissions"))), P_INT(id),
	};
	int rc = db_exec(db, "UPDATE resource SET type = $1, name = $2, host = $3, jobs_local_dir = $4, "
			 "jobs_runner_config = $5, jobs_slurm_python_worker = $6, jobs_poll_interval = $7, "
			 "tasks_local_dir = $8, tasks_python_config = $9, tasks_pixi_config = $10, "
			 "prevent_new_submissions = $11 WHERE id = $12", p, 12, NULL);
	free(runner);
	free(py);
	free(pixi);
	return rc;
}

int profile_update(db_t *db, json_t *prof, int64_t id)
{
	db_param_t p[] = {
		P_TEXT(str_of(prof, "resource_type")), P_TEXT(str_of(prof, "name")), P_TEXT(str_of(prof, "username")),
		P_TEXT(str_of(prof, "ssh_key_path")), P_TEXT(str_of(prof, "jobs_remote_dir")),
		P_TEXT(str_of(prof, "tasks_remote_dir")), P_TEXT(str_of(prof, "pixi_cache_dir")), P_INT(id),
	};
	return db_exec(db, "UPDATE profile SET resource_type = $1, name = $2, username = $3, ssh_key_path = $4, "
		       "jobs_remote_dir = $5, tasks_remote_dir = $6, pixi_cache_dir = $7 WHERE id = $8", p, 8, NULL);
}
