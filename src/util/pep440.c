/* pep440.c — see pep440.h. The grammar is packaging's VERSION_PATTERN,
 * parsed by hand: each optional part is tried at the current position and
 * the position restored when it does not match, which gives the same
 * answers as the regular expression because no later part can start with
 * what an earlier part would have consumed. */
#include "util/pep440.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static int is_sep(char c)
{
	return c == '-' || c == '_' || c == '.';
}

/* Reads a run of digits at *p (none: n == 0) and advances. */
static pep440_num_t digits(const char **p)
{
	const char *s = *p;
	while (isdigit((unsigned char)**p))
		(*p)++;
	pep440_num_t n = { s, (size_t)(*p - s) };
	while (n.n > 1 && *n.d == '0') {
		n.d++;
		n.n--;
	}
	if (n.n == 1 && *n.d == '0')
		n.n = 0;
	return n;
}

/* Matches one of the labels (tried in order, case-insensitively) at *p;
 * returns its index + 1 and advances, or 0. */
static int label(const char **p, const char *const *labels)
{
	for (int i = 0; labels[i]; i++) {
		size_t n = strlen(labels[i]);
		if (!strncasecmp(*p, labels[i], n)) {
			*p += n;
			return i + 1;
		}
	}
	return 0;
}

/* "[-_.]?LABEL[-_.]?(digits)?" at *p: the label's index + 1 and the number,
 * or 0 with *p unchanged. */
static int lettered(const char **p, const char *const *labels, pep440_num_t *num)
{
	const char *q = *p;
	if (is_sep(*q))
		q++;
	int which = label(&q, labels);
	if (!which)
		return 0;
	if (is_sep(*q))
		q++;
	*num = digits(&q);
	*p = q;
	return which;
}

int pep440_parse(const char *s, pep440_t *v)
{
	static const char *const pre_labels[] = { "alpha", "a", "beta", "b", "preview", "pre", "c", "rc", NULL };
	static const char *const pre_kind[] = { "", "a", "a", "b", "b", "rc", "rc", "rc", "rc" };
	static const char *const post_labels[] = { "post", "rev", "r", NULL };
	static const char *const dev_labels[] = { "dev", NULL };
	memset(v, 0, sizeof(*v));
	const char *p = s;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == 'v' || *p == 'V')
		p++;
	/* epoch */
	const char *q = p;
	pep440_num_t n = digits(&q);
	if (q > p && *q == '!') {
		v->epoch = n;
		p = q + 1;
	}
	/* release: digits, then ".digits" as long as a digit follows the dot */
	if (!isdigit((unsigned char)*p))
		return -1;
	v->release = p;
	while (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1])))
		p++;
	v->release_len = (size_t)(p - v->release);
	/* pre-release */
	int which = lettered(&p, pre_labels, &v->pre_n);
	if (which) {
		const char *k = pre_kind[which];
		v->pre = !strcmp(k, "a") ? 1 : !strcmp(k, "b") ? 2 : 3;
	}
	/* post-release: "-N" first, then the lettered form */
	if (*p == '-' && isdigit((unsigned char)p[1])) {
		p++;
		v->has_post = 1;
		v->post_n = digits(&p);
	} else if (lettered(&p, post_labels, &v->post_n)) {
		v->has_post = 1;
	}
	/* dev release */
	if (lettered(&p, dev_labels, &v->dev_n))
		v->has_dev = 1;
	/* local version: "+" [a-z0-9]+ ([-_.][a-z0-9]+)* */
	if (*p == '+') {
		p++;
		v->local = p;
		for (;;) {
			if (!isalnum((unsigned char)*p))
				return -1;
			while (isalnum((unsigned char)*p))
				p++;
			if (is_sep(*p) && isalnum((unsigned char)p[1]))
				p++;
			else
				break;
		}
		v->local_len = (size_t)(p - v->local);
	}
	while (isspace((unsigned char)*p))
		p++;
	return *p ? -1 : 0;
}

static int num_cmp(pep440_num_t a, pep440_num_t b)
{
	if (a.n != b.n)
		return a.n < b.n ? -1 : 1;
	int c = a.n ? memcmp(a.d, b.d, a.n) : 0;
	return (c > 0) - (c < 0);
}

/* Next dot-separated number of a release string (0 once it is used up, so
 * that trailing zeros do not count, as packaging strips them). */
static pep440_num_t release_next(const char **p, const char *end)
{
	pep440_num_t zero = { NULL, 0 };
	if (*p >= end)
		return zero;
	pep440_num_t n = digits(p);
	if (*p < end && **p == '.')
		(*p)++;
	return n;
}

static int release_cmp(const pep440_t *a, const pep440_t *b)
{
	const char *pa = a->release, *ea = pa + a->release_len;
	const char *pb = b->release, *eb = pb + b->release_len;
	while (pa < ea || pb < eb) {
		int c = num_cmp(release_next(&pa, ea), release_next(&pb, eb));
		if (c)
			return c;
	}
	return 0;
}

/* One part of a local version at *p (advanced past it and its separator):
 * numeric parts compare by value and above alphanumeric ones, which compare
 * as lower-case strings. */
typedef struct local_part {
	int numeric;
	pep440_num_t num;
	const char *s;
	size_t n;
} local_part_t;

static local_part_t local_next(const char **p, const char *end)
{
	local_part_t lp = { 0 };
	const char *s = *p;
	while (*p < end && !is_sep(**p))
		(*p)++;
	lp.s = s;
	lp.n = (size_t)(*p - s);
	lp.numeric = 1;
	for (size_t i = 0; i < lp.n; i++)
		if (!isdigit((unsigned char)s[i]))
			lp.numeric = 0;
	if (lp.numeric) {
		const char *d = s;
		lp.num = digits(&d);
	}
	if (*p < end)
		(*p)++;
	return lp;
}

static int local_cmp(const pep440_t *a, const pep440_t *b)
{
	/* no local part sorts below any local part */
	if (!a->local || !b->local)
		return (a->local != NULL) - (b->local != NULL);
	const char *pa = a->local, *ea = pa + a->local_len;
	const char *pb = b->local, *eb = pb + b->local_len;
	while (pa < ea && pb < eb) {
		local_part_t x = local_next(&pa, ea), y = local_next(&pb, eb);
		int c;
		if (x.numeric && y.numeric) {
			c = num_cmp(x.num, y.num);
		} else if (x.numeric != y.numeric) {
			c = x.numeric ? 1 : -1;
		} else {
			c = 0;
			for (size_t i = 0; !c && i < x.n && i < y.n; i++)
				c = tolower((unsigned char)x.s[i]) - tolower((unsigned char)y.s[i]);
			if (!c && x.n != y.n)
				c = x.n < y.n ? -1 : 1;
		}
		if (c)
			return c > 0 ? 1 : -1;
	}
	return (pa < ea) - (pb < eb);
}

/* packaging's _cmpkey for the pre-release: a dev release without pre or
 * post sorts before every pre-release; no pre-release sorts after them. */
static int pre_rank(const pep440_t *v)
{
	if (!v->pre && !v->has_post && v->has_dev)
		return -1;
	return v->pre ? 0 : 1;
}

int pep440_cmp(const pep440_t *a, const pep440_t *b)
{
	int c = num_cmp(a->epoch, b->epoch);
	if (!c)
		c = release_cmp(a, b);
	if (!c) {
		int ra = pre_rank(a), rb = pre_rank(b);
		c = (ra > rb) - (ra < rb);
		if (!c && ra == 0) {
			c = (a->pre > b->pre) - (a->pre < b->pre);
			if (!c)
				c = num_cmp(a->pre_n, b->pre_n);
		}
	}
	if (!c) {
		c = a->has_post - b->has_post;
		if (!c && a->has_post)
			c = num_cmp(a->post_n, b->post_n);
	}
	if (!c) {
		/* no dev release sorts after every dev release */
		c = b->has_dev - a->has_dev;
		if (!c && a->has_dev)
			c = num_cmp(a->dev_n, b->dev_n);
	}
	if (!c)
		c = local_cmp(a, b);
	return (c > 0) - (c < 0);
}

int pep440_sort_cmp(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	pep440_t va, vb;
	int oka = pep440_parse(a, &va) == 0, okb = pep440_parse(b, &vb) == 0;
	if (oka != okb)
		return oka - okb;
	if (oka)
		return pep440_cmp(&va, &vb);
	int c = strcmp(a, b);
	return (c > 0) - (c < 0);
}
