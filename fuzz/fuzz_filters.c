/* fuzz_filters.c — libFuzzer target for model/filters.c (and the image and
 * filter validators of model/images.c that feed it) and the image index of
 * model/imgindex.c that the images routes query.
 *
 * The input is a JSON array [images, type_filters, attribute_filters]
 * (anything else is used as far as it fits). The filters go through the
 * images routes' validators; the images are indexed raw and, those that
 * validate, as validated. The check: for every validated image, the
 * index's match (the images routes) answers what the JSON-tree match (the
 * runner) answers, and the type-filter merge either fails with its message
 * or holds both sides' keys; a validated image's dump reads back as the
 * image. */
#include <assert.h>
#include <string.h>

#include "fuzz.h"
#include "model/filters.h"
#include "model/images.h"
#include "model/imgindex.h"

/* The images as stored text into an index (model/imgindex.c, what the
 * images routes query): when it builds, it holds every image, their types
 * as the JSON says, and its compiled match answers what the JSON-tree
 * match (the runner's) answers. check_match is 0 for raw images, whose
 * values the validators would refuse: the index may read those
 * differently, so only that it builds or refuses cleanly is checked. */
static void check_index(json_t *images, json_t *tf, json_t *af, int check_match)
{
	char *text = json_dumps(images, JSON_COMPACT);
	if (!text)
		return;
	sb_t err = SB_INIT;
	imgindex_t *x = imgindex_build(text, strlen(text), &err);
	free(text);
	sb_release(&err);
	if (!x) {
		assert(!check_match);
		return;
	}
	assert(imgindex_count(x) == json_array_size(images));
	size_t i;
	json_t *img;
	if (check_match) {
		for (size_t k = 0; k < imgindex_type_count(x); k++) {
			const char *key = imgindex_type_key(x, k);
			json_array_foreach(images, i, img) {
				json_t *v = json_object_get(json_object_get(img, "types"), key);
				int want = json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
				assert(imgindex_image_type(x, i, k) == want);
			}
		}
		imgindex_filter_t *f = imgindex_filter_new(x, tf, af);
		json_array_foreach(images, i, img)
			assert(imgindex_filter_match(f, x, i) == filters_match(img, tf, af));
		imgindex_filter_free(f);
	}
	imgindex_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *in = fuzz_json(data, size);
	if (!in)
		return 0;
	json_t *images = json_array_get(in, 0), *tf_in = json_array_get(in, 1), *af_in = json_array_get(in, 2);
	if (!json_is_array(images))
		images = NULL;
	json_t *loc = json_array();
	verr_t e;
	verr_init(&e);
	json_t *tf = tf_in ? type_filters_validate(tf_in, loc, &e) : NULL;
	json_t *af = af_in ? attribute_filters_validate(af_in, loc, &e) : NULL;

	json_t *valid = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		json_t *v = image_validate(img, loc, &e);
		if (v) {
			sb_t dump = SB_INIT;
			image_dump(&dump, v);
			json_t *back = json_loadb(dump.buf, dump.len, 0, NULL);
			assert(back && json_equal(back, v));
			json_decref(back);
			sb_release(&dump);
			json_array_append_new(valid, v);
		}
	}
	if (images)
		check_index(images, tf, af, 0);
	check_index(valid, tf, af, 1);
	sb_t a = SB_INIT, t = SB_INIT;
	images_aggregate(valid, &a, &t);
	sb_release(&a);
	sb_release(&t);

	if (json_is_object(tf_in)) {
		/* the task's input types against the validated filters */
		sb_t err = SB_INIT;
		json_t *m = filters_merge_types(tf_in, tf, &err);
		if (m) {
			const char *k;
			json_t *v;
			json_object_foreach(tf, k, v)
				assert(json_equal(json_object_get(m, k), v));
			json_decref(m);
		} else {
			assert(!strncmp(err.buf, "Cannot merge type filters `", 27));
		}
		sb_release(&err);
	}
	verr_free(&e);
	json_decref(loc);
	json_decref(tf);
	json_decref(af);
	json_decref(valid);
	json_decref(in);
	return 0;
}
