/* jwt.c — see jwt.h. */
#include "util/jwt.h"
#include "util/sb.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void jwt_b64url_encode(sb_t *out, const unsigned char *in, size_t n)
{
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		sb_addc(out, b64url[v >> 18 & 63]);
		sb_addc(out, b64url[v >> 12 & 63]);
		sb_addc(out, b64url[v >> 6 & 63]);
		sb_addc(out, b64url[v & 63]);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		sb_addc(out, b64url[v >> 18 & 63]);
		sb_addc(out, b64url[v >> 12 & 63]);
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		sb_addc(out, b64url[v >> 18 & 63]);
		sb_addc(out, b64url[v >> 12 & 63]);
		sb_addc(out, b64url[v >> 6 & 63]);
	}
}

static int b64url_value(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;
	return p ? (int)(p - b64url) : -1;
}

/* Decodes n characters; -1 on a character outside the alphabet. */
static int b64url_decode(sb_t *out, const char *in, size_t n)
{
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(out, (char)(acc >> bits & 0xff));
		}
	}
	return n % 4 == 1 ? -1 : 0;
}

static void sign(const char *secret, const char *data, size_t n, unsigned char mac[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, n, mac, &len);
}

/* header.payload.signature around the given claims JSON; malloc'd */
static char *sign_claims(const char *secret, const char *claims, size_t n)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	sb_t tok;
	sb_init(&tok, 256);
	jwt_b64url_encode(&tok, (const unsigned char *)header, sizeof(header) - 1);
	sb_addc(&tok, '.');
	jwt_b64url_encode(&tok, (const unsigned char *)claims, n);
	unsigned char mac[32];
	sign(secret, tok.buf, tok.len, mac);
	sb_addc(&tok, '.');
	jwt_b64url_encode(&tok, mac, 32);
	return sb_detach(&tok);
}

char *jwt_encode(const char *secret, int64_t user_id, int64_t exp)
{
	sb_t payload;
	sb_init(&payload, 128);
	sb_addf(&payload, "{\"sub\":\"%lld\",\"aud\":[\"fastapi-users:auth\"],\"exp\":%lld}",
		(long long)user_id, (long long)exp);
	char *tok = sign_claims(secret, payload.buf, payload.len);
	sb_release(&payload);
	return tok;
}

char *jwt_encode_state(const char *secret, const char *csrf, int64_t exp)
{
	sb_t payload = SB_INIT;
	sb_adds(&payload, "{\"csrftoken\":");
	sb_add_json_str(&payload, csrf);
	sb_addf(&payload, ",\"aud\":\"fastapi-users:oauth-state\",\"exp\":%lld}", (long long)exp);
	char *tok = sign_claims(secret, payload.buf, payload.len);
	sb_release(&payload);
	return tok;
}

static int check_claims(const char *json, size_t n, int64_t now, int64_t *user_id)
{
	json_t *root = json_loadb(json, n, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	int rc = -1;
	json_t *sub = json_object_get(root, "sub");
	json_t *exp = json_object_get(root, "exp");
	json_t *aud = json_object_get(root, "aud");
	int aud_ok = 0;
	if (json_is_string(aud)) {
		aud_ok = strcmp(json_string_value(aud), "fastapi-users:auth") == 0;
	} else if (json_is_array(aud)) {
		size_t i;
		json_t *v;
		json_array_foreach(aud, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), "fastapi-users:auth") == 0)
				aud_ok = 1;
	}
	if (aud_ok && json_is_string(sub) && (json_is_integer(exp) || json_is_real(exp))) {
		double e = json_number_value(exp);
		const char *s = json_string_value(sub);
		char *end;
		long long id = strtoll(s, &end, 10);
		if (*s && !*end && id > 0 && e > (double)now) {
			*user_id = id;
			rc = 0;
		}
	}
	json_decref(root);
	return rc;
}

/* Checks the form, the algorithm and the signature; leaves the claims JSON
 * in payload. -1 for anything malformed or forged. */
static int verify(const char *secret, const char *token, sb_t *payload)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
		return -1;
	int rc = -1;
	sb_t header = SB_INIT, sig = SB_INIT;
	if (b64url_decode(&header, token, (size_t)(dot1 - token)) ||
	    b64url_decode(payload, dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
	    b64url_decode(&sig, dot2 + 1, strlen(dot2 + 1)) || sig.len != 32)
		goto out;
	json_t *h = json_loadb(header.buf, header.len, 0, NULL);
	json_t *alg = json_object_get(h, "alg");
	int alg_ok = json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0;
	json_decref(h);
	if (!alg_ok)
		goto out;
	unsigned char mac[32];
	sign(secret, token, (size_t)(dot2 - token), mac);
	if (CRYPTO_memcmp(mac, sig.buf, 32) != 0)
		goto out;
	rc = 0;
out:
	sb_release(&header);
	sb_release(&sig);
	return rc;
}

int jwt_decode(const char *secret, const char *token, int64_t now, int64_t *user_id)
{
	sb_t payload = SB_INIT;
	int rc = verify(secret, token, &payload) ? -1 : check_claims(payload.buf, payload.len, now, user_id);
	sb_release(&payload);
	return rc;
}

/* PyJWT's order: form and signature (DecodeError), then expiry, then audience. */
int jwt_decode_state(const char *secret, const char *token, int64_t now, char **csrf)
{
	*csrf = NULL;
	sb_t payload = SB_INIT;
	int rc = JWT_INVALID;
	json_t *root = NULL;
	if (verify(secret, token, &payload))
		goto out;
	root = json_loadb(payload.buf, payload.len, 0, NULL);
	if (!json_is_object(root))
		goto out;
	json_t *exp = json_object_get(root, "exp");
	if (exp && !json_is_number(exp))
		goto out;
	if (exp && json_number_value(exp) <= (double)now) {
		rc = JWT_EXPIRED;
		goto out;
	}
	json_t *aud = json_object_get(root, "aud");
	int aud_ok = json_is_string(aud) && !strcmp(json_string_value(aud), "fastapi-users:oauth-state");
	size_t i;
	json_t *v;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			aud_ok |= json_is_string(v) && !strcmp(json_string_value(v), "fastapi-users:oauth-state");
	if (!aud_ok) {
		rc = JWT_BAD_AUDIENCE;
		goto out;
	}
	json_t *c = json_object_get(root, "csrftoken");
	if (json_is_string(c))
		*csrf = strdup(json_string_value(c));
	rc = JWT_OK;
out:
	json_decref(root);
	sb_release(&payload);
	return rc;
}
