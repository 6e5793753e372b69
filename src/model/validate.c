/* validate.c — see validate.h. Messages and error types are pydantic 2's. */
#include "model/validate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"

void verr_init(verr_t *e)
{
	e->list = json_array();
}

void verr_free(verr_t *e)
{
	json_decref(e->list);
	e->list = NULL;
}

void verr_add(verr_t *e, const char *type, json_t *loc, const char *msg, json_t *input, json_t *ctx)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "loc", loc);
	json_object_set_new(o, "msg", json_string(msg));
	json_object_set(o, "input", input ? input : json_null());
	if (ctx)
		json_object_set_new(o, "ctx", ctx);
	json_array_append_new(e->list, o);
}

static json_t *loc_with(json_t *loc, const char *key, int64_t index)
{
	json_t *l = json_copy(loc);
	if (key)
		json_array_append_new(l, json_string(key));
	else
		json_array_append_new(l, json_integer(index));
	return l;
}

size_t v_utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

void v_add_too_long(verr_t *e, json_t *loc, json_t *input, int max_length)
{
	sb_t msg = SB_INIT;
	sb_addf(&msg, "String should have at most %d character%s", max_length, max_length == 1 ? "" : "s");
	verr_add(e, "string_too_long", loc, msg.buf, input, json_pack("{s:i}", "max_length", max_length));
	sb_release(&msg);
}

/* ---- scalar coercions (pydantic lax mode) ---- */

static json_t *as_int(json_t *v, json_t *loc, verr_t *e)
{
	if (json_is_integer(v))
		return json_incref(v);
	if (json_is_boolean(v))
		return json_integer(json_is_true(v));
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 9.2e18)
			return json_integer((json_int_t)d);
		verr_add(e, "int_from_float", json_incref(loc), "Input should be a valid integer, got a number with a fractional part", v, NULL);
		return NULL;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		while (isspace((unsigned char)*s))
			s++;
		char *end;
		errno = 0;
		long long n = strtoll(s, &end, 10);
		const char *t = end;
		while (isspace((unsigned char)*t))
			t++;
		if (*s && end != s && !*t && !errno)
			return json_integer(n);
		verr_add(e, "int_parsing", json_incref(loc), "Input should be a valid integer, unable to parse string as an integer", v, NULL);
		return NULL;
	}
	verr_add(e, "int_type", json_incref(loc), "Input should be a valid integer", v, NULL);
	return NULL;
}

static json_t *as_float(json_t *v, json_t *loc, verr_t *e)
{
	if (json_is_number(v))
		return json_real(json_number_value(v));
	if (json_is_boolean(v))
		return json_real(json_is_true(v));
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		double d = strtod(s, &end);
		if (*s && !*end && isfinite(d))
			return json_real(d);
		verr_add(e, "float_parsing", json_incref(loc), "Input should be a valid number, unable to parse string as a number", v, NULL);
		return NULL;
	}
	verr_add(e, "float_type", json_incref(loc), "Input should be a valid number", v, NULL);
	return NULL;
}

static int strcase_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcasecmp(s, *set))
			return 1;
	return 0;
}

static json_t *as_bool(json_t *v, json_t *loc, verr_t *e)
{
	static const char *const yes[] = { "1", "on", "t", "true", "y", "yes", NULL };
	static const char *const no[] = { "0", "off", "f", "false", "n", "no", NULL };
	if (json_is_boolean(v))
		return json_incref(v);
	if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
		return json_boolean(json_integer_value(v));
	if (json_is_real(v) && (json_real_value(v) == 0.0 || json_real_value(v) == 1.0))
		return json_boolean(json_real_value(v) == 1.0);
	if (json_is_string(v)) {
		if (strcase_in(json_string_value(v), yes))
			return json_true();
		if (strcase_in(json_string_value(v), no))
			return json_false();
	}
	if (json_is_string(v) || json_is_number(v))
		verr_add(e, "bool_parsing", json_incref(loc), "Input should be a valid boolean, unable to interpret input", v, NULL);
	else
		verr_add(e, "bool_type", json_incref(loc), "Input should be a valid boolean", v, NULL);
	return NULL;
}

static json_t *as_string(const vfield_t *f, json_t *v, json_t *loc, verr_t *e)
{
	if (!json_is_string(v)) {
		verr_add(e, "string_type", json_incref(loc), "Input should be a valid string", v, NULL);
		return NULL;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (f->type == V_NONEMPTY) {
		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (n == 0) {
			verr_add(e, "string_too_short", json_incref(loc), "String should have at least 1 character", v,
				 json_pack("{s:i}", "min_length", 1));
			return NULL;
		}
	}
	if (f->max_length && v_utf8_chars(s, n) > (size_t)f->max_length) {
		v_add_too_long(e, json_incref(loc), v, f->max_length);
		return NULL;
	}
	json_t *out = json_stringn(s, n);
	if (f->pattern) {
		regex_t re;
		int ok = 0;
		if (!regcomp(&re, f->pattern, REG_EXTENDED | REG_NOSUB)) {
			ok = regexec(&re, json_string_value(out), 0, NULL, 0) == 0;
			regfree(&re);
		}
		if (!ok) {
			sb_t msg = SB_INIT;
			sb_addf(&msg, "String should match pattern '%s'", f->pattern);
			verr_add(e, "string_pattern_mismatch", json_incref(loc), msg.buf, out,
				 json_pack("{s:s}", "pattern", f->pattern));
			sb_release(&msg);
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* email-validator's "(N character(s) too many)". */
static const char *too_many(size_t n, size_t limit)
{
	static _Thread_local char buf[64];
	size_t d = n - limit;
	snprintf(buf, sizeof(buf), "(%zu character%s too many)", d, d > 1 ? "s" : "");
	return buf;
}

/* email-validator's length checks (its domain and label limits here, the
 * whole address's below; RFC 5321/1035), with its reasons; NULL when fine.
 * They also keep an e-mail well inside PostgreSQL's index on
 * user_oauth.email. */
static const char *email_length_reason(const char *dom)
{
	static _Thread_local char buf[160];
	size_t dl = strlen(dom);
	if (dl > 253) {
		snprintf(buf, sizeof(buf), "The email address is too long after the @-sign %s.", too_many(dl, 253));
		return buf;
	}
	for (const char *l = dom; *l;) {
		size_t n = strcspn(l, ".");
		if (n > 63) {
			snprintf(buf, sizeof(buf), "After the @-sign, periods cannot be separated by so many characters %s.",
				 too_many(n, 63));
			return buf;
		}
		l += n;
		if (*l)
			l++;
	}
	return NULL;
}

/* email-validator's whole-address limit, checked after the domain's syntax. */
static const char *email_total_reason(const char *s)
{
	static _Thread_local char buf[160];
	size_t bytes = strlen(s), chars = v_utf8_chars(s, bytes);
	if (bytes > 254) {
		if (chars == bytes) {
			snprintf(buf, sizeof(buf), "The email address is too long %s.", too_many(bytes, 254));
		} else {
			/* email-validator's range when some characters take more than one byte */
			size_t diff = bytes - 254, mbpc = 1;
			for (const unsigned char *p = (const unsigned char *)s; *p;) {
				size_t w = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1;
				if (w > mbpc)
					mbpc = w;
				p += w;
			}
			size_t mchars = diff / mbpc ? diff / mbpc : 1;
			if (mchars == diff)
				snprintf(buf, sizeof(buf), "The email address is too long (%zu character%s too many).", diff,
					 diff > 1 ? "s" : "");
			else
				snprintf(buf, sizeof(buf), "The email address is too long (%zu-%zu character%s too many).",
					 mchars, diff, diff > 1 ? "s" : "");
		}
		return buf;
	}
	return NULL;
}

/* pydantic's validate_email, then email-validator's syntax checks, with
 * their reasons; NULL when fine. */
static const char *email_reason(const char *s)
{
	size_t len = strlen(s);
	if (v_utf8_chars(s, len) > 2048)
		return "Length must not exceed 2048 characters";
	const char *at = strchr(s, '@');
	if (!at)
		return "An email address must have an @-sign.";
	if (strchr(at + 1, '@'))
		return "The email address is not valid. It must have exactly one @-sign.";
	if (at == s)
		return "There must be something before the @-sign.";
	const char *dom = at + 1;
	if (!*dom)
		return "There must be something after the @-sign.";
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char)*p) || *p == ',' || *p == '(' || *p == ')' || *p == '<' || *p == '>' ||
		    *p == '[' || *p == ']' || *p == ';' || *p == ':' || *p == '"' || *p == '\\')
			return "The email address contains invalid characters.";
	const char *why = email_length_reason(dom);
	if (why)
		return why;
	const char *dot = strrchr(dom, '.');
	if (!dot || dot == dom || !dot[1] || strstr(dom, "..") || dom[0] == '.')
		return "The part after the @-sign is not valid. It should have a period.";
	return email_total_reason(s);
}

const char *check_email(json_t **val, sb_t *msg)
{
	const char *s = json_string_value(*val);
	const char *why = email_reason(s);
	if (why) {
		sb_addf(msg, "value is not a valid email address: %s", why);
		return msg->buf;
	}
	/* email-validator normalises the domain to lower case */
	const char *dom = strchr(s, '@') + 1;
	sb_t out = SB_INIT;
	sb_add(&out, s, (size_t)(dom - s));
	for (const char *p = dom; *p; p++)
		sb_addc(&out, (char)tolower((unsigned char)*p));
	json_decref(*val);
	*val = json_string(out.buf);
	sb_release(&out);
	return NULL;
}

/* EmailStr errors are pydantic's own value_error (no "Value error, "
 * prefix) with the reason in ctx. */
static json_t *as_email(json_t *r, json_t *orig, json_t *loc, verr_t *e)
{
	const char *why = email_reason(json_string_value(r));
	if (why) {
		sb_t msg = SB_INIT;
		sb_addf(&msg, "value is not a valid email address: %s", why);
		verr_add(e, "value_error", json_incref(loc), msg.buf, orig, json_pack("{s:s}", "reason", why));
		sb_release(&msg);
		json_decref(r);
		return NULL;
	}
	sb_t tmp = SB_INIT;
	check_email(&r, &tmp);
	sb_release(&tmp);
	return r;
}

static json_t *scalar(const vfield_t *f, enum vtype t, json_t *v, json_t *loc, verr_t *e)
{
	switch (t) {
	case V_ANY:
		return json_incref(v);
	case V_INT:
	case V_NONNEG: {
		json_t *r = as_int(v, loc, e);
		if (r && t == V_NONNEG && json_integer_value(r) < 0) {
			verr_add(e, "greater_than_equal", json_incref(loc), "Input should be greater than or equal to 0", v,
				 json_pack("{s:i}", "ge", 0));
			json_decref(r);
			return NULL;
		}
		return r;
	}
	case V_FLOAT:
		return as_float(v, loc, e);
	case V_BOOL:
		return as_bool(v, loc, e);
	case V_STR:
	case V_NONEMPTY:
	case V_EMAIL: {
		vfield_t tmp = *f;
		tmp.type = t == V_EMAIL ? V_STR : t;
		return as_string(&tmp, v, loc, e);
	}
	case V_DICT:
		if (!json_is_object(v)) {
			verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", v, NULL);
			return NULL;
		}
		return json_incref(v);
	case V_LIST:
		break;
	}
	return NULL;
}

static json_t *run_check(vcheck_fn check, json_t *r, json_t *orig, json_t *loc, verr_t *e)
{
	sb_t msg = SB_INIT;
	const char *why = check(&r, &msg);
	if (why) {
		sb_t full = SB_INIT;
		sb_addf(&full, "Value error, %s", why);
		verr_add(e, "value_error", json_incref(loc), full.buf, orig, json_pack("{s:{}}", "error"));
		sb_release(&full);
		sb_release(&msg);
		json_decref(r);
		return NULL;
	}
	sb_release(&msg);
	return r;
}

json_t *v_value(const vfield_t *f, json_t *val, json_t *loc, verr_t *e)
{
	if (json_is_null(val) && f->nullable)
		return json_null();
	json_t *r;
	if (f->type == V_LIST) {
		if (!json_is_array(val)) {
			verr_add(e, "list_type", json_incref(loc), "Input should be a valid list", val, NULL);
			return NULL;
		}
		r = json_array();
		size_t i;
		json_t *item;
		int bad = 0;
		json_array_foreach(val, i, item) {
			json_t *iloc = loc_with(loc, NULL, (int64_t)i);
			json_t *c = scalar(f, f->item, item, iloc, e);
			if (c && f->item == V_EMAIL)
				c = as_email(c, item, iloc, e);
			json_decref(iloc);
			if (!c) {
				bad = 1;
				continue;
			}
			json_array_append_new(r, c);
		}
		if (bad) {
			json_decref(r);
			return NULL;
		}
		if ((int)json_array_size(r) < f->min_length) {
			sb_t msg = SB_INIT;
			sb_addf(&msg, "List should have at least %d item%s after validation, not %zu", f->min_length,
				f->min_length == 1 ? "" : "s", json_array_size(r));
			verr_add(e, "too_short", json_incref(loc), msg.buf, val,
				 json_pack("{s:s,s:i,s:i}", "field_type", "List", "min_length", f->min_length,
					   "actual_length", (int)json_array_size(r)));
			sb_release(&msg);
			json_decref(r);
			return NULL;
		}
	} else {
		r = scalar(f, f->type, val, loc, e);
		if (r && f->type == V_EMAIL)
			r = as_email(r, val, loc, e);
	}
	if (r && f->check)
		r = run_check(f->check, r, val, loc, e);
	return r;
}

json_t *v_object(json_t *body, const vfield_t *fields, int nfields, int forbid_extra, json_t *base, verr_t *e)
{
	json_t *out = json_object();
	for (int i = 0; i < nfields; i++) {
		const vfield_t *f = &fields[i];
		json_t *v = json_object_get(body, f->name);
		json_t *loc = loc_with(base, f->name, 0);
		if (!v) {
			if (f->required)
				verr_add(e, "missing", json_incref(loc), "Field required", body, NULL);
		} else {
			json_t *c = v_value(f, v, loc, e);
			if (c)
				json_object_set_new(out, f->name, c);
		}
		json_decref(loc);
	}
	if (forbid_extra) {
		const char *k;
		json_t *v;
		json_object_foreach(body, k, v) {
			int known = 0;
			for (int i = 0; i < nfields && !known; i++)
				known = !strcmp(fields[i].name, k);
			if (!known)
				verr_add(e, "extra_forbidden", loc_with(base, k, 0), "Extra inputs are not permitted", v, NULL);
		}
	}
	return out;
}

void v_add_not_object(verr_t *e, json_t *loc, json_t *input)
{
	verr_add(e, "model_attributes_type", loc, "Input should be a valid dictionary or object to extract fields from", input,
		 NULL);
}

/* ---- memory sizes ---- */

static int all_digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int mem_to_mb(const char *s, size_t n, int64_t *mb)
{
	if (n == 0 || !isdigit((unsigned char)s[0]))
		return -1;
	int64_t mult = 1;
	if (!all_digits(s, n)) {
		char unit = s[n - 1];
		if (unit == 'M')
			mult = 1;
		else if (unit == 'G')
			mult = 1000;
		else if (unit == 'T')
			mult = 1000000;
		else
			return -1;
		while (n && s[n - 1] == unit)
			n--;
		if (!all_digits(s, n))
			return -1;
	}
	/* Python's ints have no limit; ours stop at int64 (far beyond any memory) */
	char *digits = xstrndup(s, n);
	errno = 0;
	long long v = strtoll(digits, NULL, 10);
	free(digits);
	if (errno || v > INT64_MAX / mult)
		return -1;
	*mb = v * mult;
	return 0;
}

/* ---- pydantic's text for a ValidationError ---- */

void verr_render(json_t *errs, const char *title, sb_t *out)
{
	size_t n = json_array_size(errs);
	sb_addf(out, "%zu validation error%s for %s", n, n == 1 ? "" : "s", title);
	size_t i;
	json_t *err;
	json_array_foreach(errs, i, err) {
		sb_addc(out, '\n');
		json_t *loc = json_object_get(err, "loc");
		size_t j;
		json_t *item;
		json_array_foreach(loc, j, item) {
			if (j)
				sb_addc(out, '.');
			if (json_is_integer(item))
				sb_addf(out, "%lld", (long long)json_integer_value(item));
			else if (strchr(json_string_value(item), '.'))
				sb_addf(out, "`%s`", json_string_value(item));
			else
				sb_adds(out, json_string_value(item));
		}
		if (json_array_size(loc))
			sb_addc(out, '\n');
		const char *type = json_string_value(json_object_get(err, "type"));
		json_t *input = json_object_get(err, "input");
		sb_addf(out, "  %s [type=%s, input_value=", json_string_value(json_object_get(err, "msg")), type);
		/* long inputs keep their first 25 and last 24 bytes */
		sb_t r = SB_INIT;
		py_repr_json(&r, input);
		if (r.len > 50) {
			size_t head = 25, tail = r.len - 24;
			while (head && (r.buf[head] & 0xc0) == 0x80)
				head--;
			while (tail < r.len && (r.buf[tail] & 0xc0) == 0x80)
				tail++;
			sb_add(out, r.buf, head);
			sb_adds(out, "...");
			sb_add(out, r.buf + tail, r.len - tail);
		} else {
			sb_add(out, r.buf, r.len);
		}
		sb_release(&r);
		sb_addf(out, ", input_type=%s]\n    For further information visit https://errors.pydantic.dev/2.13/v/%s",
			py_type_name(input), type);
	}
}
