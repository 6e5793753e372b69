/* fuzz.h — what the libFuzzer targets under fuzz/ share: the input split
 * into a selector byte and the rest, and jansson's parse of it with the
 * same depth check as a request body (api/params.c, v_parse_body). Each
 * target includes this once. See docs/security.md ("Fuzzing"). */
#ifndef FUZZ_H
#define FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jsonspan.h"

/* The JSON value of n bytes of text, or NULL when a request body of that
 * text would be refused (too deep, not JSON). The caller owns it. */
static inline json_t *fuzz_json(const uint8_t *data, size_t n)
{
	size_t pos;
	if (json_text_too_deep((const char *)data, n, JSON_MAX_INPUT_DEPTH, &pos))
		return NULL;
	return json_loadb((const char *)data, n, JSON_DECODE_ANY, NULL);
}

#endif
