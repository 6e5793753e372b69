/* profile_check.h — upstream's validate_user_profile
 * (routes/aux/validate_user_profile.py), shared by task creation,
 * collection, the task-group lifecycle routes and job submission: the user
 * must have a profile, and their profile and its resource must still pass
 * the validation of their type (an admin may have edited the rows in ways
 * the API would refuse).
 *
 * On success the caller gets both documents validated and normalised (as
 * model/resource.c returns them, plus "id"; the profile also has
 * "resource_id"), detached from the database: background jobs take them by
 * value. */
#ifndef PROFILE_CHECK_H
#define PROFILE_CHECK_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"

typedef struct user_profile {
	int64_t resource_id, profile_id;
	const char *resource_type;   /* inside resource */
	json_t *resource;            /* new reference */
	json_t *profile;             /* new reference */
} user_profile_t;

/* For the user with that e-mail and profile id (0: none): 0 with *out
 * filled (release it with user_profile_release), or -1 after answering
 * 422 ("... is not associated to a computational profile ...", "User
 * resource/profile are not valid ...") or 500. */
int validate_user_profile(http_req_t *req, db_t *db, const char *email, int64_t profile_id, user_profile_t *out);

/* The same for the user with id user_id (admin routes act with the
 * task group owner's profile). */
int validate_user_profile_by_id(http_req_t *req, db_t *db, int64_t user_id, user_profile_t *out);

void user_profile_release(user_profile_t *p);

#endif
