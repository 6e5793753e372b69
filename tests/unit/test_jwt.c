/* test_jwt.c — src/util/jwt.c: a token it signs matches one built by hand
 * with Python's hmac and base64 (so other HS256 libraries accept it), it
 * verifies its own tokens, and it refuses expired, tampered, forged and
 * malformed ones. */
#include <stdlib.h>

#include "unit.h"
#include "util/jwt.h"

/* secret "secret", sub "42", aud ["fastapi-users:auth"], exp 2000000000 */
#define TOKEN_42                                                                              \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                              \
	"eyJzdWIiOiI0MiIsImF1ZCI6WyJmYXN0YXBpLXVzZXJzOmF1dGgiXSwiZXhwIjoyMDAwMDAwMDAwfQ." \
	"vPAAXSu-ccsi8kPfwdiFfHHdlcggSeYN7uv2YxBFc-s"

static int decode(const char *secret, const char *token, int64_t now, int64_t *id)
{
	*id = -1;
	return jwt_decode(secret, token, now, id);
}

int main(void)
{
	int64_t id;
	char *t = jwt_encode("secret", 42, 2000000000);
	CHECK_STR(t, TOKEN_42);
	CHECK_INT(decode("secret", t, 1999999999, &id), 0);
	CHECK_INT(id, 42);
	/* expiry: valid strictly before exp */
	CHECK_INT(decode("secret", t, 2000000000, &id), -1);
	CHECK_INT(decode("secret", t, 2100000000, &id), -1);
	CHECK_INT(id, -1);
	/* another secret */
	CHECK_INT(decode("secreT", t, 0, &id), -1);
	CHECK_INT(decode("", t, 0, &id), -1);
	/* any changed character of header, payload or signature */
	size_t n = strlen(t);
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '.')
			continue;
		char *u = strdup(t);
		u[i] = u[i] == 'A' ? 'B' : 'A';
		if (!CHECK(decode("secret", u, 0, &id) == -1))
			fprintf(stderr, "    accepted with character %zu changed: %s\n", i, u);
		free(u);
	}
	free(t);
	t = jwt_encode("k", 9223372036854775807LL, 4102444800LL);
	CHECK_INT(decode("k", t, 4102444799LL, &id), 0);
	CHECK_INT(id, 9223372036854775807LL);
	free(t);

	/* correctly signed with "secret", refused for their claims or header */
	static const char *refused[] = {
		/* alg "none" */
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
		"eyJzdWIiOiI0MiIsImF1ZCI6WyJmYXN0YXBpLXVzZXJzOmF1dGgiXSwiZXhwIjoyMDAwMDAwMDAwfQ."
		"5Tactnaq97-afUgAL8tasQxVWIPPm2x4O2SYLtm2bIk",
		/* aud ["other"] */
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJzdWIiOiI0MiIsImF1ZCI6WyJvdGhlciJdLCJleHAiOjIwMDAwMDAwMDB9."
		"WXM6ZdY56LehE6qNpsec5QA-3ymzIQs6g_840yId9Ow",
		/* sub "4x" */
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJzdWIiOiI0eCIsImF1ZCI6ImZhc3RhcGktdXNlcnM6YXV0aCIsImV4cCI6MjAwMDAwMDAwMH0."
		"odhCaZn81vgH2Vm-h5TmXhJdPelamw2o_Y-TnwErO-c",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		CHECK_INT(decode("secret", refused[i], 0, &id), -1);
	/* aud as a string and a fractional exp are fine (PyJWT accepts them) */
	const char *frac = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
			   "eyJzdWIiOiI3IiwiYXVkIjoiZmFzdGFwaS11c2VyczphdXRoIiwiZXhwIjoyMDAwMDAwMDAwLjV9."
			   "z_q3LrAd7hAxTbWIB_92dfJOcz-9fy-J-PePYtEh8yA";
	CHECK_INT(decode("secret", frac, 2000000000, &id), 0);
	CHECK_INT(id, 7);
	CHECK_INT(decode("secret", frac, 2000000001, &id), -1);

	static const char *malformed[] = {
		"", ".", "..", "...", "abc", "a.b", "a.b.c.d", TOKEN_42 ".", "." TOKEN_42, "e30.e30.",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.vPAA",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.!!!!.vPAAXSu-ccsi8kPfwdiFfHHdlcggSeYN7uv2YxBFc-s",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++)
		if (!CHECK(decode("secret", malformed[i], 0, &id) == -1))
			fprintf(stderr, "    accepted '%s'\n", malformed[i]);
	return unit_done("jwt");
}
