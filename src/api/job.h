/* job.h — JobRead, shared by the job routes (job.c) and latest-job
 * (history.c). */
#ifndef API_JOB_H
#define API_JOB_H

#include "db/db.h"
#include "util/sb.h"

/* The columns job_json() reads, from jobv2 aliased as j. */
#define JOB_COLS                                                                                                  \
	"j.id, j.project_id, j.project_dump, j.user_email, j.slurm_account, j.workflow_id, j.workflow_dump, "       \
	"j.dataset_id, j.dataset_dump, j.start_timestamp, j.end_timestamp, j.status, j.log, j.executor_error_log, " \
	"j.working_dir, j.working_dir_user, j.first_task_index, j.last_task_index, j.worker_init, "                \
	"j.attribute_filters, j.type_filters"

/* Appends JobRead of row i of a JOB_COLS result as one JSON object (log
 * replaced by log_override when not NULL, null when with_log is 0). */
void job_json(sb_t *o, db_res_t *r, int i, int with_log, const char *log_override);

#endif
