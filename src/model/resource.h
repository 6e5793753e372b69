/* resource.h — computational resources and profiles: validation of their
 * JSON (spec-tasks-runners.md §7.5) and their rows. Shared by init-db-data
 * and the admin API, so both accept exactly the same documents. */
#ifndef RESOURCE_H
#define RESOURCE_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "util/sb.h"

/* Checks a resource document and returns a new, normalised object (defaults
 * filled, paths normalised; caller decrefs), or NULL with a message naming
 * the field in err. */
json_t *resource_validate(json_t *in, sb_t *err);
/* Same for a profile of a resource of type resource_type. */
json_t *profile_validate(json_t *in, const char *resource_type, sb_t *err);

/* Inserts validated documents; 0 and the new id, or -1 (db error). */
int resource_insert(db_t *db, json_t *res, int64_t *id);
int profile_insert(db_t *db, json_t *prof, int64_t resource_id, int64_t *id);

/* Normalises an absolute path as upstream's AbsolutePathStr: stripped,
 * absolute, no ".." component, then normpath. Returns malloc'd text or
 * NULL (with the reason in err). */
char *abs_path_normalise(const char *in, const char *field, sb_t *err);

#endif
