/* api.h — the route handlers, one file per resource under src/api/. The
 * route table that maps methods and paths to them, with each route's guard,
 * is api/routes.c: a handler runs after its guard passed (http.h), with
 * req->user set and req->db never NULL (except on AUTH_NONE routes). */
#ifndef API_H
#define API_H

#include "http/http.h"

void api_alive(http_req_t *req);
void api_settings_app(http_req_t *req);
void api_settings_database(http_req_t *req);
void api_settings_email(http_req_t *req);
void api_settings_oauth(http_req_t *req);
/* /metrics (metrics.c); its .before check answers 404 unless the main
 * listener serves it */
void api_metrics(http_req_t *req);
int api_metrics_here(http_req_t *req);
void api_login(http_req_t *req);
void api_logout(http_req_t *req);

/* oauth.c */
void api_oauth_authorize(http_req_t *req);
void api_oauth_callback(http_req_t *req);

/* users.c */
void api_register(http_req_t *req);
void api_current_user_get(http_req_t *req);
void api_current_user_patch(http_req_t *req);
void api_current_user_profile_info(http_req_t *req);
void api_current_user_viewer_paths(http_req_t *req);
void api_users_list(http_req_t *req);
void api_user_get(http_req_t *req);
void api_user_patch(http_req_t *req);
void api_user_set_groups(http_req_t *req);
void api_impersonate(http_req_t *req);
void api_users_csv(http_req_t *req);

/* groups.c */
void api_groups_list(http_req_t *req);
void api_group_get(http_req_t *req);
void api_group_create(http_req_t *req);
void api_group_delete(http_req_t *req);
void api_group_add_user(http_req_t *req);
void api_group_remove_user(http_req_t *req);

/* project.c */
void api_project_list(http_req_t *req);
void api_project_create(http_req_t *req);
void api_project_get(http_req_t *req);
void api_project_patch(http_req_t *req);
void api_project_delete(http_req_t *req);
void api_project_star(http_req_t *req);
void api_project_unstar(http_req_t *req);

/* dataset.c */
void api_dataset_create(http_req_t *req);
void api_dataset_list(http_req_t *req);
void api_dataset_get(http_req_t *req);
void api_dataset_patch(http_req_t *req);
void api_dataset_delete(http_req_t *req);
void api_dataset_star(http_req_t *req);
void api_dataset_unstar(http_req_t *req);
void api_dataset_export(http_req_t *req);
void api_dataset_import(http_req_t *req);
void api_dataset_all(http_req_t *req);

/* images.c */
void api_images_add(http_req_t *req);
void api_images_patch(http_req_t *req);
void api_images_delete(http_req_t *req);
void api_images_query(http_req_t *req);

/* sharing.c */
void api_guests_list(http_req_t *req);
void api_guest_invite(http_req_t *req);
void api_guest_patch(http_req_t *req);
void api_guest_delete(http_req_t *req);
void api_invitations_list(http_req_t *req);
void api_access_get(http_req_t *req);
void api_access_accept(http_req_t *req);
void api_access_leave(http_req_t *req);

/* admin_project.c */
void api_admin_project_list(http_req_t *req);
void api_admin_project_transfer(http_req_t *req);
void api_admin_links_list(http_req_t *req);
void api_admin_link_verify(http_req_t *req);

/* admin_resource.c */
void api_admin_resource_list(http_req_t *req);
void api_admin_resource_create(http_req_t *req);
void api_admin_resource_get(http_req_t *req);
void api_admin_resource_update(http_req_t *req);
void api_admin_resource_delete(http_req_t *req);
void api_admin_resource_profile_list(http_req_t *req);
void api_admin_resource_profile_create(http_req_t *req);
void api_admin_profile_list(http_req_t *req);
void api_admin_profile_get(http_req_t *req);
void api_admin_profile_update(http_req_t *req);
void api_admin_profile_delete(http_req_t *req);

/* task.c */
void api_task_list(http_req_t *req);
void api_task_create(http_req_t *req);
void api_task_get(http_req_t *req);
void api_task_patch(http_req_t *req);
void api_task_delete(http_req_t *req);

/* task_group.c */
void api_tg_activity_list(http_req_t *req);
void api_tg_activity_get(http_req_t *req);
void api_tg_list(http_req_t *req);
void api_tg_get(http_req_t *req);
void api_tg_patch(http_req_t *req);

/* admin_task.c */
void api_admin_task_list(http_req_t *req);
void api_admin_task_make_core(http_req_t *req);
void api_admin_task_make_not_core(http_req_t *req);

/* admin_task_group.c */
void api_admin_tg_activity_list(http_req_t *req);
void api_admin_tg_list(http_req_t *req);
void api_admin_tg_get(http_req_t *req);
void api_admin_tg_patch(http_req_t *req);
void api_admin_tg_make_core(http_req_t *req);
void api_admin_tg_make_not_core(http_req_t *req);

/* workflow.c */
void api_workflow_list(http_req_t *req);
void api_workflow_create(http_req_t *req);
void api_workflow_get(http_req_t *req);
void api_workflow_patch(http_req_t *req);
void api_workflow_delete(http_req_t *req);
void api_workflow_star(http_req_t *req);
void api_workflow_unstar(http_req_t *req);
void api_workflow_export(http_req_t *req);
void api_workflow_type_filters_flow(http_req_t *req);

/* job.c */
void api_job_submit(http_req_t *req);
void api_job_list_user(http_req_t *req);
void api_job_list_project(http_req_t *req);
void api_job_list_workflow(http_req_t *req);
void api_job_get(http_req_t *req);
void api_job_download(http_req_t *req);
void api_job_stop(http_req_t *req);
void api_job_squeue(http_req_t *req);
void api_admin_job_list(http_req_t *req);
void api_admin_job_get(http_req_t *req);
void api_admin_job_patch(http_req_t *req);
void api_admin_job_download(http_req_t *req);
void api_admin_job_stop(http_req_t *req);

/* workflow_import.c */
void api_workflow_import(http_req_t *req);
void api_workflow_import_from_template(http_req_t *req);

/* workflow_template.c */
void api_template_list(http_req_t *req);
void api_template_create(http_req_t *req);
void api_template_import(http_req_t *req);
void api_template_get(http_req_t *req);
void api_template_patch(http_req_t *req);
void api_template_delete(http_req_t *req);
void api_template_export(http_req_t *req);

/* wftask.c */
void api_wftask_create(http_req_t *req);
void api_wftask_get(http_req_t *req);
void api_wftask_patch(http_req_t *req);
void api_wftask_delete(http_req_t *req);

/* task_collection.c */
void api_task_collect_pip(http_req_t *req);
void api_task_collect_custom(http_req_t *req);
void api_task_collect_pixi(http_req_t *req);

/* task_lifecycle.c */
void api_tg_deactivate(http_req_t *req);
void api_tg_reactivate(http_req_t *req);
void api_tg_delete(http_req_t *req);
void api_admin_tg_deactivate(http_req_t *req);
void api_admin_tg_reactivate(http_req_t *req);
void api_admin_tg_delete(http_req_t *req);
void api_admin_tg_reset_pip(http_req_t *req);
void api_admin_tg_reset_pixi(http_req_t *req);

/* history.c */
void api_history_run_list(http_req_t *req);
void api_history_run_units(http_req_t *req);
void api_history_images(http_req_t *req);
void api_history_image_log(http_req_t *req);
void api_history_unit_log(http_req_t *req);
void api_latest_job(http_req_t *req);
void api_images_non_processed(http_req_t *req);
void api_images_verify_unique_types(http_req_t *req);

/* version_update.c */
void api_version_update_candidates(http_req_t *req);
void api_wftask_replace_task(http_req_t *req);

/* The checks some routes make before their guard (routes.c's fifth
 * column, http_check_fn): admin_resource.c's 422 of a body that is not
 * JSON, accounting.c's pagination. */
int api_pre_json_body(http_req_t *req);
int api_pre_pagination(http_req_t *req);

/* accounting.c */
void api_admin_accounting(http_req_t *req);
void api_admin_accounting_slurm(http_req_t *req);

#endif
