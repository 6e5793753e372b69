/* common.c — the small helpers the runner's files share (internal.h):
 * Python's OSError texts, whole-file reads, the has_warnings grep, and the
 * growable id set of the registries of running jobs and processes. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/pyrepr.h"
#include "runner/internal.h"

int file_has_warning(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static const char pat[] = "warning";
	size_t m = 0;
	int c, found = 0;
	while (!found && (c = getc(f)) != EOF) {
		c = tolower(c);
		if (c == pat[m]) {
			if (++m == sizeof(pat) - 1)
				found = 1;
		} else {
			m = (c == pat[0]);
		}
	}
	fclose(f);
	return found;
}

void os_error(sb_t *out, int err, const char *path)
{
	sb_addf(out, "[Errno %d] %s: ", err, strerror(err));
	py_repr_str(out, path, strlen(path));
}

const char *os_error_type(int err)
{
	switch (err) {
	case EEXIST: return "FileExistsError";
	case ENOENT: return "FileNotFoundError";
	case EACCES: case EPERM: return "PermissionError";
	case ENOTDIR: return "NotADirectoryError";
	default: return "OSError";
	}
}

int mkdir_parents(const char *path)
{
	sb_t p = SB_INIT;
	sb_adds(&p, path);
	for (char *s = p.buf + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p.buf, 0755) && errno != EEXIST) {
				int e = errno;
				sb_release(&p);
				errno = e;
				return -1;
			}
			*s = '/';
		}
	sb_release(&p);
	return 0;
}

void idset_add(idset_t *s, int64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = id;
}

void idset_remove(idset_t *s, int64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id) {
			s->v[i] = s->v[--s->n];
			break;
		}
	if (!s->n) {
		free(s->v);
		s->v = NULL;
		s->cap = 0;
	}
}
