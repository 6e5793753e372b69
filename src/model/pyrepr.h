/* pyrepr.h — JSON values printed the way Python prints the objects they
 * become, for messages that upstream builds with f-strings and repr()
 * (e.g. "... not available in ['3.11', '3.12']."), and pathlib's view of
 * a path, for the checks that upstream writes with pathlib.Path. */
#ifndef PYREPR_H
#define PYREPR_H

#include <jansson.h>
#include <stddef.h>

#include "util/sb.h"

/* repr(s) of a Python str: single quotes unless the text holds a single
 * quote and no double one, with Python's escapes. */
void py_repr_str(sb_t *sb, const char *s, size_t n);
/* repr() of the object json.loads would give: {'a': [1, 2.5, True, None]}. */
void py_repr_json(sb_t *sb, json_t *v);
/* str() of the same object: the text itself for strings, repr() otherwise. */
void py_str_json(sb_t *sb, json_t *v);
/* repr(list(d.keys())) of an object: ['a', 'b']. */
void py_repr_keys(sb_t *sb, json_t *obj);
/* type(x).__qualname__: dict, list, str, int, float, bool, NoneType. */
const char *py_type_name(json_t *v);

/* str(pathlib.PurePosixPath(s)), its .parent and its .name, each appended
 * to sb: "a//b/./c/" is "a/b/c", parent "a/b", name "c"; a leading "//"
 * (exactly two slashes) is kept, as POSIX allows. */
void py_path_str(sb_t *sb, const char *s);
void py_path_parent(sb_t *sb, const char *s);
void py_path_name(sb_t *sb, const char *s);

#endif
