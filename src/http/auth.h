/* auth.h — the guards every protected route calls first.
 *
 * A token comes from "Authorization: Bearer <jwt>" or, when that header is
 * missing or its token names no user, the fastapiusersauth cookie (as
 * fastapi-users tries its bearer backend, then its cookie one); it must
 * verify with JWT_SECRET_KEY, carry fastapi-users' audience and not be
 * expired, and name an active user. Failure answers 401
 * {"detail": "Unauthorized"}; a user below the required level gets 403.
 * On success req->user is set and 0 returned; on failure the error is
 * already answered and -1 returned: the handler just returns. */
#ifndef AUTH_H
#define AUTH_H

#include "http/http.h"

enum auth_level {
	AUTH_ACTIVE,      /* current_user_act */
	AUTH_VERIFIED,    /* current_user_act_ver */
	AUTH_SUPERUSER,   /* current_superuser_act */
	AUTH_GUEST,       /* get_api_guest: verified, with a profile */
	AUTH_USER,        /* get_api_user: as guest, and not a guest-only user */
};

int auth_require(http_req_t *req, enum auth_level level);

#endif
