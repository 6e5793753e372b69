/* workflow_import.h — what workflow_import.c and workflow_template.c share:
 * the WorkflowImport model (also the `data` of WorkflowTemplateImport), the
 * import itself, and read access to a template. */
#ifndef WORKFLOW_IMPORT_H
#define WORKFLOW_IMPORT_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"
#include "api/params.h"

/* Validates v as WorkflowImport with errors at loc (borrowed); returns a new
 * object of the valid fields (input order kept, legacy input_filters turned
 * into type_filters). Where upstream's legacy-filters validator crashes
 * (a 500 there), e gets a plain validation error instead. */
json_t *workflow_import_validate(json_t *v, json_t *loc, verr_t *e);

/* upstream's _import_workflow then the answer: 201 WorkflowReadWithWarnings,
 * or the error. template_id 0: none; otherwise the template's
 * timestamp_last_used is updated in the same transaction. */
void workflow_import_run(http_req_t *req, db_t *db, int64_t project_id, json_t *wf, int64_t template_id);

/* A workflow template row (strings in the request arena). */
typedef struct template_row {
	int64_t id, user_id, user_group_id; /* user_group_id 0: null */
	int64_t version;
	const char *name, *description, *fractal_server_version, *timestamp_created, *timestamp_last_used, *data;
} template_row_t;

/* _get_template_read_access / _get_template_full_access for req->user:
 * 404 "WorkflowTemplate[<id>] not found.", then 403. -1 after answering. */
int template_read_access(http_req_t *req, db_t *db, int64_t id, template_row_t *out);
int template_full_access(http_req_t *req, db_t *db, int64_t id, template_row_t *out);

#endif
