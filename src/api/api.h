/* api.h — the route handlers, one file per resource under src/api/. The
 * route table that maps methods and paths to them is api/routes.c. */
#ifndef API_H
#define API_H

#include "http/http.h"

void api_alive(http_req_t *req);
void api_settings_app(http_req_t *req);
void api_settings_database(http_req_t *req);
void api_settings_email(http_req_t *req);
void api_settings_oauth(http_req_t *req);
void api_login(http_req_t *req);

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

#endif
