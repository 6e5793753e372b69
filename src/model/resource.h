/* resource.h — computational resources and profiles: validation of their
 * JSON documents (upstream's ResourceCreate and ProfileCreate, see
 * spec-tasks-runners.md §7.5) and their rows. Shared by init-db-data and
 * the admin API, so both accept exactly the same documents and store the
 * same normalised form (defaults filled, strings stripped, paths
 * normalised, memory sizes in MB).
 *
 * Both documents are discriminated unions (by "type", by "resource_type")
 * of one model per resource type; errors are pydantic's, with the tag as
 * the second location item (["body", "slurm_ssh", "host"]). */
#ifndef RESOURCE_H
#define RESOURCE_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "model/validate.h"
#include "util/sb.h"

/* Validates a resource (profile) document. Returns a new object holding
 * every field of the chosen model in upstream's model_dump() form (caller
 * decrefs), or NULL after adding the errors to e at locations below loc
 * (borrowed). from_attributes: 1 for request bodies (FastAPI validates them
 * with from_attributes=True, which only changes the error for a nested
 * model that is not an object), 0 elsewhere. */
json_t *resource_check(json_t *in, json_t *loc, int from_attributes, verr_t *e);
json_t *profile_check(json_t *in, json_t *loc, int from_attributes, verr_t *e);

/* The same for init-db-data: on failure NULL, and err gets pydantic's
 * text for the errors ("1 validation error for cast_serialize_resource
 * ..."). profile_validate also refuses (unlike upstream's command, which
 * would store it) a profile whose type is not resource_type, when that is
 * not NULL. */
json_t *resource_validate(json_t *in, sb_t *err);
json_t *profile_validate(json_t *in, const char *resource_type, sb_t *err);

/* Inserts validated documents; 0 and the new id, or -1 (db error). */
int resource_insert(db_t *db, json_t *res, int64_t *id);
int profile_insert(db_t *db, json_t *prof, int64_t resource_id, int64_t *id);
/* Overwrite every field of row id with a validated document (upstream's
 * PUT: the resource's timestamp and the profile's resource_id stay); 0 or
 * -1 (db error). */
int resource_update(db_t *db, json_t *res, int64_t id);
int profile_update(db_t *db, json_t *prof, int64_t id);

/* Normalises an absolute path as upstream's AbsolutePathStr: stripped,
 * absolute, no ".." component, then os.path.normpath. Returns malloc'd
 * text (caller frees) or NULL (with the reason, prefixed by field, in err). */
char *abs_path_normalise(const char *in, const char *field, sb_t *err);

/* AbsolutePathStr as a vcheck_fn for V_NONEMPTY fields (validate.h). */
const char *check_abspath(json_t **val, sb_t *msg);

#endif
