/* task.c — see task.h. Field types follow upstream's annotations:
 * NonEmptyStr, DictStrAny (valdict_keys), TypeFilters (dict[str, bool] +
 * valdict_keys), HttpUrlStr, ListUniqueNonEmptyString and the TaskType
 * enum; the error bodies are the ones pydantic 2 gives for them. */
#include "model/task.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"
#include "model/validate.h"

enum tkind {
	TK_NONEMPTY,   /* NonEmptyStr */
	TK_STR,        /* str */
	TK_NAME,       /* NonEmptyStr, at most V_INDEXED_MAX_LENGTH (ours: taskv2.name is indexed) */
	TK_NAME_STR,   /* str, at most V_INDEXED_MAX_LENGTH (the same, in a manifest) */
	TK_DICT,       /* DictStrAny */
	TK_TYPES,      /* TypeFilters */
	TK_URL,        /* HttpUrlStr */
	TK_TAGS,       /* ListUniqueNonEmptyString */
	TK_TYPE,       /* TaskType */
	TK_STRLIST,    /* list[str] */
};

typedef struct tfield {
	const char *name;
	enum tkind kind;
	int required;
	int nullable;
} tfield_t;

/* TaskCreate, in upstream's field order (errors come out in this order). */
static const tfield_t create_fields[] = {
	{ "name", TK_NAME, 1, 0 },
	{ "command_non_parallel", TK_NONEMPTY, 0, 0 },
	{ "command_parallel", TK_NONEMPTY, 0, 0 },
	{ "meta_non_parallel", TK_DICT, 0, 1 },
	{ "meta_parallel", TK_DICT, 0, 1 },
	{ "version", TK_NONEMPTY, 1, 0 },
	{ "args_schema_non_parallel", TK_DICT, 0, 1 },
	{ "args_schema_parallel", TK_DICT, 0, 1 },
	{ "args_schema_version", TK_NONEMPTY, 0, 0 },
	{ "docs_info", TK_STR, 0, 1 },
	{ "docs_link", TK_URL, 0, 1 },
	{ "input_types", TK_TYPES, 0, 0 },
	{ "output_types", TK_TYPES, 0, 0 },
	{ "category", TK_NONEMPTY, 0, 1 },
	{ "modality", TK_NONEMPTY, 0, 1 },
	{ "tags", TK_TAGS, 0, 0 },
	{ "authors", TK_NONEMPTY, 0, 1 },
	{ "type", TK_TYPE, 0, 1 },
};

/* TaskUpdate. */
static const tfield_t update_fields[] = {
	{ "command_parallel", TK_NONEMPTY, 0, 0 },
	{ "command_non_parallel", TK_NONEMPTY, 0, 0 },
	{ "input_types", TK_TYPES, 0, 0 },
	{ "output_types", TK_TYPES, 0, 0 },
	{ "category", TK_NONEMPTY, 0, 1 },
	{ "modality", TK_NONEMPTY, 0, 1 },
	{ "authors", TK_NONEMPTY, 0, 1 },
	{ "tags", TK_TAGS, 0, 1 },
};

static const char *const task_types[] = { "compound", "converter_compound", "non_parallel", "converter_non_parallel",
					  "parallel", NULL };

int task_type_valid(const char *s)
{
	for (int i = 0; s && task_types[i]; i++)
		if (!strcmp(s, task_types[i]))
			return 1;
	return 0;
}

static const char forbidden_cmd_chars[] = "`#$&*()\\|[]{};<>?!";

const char *task_validate_cmd(const char *cmd, const char *allow, const char *attribute, sb_t *msg)
{
	if (!attribute)
		attribute = "Command";
	char forbidden[sizeof(forbidden_cmd_chars)];
	size_t n = 0;
	for (const char *c = forbidden_cmd_chars; *c; c++)
		if (!allow || !strchr(allow, *c))
			forbidden[n++] = *c;
	forbidden[n] = '\0';
	if (!n || !strpbrk(cmd, forbidden))
		return NULL;
	/* upstream prints the Python set of the characters, whose order
	 * depends on the process's string hashing; we print them in the order
	 * upstream's constant lists them */
	sb_addf(msg, "%s must not contain any of this characters: '{", attribute);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_adds(msg, ", ");
		py_repr_str(msg, forbidden + i, 1);
	}
	sb_adds(msg, "}'\nProvided ");
	for (const char *a = attribute; *a; a++)
		sb_addc(msg, (char)tolower((unsigned char)*a));
	sb_addf(msg, ": '%s'.", cmd);
	return msg->buf;
}

static int jsonb_key_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return memcmp(x, y, lx);
}

json_t *jsonb_ordered(json_t *obj)
{
	size_t n = json_object_size(obj), i = 0;
	const char **keys = xmalloc((n ? n : 1) * sizeof(char *));
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
		keys[i++] = k;
	qsort(keys, n, sizeof(char *), jsonb_key_cmp);
	json_t *out = json_object();
	for (i = 0; i < n; i++)
		json_object_set(out, keys[i], json_object_get(obj, keys[i]));
	free(keys);
	return out;
}

json_t *jsonb_ordered_deep(json_t *v)
{
	if (json_is_array(v)) {
		json_t *out = json_array();
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			json_array_append_new(out, jsonb_ordered_deep(x));
		return out;
	}
	if (!json_is_object(v))
		return json_incref(v);
	json_t *shallow = jsonb_ordered(v);
	const char *k;
	json_t *x;
	void *tmp;
	json_object_foreach_safe(shallow, tmp, k, x)
		json_object_set_new(shallow, k, jsonb_ordered_deep(x));
	return shallow;
}

char *json_dump_py(json_t *v)
{
	sb_t o = SB_INIT;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		int first = 1;
		sb_addc(&o, '{');
		json_object_foreach(v, k, x) {
			char *item = json_dump_py(x);
			if (!first)
				sb_addc(&o, ',');
			first = 0;
			sb_add_json_str(&o, k);
			sb_addc(&o, ':');
			sb_adds(&o, item);
			free(item);
		}
		sb_addc(&o, '}');
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;
		sb_addc(&o, '[');
		json_array_foreach(v, i, x) {
			char *item = json_dump_py(x);
			if (i)
				sb_addc(&o, ',');
			sb_adds(&o, item);
			free(item);
		}
		sb_addc(&o, ']');
		break;
	}
	case JSON_STRING:
		sb_add_json_strn(&o, json_string_value(v), json_string_length(v));
		break;
	case JSON_REAL:
		/* json.dumps prints floats with repr(): 0.1, 1e-07, 1e+16 */
		py_repr_json(&o, v);
		break;
	default: {
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		sb_adds(&o, s);
		free(s);
	}
	}
	return sb_detach(&o);
}

/* ---- field validators ---- */

static json_t *loc_add(json_t *loc, const char *key)
{
	json_t *l = json_copy(loc);
	json_array_append_new(l, json_string(key));
	return l;
}

static void value_error(verr_t *e, json_t *loc, const char *msg, json_t *input)
{
	sb_t full = SB_INIT;
	sb_addf(&full, "Value error, %s", msg);
	verr_add(e, "value_error", json_incref(loc), full.buf, input, json_pack("{s:{}}", "error"));
	sb_release(&full);
}

/* Python's str.strip() of a key, as a new string. */
static char *strip_dup(const char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* valdict_keys: keys stripped, none empty, none repeated. Keys that change
 * move to the end, as upstream pops and re-inserts them. Returns a new
 * object, or NULL after adding the error (input: orig). d is borrowed. */
static json_t *valdict_keys(json_t *d, json_t *orig, json_t *loc, verr_t *e)
{
	size_t n = json_object_size(d), i = 0;
	char **stripped = xcalloc(n ? n : 1, sizeof(char *));
	const char **keys = xcalloc(n ? n : 1, sizeof(char *));
	const char *k;
	json_t *v, *out = NULL;
	int empty = 0, dup = 0;
	json_object_foreach(d, k, v) {
		keys[i] = k;
		stripped[i] = strip_dup(k);
		empty |= !*stripped[i];
		i++;
	}
	for (i = 0; i < n && !dup; i++)
		for (size_t j = i + 1; j < n && !dup; j++)
			dup = !strcmp(stripped[i], stripped[j]);
	sb_t msg = SB_INIT;
	if (empty) {
		sb_adds(&msg, "Empty string in [");
		for (i = 0; i < n; i++) {
			if (i)
				sb_adds(&msg, ", ");
			py_repr_str(&msg, stripped[i], strlen(stripped[i]));
		}
		sb_adds(&msg, "].");
		value_error(e, loc, msg.buf, orig);
	} else if (dup) {
		sb_adds(&msg, "Dictionary contains multiple identical keys: '");
		py_repr_json(&msg, d);
		sb_adds(&msg, "'.");
		value_error(e, loc, msg.buf, orig);
	} else {
		out = json_object();
		for (int pass = 0; pass < 2; pass++)
			for (i = 0; i < n; i++)
				if ((strcmp(keys[i], stripped[i]) != 0) == pass)
					json_object_set(out, stripped[i], json_object_get(d, keys[i]));
	}
	sb_release(&msg);
	for (i = 0; i < n; i++)
		free(stripped[i]);
	free(stripped);
	free(keys);
	return out;
}

static int is_dict(json_t *v, json_t *loc, verr_t *e)
{
	if (json_is_object(v))
		return 1;
	verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", v, NULL);
	return 0;
}

/* TypeFilters: every value a bool (pydantic's lax coercions), then
 * valdict_keys; stored as jsonb, hence the key order. */
static json_t *type_filters(json_t *v, json_t *loc, verr_t *e)
{
	if (!is_dict(v, loc, e))
		return NULL;
	const vfield_t boolean = { .type = V_BOOL };
	json_t *coerced = json_object(), *x;
	const char *k;
	int bad = 0;
	json_object_foreach(v, k, x) {
		json_t *kl = loc_add(loc, k);
		json_t *b = v_value(&boolean, x, kl, e);
		json_decref(kl);
		if (b)
			json_object_set_new(coerced, k, b);
		else
			bad = 1;
	}
	json_t *out = bad ? NULL : valdict_keys(coerced, v, loc, e);
	json_decref(coerced);
	if (!out)
		return NULL;
	json_t *ordered = jsonb_ordered(out);
	json_decref(out);
	return ordered;
}

static int url_host_char_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f && !strchr("#%/:<>?@[\\]^|", c);
}

/* The part of pydantic's HttpUrl (the url crate, then a scheme check) that
 * a docs link meets: NULL when fine, else sets *type and returns the reason. */
static const char *url_problem(const char *s, const char **type)
{
	*type = "url_parsing";
	const char *p = s;
	if (isalpha((unsigned char)*p)) {
		while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
			p++;
	}
	if (p == s || *p != ':')
		return "relative URL without a base";
	size_t slen = (size_t)(p - s);
	if (!((slen == 4 && !strncasecmp(s, "http", 4)) || (slen == 5 && !strncasecmp(s, "https", 5)))) {
		*type = "url_scheme";
		return "URL scheme should be 'http' or 'https'";
	}
	p++;
	while (*p == '/' || *p == '\\')
		p++;
	size_t alen = strcspn(p, "/?#\\");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (p[i] == '@')
			at = p + i;
	const char *host = at ? at + 1 : p, *end = p + alen;
	if (host < end && *host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (!close)
			return "invalid IPv6 address";
		host = close + 1;
		if (host < end && *host != ':')
			return "invalid IPv6 address";
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		const char *hend = colon ? colon : end;
		if (hend == host)
			return "empty host";
		for (const char *c = host; c < hend; c++)
			if (!url_host_char_ok((unsigned char)*c))
				return "invalid international domain name";
		/* a host whose last label is a number is an IPv4 address */
		const char *last = hend;
		if (last > host && last[-1] == '.')
			last--;
		const char *lab = last;
		while (lab > host && lab[-1] != '.')
			lab--;
		int numeric = lab < last;
		for (const char *c = lab; c < last; c++)
			numeric &= isdigit((unsigned char)*c) != 0;
		if (numeric) {
			int parts = 0;
			for (const char *c = host; c < last;) {
				const char *dot = memchr(c, '.', (size_t)(last - c));
				const char *pe = dot ? dot : last;
				long val = 0;
				if (pe == c || pe - c > 10)
					return "invalid IPv4 address";
				for (const char *d = c; d < pe; d++) {
					if (!isdigit((unsigned char)*d))
						return "invalid IPv4 address";
					val = val * 10 + (*d - '0');
				}
				if (val > 255 || ++parts > 4)
					return "invalid IPv4 address";
				c = dot ? dot + 1 : last;
			}
		}
		host = hend;
	}
	if (host < end && *host == ':') {
		long port = 0;
		for (const char *c = host + 1; c < end; c++) {
			if (!isdigit((unsigned char)*c))
				return "invalid port number";
			port = port * 10 + (*c - '0');
			if (port > 65535)
				return "invalid port number";
		}
	}
	return NULL;
}

static json_t *http_url(json_t *v, json_t *loc, verr_t *e)
{
	const vfield_t nonempty = { .type = V_NONEMPTY };
	json_t *s = v_value(&nonempty, v, loc, e);
	if (!s)
		return NULL;
	const char *type;
	const char *why = url_problem(json_string_value(s), &type);
	if (!why)
		return s;
	sb_t msg = SB_INIT;
	if (!strcmp(type, "url_scheme")) {
		verr_add(e, type, json_incref(loc), why, s, json_pack("{s:s}", "expected_schemes", "'http' or 'https'"));
	} else {
		sb_addf(&msg, "Input should be a valid URL, %s", why);
		verr_add(e, type, json_incref(loc), msg.buf, s, json_pack("{s:s}", "error", why));
	}
	sb_release(&msg);
	json_decref(s);
	return NULL;
}

static const char *check_unique(json_t **val, sb_t *msg)
{
	size_t n = json_array_size(*val);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (json_equal(json_array_get(*val, i), json_array_get(*val, j)))
				return "List has repetitions";
	(void)msg;
	return NULL;
}

static json_t *field_value(const tfield_t *f, json_t *v, json_t *loc, verr_t *e)
{
	if (json_is_null(v) && f->nullable)
		return json_null();
	switch (f->kind) {
	case TK_NONEMPTY:
	case TK_STR:
	case TK_NAME:
	case TK_NAME_STR: {
		int str = f->kind == TK_STR || f->kind == TK_NAME_STR, name = f->kind == TK_NAME || f->kind == TK_NAME_STR;
		vfield_t vf = { .type = str ? V_STR : V_NONEMPTY, .max_length = name ? V_INDEXED_MAX_LENGTH : 0 };
		return v_value(&vf, v, loc, e);
	}
	case TK_DICT:
		return is_dict(v, loc, e) ? valdict_keys(v, v, loc, e) : NULL;
	case TK_TYPES:
		return type_filters(v, loc, e);
	case TK_URL:
		return http_url(v, loc, e);
	case TK_TAGS: {
		vfield_t vf = { .type = V_LIST, .item = V_NONEMPTY, .check = check_unique };
		return v_value(&vf, v, loc, e);
	}
	case TK_STRLIST: {
		vfield_t vf = { .type = V_LIST, .item = V_STR };
		return v_value(&vf, v, loc, e);
	}
	case TK_TYPE:
		if (json_is_string(v) && task_type_valid(json_string_value(v)))
			return json_incref(v);
		verr_add(e, "enum", json_incref(loc), "Input should be " TASK_TYPE_EXPECTED, v,
			 json_pack("{s:s}", "expected", TASK_TYPE_EXPECTED));
		return NULL;
	}
	return NULL;
}

/* Field-by-field validation of body (borrowed) at base (borrowed), with
 * extra="forbid" when forbid is set. NULL when there were errors (not yet
 * answered: they are in e). */
static json_t *check_fields(json_t *body, json_t *base, const tfield_t *fields, size_t nfields, int forbid, verr_t *e)
{
	json_t *out = json_object();
	size_t before = json_array_size(e->list);
	for (size_t i = 0; i < nfields; i++) {
		json_t *v = json_object_get(body, fields[i].name);
		json_t *loc = loc_add(base, fields[i].name);
		if (!v) {
			if (fields[i].required)
				verr_add(e, "missing", json_incref(loc), "Field required", body, NULL);
		} else {
			json_t *c = field_value(&fields[i], v, loc, e);
			if (c)
				json_object_set_new(out, fields[i].name, c);
		}
		json_decref(loc);
	}
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		int known = !forbid;
		for (size_t i = 0; i < nfields && !known; i++)
			known = !strcmp(fields[i].name, k);
		if (!known)
			verr_add(e, "extra_forbidden", loc_add(base, k), "Extra inputs are not permitted", v, NULL);
	}
	if (json_array_size(e->list) != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *task_create_check(json_t *body, json_t *base, verr_t *e)
{
	json_t *out = check_fields(body, base, create_fields, sizeof(create_fields) / sizeof(*create_fields), 1, e);
	if (!out)
		return NULL;
	/* the model validators: validate_commands, then set_task_type */
	json_t *par = json_object_get(out, "command_parallel");
	json_t *nonpar = json_object_get(out, "command_non_parallel");
	sb_t msg = SB_INIT;
	const char *why = NULL;
	if (!par && !nonpar)
		why = "Task must have at least one valid command (parallel and/or non_parallel)";
	if (!why && par)
		why = task_validate_cmd(json_string_value(par), NULL, NULL, &msg);
	if (!why && nonpar)
		why = task_validate_cmd(json_string_value(nonpar), NULL, NULL, &msg);
	if (why) {
		value_error(e, base, why, body);
		json_decref(out);
		out = NULL;
	} else if (!json_is_string(json_object_get(out, "type"))) {
		json_object_set_new(out, "type", json_string(!nonpar ? "parallel" : !par ? "non_parallel" : "compound"));
	}
	sb_release(&msg);
	return out;
}

json_t *task_update_check(json_t *body, json_t *base, verr_t *e)
{
	return check_fields(body, base, update_fields, sizeof(update_fields) / sizeof(*update_fields), 1, e);
}

json_t *task_ids_check(json_t *in, json_t *loc, verr_t *e)
{
	const vfield_t f = { .type = V_LIST, .item = V_NONNEG, .min_length = 1, .check = check_unique };
	return v_value(&f, in, loc, e);
}

/* ---- ManifestV2 (schemas/v2/manifest.py) ---- */

/* TaskManifestV2, in its field order; unknown keys are ignored. */
static const tfield_t manifest_task_fields[] = {
	{ "name", TK_NAME_STR, 1, 0 },
	{ "executable_non_parallel", TK_STR, 0, 1 },
	{ "executable_parallel", TK_STR, 0, 1 },
	{ "input_types", TK_TYPES, 0, 0 },
	{ "output_types", TK_TYPES, 0, 0 },
	{ "meta_non_parallel", TK_DICT, 0, 0 },
	{ "meta_parallel", TK_DICT, 0, 0 },
	{ "args_schema_non_parallel", TK_DICT, 0, 1 },
	{ "args_schema_parallel", TK_DICT, 0, 1 },
	{ "docs_info", TK_STR, 0, 1 },
	{ "docs_link", TK_URL, 0, 1 },
	{ "category", TK_STR, 0, 1 },
	{ "modality", TK_STR, 0, 1 },
	{ "tags", TK_STRLIST, 0, 0 },
	{ "type", TK_TYPE, 0, 1 },
};

static int absent_or_null(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return !v || json_is_null(v);
}

/* validate_executable_args_meta: NULL or the message (in msg). */
static const char *manifest_task_rule(json_t *t, sb_t *msg)
{
	int no_np = absent_or_null(t, "executable_non_parallel"), no_p = absent_or_null(t, "executable_parallel");
	if (no_np && no_p)
		return "`TaskManifestV2.executable_non_parallel` and `TaskManifestV2.executable_parallel` cannot be both None.";
	const char *side = no_np ? "non_parallel" : no_p ? "parallel" : NULL;
	if (!side)
		return NULL;
	char key[40];
	snprintf(key, sizeof(key), "meta_%s", side);
	json_t *meta = json_object_get(t, key);
	if (meta && json_object_size(meta)) {
		sb_addf(msg, "`TaskManifestV2.meta_%s` must be an empty dict if `TaskManifestV2.executable_%s` is None. "
			     "Given: ", side, side);
		py_repr_json(msg, meta);
		sb_adds(msg, ".");
		return msg->buf;
	}
	snprintf(key, sizeof(key), "args_schema_%s", side);
	json_t *schema = json_object_get(t, key);
	if (schema && !json_is_null(schema)) {
		sb_addf(msg, "`TaskManifestV2.args_schema_%s` must be None if `TaskManifestV2.executable_%s` is None. "
			     "Given: ", side, side);
		py_repr_json(msg, schema);
		sb_adds(msg, ".");
		return msg->buf;
	}
	return NULL;
}

json_t *manifest_check(json_t *m, json_t *loc, verr_t *e)
{
	if (!json_is_object(m)) {
		verr_add(e, "model_type", json_incref(loc),
			 "Input should be a valid dictionary or instance of ManifestV2", m,
			 json_pack("{s:s}", "class_name", "ManifestV2"));
		return NULL;
	}
	size_t before = json_array_size(e->list);
	json_t *out = json_object();
	/* manifest_version: Literal["2"] */
	json_t *mv = json_object_get(m, "manifest_version");
	json_t *l = loc_add(loc, "manifest_version");
	if (!mv)
		verr_add(e, "missing", json_incref(l), "Field required", m, NULL);
	else if (!json_is_string(mv) || strcmp(json_string_value(mv), "2"))
		verr_add(e, "literal_error", json_incref(l), "Input should be '2'", mv, json_pack("{s:s}", "expected", "'2'"));
	else
		json_object_set(out, "manifest_version", mv);
	json_decref(l);
	/* task_list: list[TaskManifestV2] */
	json_t *tl = json_object_get(m, "task_list");
	l = loc_add(loc, "task_list");
	json_t *tasks = json_array();
	if (!tl) {
		verr_add(e, "missing", json_incref(l), "Field required", m, NULL);
	} else if (!json_is_array(tl)) {
		verr_add(e, "list_type", json_incref(l), "Input should be a valid list", tl, NULL);
	} else {
		size_t i;
		json_t *t;
		json_array_foreach(tl, i, t) {
			json_t *il = json_copy(l);
			json_array_append_new(il, json_integer((json_int_t)i));
			if (!json_is_object(t)) {
				verr_add(e, "model_type", json_incref(il),
					 "Input should be a valid dictionary or instance of TaskManifestV2", t,
					 json_pack("{s:s}", "class_name", "TaskManifestV2"));
			} else {
				json_t *c = check_fields(t, il, manifest_task_fields,
							 sizeof(manifest_task_fields) / sizeof(*manifest_task_fields), 0, e);
				if (c) {
					/* defaults, as model_dump() has them */
					static const char *const dflt_obj[] = { "input_types", "output_types",
										"meta_non_parallel", "meta_parallel" };
					for (int k = 0; k < 4; k++)
						if (!json_object_get(c, dflt_obj[k]))
							json_object_set_new(c, dflt_obj[k], json_object());
					if (!json_object_get(c, "tags"))
						json_object_set_new(c, "tags", json_array());
					sb_t msg = SB_INIT;
					const char *why = manifest_task_rule(c, &msg);
					if (why) {
						value_error(e, il, why, t);
						json_decref(c);
					} else {
						json_array_append_new(tasks, c);
					}
					sb_release(&msg);
				}
			}
			json_decref(il);
		}
	}
	json_object_set_new(out, "task_list", tasks);
	json_decref(l);
	/* has_args_schemas: bool = False */
	json_t *has = json_object_get(m, "has_args_schemas");
	l = loc_add(loc, "has_args_schemas");
	if (has) {
		const vfield_t boolean = { .type = V_BOOL };
		json_t *b = v_value(&boolean, has, l, e);
		json_object_set_new(out, "has_args_schemas", b ? b : json_false());
	} else {
		json_object_set_new(out, "has_args_schemas", json_false());
	}
	json_decref(l);
	static const tfield_t rest[] = { { "args_schema_version", TK_STR, 0, 1 }, { "authors", TK_NONEMPTY, 0, 1 } };
	for (int k = 0; k < 2; k++) {
		json_t *v = json_object_get(m, rest[k].name);
		l = loc_add(loc, rest[k].name);
		json_t *c = v ? field_value(&rest[k], v, l, e) : json_null();
		json_object_set_new(out, rest[k].name, c ? c : json_null());
		json_decref(l);
	}
	if (json_array_size(e->list) != before) {
		json_decref(out);
		return NULL;
	}
	/* the model validators */
	sb_t msg = SB_INIT;
	size_t i;
	json_t *t;
	if (json_is_true(json_object_get(out, "has_args_schemas"))) {
		json_array_foreach(tasks, i, t) {
			static const char *const sides[] = { "parallel", "non_parallel" };
			for (int k = 0; k < 2 && !msg.len; k++) {
				char exe[40], schema[40];
				snprintf(exe, sizeof(exe), "executable_%s", sides[k]);
				snprintf(schema, sizeof(schema), "args_schema_%s", sides[k]);
				if (!absent_or_null(t, exe) && absent_or_null(t, schema))
					sb_addf(&msg, "Manifest has has_args_schemas=True, but task '%s' has task.%s=None.",
						json_string_value(json_object_get(t, "name")), schema);
			}
			if (msg.len)
				break;
		}
	}
	if (!msg.len) {
		json_array_foreach(tasks, i, t) {
			for (size_t j = 0; j < i && !msg.len; j++)
				if (json_equal(json_object_get(t, "name"), json_object_get(json_array_get(tasks, j), "name")))
					sb_adds(&msg, "dup");
		}
		if (msg.len) {
			/* upstream raises ValueError with a tuple: its str() */
			sb_reset(&msg);
			sb_adds(&msg, "('Task names in manifest must be unique.\\n', \"Given: [");
			json_array_foreach(tasks, i, t) {
				if (i)
					sb_adds(&msg, ", ");
				py_repr_json(&msg, json_object_get(t, "name"));
			}
			sb_adds(&msg, "].\")");
		}
	}
	if (msg.len) {
		value_error(e, loc, msg.buf, m);
		json_decref(out);
		out = NULL;
	}
	sb_release(&msg);
	return out;
}

json_t *manifest_tasks(json_t *manifest, const char *package_root, const char *python, const char *version,
		       verr_t *e)
{
	json_t *out = json_array();
	json_t *tasks = json_object_get(manifest, "task_list");
	int has_schemas = json_is_true(json_object_get(manifest, "has_args_schemas"));
	json_t *authors = json_object_get(manifest, "authors");
	json_t *asv = json_object_get(manifest, "args_schema_version");
	size_t rlen = strlen(package_root);
	while (rlen > 1 && package_root[rlen - 1] == '/')
		rlen--;
	size_t i;
	json_t *t;
	json_t *base = json_array();
	json_array_foreach(tasks, i, t) {
		json_t *tc = json_object();
		const char *k;
		json_t *v;
		json_object_foreach(t, k, v) {
			if (!strcmp(k, "executable_non_parallel") || !strcmp(k, "executable_parallel")) {
				if (json_is_null(v))
					continue;
				const char *exe = json_string_value(v);
				sb_t cmd = SB_INIT;
				if (exe[0] == '/')
					sb_addf(&cmd, "%s %s", python, exe);
				else
					sb_addf(&cmd, "%s %.*s/%s", python, (int)rlen, package_root, exe);
				json_object_set_new(tc, !strcmp(k, "executable_parallel") ? "command_parallel"
											  : "command_non_parallel",
						    json_string(cmd.buf));
				sb_release(&cmd);
			} else if (!json_is_null(v)) {
				json_object_set(tc, k, v);
			}
		}
		json_object_set_new(tc, "version", json_string(version));
		if (has_schemas && json_is_string(asv))
			json_object_set(tc, "args_schema_version", asv);
		if (json_is_string(authors))
			json_object_set(tc, "authors", authors);
		json_t *c = task_create_check(tc, base, e);
		json_decref(tc);
		if (!c) {
			json_decref(out);
			out = NULL;
			break;
		}
		json_array_append_new(out, c);
	}
	json_decref(base);
	return out;
}

/* A member as stored in a JSON column (malloc'd), dflt when absent or null. */
static char *col_dump(json_t *b, const char *key, const char *dflt)
{
	json_t *v = json_object_get(b, key);
	if (!v || json_is_null(v))
		return dflt ? xstrdup(dflt) : NULL;
	if (!strcmp(key, "input_types") || !strcmp(key, "output_types")) {
		json_t *o = jsonb_ordered(v);
		char *s = json_dump_py(o);
		json_decref(o);
		return s;
	}
	return json_dump_py(v);
}

int task_insert(db_t *db, int64_t task_group_id, json_t *b, int64_t *id)
{
	enum { MNP, MP, ASNP, ASP, IT, OT, TAGS, NDUMPS };
	char *d[NDUMPS];
	d[MNP] = col_dump(b, "meta_non_parallel", "{}");
	d[MP] = col_dump(b, "meta_parallel", "{}");
	d[ASNP] = col_dump(b, "args_schema_non_parallel", NULL);
	d[ASP] = col_dump(b, "args_schema_parallel", NULL);
	d[IT] = col_dump(b, "input_types", "{}");
	d[OT] = col_dump(b, "output_types", "{}");
	d[TAGS] = col_dump(b, "tags", "[]");
#define S(k) P_TEXT(json_string_value(json_object_get(b, k)))
	db_res_t *r = NULL;
	int rc = db_exec(db, "INSERT INTO taskv2 (name, type, command_non_parallel, command_parallel, meta_non_parallel, "
			 "meta_parallel, version, args_schema_non_parallel, args_schema_parallel, args_schema_version, "
			 "docs_info, docs_link, input_types, output_types, taskgroupv2_id, category, modality, authors, "
			 "tags, is_core) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
			 "$17, $18, $19, $20) RETURNING id",
			 (db_param_t[]){ S("name"), S("type"), S("command_non_parallel"), S("command_parallel"),
					 P_JSON(d[MNP]), P_JSON(d[MP]), S("version"), P_JSON(d[ASNP]), P_JSON(d[ASP]),
					 S("args_schema_version"), S("docs_info"), S("docs_link"), P_JSON(d[IT]),
					 P_JSON(d[OT]), P_INT(task_group_id), S("category"), S("modality"), S("authors"),
					 P_JSON(d[TAGS]), P_BOOL(0) },
			 20, &r);
#undef S
	if (!rc && id)
		*id = db_int(r, 0, 0);
	db_res_free(r);
	for (int i = 0; i < NDUMPS; i++)
		free(d[i]);
	return rc ? -1 : 0;
}
