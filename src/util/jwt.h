/* jwt.h — HS256 JSON Web Tokens as fastapi-users issues them: login tokens
 * with claims {"sub": "<user id>", "aud": ["fastapi-users:auth"], "exp":
 * <unix time>}, and the OAuth state token {"csrftoken": ..., "aud":
 * "fastapi-users:oauth-state", "exp": ...}.
 * Built on OpenSSL's HMAC; the signature is compared in constant time. */
#ifndef JWT_H
#define JWT_H

#include <stddef.h>
#include <stdint.h>

#include "util/sb.h"

/* Returns a malloc'd token (caller frees). */
char *jwt_encode(const char *secret, int64_t user_id, int64_t exp);
/* Verifies signature, audience and expiry. On success stores the user id
 * and returns 0; returns -1 for anything malformed, forged or expired. */
int jwt_decode(const char *secret, const char *token, int64_t now, int64_t *user_id);


/* The OAuth state token (fastapi-users' generate_state_token); malloc'd. */
char *jwt_encode_state(const char *secret, const char *csrf, int64_t exp);
enum { JWT_OK = 0, JWT_INVALID = -1, JWT_EXPIRED = -2, JWT_BAD_AUDIENCE = -3 };
/* Verifies a state token as PyJWT does: JWT_INVALID for a malformed or
 * forged token, then JWT_EXPIRED, then JWT_BAD_AUDIENCE. On JWT_OK, *csrf is
 * the malloc'd csrftoken claim (caller frees) or NULL when absent. */
int jwt_decode_state(const char *secret, const char *token, int64_t now, char **csrf);

/* Appends base64url without padding (JWT's and secrets.token_urlsafe's alphabet). */
void jwt_b64url_encode(sb_t *out, const unsigned char *in, size_t n);

#endif
