/* test_imgindex.c — src/model/imgindex.c against the JSON-tree forms it
 * replaces on the request path: the filter cases of filter_cases.json
 * (argv[1]) against filters_match(), and random lists and random edits
 * (append, replace, remove) against a jansson array edited alongside: after
 * every edit the index's text must be the canonical dump of the array
 * (image_dump of each image), its aggregates images_aggregate()'s, its
 * zarr_url lookups and random filters the JSON tree's answers. The lists
 * are also read in PostgreSQL's jsonb output form (spaces, other key
 * order), which must give the same index. */
#include <jansson.h>
#include <stdlib.h>

#include "model/filters.h"
#include "model/images.h"
#include "model/imgindex.h"
#include "unit.h"

/* model/images.c's validation (not tested here) orders keys with
 * model/task.c's jsonb_ordered, which needs the database layer: the link
 * gets this one instead, never called by what is tested */
json_t *jsonb_ordered(json_t *obj);
json_t *jsonb_ordered(json_t *obj)
{
	return json_incref(obj);
}

static imgindex_t *index_of(json_t *images, size_t flags)
{
	/* every other index takes the text's block (imgindex_build_take:
	 * kept when read as it is, copied from the first byte that is not) */
	static int take;
	char *text = json_dumps(images, flags);
	sb_t err = SB_INIT;
	imgindex_t *x = (take ^= 1) ? imgindex_build_take(text, strlen(text), &err)
				    : imgindex_build(text, strlen(text), &err);
	if (!x)
		fprintf(stderr, "    build: %s\n", err.buf);
	sb_release(&err);
	if (!take)
		free(text);
	return x;
}

static void table_cases(const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	if (!CHECK(doc != NULL))
		return;
	json_t *images = json_object_get(doc, "images"), *cases = json_object_get(doc, "cases");
	imgindex_t *x = index_of(images, JSON_COMPACT);
	if (!CHECK(x != NULL))
		return;
	CHECK_INT(imgindex_count(x), json_array_size(images));
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		json_t *tf = json_array_get(c, 0), *af = json_array_get(c, 1);
		imgindex_filter_t *f = imgindex_filter_new(x, tf, af);
		size_t k;
		json_t *img;
		json_array_foreach(images, k, img)
			if (!CHECK(imgindex_filter_match(f, x, k) == filters_match(img, tf, af))) {
				char *s = json_dumps(c, JSON_COMPACT);
				fprintf(stderr, "    case %zu %s, image %zu\n", i, s, k);
				free(s);
			}
		imgindex_filter_free(f);
	}
	imgindex_free(x);
	json_decref(doc);
}

static unsigned long long rnd_state = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

static int mixed = 1; /* key 3 takes values of any kind */

static json_t *rnd_value(int key)
{
	switch (key == 3 && mixed ? (int)rnd(4) : key % 4) {
	case 0: {
		char s[16];
		snprintf(s, sizeof(s), rnd(8) ? "W%02u" : "\xc3\xa9\\\"%u", rnd(6));
		return json_string(s);
	}
	case 1:
		return json_integer((json_int_t)rnd(5) - 1);
	case 2:
		return json_real(rnd(3) ? (double)rnd(8) / 4 : (double)rnd(3));
	default:
		return json_boolean(rnd(2));
	}
}

static const char *akeys[] = { "well", "n", "f", "mix", "b" };
static const char *tkeys[] = { "is_3D", "label", "mip" };

static json_t *rnd_image(unsigned id)
{
	char zu[64];
	snprintf(zu, sizeof(zu), "/z/p.zarr/%u/%s", id, id % 7 ? "0" : "d\\e");
	json_t *a = json_object(), *t = json_object();
	for (int k = 0; k < 5; k++)
		if (rnd(4))
			json_object_set_new(a, akeys[k], rnd_value(k));
	for (int k = 0; k < 3; k++)
		if (rnd(2))
			json_object_set_new(t, tkeys[k], json_boolean(rnd(2)));
	return json_pack("{s:s,s:o,s:o,s:o}", "zarr_url", zu, "origin", rnd(3) ? json_null() : json_string("/z/o"),
			 "attributes", a, "types", t);
}

static json_t *rnd_filter(int types)
{
	json_t *f = json_object();
	if (types) {
		for (int k = 0; k < 3; k++)
			if (!rnd(3))
				json_object_set_new(f, tkeys[k], json_boolean(rnd(2)));
		return f;
	}
	for (int k = 0; k < 5; k++)
		if (!rnd(3)) {
			json_t *vals = json_array();
			for (unsigned m = 1 + rnd(3); m; m--)
				json_array_append_new(vals, rnd_value(k));
			json_object_set_new(f, akeys[k], vals);
		}
	return f;
}

/* the index says what the array says */
static void same(const imgindex_t *x, json_t *arr, const char *when)
{
	size_t len;
	const char *text = imgindex_text(x, &len);
	json_t *all = json_loadb(text, len, 0, NULL);
	if (!CHECK(json_equal(all, arr)))
		fprintf(stderr, "    %s: text\n    got  %.300s\n", when, text);
	json_decref(all);
	size_t i;
	json_t *img;
	sb_t want = SB_INIT;
	json_array_foreach(arr, i, img) {
		sb_reset(&want);
		image_dump(&want, img);
		const char *js = i < imgindex_count(x) ? imgindex_json(x, i, &len) : "";
		if (!CHECK(i < imgindex_count(x) && len == want.len && !memcmp(js, want.buf, len)))
			fprintf(stderr, "    %s: image %zu\n    got  %.*s\n    want %s\n", when, i, (int)len, js, want.buf);
	}
	CHECK_INT(imgindex_count(x), json_array_size(arr));
	sb_t wa = SB_INIT, wt = SB_INIT;
	images_aggregate(arr, &wa, &wt);
	json_t *ga = json_loads(imgindex_attributes(x), 0, NULL), *gt = json_loads(imgindex_types(x), 0, NULL);
	json_t *ea = json_loads(wa.buf, 0, NULL), *et = json_loads(wt.buf, 0, NULL);
	if (!CHECK(json_equal(ga, ea) && json_equal(gt, et)))
		fprintf(stderr, "    %s: aggregates\n    got  %s %s\n    want %s %s\n", when, imgindex_attributes(x),
			imgindex_types(x), wa.buf, wt.buf);
	json_decref(ga);
	json_decref(gt);
	json_decref(ea);
	json_decref(et);
	sb_release(&wa);
	sb_release(&wt);
	sb_release(&want);
	json_array_foreach(arr, i, img) {
		const char *zu = json_string_value(json_object_get(img, "zarr_url"));
		CHECK_STR(imgindex_zarr_url(x, i), zu);
		long first = -1;
		for (size_t k = 0; k < json_array_size(arr) && first < 0; k++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(arr, k), "zarr_url")), zu))
				first = (long)k;
		CHECK_INT(imgindex_find(x, zu), first);
	}
	CHECK_INT(imgindex_find(x, "/nowhere"), -1);
	for (int q = 0; q < 5; q++) {
		json_t *tf = rnd_filter(1), *af = rnd_filter(0);
		imgindex_filter_t *f = imgindex_filter_new(x, tf, af);
		int bad = 0;
		json_array_foreach(arr, i, img)
			bad += imgindex_filter_match(f, x, i) != filters_match(img, tf, af);
		if (!CHECK(bad == 0)) {
			char *s = json_dumps(tf, 0), *t = json_dumps(af, 0);
			fprintf(stderr, "    %s: filter %s %s: %d differ\n", when, s, t, bad);
			free(s);
			free(t);
		}
		imgindex_filter_free(f);
		json_decref(tf);
		json_decref(af);
	}
}

/* One edit, as the cache makes it: the engine's copy (stored) gets the
 * whole text or only the bytes said to change, and must then be the
 * index's text, and read back as an index of the same text. */
static int edit(imgindex_t *x, long at, const char *img, sb_t *stored)
{
	sb_t text = SB_INIT;
	size_t n, from = imgindex_splice_text(x, at, img, &text, &n);
	if (n == (size_t)-1) {
		sb_reset(stored);
		sb_add(stored, text.buf, text.len);
	} else if (CHECK(text.len == n && from + n <= stored->len)) {
		memcpy(stored->buf + from, text.buf, n);
	}
	int rc = imgindex_apply(x, at, img, &text, from, n);
	sb_release(&text);
	if (rc)
		return rc;
	size_t len;
	const char *t = imgindex_text(x, &len);
	if (!CHECK(len == stored->len && !memcmp(t, stored->buf, len)))
		fprintf(stderr, "    stored text differs after an edit at %ld (%s)\n", at, n == (size_t)-1 ? "whole" : "in place");
	return 0;
}

static void random_edits(void)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < 200; i++)
		json_array_append_new(arr, rnd_image(i));
	json_array_append(arr, json_array_get(arr, 5)); /* a repeated zarr_url: the first one counts */
	imgindex_t *x = index_of(arr, JSON_COMPACT);
	if (!CHECK(x != NULL))
		return;
	same(x, arr, "built");
	/* PostgreSQL's jsonb output: spaces after ':' and ',' (the images come
	 * out canonical, the spaces between them stay) */
	imgindex_t *y = index_of(arr, 0);
	if (CHECK(y != NULL))
		same(y, arr, "spaced");
	imgindex_free(y);
	sb_t stored = SB_INIT;
	char *first = json_dumps(arr, JSON_COMPACT);
	sb_adds(&stored, first);
	free(first);
	unsigned next = 1000;
	/* copy-on-write, as the cache and a job share an index: every 50
	 * steps another holder keeps the index as it is, and the edits go to
	 * a clone of it; 25 steps on, the held one must still be what it was */
	imgindex_t *held = NULL;
	json_t *held_arr = NULL;
	for (int step = 0; step < 600; step++) {
		if (step % 50 == 0) {
			held = imgindex_ref(x);
			held_arr = json_deep_copy(arr);
			CHECK(imgindex_shared(x));
			imgindex_t *c = imgindex_clone(x);
			imgindex_free(x);
			x = c;
			CHECK(!imgindex_shared(x) && !imgindex_shared(held));
		} else if (step % 50 == 25) {
			same(held, held_arr, "held while its clone was edited");
			same(x, arr, "the clone");
			imgindex_free(held);
			json_decref(held_arr);
			held = NULL;
		}
		size_t n = json_array_size(arr);
		unsigned op = n ? rnd(3) : 0;
		long at = op == 0 ? -1 : (long)rnd((unsigned)n);
		json_t *img = NULL;
		sb_t js = SB_INIT;
		if (op != 2) {
			img = op == 1 && rnd(2) ? json_deep_copy(json_array_get(arr, (size_t)at)) : rnd_image(next++);
			if (op == 1)
				json_object_set(img, "zarr_url", json_object_get(json_array_get(arr, (size_t)at), "zarr_url"));
			/* half the steps bring a new value; the others only values
			 * already there, so that the aggregates often stay as they are */
			if (step < 300)
				json_object_set_new(json_object_get(img, "attributes"), "step", json_integer(step));
			image_dump(&js, img);
		}
		CHECK(edit(x, at, img ? js.buf : NULL, &stored) == 0);
		if (op == 0)
			json_array_append_new(arr, img);
		else if (op == 1)
			json_array_set_new(arr, (size_t)at, img);
		else
			json_array_remove(arr, (size_t)at);
		sb_release(&js);
		mixed = step < 200;
		if (step % 5 == 0 || step > 590) {
			char when[32];
			snprintf(when, sizeof(when), "after step %d", step);
			same(x, arr, when);
			/* what we stored reads back as the very same text */
			sb_t err = SB_INIT;
			imgindex_t *back = step % 2 ? imgindex_build(stored.buf, stored.len, &err)
						    : imgindex_build_take(xstrndup(stored.buf, stored.len), stored.len, &err);
			size_t a, b = 0;
			const char *ta = imgindex_text(x, &a), *tb = back ? imgindex_text(back, &b) : "";
			CHECK(back && a == b && !memcmp(ta, tb, a));
			if (back)
				same(back, arr, when);
			/* the aggregates kept in step are those made anew, byte for byte
			 * (key order included) */
			if (back && !CHECK(!strcmp(imgindex_attributes(x), imgindex_attributes(back)) &&
					   !strcmp(imgindex_types(x), imgindex_types(back))))
				fprintf(stderr, "    %s: kept %s %s\n    anew %s %s\n", when, imgindex_attributes(x),
					imgindex_types(x), imgindex_attributes(back), imgindex_types(back));
			imgindex_free(back);
			sb_release(&err);
		}
	}
	/* down to nothing, and back */
	while (json_array_size(arr)) {
		size_t k = rnd((unsigned)json_array_size(arr));
		CHECK(edit(x, (long)k, NULL, &stored) == 0);
		json_array_remove(arr, k);
	}
	same(x, arr, "emptied");
	json_t *img = rnd_image(7);
	sb_t js = SB_INIT;
	image_dump(&js, img);
	CHECK(edit(x, -1, js.buf, &stored) == 0);
	json_array_append_new(arr, img);
	same(x, arr, "refilled");
	/* not an image: refused, nothing changed */
	CHECK(edit(x, -1, "[1]", &stored) == -1);
	sb_reset(&stored);
	size_t len;
	sb_adds(&stored, imgindex_text(x, &len));
	same(x, arr, "refused");
	sb_release(&js);
	sb_release(&stored);
	imgindex_free(x);
	json_decref(arr);
}

static void malformed(void)
{
	const char *bad[] = { "", "{}", "[", "[1]", "[{\"zarr_url\": \"/a\"", "[{\"zarr_url\": \"/a\"} {}]",
			      "[{\"attributes\": {\"a\" 1}}]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		sb_t err = SB_INIT;
		imgindex_t *x = imgindex_build(bad[i], strlen(bad[i]), &err);
		if (!CHECK(x == NULL && err.len > 0))
			fprintf(stderr, "    accepted %s\n", bad[i]);
		imgindex_free(x);
		sb_release(&err);
		/* taken, the block is freed (ASan's leak check tells) */
		x = imgindex_build_take(xstrdup(bad[i]), strlen(bad[i]), &err);
		CHECK(x == NULL && err.len > 0);
		sb_release(&err);
	}
	/* types and keys of an empty and a sparse list */
	sb_t err = SB_INIT;
	imgindex_t *x = imgindex_build("[]", 2, &err);
	CHECK(x && imgindex_count(x) == 0 && !strcmp(imgindex_attributes(x), "{}") && !strcmp(imgindex_types(x), "[]"));
	imgindex_free(x);
	const char *t = "[{\"zarr_url\": \"/a\", \"types\": {\"3D\": true, \"mip\": false}}, {\"zarr_url\": \"/b\"}, "
			"{\"zarr_url\": \"/c\", \"types\": {\"label\": true, \"3D\": false}}]";
	x = imgindex_build(t, strlen(t), &err);
	if (CHECK(x != NULL)) {
		CHECK_INT(imgindex_type_count(x), 3);
		CHECK_STR(imgindex_type_key(x, 2), "label");
		CHECK(imgindex_type_key(x, 3) == NULL);
		CHECK_INT(imgindex_image_type(x, 0, 0), 1);
		CHECK_INT(imgindex_image_type(x, 0, 1), 0);
		CHECK_INT(imgindex_image_type(x, 1, 0), -1);
		CHECK_INT(imgindex_image_type(x, 2, 0), 0);
		size_t len;
		imgindex_json(x, 1, &len);
		CHECK_INT(len, strlen("{\"zarr_url\":\"/b\",\"origin\":null,\"attributes\":{},\"types\":{}}"));
	}
	imgindex_free(x);
	/* a missing attribute is None: only a None filter value matches it */
	t = "[{\"zarr_url\": \"/a\", \"attributes\": {}}, {\"zarr_url\": \"/b\", \"attributes\": {\"x\": 0}}]";
	x = imgindex_build(t, strlen(t), &err);
	json_t *af = json_loads("{\"x\": [null]}", 0, NULL), *af0 = json_loads("{\"x\": [false]}", 0, NULL);
	imgindex_filter_t *f = imgindex_filter_new(x, NULL, af), *f0 = imgindex_filter_new(x, NULL, af0);
	CHECK(imgindex_filter_match(f, x, 0) && !imgindex_filter_match(f, x, 1));
	CHECK(!imgindex_filter_match(f0, x, 0) && imgindex_filter_match(f0, x, 1));
	imgindex_filter_free(f);
	imgindex_filter_free(f0);
	json_decref(af);
	json_decref(af0);
	imgindex_free(x);
	sb_release(&err);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s filter_cases.json\n", argv[0]);
		return 2;
	}
	table_cases(argv[1]);
	random_edits();
	malformed();
	return unit_done("imgindex");
}
