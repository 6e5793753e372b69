/* imgindex.h — a compact index of one dataset's image list, built by one
 * scan of the stored text and kept in step with edits, so that neither a
 * read nor a write of one image parses or rebuilds the whole list.
 *
 * What it holds (docs/images.md has the sizes):
 * - the list's text, "[img,img,...]", each image in our canonical form
 *   (SingleImage field order, no whitespace), the whitespace between them
 *   as stored: what we store on SQLite, and what an answer copies; each
 *   image is a span of it;
 * - per image, its zarr_url (decoded, NUL-terminated, in a side buffer), its
 *   attributes as (key, value) number pairs and its types as (key, bool)
 *   pairs; keys and values are interned once per list;
 * - a hash table zarr_url -> the first image with it;
 * - the dataset-wide "attributes" and "types" aggregates, recomputed from
 *   the pairs (not the text) after each edit.
 * An edit splices the text (the caller stores the new text, or lets the
 * engine edit its own copy) and updates the pairs of one image; removing
 * an image shifts the later images' offsets (one pass over small records).
 *
 * Matching follows model/filters.h's rules: a compiled filter evaluates
 * Python's == once per distinct value, then each image is a few integer
 * comparisons. Nothing here knows about HTTP, the database or threads: the
 * caller (model/imgcache.c) serialises edits against reads. */
#ifndef IMGINDEX_H
#define IMGINDEX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sb.h"

typedef struct imgindex imgindex_t;

/* Scans the stored text (len bytes, NUL-terminated: a JSON array of image
 * objects, our form or PostgreSQL's jsonb output) into a new index, or
 * NULL when it is not such an array (the reason in err). Free with
 * imgindex_free. */
imgindex_t *imgindex_build(const char *text, size_t len, sb_t *err);
/* The same, taking text (a malloc'd block of at least len + 1 bytes): a
 * list read as it is stored (ours: canonical images) becomes the index's
 * text as it is, without a copy; else, or on failure, text is freed. */
imgindex_t *imgindex_build_take(char *text, size_t len, sb_t *err);
/* Drops one reference to x (NULL is fine); the last frees it. */
void imgindex_free(imgindex_t *x);

/* Sharing: an index is built with one reference; imgindex_ref adds one
 * (returns x) for another holder, who drops it with imgindex_free. The
 * count is atomic, so holders may be threads of their own; an index is
 * edited (imgindex_apply) only by a sole holder: one that finds it shared
 * edits a copy (imgindex_clone: the same index, one reference, nothing
 * shared with x) and lets go of x, so that what another holder reads never
 * changes under it (the images cache and a running job share the list's
 * index so). */
imgindex_t *imgindex_ref(imgindex_t *x);
int imgindex_shared(const imgindex_t *x);
imgindex_t *imgindex_clone(const imgindex_t *x);

size_t imgindex_count(const imgindex_t *x);
/* The whole list in canonical form ("[...]", NUL-terminated). */
const char *imgindex_text(const imgindex_t *x, size_t *len);
/* Image i in canonical form (not NUL-terminated). */
const char *imgindex_json(const imgindex_t *x, size_t i, size_t *len);
const char *imgindex_zarr_url(const imgindex_t *x, size_t i);
/* The first image with this zarr_url, or -1. */
long imgindex_find(const imgindex_t *x, const char *zarr_url);
/* Bytes held (text, records, pairs, tables): the cache's budget unit. */
size_t imgindex_bytes(const imgindex_t *x);

const char *imgindex_attributes(const imgindex_t *x);
const char *imgindex_types(const imgindex_t *x);

/* The type keys seen in the list, numbered 0..imgindex_type_count()-1;
 * the value of type k in image i: 1, 0, or -1 when unset. */
size_t imgindex_type_count(const imgindex_t *x);
const char *imgindex_type_key(const imgindex_t *x, size_t k);
int imgindex_image_type(const imgindex_t *x, size_t i, size_t k);

/* A query's filters resolved against the index (either may be NULL or
 * empty). Valid until the index is next edited; free with
 * imgindex_filter_free (NULL is fine). */
typedef struct imgindex_filter imgindex_filter_t;
imgindex_filter_t *imgindex_filter_new(const imgindex_t *x, json_t *type_filters, json_t *attribute_filters);
int imgindex_filter_match(const imgindex_filter_t *f, const imgindex_t *x, size_t i);
void imgindex_filter_free(imgindex_filter_t *f);

/* ---- edits ----
 * One edit is: at >= 0 with img: replace image at by img; at >= 0 without
 * img (NULL): remove image at; at < 0: append img. img is one image's JSON
 * text (any form the scan reads; image_dump's is canonical already). */

/* The spaces a list text of len bytes is stored with after its ']' when it
 * is written whole, so that the appends after it are made in place. */
size_t imgindex_reserve(size_t len);
/* What the edit makes of the list's text, appended to out (empty; the
 * index is unchanged). When the index's text is the stored one byte for
 * byte (after our own writes) and the edit fits, it is made in place: the
 * text keeps its length, a removed image or the rest of a shorter one
 * turns into spaces, an appended one takes room left after the ']' (each
 * text written anew gets some); then out holds only the rewritten bytes,
 * the result is their offset in the text and *n their number, so that an
 * engine storing text writes only those, and nothing costs a copy of the
 * whole list. Else out holds the whole new text, the result is 0 and *n
 * is (size_t)-1. */
size_t imgindex_splice_text(const imgindex_t *x, long at, const char *img, sb_t *out, size_t *n);
/* Applies the edit, with what imgindex_splice_text made for it: from and
 * changed are its result and *n; newtext its out (the whole text's buffer
 * becomes the index's, and newtext is left empty; rewritten bytes are
 * copied in place). The index's text is then taken to be the stored one.
 * The aggregates are brought up to date from per-pair counts, and made
 * anew from every image only when an order-dependent listing or a key's
 * first image asks for it. Returns 0, or -1 when img does not scan as an
 * image or the bytes do not fit the text (nothing changed). */
int imgindex_apply(imgindex_t *x, long at, const char *img, sb_t *newtext, size_t from, size_t changed);

#endif
