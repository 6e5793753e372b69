/* images.h — a dataset's images (upstream's SingleImage and its filters):
 * validation of image and filter JSON, the aggregation of attributes and
 * types, and serialisation in SingleImage's field order (the matching rules
 * are model/filters.h's). The list itself lives in datasetv2.images as one JSON array.
 * Functions taking a verr_t add pydantic-shaped errors at loc (borrowed). */
#ifndef IMAGES_H
#define IMAGES_H

#include <jansson.h>

#include "model/validate.h"
#include "util/sb.h"

/* ZarrUrlStr/ZarrDirStr: stripped, no ".." component, then "/..."
 * normpath'd or "s3://..." without trailing slashes. Returns a malloc'd
 * string, or NULL with a static reason in *why. */
char *zarr_url_normalise(const char *in, const char **why);
/* url_is_relative_to for normalised local paths and s3 URLs. */
int url_is_relative_to(const char *url, const char *base);
/* The same, and for a local path also once the symbolic links of both are
 * resolved as far as the paths exist on this machine (realpath of the
 * longest existing ancestor, then the rest), so that a link inside base
 * that points elsewhere does not count as inside it. Ours: upstream checks
 * the strings only. */
int url_is_really_relative_to(const char *url, const char *base);

/* SingleImage: returns a new object {zarr_url, origin, attributes, types}
 * or NULL after adding errors. */
json_t *image_validate(json_t *in, json_t *loc, verr_t *e);
/* TypeFilters / AttributeFilters; NULL after adding errors. */
json_t *type_filters_validate(json_t *in, json_t *loc, verr_t *e);
json_t *attribute_filters_validate(json_t *in, json_t *loc, verr_t *e);

/* Appends one image in SingleImage field order. */
void image_dump(sb_t *out, json_t *img);
/* Appends the "attributes" object and "types" list that upstream's
 * aggregate_attributes / aggregate_types compute over images. */
void images_aggregate(json_t *images, sb_t *attributes, sb_t *types);

#endif
