/* validate.h — value validation the way pydantic (lax mode) does it, and
 * the list of its errors, each {"type", "loc", "msg", "input"[, "ctx"]} as
 * upstream's 422 bodies hold them. It knows no HTTP: the API reads request
 * parameters and answers the 422 through api/params.h; the runner and task
 * collection validate task outputs and manifests with the same tables.
 *
 * A model is a table of vfield_t; v_object() returns a new object holding
 * only the fields that were sent (pydantic's exclude_unset), each coerced
 * to its type (a numeric string for an int, "true" for a bool, a stripped
 * NonEmptyStr, ...). Every error is reported at once, in field order, then
 * extra fields, as pydantic does. */
#ifndef VALIDATE_H
#define VALIDATE_H

#include <jansson.h>
#include <stdint.h>

#include "util/sb.h"

enum vtype {
	V_ANY,         /* any JSON value */
	V_STR,         /* str */
	V_NONEMPTY,    /* NonEmptyStr: stripped, at least 1 character */
	V_INT,         /* int */
	V_NONNEG,      /* NonNegativeInt */
	V_FLOAT,       /* float */
	V_BOOL,        /* bool */
	V_EMAIL,       /* EmailStr (lower-cased domain, as email-validator) */
	V_DICT,        /* dict[str, Any] */
	V_LIST,        /* list[item] */
};

/* A custom check (pydantic's AfterValidator): may replace *val (steal the
 * reference it gets and return a new one); returns NULL on success or an
 * error message (static or in msg) for a "Value error, <msg>". */
typedef const char *(*vcheck_fn)(json_t **val, sb_t *msg);

typedef struct vfield {
	const char *name;
	enum vtype type;
	int required;
	int nullable;            /* "X | None" */
	enum vtype item;         /* V_LIST: the items' type */
	vcheck_fn check;         /* after the type check, or NULL */
	const char *pattern;     /* strings: a POSIX ERE they must match, or NULL */
	int min_length;          /* lists: at least this many items */
	int max_length;          /* strings: at most this many characters (0: any) */
} vfield_t;

/*
 * The longest text accepted for a column PostgreSQL indexes (a group, task,
 * template, resource or profile name, a task-group path, an image's
 * zarr_url): 512 characters are at most 2,048 bytes of UTF-8, under the
 * btree's limit of about 2,700 bytes per index row with room for the row's
 * other columns. Upstream has no such limit and answers PostgreSQL's "index
 * row size exceeds maximum" as a 500; SQLite has none at all. See
 * docs/security.md.
 */
#define V_INDEXED_MAX_LENGTH 512

/* An error list being built. */
typedef struct verr {
	json_t *list;
} verr_t;

void verr_init(verr_t *e);
/* Adds one error; loc is stolen; input borrowed (NULL: JSON null); ctx stolen (may be NULL). */
void verr_add(verr_t *e, const char *type, json_t *loc, const char *msg, json_t *input, json_t *ctx);
/* pydantic's model_attributes_type: a model's input that is not an object
 * (loc stolen, input borrowed, as verr_add). */
void v_add_not_object(verr_t *e, json_t *loc, json_t *input);
/* pydantic's string_too_long for a max_length constraint (loc stolen,
 * input borrowed). */
void v_add_too_long(verr_t *e, json_t *loc, json_t *input, int max_length);
/* The number of characters (code points) of a UTF-8 string of n bytes. */
size_t v_utf8_chars(const char *s, size_t n);
void verr_free(verr_t *e);

/* Validates the members of one object (a model nested in a body, or each
 * item of a list body) with errors at base + field (base borrowed). Always
 * returns a new object of the valid fields; check e for errors. */
json_t *v_object(json_t *obj, const vfield_t *fields, int nfields, int forbid_extra, json_t *base, verr_t *e);

/* Validates one value (used by v_body, and by routes with nested models);
 * returns a new reference to the coerced value, or NULL after adding errors
 * at loc (borrowed). */
json_t *v_value(const vfield_t *f, json_t *val, json_t *loc, verr_t *e);

/* Appends pydantic's str(ValidationError) for a list of errors (as built
 * by verr_add): "N validation error(s) for <title>" and one entry per
 * error. */
void verr_render(json_t *errs, const char *title, sb_t *out);

/* Shared checks. */
const char *check_email(json_t **val, sb_t *msg);
/* Upstream's slurm_mem_to_MB for a string of n bytes: digits, optionally
 * followed by M (the default), G (x 1000) or T (x 1000000); trailing repeats
 * of the unit are tolerated, as its str.strip() does. 0 and *mb, or -1 (also
 * beyond int64). Used by the resource models and the SLURM runner. */
int mem_to_mb(const char *s, size_t n, int64_t *mb);

#endif
