/* sb.c — the growable string; see sb.h for the invariants. */
#include "util/sb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char sb_empty[1];

/* Large blocks are asked to be backed by transparent huge pages (where the
 * kernel's THP setting is "madvise", as on Debian, nothing is unless asked).
 * The first touch of a 4 kB page costs a fault, and on a virtual machine a
 * fault costs microseconds: the text of a 10^6-image list (190 MB), read,
 * copied and indexed, was about 140,000 faults and more than half of the
 * first query's 2.4 s (docs/images.md has the figures since). Small blocks
 * are left alone, so that an idle server's memory stays where it was; a
 * block of malloc's heap is hinted too (madvise acts on whole pages inside
 * it, and the hint outlives the block: a little more of the heap in 2 MB
 * pages, no harm). */
#define HUGE_FROM ((size_t)4 << 20)

void *mem_hint_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	static size_t page;
	if (n < HUGE_FROM)
		return p;
	if (!page) {
		long ps = sysconf(_SC_PAGESIZE);
		page = ps > 0 ? (size_t)ps : 4096;
	}
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
	return p;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("fatal: out of memory\n", stderr);
		abort();
	}
	return mem_hint_huge(p, n);
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p) {
		fputs("fatal: out of memory\n", stderr);
		abort();
	}
	return mem_hint_huge(p, n * m);
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("fatal: out of memory\n", stderr);
		abort();
	}
	return mem_hint_huge(p, n);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void sb_init(sb_t *sb, size_t hint)
{
	sb->buf = sb_empty;
	sb->len = sb->alloc = 0;
	if (hint)
		sb_grow(sb, hint);
}

void sb_release(sb_t *sb)
{
	if (sb->alloc)
		free(sb->buf);
	sb_init(sb, 0);
}

void sb_reset(sb_t *sb)
{
	sb->len = 0;
	if (sb->alloc)
		sb->buf[0] = '\0';
}

char *sb_detach(sb_t *sb)
{
	char *r = sb->alloc ? sb->buf : xstrdup("");
	sb_init(sb, 0);
	return r;
}

/* the buffer made n bytes long */
static void alloc_to(sb_t *sb, size_t n)
{
	if (!sb->alloc) {
		sb->buf = xmalloc(n);
		sb->buf[0] = '\0';
	} else {
		sb->buf = xrealloc(sb->buf, n);
	}
	sb->alloc = n;
}

void sb_grow(sb_t *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return;
	size_t n = sb->alloc ? sb->alloc : 64;
	while (n < need)
		n = n * 3 / 2 + 16;
	alloc_to(sb, n);
}

void sb_grow_exact(sb_t *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need > sb->alloc)
		alloc_to(sb, need);
}

void sb_shrink(sb_t *sb)
{
	if (sb->alloc > sb->len + 1) {
		sb->buf = xrealloc(sb->buf, sb->len + 1);
		sb->alloc = sb->len + 1;
	}
}

void sb_add(sb_t *sb, const void *data, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(sb_t *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addc(sb_t *sb, char c)
{
	sb_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void sb_vaddf(sb_t *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(sb->buf + sb->len, sb->alloc ? sb->alloc - sb->len : 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	if ((size_t)n + sb->len + 1 > sb->alloc) {
		sb_grow(sb, (size_t)n);
		vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	}
	sb->len += (size_t)n;
}

void sb_addf(sb_t *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

/*
 * Whether any of the 8 bytes at p is below 0x20, '"' or '\\' (the "has a
 * byte less than n" and "has a zero byte" word tricks, exact as a yes/no).
 */
static inline int word_needs_escape(const char *p)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t w, q, b;
	memcpy(&w, p, 8);
	q = w ^ (ones * '"');
	b = w ^ (ones * '\\');
	return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high ? 1 : 0;
}

void sb_add_json_strn(sb_t *sb, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* 1 for the bytes JSON needs escaped: control characters, '"' and '\\' */
	static const unsigned char esc[256] = {
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		['"'] = 1, ['\\'] = 1,
	};
	sb_grow(sb, n + 2);
	sb_addc(sb, '"');
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		/* long logs are mostly plain text: skip 8 plain bytes at a time */
		while (i + 8 <= n && !word_needs_escape(s + i))
			i += 8;
		if (i == n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (!esc[c])
			continue;
		sb_add(sb, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"': sb_adds(sb, "\\\""); break;
		case '\\': sb_adds(sb, "\\\\"); break;
		case '\n': sb_adds(sb, "\\n"); break;
		case '\r': sb_adds(sb, "\\r"); break;
		case '\t': sb_adds(sb, "\\t"); break;
		case '\b': sb_adds(sb, "\\b"); break;
		case '\f': sb_adds(sb, "\\f"); break;
		default: {
			char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			sb_add(sb, u, 6);
		}
		}
	}
	sb_add(sb, s + start, n - start);
	sb_addc(sb, '"');
}

void sb_add_json_str(sb_t *sb, const char *s)
{
	sb_add_json_strn(sb, s, strlen(s));
}

int sb_read_file(const char *path, sb_t *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(out, buf, n);
	int bad = ferror(f);
	fclose(f);
	return bad ? -1 : 0;
}
