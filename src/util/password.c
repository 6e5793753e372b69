/* password.c — see password.h. */
#include "util/password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <string.h>

int password_hash(const char *password, char out[PASSWORD_HASH_LEN])
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn("$2b$", 12, NULL, 0, salt, sizeof(salt)))
		return -1;
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	const char *h = crypt_r(password, salt, &data);
	if (!h || h[0] == '*' || strlen(h) != PASSWORD_HASH_LEN - 1)
		return -1;
	memcpy(out, h, PASSWORD_HASH_LEN);
	return 0;
}

int password_verify(const char *password, const char *hash)
{
	if (!hash || strncmp(hash, "$2", 2) != 0 || strlen(hash) != PASSWORD_HASH_LEN - 1)
		return 0;
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	const char *h = crypt_r(password, hash, &data);
	if (!h || strlen(h) != PASSWORD_HASH_LEN - 1)
		return 0;
	return CRYPTO_memcmp(h, hash, PASSWORD_HASH_LEN - 1) == 0;
}
