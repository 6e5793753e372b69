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

#endif
