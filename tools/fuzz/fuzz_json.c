// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The JSON writer.
 *
 * 1. json_write_string() of the input bytes: the output must be one valid
 *    JSON string (RFC 8259, in valid UTF-8) that decodes to the input with
 *    each byte that is not part of well-formed UTF-8 replaced by U+FFFD.
 *    The expectation is computed here independently (Unicode table 3-7).
 * 2. A document: the input drives json_begin_*, json_end_*, json_key,
 *    json_string, json_u64, json_bool and json_null the way a well-behaved
 *    caller would (a key before each value in an object, every container
 *    closed); the output must be exactly one valid JSON value.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "json.h"

/* ------------------------------------------------------------------ */
/* The expected decoding.                                             */

/* Length of the well-formed UTF-8 sequence at s, or 0 (table 3-7). */
static size_t wf_len(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] <= 0x7f) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	*cp = s[0] & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++)
		*cp = (*cp << 6) | (s[i] & 0x3f);
	return len;
}

static size_t expected_cps(const uint8_t *s, size_t n, uint32_t *out)
{
	size_t i = 0, k = 0;

	while (i < n) {
		size_t l = wf_len(s + i, n - i, &out[k]);

		if (!l) {
			out[k] = 0xfffd;
			l = 1;
		}
		i += l;
		k++;
	}
	return k;
}

/* ------------------------------------------------------------------ */
/* A strict validator, decoding strings into code points.             */

struct parser {
	const uint8_t *p, *end;
	uint32_t *cps;		/* decoded string, if not NULL */
	size_t n_cps;
	int depth;
};

static int hex4(struct parser *ps, uint32_t *v)
{
	*v = 0;
	if (ps->end - ps->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		uint8_t c = *ps->p++;

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

static void emit(struct parser *ps, uint32_t cp)
{
	if (ps->cps)
		ps->cps[ps->n_cps] = cp;
	ps->n_cps++;
}

static int parse_string(struct parser *ps)
{
	if (ps->p == ps->end || *ps->p++ != '"')
		return -1;
	ps->n_cps = 0;
	for (;;) {
		uint32_t cp;
		size_t l;

		if (ps->p == ps->end)
			return -1;
		if (*ps->p == '"') {
			ps->p++;
			return 0;
		}
		if (*ps->p < 0x20)
			return -1;	/* raw control character */
		if (*ps->p != '\\') {
			l = wf_len(ps->p, (size_t)(ps->end - ps->p), &cp);
			if (!l)
				return -1;
			ps->p += l;
			emit(ps, cp);
			continue;
		}
		if (++ps->p == ps->end)
			return -1;
		switch (*ps->p++) {
		case '"':  emit(ps, '"'); break;
		case '\\': emit(ps, '\\'); break;
		case '/':  emit(ps, '/'); break;
		case 'b':  emit(ps, '\b'); break;
		case 'f':  emit(ps, '\f'); break;
		case 'n':  emit(ps, '\n'); break;
		case 'r':  emit(ps, '\r'); break;
		case 't':  emit(ps, '\t'); break;
		case 'u':
			if (hex4(ps, &cp) < 0)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;	/* lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;

				if (ps->end - ps->p < 2 || ps->p[0] != '\\' ||
				    ps->p[1] != 'u')
					return -1;
				ps->p += 2;
				if (hex4(ps, &lo) < 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			emit(ps, cp);
			break;
		default:
			return -1;
		}
	}
}

static int parse_value(struct parser *ps);

static int parse_number(struct parser *ps)
{
	const uint8_t *start;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p == ps->end)
		return -1;
	if (*ps->p == '0') {
		ps->p++;
	} else if (*ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return -1;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		start = ++ps->p;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
		if (ps->p == start)
			return -1;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		start = ps->p;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
		if (ps->p == start)
			return -1;
	}
	return 0;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return -1;
	ps->p += n;
	return 0;
}

/* The writer's output is compact: no whitespace anywhere. */
static int parse_container(struct parser *ps, char close, bool object)
{
	ps->p++;
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		if (object) {
			if (parse_string(ps) < 0 || ps->p == ps->end ||
			    *ps->p++ != ':')
				return -1;
		}
		if (parse_value(ps) < 0 || ps->p == ps->end)
			return -1;
		if (*ps->p == close) {
			ps->p++;
			return 0;
		}
		if (*ps->p++ != ',')
			return -1;
	}
}

static int parse_value(struct parser *ps)
{
	int r;

	if (ps->p == ps->end || ++ps->depth > 1000)
		return -1;
	switch (*ps->p) {
	case '{': r = parse_container(ps, '}', true); break;
	case '[': r = parse_container(ps, ']', false); break;
	case '"': r = parse_string(ps); break;
	case 't': r = literal(ps, "true"); break;
	case 'f': r = literal(ps, "false"); break;
	case 'n': r = literal(ps, "null"); break;
	default:  r = parse_number(ps); break;
	}
	ps->depth--;
	return r;
}

/* ------------------------------------------------------------------ */

static void check_string(const uint8_t *data, size_t size)
{
	uint32_t *want = malloc((size + 1) * sizeof(*want));
	uint32_t *got = malloc((size + 1) * sizeof(*got));
	struct parser ps = { 0 };
	char *buf = NULL;
	size_t len = 0, n_want;
	FILE *f = open_memstream(&buf, &len);

	if (!want || !got || !f)
		abort();
	json_write_string(f, (const char *)data, size);
	fclose(f);

	n_want = expected_cps(data, size, want);
	ps.p = (const uint8_t *)buf;
	ps.end = ps.p + len;
	ps.cps = got;
	FUZZ_CHECK(parse_string(&ps) == 0 && ps.p == ps.end,
		   "invalid JSON string at byte %td of '%s'",
		   (const char *)ps.p - buf, buf);
	FUZZ_CHECK(ps.n_cps == n_want, "%zu code points, want %zu: '%s'",
		   ps.n_cps, n_want, buf);
	for (size_t i = 0; i < n_want; i++)
		FUZZ_CHECK(got[i] == want[i], "code point %zu: U+%04X, want "
			   "U+%04X: '%s'", i, got[i], want[i], buf);
	free(buf);
	free(got);
	free(want);
}

/* Bytes of the input, consumed by the document builder. */
struct input {
	const uint8_t *p, *end;
};

static uint8_t take(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* A string of up to 15 bytes of input, NUL-terminated. */
static void take_str(struct input *in, char *buf)
{
	size_t n = take(in) % 16;

	if (n > (size_t)(in->end - in->p))
		n = (size_t)(in->end - in->p);
	memcpy(buf, in->p, n);
	buf[n] = '\0';
	in->p += n;
}

#define DOC_MAX_DEPTH 64

static void check_document(const uint8_t *data, size_t size)
{
	struct input in = { data, data + size };
	bool object[DOC_MAX_DEPTH + 1];
	struct parser ps = { 0 };
	char *buf = NULL, s[16];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;
	int depth = 0;

	if (!f)
		abort();
	json_init(&j, f);
	/* The top level is an array, like `service show -j`. */
	json_begin_array(&j);
	object[0] = false;
	while (in.p < in.end) {
		uint8_t op = take(&in) % 8;
		uint64_t v;

		if (op == 7) {
			if (depth == 0)
				continue;
			if (object[depth])
				json_end_object(&j);
			else
				json_end_array(&j);
			depth--;
			continue;
		}
		if (object[depth]) {
			take_str(&in, s);
			json_key(&j, s);
		}
		switch (op) {
		case 0:
		case 1:
			if (depth == DOC_MAX_DEPTH) {
				json_null(&j);
				break;
			}
			object[++depth] = op == 0;
			if (op == 0)
				json_begin_object(&j);
			else
				json_begin_array(&j);
			break;
		case 2:
			take_str(&in, s);
			json_string(&j, s);
			break;
		case 3:
			v = 0;
			for (int i = 0; i < 8; i++)
				v = (v << 8) | take(&in);
			json_u64(&j, v);
			break;
		case 4: json_bool(&j, true); break;
		case 5: json_bool(&j, false); break;
		default: json_null(&j); break;
		}
	}
	for (; depth > 0; depth--) {
		if (object[depth])
			json_end_object(&j);
		else
			json_end_array(&j);
	}
	json_end_array(&j);
	fclose(f);

	ps.p = (const uint8_t *)buf;
	ps.end = ps.p + len;
	FUZZ_CHECK(parse_value(&ps) == 0 && ps.p == ps.end,
		   "invalid JSON at byte %td of '%s'",
		   (const char *)ps.p - buf, buf);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_string(data, size);
	check_document(data, size);
	return 0;
}
