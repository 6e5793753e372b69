/* zipwrite.c — see zipwrite.h. */
#include "util/zipwrite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "util/log.h"

#define DELETE_THRESHOLD (1024L * 1024L)

/* Adds every regular file under dir (relative name rel) to za; counts them. */
static int add_tree(zip_t *za, const char *dir, const char *rel, long *count, sb_t *err)
{
	DIR *d = opendir(dir);
	if (!d && errno == ENOENT && !*rel)
		return 0; /* as os.walk: a missing folder has no files */
	if (!d) {
		sb_addf(err, "cannot open folder '%s': %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sb_t path = SB_INIT, name = SB_INIT;
		sb_addf(&path, "%s/%s", dir, e->d_name);
		if (*rel)
			sb_addf(&name, "%s/%s", rel, e->d_name);
		else
			sb_adds(&name, e->d_name);
		struct stat st;
		if (lstat(path.buf, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				rc = add_tree(za, path.buf, name.buf, count, err);
			} else if (S_ISREG(st.st_mode)) {
				zip_error_t ze;
				zip_error_init(&ze);
				zip_source_t *src = zip_source_file_create(path.buf, 0, -1, &ze);
				zip_int64_t idx = src ? zip_file_add(za, name.buf, src, ZIP_FL_ENC_UTF_8) : -1;
				if (idx < 0) {
					sb_addf(err, "cannot add '%s': %s", path.buf,
						src ? zip_strerror(za) : zip_error_strerror(&ze));
					if (src)
						zip_source_free(src);
					rc = -1;
				} else {
					zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0);
					(*count)++;
				}
				zip_error_fini(&ze);
			}
		}
		sb_release(&path);
		sb_release(&name);
	}
	closedir(d);
	return rc;
}

int zip_write_folder(const char *folder, const char *out_path, sb_t *err)
{
	int ze = 0;
	zip_t *za = zip_open(out_path, ZIP_CREATE | ZIP_EXCL, &ze);
	if (!za) {
		zip_error_t e;
		zip_error_init_with_code(&e, ze);
		if (ze == ZIP_ER_EXISTS)
			sb_addf(err, "Zip file '%s' already exists", out_path);
		else
			sb_addf(err, "cannot create '%s': %s", out_path, zip_error_strerror(&e));
		zip_error_fini(&e);
		return -1;
	}
	long count = 0;
	if (add_tree(za, folder, "", &count, err)) {
		zip_discard(za);
		unlink(out_path);
		return -1;
	}
	if (count == 0) {
		/* libzip writes nothing for an empty archive: write the bare
		 * end-of-central-directory record, as Python's zipfile does */
		zip_discard(za);
		static const unsigned char eocd[22] = { 'P', 'K', 5, 6 };
		FILE *f = fopen(out_path, "wb");
		if (!f || fwrite(eocd, 1, sizeof(eocd), f) != sizeof(eocd)) {
			sb_addf(err, "cannot write '%s': %s", out_path, strerror(errno));
			if (f)
				fclose(f);
			unlink(out_path);
			return -1;
		}
		fclose(f);
		return 0;
	}
	if (zip_close(za) < 0) {
		sb_addf(err, "cannot write '%s': %s", out_path, zip_strerror(za));
		zip_discard(za);
		unlink(out_path);
		return -1;
	}
	return 0;
}

static long count_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sb_t p = SB_INIT;
		sb_addf(&p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p.buf, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				long k = count_files(p.buf);
				if (k > 0)
					n += k;
			} else if (S_ISREG(st.st_mode)) {
				n++;
			}
		}
		sb_release(&p);
	}
	closedir(d);
	return n;
}

int rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sb_t p = SB_INIT;
		sb_addf(&p, "%s/%s", path, e->d_name);
		if (rmtree(p.buf))
			rc = -1;
		sb_release(&p);
	}
	closedir(d);
	if (rmdir(path))
		rc = -1;
	return rc;
}

void zip_folder_and_remove(const char *folder)
{
	sb_t tmp = SB_INIT, zip = SB_INIT, err = SB_INIT;
	sb_addf(&tmp, "%s_tmp.zip", folder);
	sb_addf(&zip, "%s.zip", folder);
	if (zip_write_folder(folder, tmp.buf, &err)) {
		log_error("Error while creating temporary zip file. Original error: '%s'.", err.buf);
		unlink(tmp.buf);
		goto out;
	}
	if (rename(tmp.buf, zip.buf)) {
		log_error("Cannot move '%s' to '%s': %s", tmp.buf, zip.buf, strerror(errno));
		goto out;
	}
	zip_t *za = zip_open(zip.buf, ZIP_RDONLY, NULL);
	long in_zip = za ? (long)zip_get_num_entries(za, 0) : 0;
	if (za)
		zip_discard(za);
	struct stat st;
	if (count_files(folder) == in_zip && stat(zip.buf, &st) == 0 && st.st_size >= DELETE_THRESHOLD) {
		log_info("Removing folder '%s'.", folder);
		if (rmtree(folder))
			log_error("Cannot remove folder '%s': %s", folder, strerror(errno));
	}
out:
	sb_release(&tmp);
	sb_release(&zip);
	sb_release(&err);
}

static int read_file(const char *path, sb_t *out, sb_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sb_addf(err, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sb_add(out, buf, (size_t)n);
	close(fd);
	if (n < 0) {
		sb_addf(err, "cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int zip_folder_bytes(const char *folder, sb_t *out, sb_t *err)
{
	sb_t zip = SB_INIT;
	sb_addf(&zip, "%s.zip", folder);
	if (access(zip.buf, F_OK) == 0) {
		int rc = read_file(zip.buf, out, err);
		sb_release(&zip);
		return rc;
	}
	sb_release(&zip);
	char tmpl[] = "/tmp/fractal-download-XXXXXX";
	if (!mkdtemp(tmpl)) {
		sb_addf(err, "cannot create a temporary folder: %s", strerror(errno));
		return -1;
	}
	sb_t path = SB_INIT;
	sb_addf(&path, "%s/archive.zip", tmpl);
	int rc = zip_write_folder(folder, path.buf, err);
	if (!rc)
		rc = read_file(path.buf, out, err);
	unlink(path.buf);
	rmdir(tmpl);
	sb_release(&path);
	return rc;
}
