/* task.h — the models of tasks (upstream's schemas/v2/task.py and
 * manifest.py): TaskCreate, TaskUpdate and ManifestV2 validated with
 * pydantic's errors, and the checks other task code shares (validate_cmd,
 * jsonb key order). It knows no HTTP: routes validate request bodies with
 * these through api/params.h's v_body_model(), and task collection and the
 * runner call them directly.
 *
 * The validators return a new object (the caller decrefs) holding only the
 * fields that were sent, coerced and normalised as pydantic leaves them
 * (strings stripped, dictionary keys stripped, input/output types in jsonb
 * key order), or NULL with the errors added to e below base. TaskCreate's
 * result always has "type", inferred from the commands when not sent. */
#ifndef MODEL_TASK_H
#define MODEL_TASK_H

#include <jansson.h>

#include "db/db.h"
#include "model/validate.h"
#include "util/sb.h"

/* TaskCreate (a route's body, or a collected task) and TaskUpdate: body
 * (an object) and base borrowed. */
json_t *task_create_check(json_t *body, json_t *base, verr_t *e);
json_t *task_update_check(json_t *body, json_t *base, verr_t *e);

/* ManifestV2 (the content of __FRACTAL_MANIFEST__.json): a validated copy
 * with every default filled in (caller decrefs), or NULL with pydantic's
 * errors added to e at locations below loc (borrowed). Unknown keys are
 * ignored, as upstream's model does. */
json_t *manifest_check(json_t *manifest, json_t *loc, verr_t *e);

/* upstream's prepare_tasks_metadata: one validated TaskCreate object per
 * manifest task, commands "<python> <package_root>/<executable>", version
 * and authors (and args_schema_version when the manifest has schemas) set.
 * A new array, or NULL with the TaskCreate errors in e. */
json_t *manifest_tasks(json_t *manifest, const char *package_root, const char *python, const char *version,
		       verr_t *e);

/* Inserts one validated TaskCreate object into task group tgid (inside the
 * caller's transaction); 0 and *id (may be NULL), or -1 (db error). */
int task_insert(db_t *db, int64_t task_group_id, json_t *task, int64_t *id);

/* NonEmptyListUniqueNonNegativeInt (any JSON value in, borrowed): a new
 * array, or NULL with the errors added to e at loc. */
json_t *task_ids_check(json_t *in, json_t *loc, verr_t *e);

/* upstream's validate_cmd: NULL when cmd holds none of the characters
 * `#$&*()\|[]{};<>?! (less those in allow, which may be NULL); otherwise the
 * message, built in msg, naming attribute ("Command" by default). */
const char *task_validate_cmd(const char *cmd, const char *allow, const char *attribute, sb_t *msg);

/* A new object with obj's members ordered as PostgreSQL's jsonb keeps them
 * (shorter keys first, then bytewise), so that both engines answer with
 * upstream's order for jsonb columns. obj is borrowed. */
json_t *jsonb_ordered(json_t *obj);

/* The same, at every depth (objects inside objects and arrays): the order
 * jsonb gives a whole document such as a workflow task's args. New
 * reference; v is borrowed. */
json_t *jsonb_ordered_deep(json_t *v);

/* v as compact JSON text, keys in their order, floats printed as Python's
 * json.dumps prints them (shortest repr: 0.1, not jansson's
 * 0.10000000000000001). Malloc'd. */
char *json_dump_py(json_t *v);

/* The five task types, as upstream's TaskType; 1 if s is one of them. */
int task_type_valid(const char *s);
#define TASK_TYPE_EXPECTED "'compound', 'converter_compound', 'non_parallel', 'converter_non_parallel' or 'parallel'"

#endif
