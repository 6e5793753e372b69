/* settings_api.c — GET /api/settings/{app,database,email,oauth}/ for
 * superusers: every setting of the group with its value, secrets shown as
 * "**********" (upstream's SecretStr dump). */
#include "api/api.h"

#include "config/settings.h"

static void dump(http_req_t *req, int group)
{
	sb_t sb = SB_INIT;
	settings_dump_json(group, &sb);
	http_json_sb(req, 200, &sb);
}

void api_settings_app(http_req_t *req) { dump(req, SETTINGS_APP); }
void api_settings_database(http_req_t *req) { dump(req, SETTINGS_DATABASE); }
void api_settings_email(http_req_t *req) { dump(req, SETTINGS_EMAIL); }
void api_settings_oauth(http_req_t *req) { dump(req, SETTINGS_OAUTH); }
