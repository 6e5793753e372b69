/* auth.h — the guard the router (router.c) runs before a route's handler,
 * at the route's level (enum auth_level, http.h, where the rules are).
 *
 * A token comes from "Authorization: Bearer <jwt>" or, when that header is
 * missing or its token names no user, the fastapiusersauth cookie (as
 * fastapi-users tries its bearer backend, then its cookie one); it must
 * verify with JWT_SECRET_KEY, carry fastapi-users' audience and not be
 * expired, and name an active user. Failure answers 401
 * {"detail": "Unauthorized"}; a user below the required level gets 403.
 * On success req->user and req->db are set and 0 returned; on failure the
 * error (401, 403, or the 500 of a database that cannot be reached) is
 * already answered and -1 returned. Handlers never call it. */
#ifndef AUTH_H
#define AUTH_H

#include "http/http.h"

int auth_require(http_req_t *req, enum auth_level level);

#endif
