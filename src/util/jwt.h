/* jwt.h — HS256 JSON Web Tokens as fastapi-users issues them: claims
 * {"sub": "<user id>", "aud": ["fastapi-users:auth"], "exp": <unix time>}.
 * Built on OpenSSL's HMAC; the signature is compared in constant time. */
#ifndef JWT_H
#define JWT_H

#include <stdint.h>

/* Returns a malloc'd token (caller frees). */
char *jwt_encode(const char *secret, int64_t user_id, int64_t exp);
/* Verifies signature, audience and expiry. On success stores the user id
 * and returns 0; returns -1 for anything malformed, forged or expired. */
int jwt_decode(const char *secret, const char *token, int64_t now, int64_t *user_id);

#endif
