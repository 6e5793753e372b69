/* imgindex.c — see imgindex.h. */
#include "model/imgindex.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/filters.h"
#include "util/jsonspan.h"

/* ---- interned strings: bytes -> dense id ---- */

typedef struct strtab {
	sb_t bytes;          /* the strings, each NUL-terminated */
	size_t *off;         /* id -> offset in bytes */
	uint32_t *len, *hash;
	uint32_t *slots;     /* open addressing: id + 1, 0 empty */
	size_t n, cap, nslots;
} strtab_t;

static uint32_t fnv(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void st_release(strtab_t *t)
{
	sb_release(&t->bytes);
	free(t->off);
	free(t->len);
	free(t->hash);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static void st_rehash(strtab_t *t, size_t nslots)
{
	free(t->slots);
	t->nslots = nslots;
	t->slots = xcalloc(nslots, sizeof(uint32_t));
	for (size_t id = 0; id < t->n; id++) {
		size_t s = t->hash[id] & (nslots - 1);
		while (t->slots[s])
			s = (s + 1) & (nslots - 1);
		t->slots[s] = (uint32_t)id + 1;
	}
}

static const char *st_str(const strtab_t *t, uint32_t id, size_t *len)
{
	if (len)
		*len = t->len[id];
	return t->bytes.buf + t->off[id];
}

/* The id of s (len bytes), -1 when absent and !add. *added tells a new one. */
static long st_intern(strtab_t *t, const char *s, size_t len, int add, int *added)
{
	uint32_t h = fnv(s, len);
	if (added)
		*added = 0;
	if (t->nslots) {
		for (size_t k = h & (t->nslots - 1); t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
			uint32_t id = t->slots[k] - 1;
			if (t->hash[id] == h && t->len[id] == len && !memcmp(t->bytes.buf + t->off[id], s, len))
				return id;
		}
	}
	if (!add)
		return -1;
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->off = xrealloc(t->off, t->cap * sizeof(size_t));
		t->len = xrealloc(t->len, t->cap * sizeof(uint32_t));
		t->hash = xrealloc(t->hash, t->cap * sizeof(uint32_t));
	}
	size_t id = t->n++;
	t->off[id] = t->bytes.len;
	t->len[id] = (uint32_t)len;
	t->hash[id] = h;
	sb_add(&t->bytes, s, len);
	sb_addc(&t->bytes, '\0');
	if (2 * t->n > t->nslots)
		st_rehash(t, t->nslots ? 2 * t->nslots : 128);
	else {
		size_t k = h & (t->nslots - 1);
		while (t->slots[k])
			k = (k + 1) & (t->nslots - 1);
		t->slots[k] = (uint32_t)id + 1;
	}
	if (added)
		*added = 1;
	return (long)id;
}

static size_t st_bytes(const strtab_t *t)
{
	return t->bytes.alloc + t->cap * (sizeof(size_t) + 8) + t->nslots * 4;
}

/* ---- the index ---- */

struct rec {
	uint64_t off;        /* of the image in text */
	uint32_t len;
	uint32_t zoff;       /* of its decoded zarr_url in zbuf */
	uint32_t zhash;
	uint32_t a_first, t_first;
	uint16_t a_n, t_n;
};

struct apair {
	uint32_t key, vid;
};

/* what a filter needs of a distinct attribute value */
struct vinfo {
	uint8_t kind;        /* enum filters_kind */
	uint8_t is_bool;
	uint32_t dlen;       /* FILTERS_STR: decoded bytes at doff in dec */
	size_t doff;
	union {
		int64_t i;
		double num;
	} v;
};

struct imgindex {
	atomic_int refs;     /* holders (imgindex_ref); the last frees. First:
			      * imgindex_clone copies what follows it */
	sb_t text;
	size_t close;        /* offset of the closing ']' (spaces may follow) */
	int verbatim;        /* text is byte for byte the stored text */
	size_t spaces;       /* bytes of it left blank by in-place edits */
	size_t n, cap;
	struct rec *recs;
	sb_t zbuf;
	size_t zgarbage;
	uint32_t *zslots;    /* image index + 1, 0 empty */
	size_t nzslots;
	int zdup;            /* some image's zarr_url is an earlier one's */
	struct apair *attrs;
	size_t nattrs, cap_attrs, agarbage;
	uint32_t *types;     /* key << 1 | value */
	size_t ntypes, cap_types, tgarbage;
	strtab_t akeys, tkeys, vals;
	struct vinfo *vinfo;
	size_t cap_vinfo;
	sb_t dec;            /* decoded string values */
	char *agg_attributes, *agg_types;
	/* what tells, at an edit, what the aggregates need (see agg_update):
	 * per distinct (key, value) pair and per type key
	 * the images having it, per key the first image having it, and
	 * whether the key's listing depends on the images' order */
	struct pcount *pc;
	size_t npc, pcused;  /* slots (a power of 2, 0: none yet), used ones */
	uint32_t *akcount, *tcount, *akfirst, *tkfirst;
	uint8_t *aksens;
	size_t nak, ntk;     /* keys counted when the aggregates were made */
};

struct pcount {
	uint64_t kv;         /* (key + 1) << 32 | value id; 0: empty slot */
	uint32_t n;
};

#define GROW(arr, n, cap)                                                   \
	do {                                                                \
		if ((n) >= (cap)) {                                         \
			(cap) = (cap) ? 2 * (cap) : 64;                     \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));    \
		}                                                           \
	} while (0)

/* The decoded bytes of the JSON string [s, e) (quotes included), appended
 * to out; -1 when it is not a string. */
static int decode_str(const char *s, const char *e, sb_t *out)
{
	if (e - s < 2 || *s != '"' || e[-1] != '"')
		return -1;
	if (!memchr(s, '\\', (size_t)(e - s))) {
		sb_add(out, s + 1, (size_t)(e - s - 2));
		return 0;
	}
	json_t *j = json_loadb(s, (size_t)(e - s), JSON_DECODE_ANY, NULL);
	if (!json_is_string(j)) {
		json_decref(j);
		return -1;
	}
	sb_add(out, json_string_value(j), json_string_length(j));
	json_decref(j);
	return 0;
}

static uint32_t intern_key(strtab_t *t, const char *s, const char *e)
{
	sb_t k = SB_INIT;
	if (decode_str(s, e, &k))
		sb_add(&k, s, (size_t)(e - s));
	uint32_t id = (uint32_t)st_intern(t, k.buf, k.len, 1, NULL);
	sb_release(&k);
	return id;
}

static uint32_t intern_value(imgindex_t *x, const char *s, const char *e)
{
	int added;
	uint32_t vid = (uint32_t)st_intern(&x->vals, s, (size_t)(e - s), 1, &added);
	if (!added)
		return vid;
	GROW(x->vinfo, vid, x->cap_vinfo);
	struct vinfo *v = &x->vinfo[vid];
	memset(v, 0, sizeof(*v));
	size_t n = (size_t)(e - s);
	if (*s == '"') {
		v->kind = FILTERS_STR;
		v->doff = x->dec.len;
		if (decode_str(s, e, &x->dec))
			v->kind = FILTERS_OTHER;
		v->dlen = (uint32_t)(x->dec.len - v->doff);
	} else if (n == 4 && !memcmp(s, "true", 4)) {
		v->kind = FILTERS_INT, v->is_bool = 1, v->v.i = 1;
	} else if (n == 5 && !memcmp(s, "false", 5)) {
		v->kind = FILTERS_INT, v->is_bool = 1, v->v.i = 0;
	} else if (n == 4 && !memcmp(s, "null", 4)) {
		v->kind = FILTERS_NULL;
	} else if (*s == '-' || (*s >= '0' && *s <= '9')) {
		char buf[64];
		size_t m = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
		memcpy(buf, s, m);
		buf[m] = '\0';
		if (strpbrk(buf, ".eE"))
			v->kind = FILTERS_REAL, v->v.num = strtod(buf, NULL);
		else
			v->kind = FILTERS_INT, v->v.i = strtoll(buf, NULL, 10);
	} else {
		v->kind = FILTERS_OTHER;
	}
	return vid;
}

/* Where a scan writes the canonical text: an sb, or, while what it writes
 * is byte for byte the input it reads (a list we stored ourselves), only a
 * check against that input, so that the input's own block can become the
 * index's text (imgindex_build_take) instead of a copy of it: at 10^6
 * images 187 MB less at the peak of a scan. The first byte that differs
 * (PostgreSQL's jsonb output, a list stored by someone else) makes it copy
 * the matched part into the sb and write on there. */
typedef struct emit {
	sb_t *sb;
	const char *src;     /* checking: the input (len bytes); NULL: writing */
	size_t len, pos;     /* pos: bytes of it matched so far */
	size_t hint;         /* the sb's room when writing starts */
} emit_t;

static void em_add(emit_t *e, const char *p, size_t n)
{
	if (e->src) {
		if (e->pos + n <= e->len && (p == e->src + e->pos || !memcmp(e->src + e->pos, p, n))) {
			e->pos += n;
			return;
		}
		sb_grow(e->sb, e->hint > e->pos + n ? e->hint : e->pos + n);
		sb_add(e->sb, e->src, e->pos);
		e->src = NULL;
	}
	sb_add(e->sb, p, n);
}

static void em_adds(emit_t *e, const char *s)
{
	em_add(e, s, strlen(s));
}

static void em_addc(emit_t *e, char c)
{
	em_add(e, &c, 1);
}

static size_t em_len(const emit_t *e)
{
	return e->src ? e->pos : e->sb->len;
}

/* Scans the members of the flat object at p (attributes or types; anything
 * but an object reads as {}), appending them compactly to out and their
 * pairs to the index. Returns the number of members, or -1. */
static long scan_members(imgindex_t *x, const char *p, const char *end, int types, emit_t *out)
{
	em_addc(out, '{');
	long n = 0;
	if (p && *p == '{') {
		p = json_skip_ws(p + 1);
		while (p < end && *p != '}') {
			const char *ks = p, *ke = json_skip_value(p);
			if (*ks != '"' || !ke)
				return -1;
			p = json_skip_ws(ke);
			if (*p++ != ':')
				return -1;
			const char *vs = json_skip_ws(p), *ve = json_skip_value(vs);
			if (!ve)
				return -1;
			if (n)
				em_addc(out, ',');
			em_add(out, ks, (size_t)(ke - ks));
			em_addc(out, ':');
			em_add(out, vs, (size_t)(ve - vs));
			if (types) {
				GROW(x->types, x->ntypes, x->cap_types);
				uint32_t key = intern_key(&x->tkeys, ks, ke);
				x->types[x->ntypes++] = key << 1 | (ve - vs == 4 && !memcmp(vs, "true", 4));
			} else {
				GROW(x->attrs, x->nattrs, x->cap_attrs);
				struct apair *a = &x->attrs[x->nattrs++];
				a->key = intern_key(&x->akeys, ks, ke);
				a->vid = intern_value(x, vs, ve);
			}
			n++;
			p = json_skip_ws(ve);
			if (*p == ',')
				p = json_skip_ws(p + 1);
			else if (*p != '}')
				return -1;
		}
	}
	em_addc(out, '}');
	return n > 65535 ? -1 : n;
}

/* Scans one image object at p into r (pairs appended to the index, its
 * canonical text to out, its zarr_url to zbuf). Returns the end of the
 * object, or NULL. */
static const char *scan_image(imgindex_t *x, const char *p, struct rec *r, emit_t *out)
{
	/* one pass over the members: zarr_url, origin, attributes, types (the
	 * last of a repeated key wins, as in Python's json) */
	if (*p != '{')
		return NULL;
	static const char *const keys[] = { "zarr_url", "origin", "attributes", "types" };
	const char *v[4] = { NULL, NULL, NULL, NULL };
	size_t l[4] = { 0, 0, 0, 0 };
	p = json_skip_ws(p + 1);
	while (*p != '}') {
		const char *ks = p, *ke = *p == '"' ? json_skip_value(p) : NULL;
		if (!ke)
			return NULL;
		p = json_skip_ws(ke);
		if (*p++ != ':')
			return NULL;
		const char *vs = json_skip_ws(p), *ve = json_skip_value(vs);
		if (!ve)
			return NULL;
		size_t klen = (size_t)(ke - ks - 2);
		for (int k = 0; k < 4; k++)
			if (strlen(keys[k]) == klen && !memcmp(ks + 1, keys[k], klen)) {
				v[k] = vs;
				l[k] = (size_t)(ve - vs);
			}
		p = json_skip_ws(ve);
		if (*p == ',')
			p = json_skip_ws(p + 1);
		else if (*p != '}')
			return NULL;
	}
	const char *end = p + 1;
	r->off = em_len(out);
	em_adds(out, "{\"zarr_url\":");
	if (v[0])
		em_add(out, v[0], l[0]);
	else
		em_adds(out, "\"\"");
	em_adds(out, ",\"origin\":");
	if (v[1])
		em_add(out, v[1], l[1]);
	else
		em_adds(out, "null");
	em_adds(out, ",\"attributes\":");
	r->a_first = (uint32_t)x->nattrs;
	long na = scan_members(x, v[2], end, 0, out);
	em_adds(out, ",\"types\":");
	r->t_first = (uint32_t)x->ntypes;
	long nt = scan_members(x, v[3], end, 1, out);
	em_addc(out, '}');
	if (na < 0 || nt < 0)
		return NULL;
	r->a_n = (uint16_t)na;
	r->t_n = (uint16_t)nt;
	r->len = (uint32_t)(em_len(out) - r->off);
	r->zoff = (uint32_t)x->zbuf.len;
	if (!v[0] || decode_str(v[0], v[0] + l[0], &x->zbuf))
		x->zbuf.len = r->zoff;
	r->zhash = fnv(x->zbuf.buf + r->zoff, x->zbuf.len - r->zoff);
	sb_addc(&x->zbuf, '\0');
	return end;
}

/* ---- zarr_url -> first image ---- */

static void z_insert(imgindex_t *x, size_t i)
{
	const struct rec *r = &x->recs[i];
	const char *zu = x->zbuf.buf + r->zoff;
	size_t k = r->zhash & (x->nzslots - 1);
	for (; x->zslots[k]; k = (k + 1) & (x->nzslots - 1)) {
		const struct rec *o = &x->recs[x->zslots[k] - 1];
		if (o->zhash == r->zhash && !strcmp(x->zbuf.buf + o->zoff, zu)) {
			x->zdup = 1; /* an earlier image has it */
			return;
		}
	}
	x->zslots[k] = (uint32_t)i + 1;
}

/* Image `at` is about to go (the records not yet moved): its slot is
 * emptied with linear probing's backward shift and the later images'
 * numbers drop by one, a pass over the slots and not a rehash of every
 * zarr_url. 0, or -1 when the table must be rebuilt instead (an image
 * shares its zarr_url with an earlier one: the next one must take over). */
static int z_remove(imgindex_t *x, size_t at)
{
	if (x->zdup)
		return -1;
	size_t mask = x->nzslots - 1, i = x->recs[at].zhash & mask;
	while (x->zslots[i] && x->zslots[i] != at + 1)
		i = (i + 1) & mask;
	if (!x->zslots[i])
		return -1;
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (!x->zslots[j])
			break;
		size_t h = x->recs[x->zslots[j] - 1].zhash & mask;
		/* the entry at j stays when its home is cyclically in (i, j] */
		if (i <= j ? i < h && h <= j : i < h || h <= j)
			continue;
		x->zslots[i] = x->zslots[j];
		i = j;
	}
	x->zslots[i] = 0;
	for (size_t k = 0; k < x->nzslots; k++)
		if (x->zslots[k] > at + 1)
			x->zslots[k]--;
	return 0;
}

static void z_rebuild(imgindex_t *x)
{
	size_t want = 256;
	while (want < 2 * x->n + 2)
		want *= 2;
	free(x->zslots);
	x->nzslots = want;
	x->zslots = xcalloc(want, sizeof(uint32_t));
	x->zdup = 0;
	for (size_t i = 0; i < x->n; i++)
		z_insert(x, i);
}

long imgindex_find(const imgindex_t *x, const char *zarr_url)
{
	uint32_t h = fnv(zarr_url, strlen(zarr_url));
	for (size_t k = h & (x->nzslots - 1); x->zslots[k]; k = (k + 1) & (x->nzslots - 1)) {
		const struct rec *o = &x->recs[x->zslots[k] - 1];
		if (o->zhash == h && !strcmp(x->zbuf.buf + o->zoff, zarr_url))
			return (long)(x->zslots[k] - 1);
	}
	return -1;
}

/* ---- aggregates ---- */

struct aggv {
	uint32_t vid;
	uint32_t pos;        /* first-seen order */
};

static int vstr(const struct vinfo *v)
{
	return v->kind == FILTERS_STR;
}

static double vnum(const struct vinfo *v)
{
	return v->kind == FILTERS_INT ? (double)v->v.i : v->kind == FILTERS_REAL ? v->v.num : 0;
}

/* Python's ordering of the values (strings by bytes, numbers by value),
 * then first-seen order */
static int cmp_aggv(const void *pa, const void *pb, void *ctx)
{
	const imgindex_t *sort_x = ctx;
	const struct aggv *a = pa, *b = pb;
	const struct vinfo *x = &sort_x->vinfo[a->vid], *y = &sort_x->vinfo[b->vid];
	int c = vstr(x) - vstr(y);
	if (!c && vstr(x)) {
		size_t n = x->dlen < y->dlen ? x->dlen : y->dlen;
		c = memcmp(sort_x->dec.buf + x->doff, sort_x->dec.buf + y->doff, n);
		if (!c)
			c = (x->dlen > y->dlen) - (x->dlen < y->dlen);
	} else if (!c) {
		double p = vnum(x), q = vnum(y);
		c = (p > q) - (p < q);
	}
	return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

static int cmp_pos(const void *pa, const void *pb)
{
	const struct aggv *a = pa, *b = pb;
	return (a->pos > b->pos) - (a->pos < b->pos);
}

static int same_value(const imgindex_t *x, uint32_t a, uint32_t b)
{
	const struct vinfo *p = &x->vinfo[a], *q = &x->vinfo[b];
	if (vstr(p) != vstr(q))
		return 0;
	if (vstr(p))
		return p->dlen == q->dlen && !memcmp(x->dec.buf + p->doff, x->dec.buf + q->doff, p->dlen);
	return vnum(p) == vnum(q);
}

/* ---- the images per (key, value) pair ---- */

static uint64_t pc_hash(uint64_t kv)
{
	kv ^= kv >> 33;
	kv *= 0xff51afd7ed558ccdull;
	return kv ^ (kv >> 33);
}

static struct pcount *pc_slot(imgindex_t *x, uint64_t kv);

static void pc_grow(imgindex_t *x)
{
	struct pcount *old = x->pc;
	size_t nold = x->npc;
	x->npc = nold ? 2 * nold : 256;
	x->pc = xcalloc(x->npc, sizeof(*x->pc));
	x->pcused = 0;
	for (size_t k = 0; k < nold; k++)
		if (old[k].kv)
			*pc_slot(x, old[k].kv) = old[k];
	free(old);
}

/* The slot of the pair, claimed (count 0) if it had none; the table
 * keeps a quarter free. */
static struct pcount *pc_slot(imgindex_t *x, uint64_t kv)
{
	if (!x->npc)
		pc_grow(x);
	size_t mask = x->npc - 1;
	for (size_t k = pc_hash(kv) & mask;; k = (k + 1) & mask) {
		if (x->pc[k].kv == kv)
			return &x->pc[k];
		if (!x->pc[k].kv) {
			if (4 * (x->pcused + 1) > 3 * x->npc) {
				pc_grow(x);
				return pc_slot(x, kv);
			}
			x->pcused++;
			x->pc[k].kv = kv;
			return &x->pc[k];
		}
	}
}

/* upstream's aggregate_attributes / aggregate_types, over the pairs: per
 * key (in first-seen order) its distinct values, sorted when all are
 * strings or all numbers, else in first-seen order */
static void aggregate_first_seen(imgindex_t *x)
{
	size_t nk = x->akeys.n, nv = x->vals.n;
	/* distinct (key, value) pairs in first-seen order; a value is nearly
	 * always under one key, so vfirst[vid] (its first key + 1) answers,
	 * and a small hash set the rest */
	uint32_t *vfirst = xcalloc(nv + 1, sizeof(uint32_t));
	uint64_t *more = NULL;
	size_t nmore = 0, cap_more = 0;
	struct aggv *d = NULL;
	uint32_t *dkey = NULL;
	size_t nd = 0, cap_d = 0;
	for (size_t i = 0; i < x->n; i++) {
		const struct rec *r = &x->recs[i];
		for (uint32_t j = 0; j < r->a_n; j++) {
			const struct apair *a = &x->attrs[r->a_first + j];
			if (vfirst[a->vid] == a->key + 1)
				continue;
			if (vfirst[a->vid]) {
				uint64_t kv = (uint64_t)a->key << 32 | a->vid;
				size_t m = 0;
				while (m < nmore && more[m] != kv)
					m++;
				if (m < nmore)
					continue;
				GROW(more, nmore, cap_more);
				more[nmore++] = kv;
			} else {
				vfirst[a->vid] = a->key + 1;
			}
			if (nd >= cap_d) {
				cap_d = cap_d ? 2 * cap_d : 64;
				d = xrealloc(d, cap_d * sizeof(*d));
				dkey = xrealloc(dkey, cap_d * sizeof(*dkey));
			}
			d[nd].vid = a->vid;
			d[nd].pos = (uint32_t)nd;
			dkey[nd++] = a->key;
		}
	}
	/* stable bucketing by key, keys in first-seen order */
	size_t *count = xcalloc(nk + 1, sizeof(size_t)), *start = xcalloc(nk + 1, sizeof(size_t));
	uint32_t *korder = xmalloc((nk + 1) * sizeof(uint32_t));
	size_t nko = 0;
	for (size_t k = 0; k < nd; k++)
		if (count[dkey[k]]++ == 0)
			korder[nko++] = dkey[k];
	size_t acc = 0;
	for (size_t k = 0; k < nko; k++) {
		start[korder[k]] = acc;
		acc += count[korder[k]];
	}
	struct aggv *b = xmalloc((nd + 1) * sizeof(*b));
	for (size_t k = 0; k < nd; k++)
		b[start[dkey[k]]++] = d[k];
	sb_t o = SB_INIT;
	sb_addc(&o, '{');
	acc = 0;
	for (size_t k = 0; k < nko; k++) {
		struct aggv *g = b + acc;
		size_t m = count[korder[k]];
		acc += m;
		int homogeneous = 1;
		for (size_t j = 1; j < m; j++)
			if (vstr(&x->vinfo[g[j].vid]) != vstr(&x->vinfo[g[0].vid]))
				homogeneous = 0;
		qsort_r(g, m, sizeof(*g), cmp_aggv, x);
		size_t kept = 0;
		for (size_t j = 0; j < m; j++)
			if (!kept || !same_value(x, g[kept - 1].vid, g[j].vid))
				g[kept++] = g[j];
		if (!homogeneous)
			qsort(g, kept, sizeof(*g), cmp_pos);
		/* the listing depends on the images' order: first-seen order,
		 * or which of the values equal under == is listed */
		x->aksens[korder[k]] = !homogeneous || kept < m;
		if (k)
			sb_addc(&o, ',');
		size_t klen;
		const char *key = st_str(&x->akeys, korder[k], &klen);
		sb_add_json_strn(&o, key, klen);
		sb_adds(&o, ":[");
		for (size_t j = 0; j < kept; j++) {
			size_t vlen;
			const char *raw = st_str(&x->vals, g[j].vid, &vlen);
			if (j)
				sb_addc(&o, ',');
			sb_add(&o, raw, vlen);
		}
		sb_addc(&o, ']');
	}
	sb_addc(&o, '}');
	free(x->agg_attributes);
	x->agg_attributes = sb_detach(&o);
	free(vfirst);
	free(more);
	free(d);
	free(dkey);
	free(count);
	free(start);
	free(korder);
	free(b);
	/* types: the keys, in first-seen order */
	size_t nt = x->tkeys.n;
	uint8_t *tseen = xcalloc(nt + 1, 1);
	sb_addc(&o, '[');
	int first = 1;
	for (size_t i = 0; i < x->n; i++) {
		const struct rec *r = &x->recs[i];
		for (uint32_t j = 0; j < r->t_n; j++) {
			uint32_t key = x->types[r->t_first + j] >> 1;
			if (tseen[key])
				continue;
			tseen[key] = 1;
			if (!first)
				sb_addc(&o, ',');
			first = 0;
			size_t klen;
			const char *s = st_str(&x->tkeys, key, &klen);
			sb_add_json_strn(&o, s, klen);
		}
	}
	sb_addc(&o, ']');
	free(tseen);
	free(x->agg_types);
	x->agg_types = sb_detach(&o);
}

/* The count arrays grown to the keys interned now (a new key: no image
 * counted yet). */
static void counts_fit(imgindex_t *x)
{
	size_t nk = x->akeys.n, nt = x->tkeys.n;
	if (nk + 1 > x->nak + 1 || !x->akfirst) {
		x->akfirst = xrealloc(x->akfirst, (nk + 1) * sizeof(uint32_t));
		x->akcount = xrealloc(x->akcount, (nk + 1) * sizeof(uint32_t));
		x->aksens = xrealloc(x->aksens, nk + 1);
		for (size_t k = x->nak; k <= nk; k++)
			x->akfirst[k] = UINT32_MAX, x->akcount[k] = 0, x->aksens[k] = 0;
		x->nak = nk;
	}
	if (nt + 1 > x->ntk + 1 || !x->tkfirst) {
		x->tkfirst = xrealloc(x->tkfirst, (nt + 1) * sizeof(uint32_t));
		x->tcount = xrealloc(x->tcount, (nt + 1) * sizeof(uint32_t));
		for (size_t k = x->ntk; k <= nt; k++)
			x->tkfirst[k] = UINT32_MAX, x->tcount[k] = 0;
		x->ntk = nt;
	}
}

/* The counts of every image, made anew. */
static void count_all(imgindex_t *x)
{
	free(x->pc);
	x->pc = NULL;
	x->npc = x->pcused = 0;
	x->nak = x->ntk = 0;
	free(x->akfirst);
	free(x->tkfirst);
	x->akfirst = x->tkfirst = NULL;
	counts_fit(x);
	for (size_t i = 0; i < x->n; i++) {
		const struct rec *r = &x->recs[i];
		for (uint32_t j = 0; j < r->a_n; j++) {
			const struct apair *a = &x->attrs[r->a_first + j];
			pc_slot(x, (uint64_t)(a->key + 1) << 32 | a->vid)->n++;
			x->akcount[a->key]++;
			if (x->akfirst[a->key] == UINT32_MAX)
				x->akfirst[a->key] = (uint32_t)i;
		}
		for (uint32_t j = 0; j < r->t_n; j++) {
			uint32_t key = x->types[r->t_first + j] >> 1;
			x->tcount[key]++;
			if (x->tkfirst[key] == UINT32_MAX)
				x->tkfirst[key] = (uint32_t)i;
		}
	}
}

/* a key in first-seen order: the first image with it, then its place
 * among that image's members */
struct kord {
	uint32_t key, first, member;
};

static int cmp_kord(const void *pa, const void *pb)
{
	const struct kord *a = pa, *b = pb;
	if (a->first != b->first)
		return (a->first > b->first) - (a->first < b->first);
	return (a->member > b->member) - (a->member < b->member);
}

/* The live keys (count > 0) of one kind in first-seen order, from the
 * first images (types: the type words, else the attribute pairs).
 * Returns their number; *out is malloc'd (caller frees). */
static size_t keys_in_order(const imgindex_t *x, int types, struct kord **out)
{
	size_t nk = types ? x->ntk : x->nak, n = 0;
	const uint32_t *count = types ? x->tcount : x->akcount, *first = types ? x->tkfirst : x->akfirst;
	struct kord *o = xmalloc((nk + 1) * sizeof(*o));
	for (size_t k = 0; k < nk; k++) {
		if (!count[k])
			continue;
		const struct rec *r = &x->recs[first[k]];
		uint32_t m = 0, nm = types ? r->t_n : r->a_n;
		while (m < nm && (types ? x->types[r->t_first + m] >> 1 : x->attrs[r->a_first + m].key) != k)
			m++;
		o[n++] = (struct kord){ (uint32_t)k, first[k], m };
	}
	qsort(o, n, sizeof(*o), cmp_kord);
	*out = o;
	return n;
}

/* The aggregates from the counts (no pass over the images): 0, or -1,
 * nothing changed, when some key's listing depends on the images' order
 * (its values are not all strings or all numbers, or two of them are
 * equal under ==), which only aggregate_first_seen can list. */
static int aggregate_from_counts(imgindex_t *x)
{
	struct kord *ko;
	size_t nko = keys_in_order(x, 0, &ko);
	/* the live pairs bucketed by key */
	size_t *start = xcalloc(x->nak + 2, sizeof(size_t)), total = 0;
	for (size_t s = 0; s < x->npc; s++)
		if (x->pc[s].kv && x->pc[s].n)
			start[(x->pc[s].kv >> 32) - 1 + 1]++, total++;
	for (size_t k = 0; k < x->nak; k++)
		start[k + 1] += start[k];
	struct aggv *g = xmalloc((total + 1) * sizeof(*g));
	size_t *fill = xmalloc((x->nak + 1) * sizeof(size_t));
	memcpy(fill, start, (x->nak + 1) * sizeof(size_t));
	for (size_t s = 0; s < x->npc; s++)
		if (x->pc[s].kv && x->pc[s].n)
			g[fill[(x->pc[s].kv >> 32) - 1]++] = (struct aggv){ (uint32_t)x->pc[s].kv, 0 };
	sb_t o = SB_INIT;
	sb_addc(&o, '{');
	int rc = 0;
	for (size_t k = 0; k < nko && !rc; k++) {
		uint32_t key = ko[k].key;
		struct aggv *v = g + start[key];
		size_t m = start[key + 1] - start[key];
		for (size_t j = 1; j < m && !rc; j++)
			rc = vstr(&x->vinfo[v[j].vid]) != vstr(&x->vinfo[v[0].vid]);
		if (rc)
			break;
		qsort_r(v, m, sizeof(*v), cmp_aggv, x);
		for (size_t j = 1; j < m && !rc; j++)
			rc = same_value(x, v[j - 1].vid, v[j].vid);
		if (k)
			sb_addc(&o, ',');
		size_t klen;
		const char *kname = st_str(&x->akeys, key, &klen);
		sb_add_json_strn(&o, kname, klen);
		sb_adds(&o, ":[");
		for (size_t j = 0; j < m; j++) {
			size_t vlen;
			const char *raw = st_str(&x->vals, v[j].vid, &vlen);
			if (j)
				sb_addc(&o, ',');
			sb_add(&o, raw, vlen);
		}
		sb_addc(&o, ']');
	}
	sb_addc(&o, '}');
	free(ko);
	free(start);
	free(fill);
	free(g);
	if (rc) {
		sb_release(&o);
		return -1;
	}
	free(x->agg_attributes);
	x->agg_attributes = sb_detach(&o);
	memset(x->aksens, 0, x->nak + 1);
	nko = keys_in_order(x, 1, &ko);
	sb_addc(&o, '[');
	for (size_t k = 0; k < nko; k++) {
		size_t klen;
		const char *kname = st_str(&x->tkeys, ko[k].key, &klen);
		if (k)
			sb_addc(&o, ',');
		sb_add_json_strn(&o, kname, klen);
	}
	sb_addc(&o, ']');
	free(ko);
	free(x->agg_types);
	x->agg_types = sb_detach(&o);
	return 0;
}

/* upstream's aggregates of the whole list, made anew with the counts */
static void aggregate(imgindex_t *x)
{
	count_all(x);
	if (aggregate_from_counts(x))
		aggregate_first_seen(x);
}

/* ---- building ---- */

/* room for about n / 32 more: what the appends after a scan take before
 * an array must grow (a doubling realloc of a block in malloc's heap is a
 * copy: at 10^6 images the first append after a scan held some 70 MB of
 * such copies at once) */
#define ROOM(n) ((n) + (n) / 32 + 1)

/* the arrays grown by doubling, cut to what they hold and some room */
static void shrink(imgindex_t *x)
{
	x->cap = ROOM(x->n);
	x->recs = xrealloc(x->recs, x->cap * sizeof(*x->recs));
	x->cap_attrs = ROOM(x->nattrs);
	x->attrs = xrealloc(x->attrs, x->cap_attrs * sizeof(*x->attrs));
	x->cap_types = ROOM(x->ntypes);
	x->types = xrealloc(x->types, x->cap_types * sizeof(*x->types));
	if (x->zbuf.alloc > ROOM(x->zbuf.len + 1)) {
		x->zbuf.buf = xrealloc(x->zbuf.buf, ROOM(x->zbuf.len + 1));
		x->zbuf.alloc = ROOM(x->zbuf.len + 1);
	}
	sb_shrink(&x->text);
}

/* The scan (see imgindex_build and imgindex_build_take): own is text's
 * block when the index may keep it (then it is freed or kept, never left
 * to the caller). */
static imgindex_t *build(const char *text, size_t len, char *own, sb_t *err)
{
	imgindex_t *x = xcalloc(1, sizeof(*x));
	atomic_init(&x->refs, 1);
	sb_init(&x->text, 0);
	sb_init(&x->dec, 0);
	/* the arrays sized from the text's length at about 160 bytes an
	 * image (a zarr_url, a few attributes and types), rather than grown
	 * from nothing: a block that grows by realloc inside malloc's heap is
	 * copied into fresh pages at every step, and at 10^6 images those
	 * copies and their page faults were half of the scan; shrink() gives
	 * back what the guess left over */
	size_t guess = len / 160 + 64;
	sb_init(&x->zbuf, len / 3 + 64);
	x->cap = guess;
	x->recs = xmalloc(x->cap * sizeof(*x->recs));
	x->cap_attrs = 3 * guess;
	x->attrs = xmalloc(x->cap_attrs * sizeof(*x->attrs));
	x->cap_types = guess;
	x->types = xmalloc(x->cap_types * sizeof(*x->types));
	/* the text as it is read: checked against the input while it is the
	 * same (emit_t), written out from the first byte that is not */
	emit_t out = { &x->text, text, len, 0, len + 16 };
	/* the whitespace between images is kept as it is, so that a list
	 * stored by us (canonical images, spaces left by in-place edits)
	 * reads back as the very same text */
	const char *p = json_skip_ws(text);
	if (*p != '[') {
		sb_adds(err, "the images are not a JSON list");
		goto fail;
	}
	em_add(&out, text, (size_t)(p - text) + 1);
	const char *q = json_skip_ws(p + 1);
	em_add(&out, p + 1, (size_t)(q - p - 1));
	int dangling = 0;
	while (*q && *q != ']') {
		GROW(x->recs, x->n, x->cap);
		const char *e = scan_image(x, q, &x->recs[x->n], &out);
		if (!e) {
			sb_addf(err, "image %zu of the list is not an image object", x->n);
			goto fail;
		}
		x->n++;
		const char *r = json_skip_ws(e);
		em_add(&out, e, (size_t)(r - e));
		if (*r == ',') {
			q = json_skip_ws(r + 1);
			em_add(&out, r, (size_t)(q - r));
			dangling = *q == ']'; /* a trailing comma: refused below */
		} else if (*r == ']') {
			q = r;
		} else {
			sb_addf(err, "the images list breaks off after image %zu", x->n);
			goto fail;
		}
	}
	const char *tail = *q == ']' ? json_skip_ws(q + 1) : q;
	if (*q != ']' || dangling || *tail) {
		sb_adds(err, "the images list breaks off");
		goto fail;
	}
	x->close = em_len(&out);
	em_add(&out, q, (size_t)(tail - q));
	/* read as it is stored: the index keeps the caller's block, or a copy */
	x->verbatim = out.src && out.pos == len;
	if (x->verbatim && own) {
		x->text.buf = xrealloc(own, len + 1); /* (cut to the text) */
		x->text.len = len;
		x->text.alloc = len + 1;
		own = NULL;
	} else if (x->verbatim) {
		sb_grow_exact(&x->text, len);
		sb_add(&x->text, text, len);
	} else if (out.src) {
		/* (every byte the same, but fewer: not the stored text) */
		sb_add(&x->text, text, out.pos);
	}
	free(own);
	size_t live = 2 + (x->n ? x->n - 1 : 0);
	for (size_t i = 0; i < x->n; i++)
		live += x->recs[i].len;
	x->spaces = x->close + 1 - live;
	shrink(x);
	z_rebuild(x);
	aggregate(x);
	return x;
fail:
	free(own);
	imgindex_free(x);
	return NULL;
}

imgindex_t *imgindex_build(const char *text, size_t len, sb_t *err)
{
	return build(text, len, NULL, err);
}

imgindex_t *imgindex_build_take(char *text, size_t len, sb_t *err)
{
	return build(text, len, text, err);
}

imgindex_t *imgindex_ref(imgindex_t *x)
{
	atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
	return x;
}

int imgindex_shared(const imgindex_t *x)
{
	return atomic_load_explicit(&((imgindex_t *)x)->refs, memory_order_acquire) > 1;
}

/* a copy of the n bytes at p (NULL for none) */
static void *dup_block(const void *p, size_t n)
{
	if (!p)
		return NULL;
	void *q = xmalloc(n ? n : 1);
	memcpy(q, p, n);
	return q;
}

/* a copy of sb's string, without slack */
static void sb_dup(sb_t *to, const sb_t *from)
{
	sb_init(to, 0);
	if (!from->len)
		return; /* (a zeroed table's buf is NULL) */
	sb_grow_exact(to, from->len);
	sb_add(to, from->buf, from->len);
}

static void st_dup(strtab_t *to, const strtab_t *from)
{
	*to = *from;
	sb_dup(&to->bytes, &from->bytes);
	to->off = dup_block(from->off, from->cap * sizeof(size_t));
	to->len = dup_block(from->len, from->cap * sizeof(uint32_t));
	to->hash = dup_block(from->hash, from->cap * sizeof(uint32_t));
	to->slots = dup_block(from->slots, from->nslots * sizeof(uint32_t));
}

imgindex_t *imgindex_clone(const imgindex_t *x)
{
	imgindex_t *c = xmalloc(sizeof(*c));
	/* every field but the count, which another holder may be changing */
	size_t from = offsetof(imgindex_t, text);
	memcpy((char *)c + from, (const char *)x + from, sizeof(*c) - from);
	atomic_init(&c->refs, 1);
	sb_dup(&c->text, &x->text);
	c->recs = dup_block(x->recs, x->cap * sizeof(*x->recs));
	sb_dup(&c->zbuf, &x->zbuf);
	c->zslots = dup_block(x->zslots, x->nzslots * sizeof(uint32_t));
	c->attrs = dup_block(x->attrs, x->cap_attrs * sizeof(*x->attrs));
	c->types = dup_block(x->types, x->cap_types * sizeof(*x->types));
	st_dup(&c->akeys, &x->akeys);
	st_dup(&c->tkeys, &x->tkeys);
	st_dup(&c->vals, &x->vals);
	c->vinfo = dup_block(x->vinfo, x->cap_vinfo * sizeof(*x->vinfo));
	sb_dup(&c->dec, &x->dec);
	c->agg_attributes = x->agg_attributes ? xstrdup(x->agg_attributes) : NULL;
	c->agg_types = x->agg_types ? xstrdup(x->agg_types) : NULL;
	c->pc = dup_block(x->pc, x->npc * sizeof(*x->pc));
	/* the per-key arrays have nak + 1 / ntk + 1 elements (counts_fit) */
	c->akcount = dup_block(x->akcount, (x->nak + 1) * sizeof(uint32_t));
	c->akfirst = dup_block(x->akfirst, (x->nak + 1) * sizeof(uint32_t));
	c->aksens = dup_block(x->aksens, x->nak + 1);
	c->tcount = dup_block(x->tcount, (x->ntk + 1) * sizeof(uint32_t));
	c->tkfirst = dup_block(x->tkfirst, (x->ntk + 1) * sizeof(uint32_t));
	return c;
}

void imgindex_free(imgindex_t *x)
{
	if (!x)
		return;
	if (atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) > 1)
		return;
	sb_release(&x->text);
	free(x->recs);
	sb_release(&x->zbuf);
	free(x->zslots);
	free(x->attrs);
	free(x->types);
	st_release(&x->akeys);
	st_release(&x->tkeys);
	st_release(&x->vals);
	free(x->vinfo);
	sb_release(&x->dec);
	free(x->agg_attributes);
	free(x->agg_types);
	free(x->pc);
	free(x->tcount);
	free(x->akcount);
	free(x->akfirst);
	free(x->tkfirst);
	free(x->aksens);
	free(x);
}

size_t imgindex_count(const imgindex_t *x)
{
	return x->n;
}

const char *imgindex_text(const imgindex_t *x, size_t *len)
{
	*len = x->text.len;
	return x->text.buf;
}

const char *imgindex_json(const imgindex_t *x, size_t i, size_t *len)
{
	*len = x->recs[i].len;
	return x->text.buf + x->recs[i].off;
}

const char *imgindex_zarr_url(const imgindex_t *x, size_t i)
{
	return x->zbuf.buf + x->recs[i].zoff;
}

size_t imgindex_bytes(const imgindex_t *x)
{
	return sizeof(*x) + x->text.alloc + x->cap * sizeof(struct rec) + x->zbuf.alloc + x->nzslots * 4 +
	       x->cap_attrs * sizeof(struct apair) + x->cap_types * 4 + st_bytes(&x->akeys) + st_bytes(&x->tkeys) +
	       st_bytes(&x->vals) + x->cap_vinfo * sizeof(struct vinfo) + x->dec.alloc +
	       (x->agg_attributes ? strlen(x->agg_attributes) : 0) + (x->agg_types ? strlen(x->agg_types) : 0);
}

const char *imgindex_attributes(const imgindex_t *x)
{
	return x->agg_attributes;
}

const char *imgindex_types(const imgindex_t *x)
{
	return x->agg_types;
}

size_t imgindex_type_count(const imgindex_t *x)
{
	return x->tkeys.n;
}

const char *imgindex_type_key(const imgindex_t *x, size_t k)
{
	return k < x->tkeys.n ? st_str(&x->tkeys, (uint32_t)k, NULL) : NULL;
}

int imgindex_image_type(const imgindex_t *x, size_t i, size_t k)
{
	const struct rec *r = &x->recs[i];
	for (uint32_t j = 0; j < r->t_n; j++)
		if (x->types[r->t_first + j] >> 1 == k)
			return (int)(x->types[r->t_first + j] & 1);
	return -1;
}

/* ---- filters ---- */

struct tfc {
	long key;            /* -1: no image has this type (it reads as false) */
	int want;
};

struct afc {
	long key;            /* -1: no image has this attribute */
	uint8_t *ok;         /* per value id: 1 when equal to a filter value */
	int has_null;        /* a missing attribute (None) matches */
};

struct imgindex_filter {
	size_t ntf, naf;
	struct tfc *tf;
	struct afc *af;
};

imgindex_filter_t *imgindex_filter_new(const imgindex_t *x, json_t *type_filters, json_t *attribute_filters)
{
	imgindex_filter_t *f = xcalloc(1, sizeof(*f));
	f->tf = xcalloc(json_object_size(type_filters) + 1, sizeof(struct tfc));
	f->af = xcalloc(json_object_size(attribute_filters) + 1, sizeof(struct afc));
	const char *k;
	json_t *v;
	json_object_foreach(type_filters, k, v) {
		f->tf[f->ntf].key = st_intern((strtab_t *)&x->tkeys, k, strlen(k), 0, NULL);
		f->tf[f->ntf++].want = json_is_true(v);
	}
	json_object_foreach(attribute_filters, k, v) {
		struct afc *a = &f->af[f->naf++];
		a->key = st_intern((strtab_t *)&x->akeys, k, strlen(k), 0, NULL);
		a->ok = xcalloc(x->vals.n + 1, 1);
		size_t i;
		json_t *fv;
		json_array_foreach(v, i, fv)
			if (json_is_null(fv))
				a->has_null = 1;
		if (a->key < 0)
			continue;
		/* Python's == once per distinct value */
		for (size_t vid = 0; vid < x->vals.n; vid++) {
			const struct vinfo *vi = &x->vinfo[vid];
			json_array_foreach(v, i, fv)
				if (filters_value_eq_scalar(fv, vi->kind, vi->v.i, vi->v.num, x->dec.buf + vi->doff, vi->dlen)) {
					a->ok[vid] = 1;
					break;
				}
		}
	}
	return f;
}

int imgindex_filter_match(const imgindex_filter_t *f, const imgindex_t *x, size_t i)
{
	const struct rec *r = &x->recs[i];
	const uint32_t *types = x->types + r->t_first;
	for (size_t n = 0; n < f->ntf; n++) {
		int have = 0;
		if (f->tf[n].key >= 0)
			for (uint32_t j = 0; j < r->t_n; j++)
				if ((long)(types[j] >> 1) == f->tf[n].key) {
					have = (int)(types[j] & 1);
					break;
				}
		if (have != f->tf[n].want)
			return 0;
	}
	const struct apair *attrs = x->attrs + r->a_first;
	for (size_t a = 0; a < f->naf; a++) {
		const struct afc *c = &f->af[a];
		long vid = -1;
		if (c->key >= 0)
			for (uint32_t j = 0; j < r->a_n; j++)
				if ((long)attrs[j].key == c->key) {
					vid = attrs[j].vid;
					break;
				}
		if (vid < 0 ? !c->has_null : !c->ok[vid])
			return 0;
	}
	return 1;
}

void imgindex_filter_free(imgindex_filter_t *f)
{
	if (!f)
		return;
	for (size_t a = 0; a < f->naf; a++)
		free(f->af[a].ok);
	free(f->tf);
	free(f->af);
	free(f);
}

/* ---- edits ---- */

/* the room left after ']' when the whole text is written anew: appends
 * then overwrite it in place */
size_t imgindex_reserve(size_t len)
{
	return len / 32 > 4096 ? len / 32 : 4096;
}

size_t imgindex_splice_text(const imgindex_t *x, long at, const char *img, sb_t *out, size_t *n)
{
	const char *t = x->text.buf;
	size_t tl = x->text.len, ilen = img ? strlen(img) : 0;
	size_t from, to;
	if (at < 0) {
		from = x->close;
		to = x->close + 1;
	} else {
		const struct rec *r = &x->recs[at];
		from = r->off, to = r->off + r->len;
		if (!img) {
			if (x->n == 1)
				from = 1, to = x->close;
			else if ((size_t)at + 1 < x->n)
				to = x->recs[at + 1].off;
			else
				from = x->recs[at - 1].off + x->recs[at - 1].len;
		}
	}
	size_t need = at < 0 ? (x->n ? 1 : 0) + ilen + 1 : ilen;
	size_t room = at < 0 ? tl - x->close : to - from;
	int in_place = x->verbatim && need <= room && 2 * (x->spaces + room - need) < tl + 65536;
	if (in_place) {
		/* in place: the same length, [from, from + *n) rewritten, and
		 * only those bytes in out */
		size_t span = at < 0 ? need : room;
		sb_grow_exact(out, span + 1);
		if (at < 0 && x->n)
			sb_addc(out, ',');
		sb_add(out, img ? img : "", ilen);
		if (at < 0)
			sb_addc(out, ']');
		while (out->len < span)
			sb_addc(out, ' ');
		*n = span;
		return from;
	}
	sb_grow_exact(out, tl + need + imgindex_reserve(tl + need) + 1);
	/* anew, without the spaces earlier edits left */
	sb_addc(out, '[');
	size_t k = 0;
	for (size_t i = 0; i < x->n; i++) {
		if ((long)i == at && !img)
			continue;
		if (k++)
			sb_addc(out, ',');
		if ((long)i == at)
			sb_add(out, img, ilen);
		else
			sb_add(out, t + x->recs[i].off, x->recs[i].len);
	}
	if (at < 0) {
		if (k)
			sb_addc(out, ',');
		sb_add(out, img, ilen);
	}
	sb_addc(out, ']');
	for (size_t r = imgindex_reserve(out->len); r; r--)
		sb_addc(out, ' ');
	*n = (size_t)-1;
	return 0;
}

/* drops the pairs and zarr_urls no image points to any more, once they
 * outnumber the live ones */
static void compact(imgindex_t *x)
{
	size_t garbage = x->agarbage + x->tgarbage;
	int pairs = garbage > 4096 && 2 * garbage > x->nattrs + x->ntypes;
	int urls = x->zgarbage > 65536 && 2 * x->zgarbage > x->zbuf.len;
	if (!pairs && !urls)
		return;
	size_t a = 0, t = 0, z = 0;
	for (size_t i = 0; i < x->n; i++) {
		a += x->recs[i].a_n;
		t += x->recs[i].t_n;
		z += strlen(x->zbuf.buf + x->recs[i].zoff) + 1;
	}
	struct apair *na = xmalloc((a + 1) * sizeof(*na));
	uint32_t *nt = xmalloc((t + 1) * sizeof(*nt));
	sb_t nz = SB_INIT;
	sb_grow(&nz, z + 1);
	a = t = 0;
	for (size_t i = 0; i < x->n; i++) {
		struct rec *r = &x->recs[i];
		memcpy(na + a, x->attrs + r->a_first, r->a_n * sizeof(*na));
		r->a_first = (uint32_t)a;
		a += r->a_n;
		memcpy(nt + t, x->types + r->t_first, r->t_n * sizeof(*nt));
		r->t_first = (uint32_t)t;
		t += r->t_n;
		const char *zu = x->zbuf.buf + r->zoff;
		r->zoff = (uint32_t)nz.len;
		sb_add(&nz, zu, strlen(zu) + 1);
	}
	free(x->attrs);
	free(x->types);
	sb_release(&x->zbuf);
	x->attrs = na;
	x->nattrs = a;
	x->cap_attrs = a + 1;
	x->agarbage = 0;
	x->types = nt;
	x->ntypes = t;
	x->cap_types = t + 1;
	x->tgarbage = 0;
	x->zbuf = nz;
	x->zgarbage = 0;
}

static int rec_has_key(const imgindex_t *x, const struct rec *r, int types, uint32_t key)
{
	if (!r)
		return 0;
	if (types) {
		for (uint32_t j = 0; j < r->t_n; j++)
			if (x->types[r->t_first + j] >> 1 == key)
				return 1;
	} else {
		for (uint32_t j = 0; j < r->a_n; j++)
			if (x->attrs[r->a_first + j].key == key)
				return 1;
	}
	return 0;
}

/* Keeps the counts in step when image pos (the old record, or NULL for
 * an append at pos == n) becomes the new one (or NULL: it is removed),
 * and tells what the aggregates need: 0 nothing (no (key, value) pair
 * and no type key came or went, no key's first image changed), 1 to be
 * made from the counts (aggregate_from_counts, after the records are
 * updated), 2 to be made anew from every image: when the edited image was
 * the first with a key it no longer has and others have it (the next one
 * is not known without a pass), or a key it touches is listed in an order
 * that only the images' order decides. */
static int agg_update(imgindex_t *x, const struct rec *old, const struct rec *nw, size_t pos)
{
	if (!x->pc)
		return 2;
	counts_fit(x);
	const struct rec *rs[2] = { old, nw };
	int changed = 0;
	for (int side = 0; side < 2; side++) {
		const struct rec *r = rs[side];
		for (uint32_t j = 0; r && j < r->a_n; j++) {
			const struct apair *a = &x->attrs[r->a_first + j];
			if (x->aksens[a->key])
				return 2;
			struct pcount *c = pc_slot(x, (uint64_t)(a->key + 1) << 32 | a->vid);
			if (side == 0 ? --c->n == 0 : c->n++ == 0)
				changed = 1;
			x->akcount[a->key] += side == 0 ? -1u : 1u;
		}
		for (uint32_t j = 0; r && j < r->t_n; j++) {
			uint32_t key = x->types[r->t_first + j] >> 1;
			if (side == 0 ? --x->tcount[key] == 0 : x->tcount[key]++ == 0)
				changed = 1;
		}
	}
	/* the first image of each key the edit touches */
	for (int types = 0; types < 2; types++) {
		uint32_t *first = types ? x->tkfirst : x->akfirst, *count = types ? x->tcount : x->akcount;
		for (int side = 0; side < 2; side++) {
			const struct rec *r = rs[side];
			uint32_t nm = !r ? 0 : types ? r->t_n : r->a_n;
			for (uint32_t j = 0; j < nm; j++) {
				uint32_t key = types ? x->types[r->t_first + j] >> 1 : x->attrs[r->a_first + j].key;
				if (side == 0 && first[key] == pos) {
					if (!rec_has_key(x, nw, types, key)) {
						if (count[key])
							return 2;
						first[key] = UINT32_MAX;
					}
					changed = 1; /* its place among the members may differ */
				} else if (side == 1 && (first[key] == UINT32_MAX || first[key] > pos)) {
					first[key] = (uint32_t)pos;
					changed = 1;
				}
			}
		}
		if (old && !nw) {
			/* a removal: the later first images move up */
			size_t nk = types ? x->ntk : x->nak;
			for (size_t k = 0; k < nk; k++)
				if (first[k] != UINT32_MAX && first[k] > pos)
					first[k]--;
		}
	}
	return changed;
}

int imgindex_apply(imgindex_t *x, long at, const char *img, sb_t *newtext, size_t from, size_t changed)
{
	struct rec nr = { 0 };
	size_t ilen = img ? strlen(img) : 0;
	int whole = changed == (size_t)-1;
	if (!whole && (from + changed > x->text.len || changed != newtext->len))
		return -1;
	if (img) {
		sb_t scratch = SB_INIT;
		emit_t out = { &scratch, NULL, 0, 0, 0 };
		size_t na = x->nattrs, nt = x->ntypes, nz = x->zbuf.len;
		const char *e = scan_image(x, json_skip_ws(img), &nr, &out);
		sb_release(&scratch);
		if (!e) {
			x->nattrs = na, x->ntypes = nt, x->zbuf.len = nz;
			x->zbuf.buf[nz] = '\0';
			return -1;
		}
	}
	int agg = agg_update(x, at >= 0 ? &x->recs[at] : NULL, img ? &nr : NULL, at >= 0 ? (size_t)at : x->n);
	int rehash = 0;
	if (at < 0) {
		GROW(x->recs, x->n, x->cap);
		nr.off = x->close + (x->n ? 1 : 0);
		nr.len = (uint32_t)ilen;
		x->close = nr.off + ilen;
		x->recs[x->n++] = nr;
		if (2 * x->n + 2 > x->nzslots)
			rehash = 1;
		else
			z_insert(x, x->n - 1);
	} else {
		struct rec *old = &x->recs[at];
		x->agarbage += old->a_n;
		x->tgarbage += old->t_n;
		x->zgarbage += strlen(x->zbuf.buf + old->zoff) + 1;
		if (img) {
			rehash = strcmp(x->zbuf.buf + old->zoff, x->zbuf.buf + nr.zoff) != 0;
			nr.off = old->off;
			nr.len = (uint32_t)ilen;
			*old = nr;
		} else {
			rehash = z_remove(x, (size_t)at) != 0;
			memmove(old, old + 1, (x->n - (size_t)at - 1) * sizeof(*old));
			x->n--;
		}
	}
	if (whole) {
		/* written anew: the images back to back */
		size_t off = 1;
		for (size_t i = 0; i < x->n; i++) {
			x->recs[i].off = off;
			off += x->recs[i].len + 1;
		}
		x->close = x->n ? off - 1 : 1;
		x->spaces = 0;
		sb_release(&x->text);
		x->text = *newtext;
		sb_init(newtext, 0);
	} else {
		/* in place: the text keeps its length and offsets; a removal
		 * leaves the close where it was, its bytes now spaces */
		memcpy(x->text.buf + from, newtext->buf, changed);
		x->spaces = x->spaces + changed - (at < 0 ? changed : ilen);
	}
	x->verbatim = 1;
	compact(x);
	if (rehash)
		z_rebuild(x);
	if (agg == 2 || (agg == 1 && aggregate_from_counts(x)))
		aggregate(x);
	return 0;
}
