/* auth.c — see auth.h. */
#include "http/auth.h"

#include <string.h>
#include <time.h>

#include "config/settings.h"
#include "util/jwt.h"

/* The user row a token names into *out, or NULL (expired, forged, no such
 * user); -1 on a database error. As fastapi-users' authenticator, the first
 * token that names an existing user wins, active or not: the bearer header
 * first, then the cookie. */
static int user_of(db_t *db, const char *tok, db_res_t **out)
{
	*out = NULL;
	int64_t uid;
	if (!tok || jwt_decode(settings.jwt_secret_key, tok, (int64_t)time(NULL), &uid))
		return 0;
	db_param_t p[] = { P_INT(uid) };
	if (db_exec(db, "SELECT id, email, is_active, is_superuser, is_verified, is_guest, profile_id "
			"FROM user_oauth WHERE id = $1", p, 1, out))
		return -1;
	if (db_nrows(*out) != 1) {
		db_res_free(*out);
		*out = NULL;
	}
	return 0;
}

int auth_require(http_req_t *req, enum auth_level level)
{
	const char *h = http_header(req, "Authorization");
	const char *bearer = h && !strncasecmp(h, "Bearer ", 7) ? h + 7 : NULL;
	const char *cookie = http_cookie(req, "fastapiusersauth");
	if (!bearer && !cookie) {
		http_error(req, 401, "Unauthorized");
		return -1;
	}
	db_t *db = http_db(req);
	if (!db)
		return -1;
	req->db = db;
	db_res_t *r;
	if (user_of(db, bearer, &r) || (!r && user_of(db, cookie, &r))) {
		http_error_500(req, "database error: %s", db_errmsg(db));
		return -1;
	}
	if (!r || !db_bool(r, 0, 2)) {
		if (r)
			db_res_free(r);
		http_error(req, 401, "Unauthorized");
		return -1;
	}
	http_user_t *u = arena_alloc(&req->arena, sizeof(*u));
	u->id = db_int(r, 0, 0);
	u->email = arena_strdup(&req->arena, db_text(r, 0, 1));
	u->is_active = 1;
	u->is_superuser = db_bool(r, 0, 3);
	u->is_verified = db_bool(r, 0, 4);
	u->is_guest = db_bool(r, 0, 5);
	u->profile_id = db_isnull(r, 0, 6) ? 0 : db_int(r, 0, 6);
	db_res_free(r);
	req->user = u;
	if ((level >= AUTH_GUEST || level == AUTH_VERIFIED) && !u->is_verified) {
		http_error(req, 403, "Forbidden");
		return -1;
	}
	if (level == AUTH_SUPERUSER && !u->is_superuser) {
		http_error(req, 403, "Forbidden");
		return -1;
	}
	if (level >= AUTH_GUEST && !u->profile_id) {
		/* upstream prints Python's repr of the two fields */
		http_error(req, 403, "Forbidden access (user.is_verified=True user.profile_id=None).");
		return -1;
	}
	if (level == AUTH_USER && u->is_guest) {
		http_error(req, 403, "This feature is not available for guest users.");
		return -1;
	}
	return 0;
}
