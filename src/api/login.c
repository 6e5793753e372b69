/* login.c — POST /auth/token/login/ (fastapi-users' bearer login): a form
 * with `username` (the e-mail, matched case-insensitively) and `password`,
 * answered with {"access_token": <JWT>, "token_type": "bearer"}.
 *
 * The bcrypt check runs on the slow-work threads (http_offload) so that a
 * burst of logins leaves other requests fast. An unknown e-mail still costs
 * one hash, so response time does not tell which e-mails exist. Absent when
 * FRACTAL_DISABLE_BASIC_AUTH=true (404, as upstream removes the route). */
#include "api/api.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/settings.h"
#include "util/jwt.h"
#include "util/password.h"

struct login_state {
	char *password;
	char *hash;         /* NULL: no such user */
	int64_t user_id;
	int active;
	int ok;
};

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

static char *urldecode(arena_t *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 1), *w = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*w++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			*w++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	return out;
}

/* The value of `key` in an urlencoded form, decoded; NULL if absent. */
static char *form_field(http_req_t *req, const char *key)
{
	const char *p = req->body.buf, *end = p + req->body.len;
	size_t klen = strlen(key);
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		char *k = urldecode(&req->arena, p, (size_t)(kend - p));
		if (strlen(k) == klen && !memcmp(k, key, klen))
			return eq ? urldecode(&req->arena, eq + 1, (size_t)(stop - eq - 1)) : arena_strdup(&req->arena, "");
		p = stop + 1;
	}
	return NULL;
}

static void check_password(http_req_t *req)
{
	struct login_state *st = req->work_state;
	if (st->hash) {
		st->ok = password_verify(st->password, st->hash);
	} else {
		/* equal cost for unknown users */
		char dummy[PASSWORD_HASH_LEN];
		password_hash(st->password, dummy);
		st->ok = 0;
	}
}

void api_login(http_req_t *req)
{
	if (settings.disable_basic_auth) {
		http_error(req, 404, "Not Found");
		return;
	}
	if (req->phase == 1) {
		struct login_state *st = req->work_state;
		if (!st->ok || !st->active) {
			http_error(req, 400, "LOGIN_BAD_CREDENTIALS");
			return;
		}
		char *tok = jwt_encode(settings.jwt_secret_key, st->user_id,
				       (int64_t)time(NULL) + settings.jwt_expire_seconds);
		sb_t sb = SB_INIT;
		sb_adds(&sb, "{\"access_token\":");
		sb_add_json_str(&sb, tok);
		sb_adds(&sb, ",\"token_type\":\"bearer\"}");
		free(tok);
		http_json_sb(req, 200, &sb);
		return;
	}
	char *username = form_field(req, "username");
	char *password = form_field(req, "password");
	if (!username || !password) {
		sb_t sb = SB_INIT;
		sb_adds(&sb, "[");
		int first = 1;
		const char *names[] = { "username", "password" };
		char *vals[] = { username, password };
		for (int i = 0; i < 2; i++) {
			if (vals[i])
				continue;
			sb_addf(&sb, "%s{\"type\":\"missing\",\"loc\":[\"body\",\"%s\"],\"msg\":\"Field required\",\"input\":null}",
				first ? "" : ",", names[i]);
			first = 0;
		}
		sb_adds(&sb, "]");
		http_error_json(req, 422, sb.buf);
		sb_release(&sb);
		return;
	}
	db_t *db = http_db(req);
	if (!db)
		return;
	db_res_t *r;
	db_param_t p[] = { P_TEXT(username) };
	if (db_exec(db, "SELECT id, hashed_password, is_active FROM user_oauth WHERE lower(email) = lower($1)", p, 1, &r)) {
		http_error(req, 500, "Internal Server Error");
		return;
	}
	struct login_state *st = arena_alloc(&req->arena, sizeof(*st));
	st->password = password;
	if (db_nrows(r) == 1) {
		st->user_id = db_int(r, 0, 0);
		st->hash = arena_strdup(&req->arena, db_text(r, 0, 1));
		st->active = db_bool(r, 0, 2);
	}
	db_res_free(r);
	req->work_state = st;
	http_offload(req, check_password);
}
