/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A string-keyed hash map (chained, power-of-two buckets). Keys are copied;
 * values are opaque pointers owned by the caller.
 */
#ifndef KVIP_SYNC_MAP_H
#define KVIP_SYNC_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_entry {
	struct map_entry *next;
	uint64_t hash;
	void *val;
	char key[];
};

struct map {
	struct map_entry **b;
	size_t nb, n;
};

struct map_iter {
	const struct map *m;
	size_t bucket;
	struct map_entry *e, *next;
};

void map_init(struct map *m);
/* Frees the entries (not the values). */
void map_free(struct map *m);
void *map_get(const struct map *m, const char *key);
bool map_has(const struct map *m, const char *key);
/* Insert or replace; returns the old value (or NULL); -1 on ENOMEM via *err. */
int map_put(struct map *m, const char *key, void *val, void **old);
/* Remove; returns the value (NULL if absent). */
void *map_del(struct map *m, const char *key, bool *found);

/* Iteration; the current entry may be deleted while iterating. */
void map_iter_init(struct map_iter *it, const struct map *m);
struct map_entry *map_iter_next(struct map_iter *it);

/* A growable list of strings, owned. */
struct strlist {
	char **v;
	size_t n, cap;
};
int strlist_add(struct strlist *l, const char *s);
void strlist_free(struct strlist *l);
void strlist_sort(struct strlist *l);

#endif
