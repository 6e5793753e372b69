/* password.h — bcrypt password hashing, compatible with upstream's pwdlib
 * BcryptHasher ("$2b$12$...", 60 characters), through libxcrypt.
 * Hashing costs ~0.2 s of CPU by design: never call it on a path that must
 * stay fast without handing it off the request threads first. */
#ifndef PASSWORD_H
#define PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_LEN 61 /* 60 characters and the NUL */

/* Hashes password into out (PASSWORD_HASH_LEN bytes). 0 on success, -1 on
 * failure (no entropy, library error). */
int password_hash(const char *password, char out[PASSWORD_HASH_LEN]);
/* 1 if password matches hash, 0 if not or if hash is malformed. Compares in
 * constant time. */
int password_verify(const char *password, const char *hash);

#endif
