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
	/* /auth */
	{ "POST", "/auth/token/login/", api_login },
	/* /admin/v2/resource, /admin/v2/profile */
	{ "GET", "/admin/v2/resource/", api_admin_resource_list },
	{ "POST", "/admin/v2/resource/", api_admin_resource_create },
	{ "GET", "/admin/v2/resource/{resource_id}/", api_admin_resource_get },
	{ "PUT", "/admin/v2/resource/{resource_id}/", api_admin_resource_update },
	{ "DELETE", "/admin/v2/resource/{resource_id}/", api_admin_resource_delete },
	{ "GET", "/admin/v2/resource/{resource_id}/profile/", api_admin_resource_profile_list },
	{ "POST", "/admin/v2/resource/{resource_id}/profile/", api_admin_resource_profile_create },
	{ "GET", "/admin/v2/profile/", api_admin_profile_list },
	{ "GET", "/admin/v2/profile/{profile_id}/", api_admin_profile_get },
	{ "PUT", "/admin/v2/profile/{profile_id}/", api_admin_profile_update },
	{ "DELETE", "/admin/v2/profile/{profile_id}/", api_admin_profile_delete },
	{ NULL, NULL, NULL },
};
