/* routes.c — the route table: every method and path the server answers,
 * in upstream's spelling (trailing slashes included). The router in
 * http/router.c reads it top to bottom; keep it grouped as upstream's
 * routers are. */
#include "api/api.h"

const http_route_t http_routes[] = {
	/* /api */
	{ "GET", "/api/alive/", api_alive },
	{ "GET", "/api/settings/app/", api_settings_app },
	{ "GET", "/api/settings/database/", api_settings_database },
	{ "GET", "/api/settings/email/", api_settings_email },
	{ "GET", "/api/settings/oauth/", api_settings_oauth },
	/* /api/v2: projects, datasets, images */
	{ "GET", "/api/v2/project/", api_project_list },
	{ "POST", "/api/v2/project/", api_project_create },
	{ "GET", "/api/v2/project/{project_id}/", api_project_get },
	{ "PATCH", "/api/v2/project/{project_id}/", api_project_patch },
	{ "DELETE", "/api/v2/project/{project_id}/", api_project_delete },
	{ "POST", "/api/v2/project/{project_id}/star/", api_project_star },
	{ "POST", "/api/v2/project/{project_id}/unstar/", api_project_unstar },
	{ "GET", "/api/v2/dataset/", api_dataset_all },
	{ "GET", "/api/v2/project/{project_id}/dataset/", api_dataset_list },
	{ "POST", "/api/v2/project/{project_id}/dataset/", api_dataset_create },
	{ "POST", "/api/v2/project/{project_id}/dataset/import/", api_dataset_import },
	{ "GET", "/api/v2/project/{project_id}/dataset/{dataset_id}/", api_dataset_get },
	{ "PATCH", "/api/v2/project/{project_id}/dataset/{dataset_id}/", api_dataset_patch },
	{ "DELETE", "/api/v2/project/{project_id}/dataset/{dataset_id}/", api_dataset_delete },
	{ "GET", "/api/v2/project/{project_id}/dataset/{dataset_id}/export/", api_dataset_export },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/star/", api_dataset_star },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/unstar/", api_dataset_unstar },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", api_images_add },
	{ "PATCH", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", api_images_patch },
	{ "DELETE", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", api_images_delete },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/query/", api_images_query },
	/* /auth */
	{ "POST", "/auth/register/", api_register },
	{ "GET", "/auth/current-user/", api_current_user_get },
	{ "PATCH", "/auth/current-user/", api_current_user_patch },
	{ "GET", "/auth/current-user/profile-info/", api_current_user_profile_info },
	{ "GET", "/auth/current-user/allowed-viewer-paths/", api_current_user_viewer_paths },
	{ "POST", "/auth/token/login/", api_login },
	{ "POST", "/auth/token/logout/", api_logout },
	{ "GET", "/auth/users/", api_users_list },
	{ "GET", "/auth/users/{user_id}/", api_user_get },
	{ "PATCH", "/auth/users/{user_id}/", api_user_patch },
	{ "POST", "/auth/users/{user_id}/set-groups/", api_user_set_groups },
	{ "GET", "/auth/group/", api_groups_list },
	{ "POST", "/auth/group/", api_group_create },
	{ "GET", "/auth/group/{group_id}/", api_group_get },
	{ "DELETE", "/auth/group/{group_id}/", api_group_delete },
	{ "POST", "/auth/group/{group_id}/add-user/{user_id}/", api_group_add_user },
	{ "POST", "/auth/group/{group_id}/remove-user/{user_id}/", api_group_remove_user },
	/* /admin/v2 */
	{ "GET", "/admin/v2/impersonate/{user_id}/", api_impersonate },
	{ "GET", "/admin/v2/users-csv/", api_users_csv },
	{ NULL, NULL, NULL },
};
