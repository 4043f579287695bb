/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A tiny streaming JSON writer (compact output). Keys and separators are
 * handled by the writer: call json_key() before a value inside an object.
 */
#ifndef KVIPCTL_JSON_H
#define KVIPCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	bool need_comma[JSON_MAX_DEPTH];
	bool after_key;
};

void json_init(struct json *j, FILE *f);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
void json_u64(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/*
 * Write s (len bytes) as a quoted JSON string: escapes '"', '\\' and control
 * characters; invalid UTF-8 bytes become U+FFFD so the output stays valid.
 */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
