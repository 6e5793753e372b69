/* ziputil.c — see ziputil.h. */
#include "util/ziputil.h"

#include <string.h>
#include <zip.h>

#include "util/sb.h"

int zip_read_member(const char *archive, const char *member, sb_t *out, sb_t *err)
{
	int code = 0;
	zip_t *z = zip_open(archive, ZIP_RDONLY, &code);
	if (!z) {
		if (err) {
			zip_error_t ze;
			zip_error_init_with_code(&ze, code);
			sb_addf(err, "cannot open '%s': %s", archive, zip_error_strerror(&ze));
			zip_error_fini(&ze);
		}
		return -1;
	}
	int rc = 1;
	zip_int64_t idx = *member ? zip_name_locate(z, member, 0) : -1;
	zip_stat_t st;
	size_t n = strlen(member);
	if (idx < 0 || (n && member[n - 1] == '/') || zip_stat_index(z, (zip_uint64_t)idx, 0, &st))
		goto done;
	zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
	if (!f) {
		if (err)
			sb_addf(err, "cannot open '%s' in '%s': %s", member, archive, zip_strerror(z));
		rc = -1;
		goto done;
	}
	char buf[65536];
	zip_int64_t got;
	size_t start = out->len;
	while ((got = zip_fread(f, buf, sizeof(buf))) > 0)
		sb_add(out, buf, (size_t)got);
	if (got < 0) {
		if (err)
			sb_addf(err, "cannot read '%s' in '%s': %s", member, archive, zip_file_strerror(f));
		out->len = start;
		out->buf[start] = '\0';
		rc = -1;
	} else {
		rc = 0;
	}
	zip_fclose(f);
done:
	zip_discard(z);
	return rc;
}
