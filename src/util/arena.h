/* arena.h — a per-request arena: many small allocations, one free.
 *
 * Everything a handler allocates for one request comes from its arena and
 * dies with arena_free() at the end of the request, so handlers free nothing
 * by hand. Blocks are chained; big allocations get a block of their own.
 * Not thread-safe: an arena belongs to one request on one thread. */
#ifndef ARENA_H
#define ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block_t;
typedef struct arena {
	arena_block_t *head;
} arena_t;

#define ARENA_INIT { NULL }

void *arena_alloc(arena_t *a, size_t n);   /* zeroed, 16-byte aligned */
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(arena_t *a);

#endif
