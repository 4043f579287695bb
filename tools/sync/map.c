// SPDX-License-Identifier: GPL-2.0 OR MIT
#include "map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bit. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

void map_init(struct map *m)
{
	memset(m, 0, sizeof(*m));
}

void map_free(struct map *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct map_entry *e = m->b[i];

		while (e) {
			struct map_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(m->b);
	map_init(m);
}

static struct map_entry *find(const struct map *m, const char *key,
			      uint64_t h)
{
	if (!m->nb)
		return NULL;
	for (struct map_entry *e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

void *map_get(const struct map *m, const char *key)
{
	struct map_entry *e = find(m, key, hash_str(key));

	return e ? e->val : NULL;
}

bool map_has(const struct map *m, const char *key)
{
	return find(m, key, hash_str(key)) != NULL;
}

static int grow(struct map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct map_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct map_entry *e = m->b[i];

		while (e) {
			struct map_entry *next = e->next;
			size_t j = e->hash & (nb - 1);

			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int map_put(struct map *m, const char *key, void *val, void **old)
{
	uint64_t h = hash_str(key);
	struct map_entry *e = find(m, key, h);
	size_t len;

	if (old)
		*old = NULL;
	if (e) {
		if (old)
			*old = e->val;
		e->val = val;
		return 0;
	}
	if (m->n >= m->nb && grow(m) < 0)
		return -ENOMEM;
	len = strlen(key) + 1;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, len);
	e->hash = h;
	e->val = val;
	e->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = e;
	m->n++;
	return 0;
}

void *map_del(struct map *m, const char *key, bool *found)
{
	uint64_t h = hash_str(key);
	struct map_entry **pp;

	if (found)
		*found = false;
	if (!m->nb)
		return NULL;
	for (pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
		struct map_entry *e = *pp;
		void *val;

		if (e->hash != h || strcmp(e->key, key))
			continue;
		*pp = e->next;
		val = e->val;
		free(e);
		m->n--;
		if (found)
			*found = true;
		return val;
	}
	return NULL;
}

void map_iter_init(struct map_iter *it, const struct map *m)
{
	it->m = m;
	it->bucket = 0;
	it->e = NULL;
	it->next = m->nb ? m->b[0] : NULL;
}

struct map_entry *map_iter_next(struct map_iter *it)
{
	while (!it->next) {
		if (++it->bucket >= it->m->nb)
			return NULL;
		it->next = it->m->b[it->bucket];
	}
	it->e = it->next;
	it->next = it->e->next;
	return it->e;
}

int strlist_add(struct strlist *l, const char *s)
{
	char *c;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	c = strdup(s);
	if (!c)
		return -ENOMEM;
	l->v[l->n++] = c;
	return 0;
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strlist_sort(struct strlist *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(l->v[0]), cmp_str);
}
