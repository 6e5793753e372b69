/* access.h — project-level access control shared by every resource that
 * lives in a project (datasets, images, workflows, jobs...): upstream's
 * _get_project_check_access and _get_dataset_check_access.
 *
 * Permissions are "r", "rw", "rwx" (read, write, execute); a link must be
 * verified (an accepted invitation) and contain the required letter. On
 * failure the error is answered (404 "Project not found", 403 with
 * upstream's text, 404 "Dataset not found") and -1 returned.
 *
 * access.c's functions are named access_*; the workflow and workflow-task
 * helpers declared here too are workflow.c's and wftask.c's. */
#ifndef ACCESS_H
#define ACCESS_H

#include <jansson.h>

#include "http/http.h"
#include "api/params.h"

typedef struct project_row {
	int64_t id;
	const char *name;          /* in the request arena */
	const char *description;   /* NULL for null */
	int is_starred;
	const char *timestamp_created;
	int64_t resource_id;
} project_row_t;

typedef struct dataset_row {
	int64_t id;
	const char *name;
	int64_t project_id;
	const char *timestamp_created;
	const char *zarr_dir;
	int is_starred;
} dataset_row_t;

int access_project(http_req_t *req, db_t *db, int64_t project_id, char perm, project_row_t *out);
int access_dataset(http_req_t *req, db_t *db, int64_t project_id, int64_t dataset_id, char perm,
		   project_row_t *project, dataset_row_t *out);

typedef struct workflow_row {
	int64_t id;
	const char *name;
	int64_t project_id;
	const char *timestamp_created;
	const char *description;
	int64_t template_id;       /* 0: null */
	int is_starred;
} workflow_row_t;

/* upstream's _get_workflow_check_access: project access, then 404
 * "Workflow not found" unless the workflow is in that project. */
int access_workflow(http_req_t *req, db_t *db, int64_t project_id, int64_t workflow_id, char perm,
		    project_row_t *project, workflow_row_t *out);

/* A workflow task's columns (alias w), then TASK_COLS (task_common.h):
 * what wftask_json reads, plus one warning column when with_warning. */
#define WFT_COLS                                                                                        \
	"w.id, w.workflow_id, w.\"order\", w.meta_non_parallel, w.meta_parallel, w.args_non_parallel, " \
	"w.args_parallel, w.type_filters, w.task_type, w.task_id, w.alias, w.description"
#define WFT_NCOLS 12
struct db_res;
/* Appends WorkflowTaskRead (with_warning: WorkflowTaskReadWithWarning). */
void wftask_json(sb_t *o, db_res_t *r, int i, int with_warning);

/* workflow.c: answers one workflow (after read access) as WorkflowRead
 * (with_warnings: WorkflowReadWithWarnings, warnings for req->user). */
void reply_workflow(http_req_t *req, db_t *db, int64_t pid, int64_t wid, int status, int with_warnings);
/* 1 (after upstream's 422) if a workflow of project pid has this name, -1
 * after a 500, else 0. */
int workflow_name_taken(http_req_t *req, db_t *db, int64_t pid, const char *name);
/* Appends WorkflowExport (what .../export/ answers); -1 after a 500. */
int workflow_export_json(http_req_t *req, db_t *db, const workflow_row_t *w, sb_t *o);

/* wftask.c, shared with the workflow import. The validators of
 * WorkflowTaskCreate's fields (vcheck_fn, validate.h): DictStrAny,
 * WorkflowTaskArgument; coerce_type_filters makes obj's type_filters
 * values booleans, errors at base + ["type_filters", key]. */
const char *check_dict_keys(json_t **val, sb_t *msg);
const char *check_args(json_t **val, sb_t *msg);
int coerce_type_filters(json_t *obj, json_t *base, verr_t *e);
/* Inserts one workflow task (item: WorkflowTaskCreate's fields, task_id
 * aside) at position pos, inside the caller's transaction: upstream's type
 * filters check (422) then _workflow_insert_task. The new id, or -1 after
 * answering (the caller rolls back). */
int64_t wftask_insert(http_req_t *req, db_t *db, int64_t wid, int64_t task_id, const char *task_type, int64_t pos,
		      json_t *item);
/* upstream's _get_workflow_task_check_access: workflow access with perm,
 * then 404 "WorkflowTask not found" unless the workflow task is in that
 * workflow; its task_type and task_id (arena) when wanted (may be NULL). */
int wftask_access(http_req_t *req, db_t *db, int64_t pid, int64_t wid, int64_t tid, char perm, char **task_type,
		  int64_t *task_id);
/* Answers one workflow task as WorkflowTaskRead with the given status. */
void reply_wftask(http_req_t *req, db_t *db, int64_t tid, int status);
/* upstream's _check_type_filters_compatibility: the 422 "Incompatible type
 * filters..." (and 1) when a key of the task's input_types (JSON text, NULL
 * for none) has the other value in wft_filters; 0 when they can merge. */
int check_type_filters_compat(http_req_t *req, const char *task_input_types, json_t *wft_filters);

/* Appends ProjectRead / DatasetRead JSON. */
void access_project_json(sb_t *out, const project_row_t *p);
void access_dataset_json(sb_t *out, const dataset_row_t *d, const project_row_t *p);

/* Reads the path parameters {project_id} (index 0) and, if wanted,
 * {dataset_id} (index 1); -1 after answering 422. */
int access_path_ids(http_req_t *req, int64_t *project_id, int64_t *dataset_id);

/* "submitted" job ids touching a project or dataset, as upstream lists them
 * in its refusals: "1, 2"; NULL if none. Arena-allocated. -1 on db error. */
int access_submitted_jobs(http_req_t *req, db_t *db, const char *column, int64_t id, char **ids);

/* Sets is_starred of one row of table (projectv2, datasetv2, workflowv2)
 * and answers 200 with no body, as upstream's star/unstar routes. */
void access_set_starred(http_req_t *req, db_t *db, const char *table, int64_t id, int on);

/* Runs sql (one $1 = id parameter); if it returns no row answers 404 with
 * detail fmt (one %lld for the id) and returns 1; -1 after a 500; 0 if
 * the row exists. */
int access_row_or_404(http_req_t *req, db_t *db, const char *sql, int64_t id, const char *fmt);

/* Deletes one project or dataset (sql with $1 = id) in a transaction,
 * unless a submitted job still uses it: upstream's 422 "Cannot delete
 * <what> <id> because it is linked to active job(s) ...". Answers 204. */
void access_delete_unless_jobs(http_req_t *req, db_t *db, const char *what, const char *job_column, int64_t id,
			       const char *sql);


#endif
