/* openapi_cmd.c — fractalctl openapi [-f FILE]: writes the OpenAPI document
 * that GET /openapi.json serves (api/openapi.c) to FILE (default
 * openapi.json), as upstream's `fractalctl openapi`. Needs no settings and
 * no database. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/openapi.h"
#include "cli/cli.h"
#include "util/sb.h"

int cmd_openapi(int argc, char **argv)
{
	static const char desc[] = "Save the `openapi.json` file";
	struct cli_opt opts[] = {
		{ "--openapi-file", "-f", "OPENAPI_FILE", "Filename for OpenAPI schema dump", NULL },
	};
	int rc = cli_parse("openapi", desc, argc, argv, opts, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	const char *path = opts[0].value ? opts[0].value : "openapi.json";
	sb_t doc = SB_INIT, err = SB_INIT;
	rc = 0;
	if (openapi_build(&doc, &err)) {
		fprintf(stderr, "fractalctl openapi: error: %s\n", err.buf);
		rc = 1;
		goto out;
	}
	FILE *f = fopen(path, "w");
	if (!f || fwrite(doc.buf, 1, doc.len, f) != doc.len || fclose(f)) {
		fprintf(stderr, "fractalctl openapi: error: cannot write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		rc = 1;
	}
out:
	sb_release(&doc);
	sb_release(&err);
	return rc;
}
