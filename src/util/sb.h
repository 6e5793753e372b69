/* sb.h — a growable string, used for every string we build (SQL, JSON,
 * paths, messages) instead of fixed buffers (after git's strbuf).
 *
 * Invariants a caller may rely on: after sb_init() `buf` is never NULL and
 * is always NUL-terminated; `len` is the length without the NUL. The memory
 * belongs to the sb until sb_release() frees it or sb_detach() hands it to
 * the caller (who then frees it with free()). Allocation failure aborts:
 * a server that cannot allocate a few bytes has nothing better to do. */
#ifndef SB_H
#define SB_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sb {
	char *buf;
	size_t len;
	size_t alloc;
} sb_t;

extern char sb_empty[];
#define SB_INIT { sb_empty, 0, 0 }

void sb_init(sb_t *sb, size_t hint);
void sb_release(sb_t *sb);
void sb_reset(sb_t *sb);
/* Returns the buffer (malloc'd, caller frees) and leaves sb empty. */
char *sb_detach(sb_t *sb);
void sb_grow(sb_t *sb, size_t extra);
/* For large buffers built once: room for exactly extra more bytes (no
 * slack), and the allocation cut to what the string holds. */
void sb_grow_exact(sb_t *sb, size_t extra);
void sb_shrink(sb_t *sb);
void sb_add(sb_t *sb, const void *data, size_t n);
void sb_adds(sb_t *sb, const char *s);
void sb_addc(sb_t *sb, char c);
void sb_addf(sb_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(sb_t *sb, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void sb_add_json_str(sb_t *sb, const char *s);
void sb_add_json_strn(sb_t *sb, const char *s, size_t n);
/* Appends the whole file at path to out; -1 (errno set) when it cannot be
 * opened or a read fails (out may then hold part of the file). */
int sb_read_file(const char *path, sb_t *out);

/* xmalloc & co: allocate or abort. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Asks that the n bytes at p (a block of malloc's) be backed by huge pages
 * when n is large (MADV_HUGEPAGE, a hint; see sb.c for why); returns p.
 * xmalloc, xcalloc and xrealloc call it on every block they hand out. */
void *mem_hint_huge(void *p, size_t n);

#endif
