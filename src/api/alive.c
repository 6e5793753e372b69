/* alive.c — GET /api/alive/. The server answers it before routing, from a
 * prebuilt response (http/server.c); this handler serves the same body for
 * the rare request that reaches the router (e.g. with a query string). */
#include "api/api.h"

#include "build_config.h"

void api_alive(http_req_t *req)
{
	http_json(req, 200, "{\"alive\":true,\"version\":\"" FRACTAL_VERSION "\"}");
}
