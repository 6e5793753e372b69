/* login.c — POST /auth/token/login/ (fastapi-users' bearer login): a form
 * with `username` (the e-mail, matched case-insensitively) and `password`,
 * answered with {"access_token": <JWT>, "token_type": "bearer"}.
 *
 * The form may be urlencoded or multipart/form-data, as with Starlette.
 * The bcrypt check runs on the slow-work threads (http_offload) so that a
 * burst of logins leaves other requests fast. An unknown e-mail still costs
 * one hash, so response time does not tell which e-mails exist. Absent when
 * FRACTAL_DISABLE_BASIC_AUTH=true (404, as upstream removes the route). */
#include "api/api.h"
#include "api/common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/settings.h"
#include "http/form.h"
#include "util/jwt.h"
#include "util/password.h"

struct login_state {
	char *password;
	char *hash;         /* NULL: no such user */
	int64_t user_id;
	int active;
	int ok;
};

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
	/* Starlette's request.form(): urlencoded or multipart (fractal-web sends
	 * a FormData, i.e. multipart), by Content-Type; any other type is an empty form */
	http_form_t form;
	const char *why;
	if (http_form_parse(req, &form, &why)) {
		http_error(req, 400, why);
		return;
	}
	const http_form_field_t *fu = http_form_get(&form, "username");
	const http_form_field_t *fp = http_form_get(&form, "password");
	char *username = fu ? (char *)fu->data : NULL;
	char *password = fp ? (char *)fp->data : NULL;
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
		api_db_error(req, db);
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
