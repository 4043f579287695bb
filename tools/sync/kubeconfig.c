// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Credentials for the API server: a kubeconfig (libyaml), in-cluster
 * service account files, or --server/--token-file/--ca-file.
 *
 * Supported in a kubeconfig: current-context (or --context), contexts[]
 * .context.{cluster,user}, clusters[].cluster.{server,
 * certificate-authority, certificate-authority-data,
 * insecure-skip-tls-verify, tls-server-name}, users[].user.{token,
 * tokenFile, client-certificate(-data), client-key(-data)}. exec,
 * auth-provider and basic auth are refused with a message: kvipctl sync
 * runs no credential plugins. Relative paths are relative to the file that
 * names them. $KUBECONFIG may list several files (':'): the first file that
 * has current-context, or a context/cluster/user of a given name, wins,
 * as with kubectl.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "sync.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KCFG_MAX_FILES 16
#define KCFG_MAX_SIZE (16 << 20)

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

void creds_free(struct api_creds *c)
{
	free(c->server);
	free(c->source);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	free(c->token);
	free(c->token_file);
	free(c->tls_server_name);
	memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------------ */
/* Base64                                                             */

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	char *out = malloc(n / 4 * 3 + 4);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i], v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_val(c);
		if (v < 0 || pad)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (pad > 2 || bits >= 6)
		goto bad;
	out[o] = '\0';
	*len = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* YAML helpers                                                       */

struct kfile {
	yaml_document_t doc;
	char *path;		/* for messages */
	char *dir;		/* relative paths */
	bool loaded;
};

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *n,
			     const char *key)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    k->data.scalar.length == strlen(key) &&
		    !memcmp(k->data.scalar.value, key, strlen(key)))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* A scalar's value (NUL-terminated by libyaml), or NULL. */
static const char *yscalar(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	/* An embedded NUL would truncate: refuse such values. */
	if (strlen((const char *)n->data.scalar.value) !=
	    n->data.scalar.length)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static const char *yget(yaml_document_t *d, yaml_node_t *n, const char *key)
{
	return yscalar(ymap_get(d, n, key));
}

/* The entry of list `list` (clusters, users, contexts) named name. */
static yaml_node_t *ynamed(yaml_document_t *d, const char *list,
			   const char *field, const char *name)
{
	yaml_node_t *root = yaml_document_get_root_node(d);
	yaml_node_t *seq = ymap_get(d, root, list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start;
	     i < seq->data.sequence.items.top; i++) {
		yaml_node_t *e = yaml_document_get_node(d, *i);
		const char *n = yget(d, e, "name");

		if (n && !strcmp(n, name)) {
			yaml_node_t *v = ymap_get(d, e, field);

			/* "user: {}" or "user:" (null) both mean empty. */
			return v ? v : e;
		}
	}
	return NULL;
}

static int kfile_load_text(struct kfile *f, const char *text, size_t len,
			   char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_node_t *root;
	int ok;

	if (!yaml_parser_initialize(&p))
		return fail(err, errlen, "%s: out of memory", f->path);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	ok = yaml_parser_load(&p, &f->doc);
	if (!ok) {
		fail(err, errlen, "%s: invalid YAML: %s (line %zu, column %zu)",
		     f->path, p.problem ? p.problem : "parse error",
		     p.problem_mark.line + 1, p.problem_mark.column + 1);
		yaml_parser_delete(&p);
		return -1;
	}
	yaml_parser_delete(&p);
	f->loaded = true;
	root = yaml_document_get_root_node(&f->doc);
	if (!root)
		return fail(err, errlen, "%s: empty kubeconfig", f->path);
	if (root->type != YAML_MAPPING_NODE)
		return fail(err, errlen, "%s: not a kubeconfig (the top level "
			    "is not a mapping)", f->path);
	return 0;
}

static void kfile_free(struct kfile *f)
{
	if (f->loaded)
		yaml_document_delete(&f->doc);
	free(f->path);
	free(f->dir);
	memset(f, 0, sizeof(*f));
}

static char *read_file(const char *path, size_t *len, size_t max, int *errp)
{
	FILE *fp = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!fp) {
		*errp = errno;
		return NULL;
	}
	for (;;) {
		size_t r;

		if (n + 4096 + 1 > cap) {
			char *b;

			cap = cap ? cap * 2 : 8192;
			b = realloc(buf, cap);
			if (!b) {
				*errp = ENOMEM;
				goto err;
			}
			buf = b;
		}
		r = fread(buf + n, 1, cap - n - 1, fp);
		n += r;
		if (n > max) {
			*errp = EFBIG;
			goto err;
		}
		if (r == 0)
			break;
	}
	if (ferror(fp)) {
		*errp = EIO;
		goto err;
	}
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
err:
	fclose(fp);
	free(buf);
	return NULL;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static char *resolve(const char *dir, const char *path)
{
	char *out;

	if (path[0] == '/' || !dir)
		return strdup(path);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		return NULL;
	return out;
}

/* Read a token file: the contents without surrounding whitespace. */
static char *read_token(const char *path, char *err, size_t errlen)
{
	size_t len;
	int e = 0;
	char *t = read_file(path, &len, 1 << 20, &e), *s, *end;

	if (!t) {
		fail(err, errlen, "cannot read token file '%s': %s", path,
		     strerror(e));
		return NULL;
	}
	s = t;
	while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\n' ||
			   end[-1] == '\r' || end[-1] == '\t'))
		end--;
	*end = '\0';
	memmove(t, s, (size_t)(end - s) + 1);
	if (!*t) {
		fail(err, errlen, "token file '%s' is empty", path);
		free(t);
		return NULL;
	}
	return t;
}

/* ------------------------------------------------------------------ */
/* kubeconfig                                                         */

static bool ytrue(const char *v)
{
	return v && (!strcmp(v, "true") || !strcmp(v, "True") ||
		     !strcmp(v, "TRUE"));
}

static int decode_into(const char *what, const char *b64, char **out,
		       size_t *outlen, const char *where, char *err,
		       size_t errlen)
{
	*out = b64_decode(b64, outlen);
	if (!*out || !*outlen) {
		free(*out);
		*out = NULL;
		return fail(err, errlen, "%s: %s is not valid base64", where,
			    what);
	}
	return 0;
}

static int kcfg_resolve(struct kfile *files, size_t nfiles,
			const char *context, struct api_creds *c, char *err,
			size_t errlen)
{
	yaml_node_t *ctx = NULL, *cl = NULL, *us = NULL;
	struct kfile *fctx = NULL, *fcl = NULL, *fus = NULL;
	const char *cluster_name, *user_name, *v;
	char where[512];
	size_t i;

	/* current-context: the first file that sets it. */
	for (i = 0; !context && i < nfiles; i++) {
		yaml_document_t *d = &files[i].doc;

		v = yget(d, yaml_document_get_root_node(d), "current-context");
		if (v && *v)
			context = v;
	}
	if (!context)
		return fail(err, errlen, "%s: no current-context (name one "
			    "with --context)", files[0].path);
	for (i = 0; i < nfiles && !ctx; i++) {
		ctx = ynamed(&files[i].doc, "contexts", "context", context);
		fctx = &files[i];
	}
	if (!ctx)
		return fail(err, errlen, "%s: context '%s' not found",
			    files[0].path, context);
	cluster_name = yget(&fctx->doc, ctx, "cluster");
	user_name = yget(&fctx->doc, ctx, "user");
	if (!cluster_name || !*cluster_name)
		return fail(err, errlen, "%s: context '%s' names no cluster",
			    fctx->path, context);
	for (i = 0; i < nfiles && !cl; i++) {
		cl = ynamed(&files[i].doc, "clusters", "cluster", cluster_name);
		fcl = &files[i];
	}
	if (!cl)
		return fail(err, errlen, "%s: cluster '%s' not found",
			    fctx->path, cluster_name);
	if (user_name && *user_name) {
		for (i = 0; i < nfiles && !us; i++) {
			us = ynamed(&files[i].doc, "users", "user", user_name);
			fus = &files[i];
		}
		if (!us)
			return fail(err, errlen, "%s: user '%s' not found",
				    fctx->path, user_name);
	}

	/* The cluster. */
	snprintf(where, sizeof(where), "%s: cluster '%s'", fcl->path,
		 cluster_name);
	v = yget(&fcl->doc, cl, "server");
	if (!v || !*v)
		return fail(err, errlen, "%s has no server", where);
	if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7))
		return fail(err, errlen, "%s: server '%s' is not an http(s) "
			    "URL", where, v);
	c->server = strdup(v);
	if (ymap_get(&fcl->doc, cl, "proxy-url"))
		return fail(err, errlen, "%s: proxy-url is not supported",
			    where);
	v = yget(&fcl->doc, cl, "certificate-authority-data");
	if (v && *v && decode_into("certificate-authority-data", v,
				   &c->ca_data, &c->ca_data_len, where, err,
				   errlen) < 0)
		return -1;
	v = yget(&fcl->doc, cl, "certificate-authority");
	if (v && *v && !c->ca_data)
		c->ca_file = resolve(fcl->dir, v);
	c->insecure = ytrue(yget(&fcl->doc, cl, "insecure-skip-tls-verify"));
	v = yget(&fcl->doc, cl, "tls-server-name");
	if (v && *v)
		c->tls_server_name = strdup(v);

	if (!us)
		return 0;
	/* The user. */
	snprintf(where, sizeof(where), "%s: user '%s'", fus->path, user_name);
	if (ymap_get(&fus->doc, us, "exec"))
		return fail(err, errlen, "%s uses an exec credential plugin, "
			    "which kvipctl sync does not run; give it a token, "
			    "tokenFile or client certificate instead", where);
	if (ymap_get(&fus->doc, us, "auth-provider"))
		return fail(err, errlen, "%s uses an auth-provider, which "
			    "kvipctl sync does not support; give it a token, "
			    "tokenFile or client certificate instead", where);
	if (ymap_get(&fus->doc, us, "username") ||
	    ymap_get(&fus->doc, us, "password"))
		return fail(err, errlen, "%s uses basic authentication, which "
			    "Kubernetes no longer supports", where);
	v = yget(&fus->doc, us, "token");
	if (v && *v)
		c->token = strdup(v);
	v = yget(&fus->doc, us, "tokenFile");
	if (v && *v)
		c->token_file = resolve(fus->dir, v);
	v = yget(&fus->doc, us, "client-certificate-data");
	if (v && *v && decode_into("client-certificate-data", v,
				   &c->cert_data, &c->cert_data_len, where,
				   err, errlen) < 0)
		return -1;
	v = yget(&fus->doc, us, "client-key-data");
	if (v && *v && decode_into("client-key-data", v, &c->key_data,
				   &c->key_data_len, where, err, errlen) < 0)
		return -1;
	v = yget(&fus->doc, us, "client-certificate");
	if (v && *v && !c->cert_data)
		c->cert_file = resolve(fus->dir, v);
	v = yget(&fus->doc, us, "client-key");
	if (v && *v && !c->key_data)
		c->key_file = resolve(fus->dir, v);
	if ((c->cert_data || c->cert_file) != (c->key_data || c->key_file))
		return fail(err, errlen, "%s: a client certificate needs a "
			    "client key and the other way round", where);
	return 0;
}

int kubeconfig_parse(const char *text, size_t len, const char *dir,
		     const char *context, struct api_creds *c, char *err,
		     size_t errlen)
{
	struct kfile f = { .path = strdup("kubeconfig"),
			   .dir = dir ? strdup(dir) : NULL };
	int ret;

	memset(c, 0, sizeof(*c));
	ret = kfile_load_text(&f, text, len, err, errlen);
	if (!ret)
		ret = kcfg_resolve(&f, 1, context, c, err, errlen);
	kfile_free(&f);
	if (ret)
		creds_free(c);
	return ret;
}

/* Load the kubeconfig files of a ':'-separated list. */
static int kubeconfig_load(const char *list, const char *context,
			   struct api_creds *c, char *err, size_t errlen)
{
	struct kfile files[KCFG_MAX_FILES];
	size_t n = 0;
	char *copy = strdup(list), *save = NULL, *p;
	int ret = -1;

	memset(files, 0, sizeof(files));
	if (!copy)
		return fail(err, errlen, "out of memory");
	for (p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		size_t len;
		int e = 0;
		char *text;

		if (!*p)
			continue;
		if (n == KCFG_MAX_FILES) {
			fail(err, errlen, "too many kubeconfig files (at most "
			     "%d)", KCFG_MAX_FILES);
			goto out;
		}
		text = read_file(p, &len, KCFG_MAX_SIZE, &e);
		if (!text) {
			/* kubectl skips missing files of $KUBECONFIG. */
			if (e == ENOENT && strchr(list, ':'))
				continue;
			fail(err, errlen, "cannot read kubeconfig '%s': %s", p,
			     strerror(e));
			goto out;
		}
		files[n].path = strdup(p);
		files[n].dir = dir_of(p);
		ret = kfile_load_text(&files[n], text, len, err, errlen);
		free(text);
		n++;
		if (ret < 0)
			goto out;
		ret = -1;
	}
	if (!n) {
		fail(err, errlen, "no kubeconfig file found in '%s'", list);
		goto out;
	}
	ret = kcfg_resolve(files, n, context, c, err, errlen);
	if (!ret) {
		if (asprintf(&c->source, "kubeconfig %s", list) < 0)
			c->source = NULL;
	}
out:
	for (size_t i = 0; i < n; i++)
		kfile_free(&files[i]);
	free(copy);
	return ret;
}

/* ------------------------------------------------------------------ */

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int in_cluster(const struct creds_opts *o, struct api_creds *c,
		      char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = o->sa_dir ? o->sa_dir : SA_DIR;
	int r;

	if (!host || !*host || !port || !*port)
		return 1;
	r = asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" :
		     "https://%s:%s", host, port);
	if (r < 0 || asprintf(&c->token_file, "%s/token", dir) < 0 ||
	    asprintf(&c->ca_file, "%s/ca.crt", dir) < 0)
		return fail(err, errlen, "out of memory");
	c->source = strdup("in-cluster service account");
	return 0;
}

static int check_files(struct api_creds *c, char *err, size_t errlen)
{
	char *t;

	if (c->token_file) {
		t = read_token(c->token_file, err, errlen);
		if (!t)
			return -1;
		free(t);
	}
	if (c->ca_file && !file_exists(c->ca_file))
		return fail(err, errlen, "cannot read CA file '%s': %s",
			    c->ca_file, strerror(errno));
	if (c->cert_file && !file_exists(c->cert_file))
		return fail(err, errlen, "cannot read client certificate '%s':"
			    " %s", c->cert_file, strerror(errno));
	if (c->key_file && !file_exists(c->key_file))
		return fail(err, errlen, "cannot read client key '%s': %s",
			    c->key_file, strerror(errno));
	return 0;
}

int creds_load(const struct creds_opts *o, struct api_creds *c, char *err,
	       size_t errlen)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char *def = NULL;
	int ret;

	memset(c, 0, sizeof(*c));
	if (o->kubeconfig) {
		ret = kubeconfig_load(o->kubeconfig, o->context, c, err, errlen);
	} else if (o->server) {
		/* Alone, or with the service account's token and CA. */
		const char *dir = o->sa_dir ? o->sa_dir : SA_DIR;
		char path[512];

		ret = 0;
		c->source = strdup("--server");
		snprintf(path, sizeof(path), "%s/token", dir);
		if (!o->token_file && file_exists(path))
			c->token_file = strdup(path);
		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		if (!o->ca_file && file_exists(path))
			c->ca_file = strdup(path);
	} else if (env && *env) {
		ret = kubeconfig_load(env, o->context, c, err, errlen);
	} else if ((ret = in_cluster(o, c, err, errlen)) <= 0) {
		/* in-cluster (0) or an error (-1) */
	} else if (home && asprintf(&def, "%s/.kube/config", home) >= 0 &&
		   file_exists(def)) {
		ret = kubeconfig_load(def, o->context, c, err, errlen);
	} else {
		ret = fail(err, errlen, "no API server: give --kubeconfig or "
			   "--server, set $KUBECONFIG, run in a pod, or create "
			   "~/.kube/config");
	}
	free(def);
	if (ret)
		goto bad;

	/* Command-line overrides. */
	if (o->server) {
		if (strncmp(o->server, "https://", 8) &&
		    strncmp(o->server, "http://", 7)) {
			ret = fail(err, errlen, "--server '%s' is not an "
				   "http(s) URL", o->server);
			goto bad;
		}
		free(c->server);
		c->server = strdup(o->server);
	}
	if (o->token_file) {
		free(c->token_file);
		c->token_file = strdup(o->token_file);
	}
	if (o->ca_file) {
		free(c->ca_file);
		free(c->ca_data);
		c->ca_data = NULL;
		c->ca_file = strdup(o->ca_file);
	}
	if (o->insecure)
		c->insecure = true;
	if (!c->server) {
		ret = fail(err, errlen, "no API server address");
		goto bad;
	}
	/* No trailing slash: paths are appended. */
	while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	if (check_files(c, err, errlen) < 0)
		goto bad;
	return 0;
bad:
	creds_free(c);
	return -1;
}

/* Exposed for api.c. */
char *creds_read_token(const char *path, char *err, size_t errlen);
char *creds_read_token(const char *path, char *err, size_t errlen)
{
	return read_token(path, err, errlen);
}
