/* oauth.h — the OAuth client behind /auth/{client}/authorize/ and
 * /auth/{client}/callback/ (api/oauth.c). */
#ifndef OAUTH_H
#define OAUTH_H

#include "util/sb.h"

/* Builds the client when OAUTH_CLIENT_NAME, _ID and _SECRET are all set
 * (settings loaded, curl_global_init() done); for an OpenID Connect provider
 * it reads OAUTH_OIDC_CONFIG_ENDPOINT. 0 when ready or not configured (the
 * routes then answer 404); -1 with upstream's message in err when the
 * provider cannot be discovered. Call once, before serving. */
int oauth_init(sb_t *err);

#endif
