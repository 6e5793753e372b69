/* oauth.c — login through an identity provider: GET /auth/{client}/authorize/
 * and GET /auth/{client}/callback/, upstream's fastapi-users OAuth router
 * with httpx-oauth's clients (OpenID Connect by discovery, GitHub, Google).
 *
 * The routes exist only when OAUTH_CLIENT_NAME, OAUTH_CLIENT_ID and
 * OAUTH_CLIENT_SECRET are all set, and only for that client name: otherwise
 * they answer the router's 404 {"detail": "Not Found"}. oauth_init() runs at
 * `start` and builds the client once (for OpenID Connect it reads the
 * discovery document, and an unreachable provider stops the start); the
 * handlers only read it.
 *
 * authorize: a random CSRF token goes both into the state JWT (signed with
 * JWT_SECRET_KEY, audience "fastapi-users:oauth-state", one hour) and into
 * the fastapiusersoauthcsrf cookie; the answer is the provider's
 * authorization URL.
 * callback: as upstream, the code is exchanged first (client authentication
 * as discovery offers it: client_secret_basic or client_secret_post), then
 * the state and the CSRF cookie are checked, the provider's userinfo read,
 * and the user found by OAuth account or by e-mail (then linked). An unknown
 * e-mail gets upstream's registration text (with FRACTAL_HELP_URL) and the
 * admins a mail. Success: 204 with the fastapiusersauth cookie, a login
 * token that lives COOKIE_EXPIRE_SECONDS.
 *
 * The provider's calls run on the request thread, bounded by timeouts. */
#include "api/api.h"
#include "api/oauth.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/settings.h"
#include "util/jwt.h"
#include "util/log.h"
#include "util/mail.h"

enum kind { OIDC, GITHUB, GOOGLE };

/* The one client, set by oauth_init() before the server starts, then
 * read-only. */
static struct {
	int ready;
	enum kind kind;
	const char *oauth_name;      /* oauthaccount.oauth_name: httpx-oauth's client name */
	char *authorize_endpoint;
	char *token_endpoint;
	char *userinfo_endpoint;     /* OpenID Connect only */
	const char *scopes;          /* space-separated */
	int basic_auth;              /* client_secret_basic, else client_secret_post */
} client;

static const char CSRF_COOKIE[] = "fastapiusersoauthcsrf";

/* ---- HTTP client (libcurl) ---- */

struct http_answer {
	long status;
	sb_t body;
	char error[CURL_ERROR_SIZE];  /* transport error, "" if none */
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	sb_add(arg, p, size * n);
	return size * n;
}

/* One request; form (urlencoded) makes it a POST. userpwd: basic auth. */
static int fetch(const char *url, const char *authorization, const char *form, const char *user,
		 const char *pwd, struct http_answer *a)
{
	sb_init(&a->body, 1024);
	a->error[0] = '\0';
	a->status = 0;
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (authorization) {
		sb_t h = SB_INIT;
		sb_addf(&h, "Authorization: %s", authorization);
		hdrs = curl_slist_append(hdrs, h.buf);
		sb_release(&h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &a->body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->error);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "fractalctl");
	if (form)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	if (user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, pwd);
	}
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK && !a->error[0])
		snprintf(a->error, sizeof(a->error), "%s", curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return cc == CURLE_OK ? 0 : -1;
}

static const char *reason(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

/* httpx's words for a failed request (raise_for_status), into msg */
static void describe_failure(const char *url, const struct http_answer *a, sb_t *msg)
{
	if (a->error[0]) {
		sb_adds(msg, a->error);
		return;
	}
	sb_addf(msg, "%s error '%ld %s' for url '%s'\nFor more information check: "
		     "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/%ld",
		a->status >= 500 ? "Server" : a->status >= 400 ? "Client" : "Redirect", a->status,
		reason(a->status), url, a->status);
}

/* Python's urllib.parse.quote_plus */
static void add_quoted(sb_t *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("_.-~", *p)) {
			sb_addc(sb, (char)*p);
		} else if (*p == ' ') {
			sb_addc(sb, '+');
		} else {
			sb_addc(sb, '%');
			sb_addc(sb, hex[*p >> 4]);
			sb_addc(sb, hex[*p & 15]);
		}
	}
}

static void add_param(sb_t *sb, const char *name, const char *value)
{
	if (sb->len)
		sb_addc(sb, '&');
	sb_adds(sb, name);
	sb_addc(sb, '=');
	add_quoted(sb, value);
}

/* ---- the client ---- */

static char *json_strdup(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

static int discover(const char *endpoint, sb_t *err)
{
	struct http_answer a;
	sb_t why = SB_INIT;
	int rc = -1;
	json_t *conf = NULL;
	if (fetch(endpoint, NULL, NULL, NULL, NULL, &a) || a.status >= 400) {
		describe_failure(endpoint, &a, &why);
		goto fail;
	}
	conf = json_loadb(a.body.buf, a.body.len, 0, NULL);
	if (!json_is_object(conf)) {
		sb_adds(&why, "the discovery document is not a JSON object");
		goto fail;
	}
	client.authorize_endpoint = json_strdup(conf, "authorization_endpoint");
	client.token_endpoint = json_strdup(conf, "token_endpoint");
	client.userinfo_endpoint = json_strdup(conf, "userinfo_endpoint");
	if (!client.authorize_endpoint || !client.token_endpoint || !client.userinfo_endpoint) {
		sb_adds(&why, "the discovery document lacks authorization_endpoint, token_endpoint or userinfo_endpoint");
		goto fail;
	}
	/* httpx-oauth takes the first method it supports; the default is basic */
	json_t *methods = json_object_get(conf, "token_endpoint_auth_methods_supported");
	int found = 0;
	if (!methods) {
		client.basic_auth = found = 1;
	} else {
		size_t i;
		json_t *m;
		json_array_foreach(methods, i, m) {
			const char *s = json_string_value(m);
			if (s && (!strcmp(s, "client_secret_basic") || !strcmp(s, "client_secret_post"))) {
				client.basic_auth = !strcmp(s, "client_secret_basic");
				found = 1;
				break;
			}
		}
	}
	if (!found) {
		sb_adds(&why, "the provider offers neither client_secret_basic nor client_secret_post at its token endpoint");
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	sb_addf(err, "Cannot initialize OpenID client. Original error: '%s'. Hint: is OAUTH_OIDC_CONFIG_ENDPOINT='%s' "
		     "reachable?", why.buf, endpoint);
out:
	json_decref(conf);
	sb_release(&a.body);
	sb_release(&why);
	return rc;
}

int oauth_init(sb_t *err)
{
	if (!settings.oauth_set)
		return 0;
	const char *name = settings.oauth_client_name;
	if (!strcmp(name, "github")) {
		client.kind = GITHUB;
		client.oauth_name = "github";
		client.authorize_endpoint = xstrdup("https://github.com/login/oauth/authorize");
		client.token_endpoint = xstrdup("https://github.com/login/oauth/access_token");
		client.scopes = "user user:email";
	} else if (!strcmp(name, "google")) {
		client.kind = GOOGLE;
		client.oauth_name = "google";
		client.authorize_endpoint = xstrdup("https://accounts.google.com/o/oauth2/v2/auth");
		client.token_endpoint = xstrdup("https://oauth2.googleapis.com/token");
		client.scopes = "https://www.googleapis.com/auth/userinfo.profile "
				"https://www.googleapis.com/auth/userinfo.email";
	} else {
		client.kind = OIDC;
		client.oauth_name = "openid";
		client.scopes = "openid email";
		if (discover(settings.oauth_oidc_config_endpoint, err))
			return -1;
	}
	client.ready = 1;
	log_info("OAuth client '%s' ready (login through /auth/%s/authorize/)", client.oauth_name, name);
	return 0;
}

/* 1 when this request names the configured client; else answers 404 as an
 * unknown path does. */
static int route_exists(http_req_t *req)
{
	if (client.ready && !strcmp(req->params[0], settings.oauth_client_name))
		return 1;
	http_error(req, 404, "Not Found");
	return 0;
}

static const char *redirect_url(http_req_t *req)
{
	if (settings.oauth_redirect_url)
		return settings.oauth_redirect_url;
	const char *host = http_header(req, "Host");
	return arena_printf(&req->arena, "http://%s/auth/%s/callback/", host ? host : "localhost",
			    settings.oauth_client_name);
}

void api_oauth_authorize(http_req_t *req)
{
	if (!route_exists(req))
		return;
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		http_error_500(req, "OAuth: RAND_bytes failed for the CSRF token");
		return;
	}
	sb_t csrf = SB_INIT, url = SB_INIT, q = SB_INIT, out = SB_INIT;
	jwt_b64url_encode(&csrf, raw, sizeof(raw));
	char *state = jwt_encode_state(settings.jwt_secret_key, csrf.buf, (int64_t)time(NULL) + 3600);
	const char *scopes = http_query(req, "scopes");
	add_param(&q, "response_type", "code");
	add_param(&q, "client_id", settings.oauth_client_id);
	add_param(&q, "redirect_uri", redirect_url(req));
	add_param(&q, "state", state);
	add_param(&q, "scope", scopes && *scopes ? scopes : client.scopes);
	sb_addf(&url, "%s?%s", client.authorize_endpoint, q.buf);
	sb_adds(&out, "{\"authorization_url\":");
	sb_add_json_str(&out, url.buf);
	sb_addc(&out, '}');
	req->extra_header_name = "Set-Cookie";
	req->extra_header_value = arena_printf(&req->arena, "%s=%s; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure",
					       CSRF_COOKIE, csrf.buf);
	http_json_sb(req, 200, &out);
	free(state);
	sb_release(&csrf);
	sb_release(&url);
	sb_release(&q);
}

/* The token answer, as httpx-oauth's OAuth2Token keeps it. */
struct token {
	char *access_token;
	char *refresh_token;   /* NULL: none */
	int has_expires_at;
	int64_t expires_at;
};

/* 0, or -1 after answering upstream's 500 */
static int exchange_code(http_req_t *req, const char *code, const char *verifier, struct token *t)
{
	sb_t form = SB_INIT;
	add_param(&form, "grant_type", "authorization_code");
	add_param(&form, "code", code);
	add_param(&form, "redirect_uri", redirect_url(req));
	if (verifier && *verifier)
		add_param(&form, "code_verifier", verifier);
	if (!client.basic_auth) {
		add_param(&form, "client_id", settings.oauth_client_id);
		add_param(&form, "client_secret", settings.oauth_client_secret);
	}
	struct http_answer a;
	int rc = -1;
	json_t *tok = NULL;
	sb_t why = SB_INIT;
	if (fetch(client.token_endpoint, NULL, form.buf, client.basic_auth ? settings.oauth_client_id : NULL,
		  settings.oauth_client_secret, &a) || a.status >= 400) {
		describe_failure(client.token_endpoint, &a, &why);
		goto fail;
	}
	tok = json_loadb(a.body.buf, a.body.len, JSON_DECODE_ANY, NULL);
	if (!tok) {
		sb_adds(&why, "Invalid JSON content");
		goto fail;
	}
	json_t *at = json_object_get(tok, "access_token");
	if (!json_is_string(at)) {
		/* upstream: a KeyError, hence a bare 500 */
		http_error_500(req, "OAuth: the token answer of %s has no access_token", client.token_endpoint);
		goto out;
	}
	t->access_token = arena_strdup(&req->arena, json_string_value(at));
	json_t *rt = json_object_get(tok, "refresh_token");
	t->refresh_token = json_is_string(rt) ? arena_strdup(&req->arena, json_string_value(rt)) : NULL;
	json_t *ea = json_object_get(tok, "expires_at"), *ei = json_object_get(tok, "expires_in");
	if (json_is_number(ea)) {
		t->has_expires_at = 1;
		t->expires_at = (int64_t)json_number_value(ea);
	} else if (json_is_number(ei)) {
		t->has_expires_at = 1;
		t->expires_at = (int64_t)time(NULL) + (int64_t)json_number_value(ei);
	}
	rc = 0;
	goto out;
fail:
	log_error("OAuth: code exchange failed: %s", why.buf);
	{
		sb_t d = SB_INIT;
		sb_add_json_str(&d, why.buf);
		http_error_json(req, 500, d.buf);
		sb_release(&d);
	}
out:
	json_decref(tok);
	sb_release(&a.body);
	sb_release(&form);
	sb_release(&why);
	return rc;
}

/* GET url with the token; the JSON answer (caller decrefs), or NULL after
 * logging (upstream's GetIdEmailError, a bare 500). */
static json_t *get_profile(const char *url, const char *auth)
{
	struct http_answer a;
	json_t *j = NULL;
	if (fetch(url, auth, NULL, NULL, NULL, &a) || a.status >= 400) {
		sb_t why = SB_INIT;
		describe_failure(url, &a, &why);
		log_error("OAuth: reading the profile failed: %s", why.buf);
		sb_release(&why);
	} else if (!(j = json_loadb(a.body.buf, a.body.len, JSON_DECODE_ANY, NULL))) {
		log_error("OAuth: the profile answer of %s is not JSON", url);
	}
	sb_release(&a.body);
	return j;
}

static const char *str_or_int(http_req_t *req, json_t *v)
{
	if (json_is_string(v))
		return arena_strdup(&req->arena, json_string_value(v));
	if (json_is_integer(v))
		return arena_printf(&req->arena, "%lld", (long long)json_integer_value(v));
	return NULL;
}

/* The account id and e-mail (NULL when the provider gives none) of the token's
 * owner, as each httpx-oauth client reads them. -1 on failure. */
static int get_id_email(http_req_t *req, const char *access_token, const char **id, const char **email)
{
	*id = *email = NULL;
	json_t *p = NULL, *emails = NULL;
	int rc = -1;
	if (client.kind == OIDC) {
		const char *auth = arena_printf(&req->arena, "Bearer %s", access_token);
		if (!(p = get_profile(client.userinfo_endpoint, auth)))
			return -1;
		*id = str_or_int(req, json_object_get(p, "sub"));
		json_t *e = json_object_get(p, settings.oauth_email_claim);
		*email = json_is_string(e) ? arena_strdup(&req->arena, json_string_value(e)) : NULL;
		rc = *id ? 0 : -1;
	} else if (client.kind == GOOGLE) {
		const char *auth = arena_printf(&req->arena, "Bearer %s", access_token);
		if (!(p = get_profile("https://people.googleapis.com/v1/people/me?personFields=emailAddresses", auth)))
			return -1;
		*id = str_or_int(req, json_object_get(p, "resourceName"));
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(p, "emailAddresses"), i, e)
			if (json_is_true(json_object_get(json_object_get(e, "metadata"), "primary")) && !*email)
				*email = str_or_int(req, json_object_get(e, "value"));
		rc = *id && *email ? 0 : -1;
	} else {
		const char *auth = arena_printf(&req->arena, "token %s", access_token);
		if (!(p = get_profile("https://api.github.com/user", auth)))
			return -1;
		*id = str_or_int(req, json_object_get(p, "id"));
		*email = str_or_int(req, json_object_get(p, "email"));
		if (*id && !*email) {
			/* no public e-mail: the primary one, else the first */
			if (!(emails = get_profile("https://api.github.com/user/emails", auth)))
				goto out;
			size_t i;
			json_t *e;
			json_array_foreach(emails, i, e)
				if (json_is_true(json_object_get(e, "primary")) && !*email)
					*email = str_or_int(req, json_object_get(e, "email"));
			if (!*email)
				*email = str_or_int(req, json_object_get(json_array_get(emails, 0), "email"));
		}
		rc = *id && *email ? 0 : -1;
	}
out:
	json_decref(p);
	json_decref(emails);
	return rc;
}

/* The Cookie header by hand: fractal-web's forwarded header may carry a
 * bare token ("cookie; name=value"), which a strict parser refuses. */
static const char *csrf_cookie(http_req_t *req)
{
	const char *h = http_header(req, "Cookie");
	if (!h)
		return http_cookie(req, CSRF_COOKIE);
	size_t nlen = strlen(CSRF_COOKIE);
	const char *found = NULL;
	for (const char *p = h; *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t len = strcspn(p, ";");
		if (len > nlen && !strncmp(p, CSRF_COOKIE, nlen) && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vl = len - nlen - 1;
			while (vl && v[vl - 1] == ' ')
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			found = arena_strndup(&req->arena, v, vl); /* the last one wins, as in Python's parser */
		}
		p += len;
	}
	return found;
}

static void registration_refused(http_req_t *req, const char *email)
{
	log_warning("Self-registration attempt by %s.", email);
	sb_t msg = SB_INIT, mail = SB_INIT;
	sb_adds(&msg, "Thank you for registering for the Fractal service. Administrators have been informed to "
		      "configure your account and will get back to you.");
	if (settings.help_url)
		sb_addf(&msg, "\nYou can find more information about the onboarding process at %s.", settings.help_url);
	sb_addf(&mail, "User '%s' tried to self-register through OAuth.\nPlease create the Fractal account manually.\n"
		       "Here is the error message displayed to the user:\n%s", email, msg.buf);
	mail_notify("New OAuth self-registration", mail.buf);
	http_error(req, 400, msg.buf);
	sb_release(&msg);
	sb_release(&mail);
}

/* upstream's UserManager.oauth_callback: the user of this OAuth account
 * (its row refreshed), else the user with this e-mail (the account linked
 * to it). 1 found (*uid, *active), 0 none, -1 database error. */
static int find_user(db_t *db, const struct token *t, const char *account_id, const char *email, int64_t *uid,
		     int *active)
{
	db_param_t exp = t->has_expires_at ? P_INT(t->expires_at) : P_NULL;
	db_param_t refresh = t->refresh_token ? P_SECRET(t->refresh_token) : P_NULL;
	db_res_t *r;
	/* two callbacks of one account at once must not both link it */
	if (db_begin(db))
		return -1;
	if (db_lock_key(db, "user-email", 0))
		goto fail;
	db_param_t k[] = { P_TEXT(client.oauth_name), P_TEXT(account_id) };
	if (db_exec(db, "SELECT u.id, u.is_active FROM oauthaccount o JOIN user_oauth u ON u.id = o.user_id "
			"WHERE o.oauth_name = $1 AND o.account_id = $2 ORDER BY o.id LIMIT 1", k, 2, &r))
		goto fail;
	int found = db_nrows(r) == 1;
	if (found) {
		*uid = db_int(r, 0, 0);
		*active = db_bool(r, 0, 1);
	}
	db_res_free(r);
	if (found) {
		db_param_t p[] = { P_INT(*uid), P_TEXT(client.oauth_name), P_TEXT(account_id),
				   P_SECRET(t->access_token), P_TEXT(email), exp, refresh };
		if (db_exec(db, "UPDATE oauthaccount SET access_token = $4, account_email = $5, expires_at = $6, "
				"refresh_token = $7 WHERE user_id = $1 AND oauth_name = $2 AND account_id = $3", p, 7, NULL))
			goto fail;
	} else {
		db_param_t e[] = { P_TEXT(email) };
		if (db_exec(db, "SELECT id, is_active FROM user_oauth WHERE lower(email) = lower($1) ORDER BY id LIMIT 1",
			    e, 1, &r))
			goto fail;
		found = db_nrows(r) == 1;
		if (found) {
			*uid = db_int(r, 0, 0);
			*active = db_bool(r, 0, 1);
		}
		db_res_free(r);
		if (found) {
			db_param_t p[] = { P_INT(*uid), P_TEXT(client.oauth_name), P_SECRET(t->access_token), exp,
					   refresh, P_TEXT(account_id), P_TEXT(email) };
			if (db_exec(db, "INSERT INTO oauthaccount (user_id, oauth_name, access_token, expires_at, "
					"refresh_token, account_id, account_email) VALUES ($1, $2, $3, $4, $5, $6, $7)",
				    p, 7, NULL))
				goto fail;
		}
	}
	if (db_commit(db))
		goto fail;
	return found;
fail:
	log_error("OAuth: %s", db_errmsg(db));
	db_rollback(db);
	return -1;
}

void api_oauth_callback(http_req_t *req)
{
	if (!route_exists(req))
		return;
	/* httpx-oauth's OAuth2AuthorizeCallback; its extra `iss` is ignored */
	const char *code = http_query(req, "code"), *error = http_query(req, "error");
	if (!code || error) {
		if (error) {
			http_error(req, 400, error);
		} else {
			http_error_json(req, 400, "null");
		}
		return;
	}
	struct token t = { 0 };
	if (exchange_code(req, code, http_query(req, "code_verifier"), &t))
		return;
	const char *state = http_query(req, "state");
	char *state_csrf = NULL;
	int st = state ? jwt_decode_state(settings.jwt_secret_key, state, (int64_t)time(NULL), &state_csrf)
		       : JWT_INVALID;
	if (st == JWT_INVALID) {
		http_error(req, 400, "ACCESS_TOKEN_DECODE_ERROR");
		return;
	}
	if (st == JWT_EXPIRED) {
		http_error(req, 400, "ACCESS_TOKEN_ALREADY_EXPIRED");
		return;
	}
	if (st == JWT_BAD_AUDIENCE) {
		/* PyJWT's InvalidAudienceError is not caught upstream */
		http_error_500(req, "OAuth: the state token has another audience");
		return;
	}
	const char *cookie = csrf_cookie(req);
	int csrf_ok = cookie && *cookie && state_csrf && *state_csrf && strlen(cookie) == strlen(state_csrf) &&
		      CRYPTO_memcmp(cookie, state_csrf, strlen(cookie)) == 0;
	free(state_csrf);
	if (!csrf_ok) {
		http_error(req, 400, "OAUTH_INVALID_STATE");
		return;
	}
	const char *account_id, *email;
	if (get_id_email(req, t.access_token, &account_id, &email)) {
		http_error_500(req, "OAuth: no account id or e-mail from the provider");
		return;
	}
	if (!email) {
		http_error(req, 400, "OAUTH_NOT_AVAILABLE_EMAIL");
		return;
	}
	db_t *db = http_db(req);
	if (!db)
		return;
	int64_t uid = 0;
	int active = 0;
	int found = find_user(db, &t, account_id, email, &uid, &active);
	if (found < 0) {
		http_error_500(req, "database error: %s", db_errmsg(db));
		return;
	}
	if (!found) {
		registration_refused(req, email);
		return;
	}
	if (!active) {
		http_error(req, 400, "LOGIN_BAD_CREDENTIALS");
		return;
	}
	char *tok = jwt_encode(settings.jwt_secret_key, uid, (int64_t)time(NULL) + settings.cookie_expire_seconds);
	req->extra_header_name = "Set-Cookie";
	req->extra_header_value = arena_printf(&req->arena, "fastapiusersauth=%s; HttpOnly; Path=/; SameSite=none; Secure",
					       tok);
	free(tok);
	http_empty(req, 204);
}
