/* logconf.c — LOG_CONFIG_FILE: a logging.config.dictConfig (version 1) in
 * YAML, or JSON (which YAML reads too), as upstream loads it with
 * yaml.safe_load and dictConfig. What we honour:
 *
 *   formatters  format (Python's %-style, the usual record fields), datefmt,
 *               style '%'; "()": uvicorn.logging.DefaultFormatter or
 *               AccessFormatter with fmt, datefmt, use_colors false
 *   handlers    logging.StreamHandler (stream ext://sys.stdout or
 *               ext://sys.stderr), logging.FileHandler,
 *               logging.handlers.WatchedFileHandler and RotatingFileHandler
 *               (filename, mode a or w, encoding utf-8, delay; maxBytes,
 *               backupCount), logging.NullHandler; level, formatter
 *   loggers     level, handlers, propagate; root likewise
 *
 * Anything else (filters, other handler classes, custom factories, an
 * unknown key) is refused with a message naming it, so that a
 * configuration is never silently half-applied. */
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

struct cx {
	yaml_document_t doc;
	log_config_t *cfg;
	sb_t *err;
	/* name -> object, in the order of the file */
	char **fmt_names;
	log_formatter_t **fmts;
	size_t nfmts;
	char **h_names;
	log_handler_t **hs;
	size_t nhs;
};

static yaml_node_t *get(struct cx *c, int id)
{
	return yaml_document_get_node(&c->doc, id);
}

static int is_map(yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* a plain (unquoted) scalar: YAML's null, booleans and numbers */
static int plain(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int is_null(yaml_node_t *n)
{
	const char *s = scalar(n);
	return !n || (plain(n) && (!*s || !strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "Null") ||
				   !strcmp(s, "NULL")));
}

/* 1 true, 0 false, -1 not a boolean */
static int boolean(yaml_node_t *n)
{
	static const char *const t[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On", NULL };
	static const char *const f[] = { "false", "False", "FALSE", "no", "No", "off", "Off", NULL };
	if (!plain(n))
		return -1;
	for (int i = 0; t[i]; i++)
		if (!strcmp(scalar(n), t[i]))
			return 1;
	for (int i = 0; f[i]; i++)
		if (!strcmp(scalar(n), f[i]))
			return 0;
	return -1;
}

static int fail(struct cx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(c->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Checks that every key of map n is in `allowed` ("a|b|c"). */
static int keys_ok(struct cx *c, yaml_node_t *n, const char *where, const char *allowed)
{
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const char *k = scalar(get(c, p->key));
		if (!k)
			return fail(c, "%s: a key that is not a string", where);
		size_t kl = strlen(k);
		int ok = 0;
		for (const char *a = allowed; *a;) {
			const char *bar = strchr(a, '|');
			size_t al = bar ? (size_t)(bar - a) : strlen(a);
			ok |= al == kl && !strncmp(a, k, kl);
			a += al + (bar ? 1 : 0);
		}
		if (!ok)
			return fail(c, "%s: the key '%s' is not supported (supported: %s)", where, k, allowed);
	}
	return 0;
}

static yaml_node_t *field(struct cx *c, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(get(c, p->key));
		if (k && !strcmp(k, key))
			return get(c, p->value);
	}
	return NULL;
}

/* A string field: NULL when absent or null; -1 (with a message) when it is
 * not a string. */
static int str_field(struct cx *c, yaml_node_t *map, const char *key, const char *where, const char **out)
{
	yaml_node_t *v = field(c, map, key);
	*out = NULL;
	if (is_null(v))
		return 0;
	if (!scalar(v))
		return fail(c, "%s: %s must be a string", where, key);
	*out = scalar(v);
	return 0;
}

/* Python's level names, or a number; absent: LOG_NOTSET */
static int level_field(struct cx *c, yaml_node_t *map, const char *where, int *out)
{
	static const struct { const char *n; int v; } names[] = {
		{ "CRITICAL", 50 }, { "FATAL", 50 }, { "ERROR", 40 }, { "WARNING", 30 }, { "WARN", 30 },
		{ "INFO", 20 }, { "DEBUG", 10 }, { "NOTSET", 0 },
	};
	yaml_node_t *v = field(c, map, "level");
	*out = LOG_NOTSET;
	if (is_null(v))
		return 0;
	const char *s = scalar(v);
	if (!s)
		return fail(c, "%s: level must be a level name or number", where);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].n)) {
			*out = names[i].v;
			return 0;
		}
	char *end;
	long l = strtol(s, &end, 10);
	if (plain(v) && *s && !*end && l >= 0 && l <= 1000) {
		*out = (int)l;
		return 0;
	}
	return fail(c, "%s: Unknown level: '%s' (CRITICAL, ERROR, WARNING, INFO, DEBUG, NOTSET or a number)", where, s);
}

/* A non-negative integer field (absent: 0) */
static int int_field(struct cx *c, yaml_node_t *map, const char *key, const char *where, long long *out)
{
	yaml_node_t *v = field(c, map, key);
	*out = 0;
	if (is_null(v))
		return 0;
	const char *s = scalar(v);
	char *end = NULL;
	long long l = s ? strtoll(s, &end, 10) : -1;
	if (!s || !plain(v) || !*s || *end || l < 0 || l > 1000000000000LL)
		return fail(c, "%s: %s must be a non-negative integer", where, key);
	*out = l;
	return 0;
}

static int empty_or_absent(struct cx *c, yaml_node_t *map, const char *key, const char *where)
{
	yaml_node_t *v = field(c, map, key);
	if (is_null(v))
		return 0;
	if ((v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.start == v->data.sequence.items.top) ||
	    (v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.start == v->data.mapping.pairs.top))
		return 0;
	return fail(c, "%s: %s are not supported", where, key);
}

static int formatter(struct cx *c, const char *name, yaml_node_t *n)
{
	sb_t where = SB_INIT;
	sb_addf(&where, "formatters.%s", name);
	int rc = -1;
	enum log_formatter_kind kind = LOG_FMT_PLAIN;
	const char *factory, *cls, *fmt, *fmt2, *datefmt, *style;
	if (!is_map(n)) {
		fail(c, "%s: must be a mapping", where.buf);
		goto out;
	}
	if (str_field(c, n, "()", where.buf, &factory) || str_field(c, n, "class", where.buf, &cls) ||
	    str_field(c, n, "format", where.buf, &fmt) || str_field(c, n, "fmt", where.buf, &fmt2) ||
	    str_field(c, n, "datefmt", where.buf, &datefmt) || str_field(c, n, "style", where.buf, &style))
		goto out;
	if (factory) {
		if (!strcmp(factory, "uvicorn.logging.DefaultFormatter"))
			kind = LOG_FMT_UVICORN_DEFAULT;
		else if (!strcmp(factory, "uvicorn.logging.AccessFormatter"))
			kind = LOG_FMT_UVICORN_ACCESS;
		else {
			fail(c, "%s: the formatter factory '()': %s is not supported (supported: "
				"uvicorn.logging.DefaultFormatter, uvicorn.logging.AccessFormatter)", where.buf, factory);
			goto out;
		}
		/* the factory's keyword arguments */
		if (keys_ok(c, n, where.buf, "()|fmt|datefmt|style|use_colors|validate"))
			goto out;
		yaml_node_t *uc = field(c, n, "use_colors");
		if (!is_null(uc) && boolean(uc) != 0) {
			fail(c, "%s: use_colors must be false or null (coloured output is not supported)", where.buf);
			goto out;
		}
		fmt = fmt2;
	} else {
		if (keys_ok(c, n, where.buf, "format|datefmt|style|validate|class"))
			goto out;
		if (cls && strcmp(cls, "logging.Formatter")) {
			fail(c, "%s: the formatter class '%s' is not supported (only logging.Formatter)", where.buf, cls);
			goto out;
		}
	}
	if (style && strcmp(style, "%")) {
		fail(c, "%s: style '%s' is not supported (only '%%')", where.buf, style);
		goto out;
	}
	sb_t why = SB_INIT;
	log_formatter_t *f = log_config_formatter(c->cfg, kind, fmt, datefmt, &why);
	if (!f) {
		fail(c, "%s: %s", where.buf, why.buf);
		sb_release(&why);
		goto out;
	}
	sb_release(&why);
	c->fmt_names = xrealloc(c->fmt_names, (c->nfmts + 1) * sizeof(char *));
	c->fmts = xrealloc(c->fmts, (c->nfmts + 1) * sizeof(*c->fmts));
	c->fmt_names[c->nfmts] = xstrdup(name);
	c->fmts[c->nfmts++] = f;
	rc = 0;
out:
	sb_release(&where);
	return rc;
}

static int handler(struct cx *c, const char *name, yaml_node_t *n)
{
	sb_t where = SB_INIT;
	sb_addf(&where, "handlers.%s", name);
	int rc = -1, level;
	const char *cls, *fname, *stream, *filename, *mode, *encoding;
	if (!is_map(n)) {
		fail(c, "%s: must be a mapping", where.buf);
		goto out;
	}
	if (str_field(c, n, "class", where.buf, &cls) || str_field(c, n, "formatter", where.buf, &fname) ||
	    str_field(c, n, "stream", where.buf, &stream) || str_field(c, n, "filename", where.buf, &filename) ||
	    str_field(c, n, "mode", where.buf, &mode) || str_field(c, n, "encoding", where.buf, &encoding) ||
	    level_field(c, n, where.buf, &level) || empty_or_absent(c, n, "filters", where.buf))
		goto out;
	if (!cls) {
		fail(c, "%s: class is required", where.buf);
		goto out;
	}
	enum log_handler_kind kind;
	const char *keys;
	int rotating = 0;
	long long max_bytes = 0, backups = 0;
	if (!strcmp(cls, "logging.StreamHandler")) {
		kind = LOG_H_STREAM;
		keys = "class|level|formatter|filters|stream";
	} else if (!strcmp(cls, "logging.FileHandler")) {
		kind = LOG_H_FILE;
		keys = "class|level|formatter|filters|filename|mode|encoding|delay";
	} else if (!strcmp(cls, "logging.handlers.WatchedFileHandler")) {
		kind = LOG_H_WATCHED_FILE;
		keys = "class|level|formatter|filters|filename|mode|encoding|delay";
	} else if (!strcmp(cls, "logging.handlers.RotatingFileHandler")) {
		kind = LOG_H_FILE;
		rotating = 1;
		keys = "class|level|formatter|filters|filename|mode|encoding|delay|maxBytes|backupCount";
	} else if (!strcmp(cls, "logging.NullHandler")) {
		kind = LOG_H_NULL;
		keys = "class|level|formatter|filters";
	} else {
		fail(c, "%s: the handler class '%s' is not supported (supported: logging.StreamHandler, "
			"logging.FileHandler, logging.handlers.WatchedFileHandler, logging.handlers.RotatingFileHandler, "
			"logging.NullHandler)", where.buf, cls);
		goto out;
	}
	if (keys_ok(c, n, where.buf, keys))
		goto out;
	log_formatter_t *f = NULL;
	if (fname) {
		for (size_t i = 0; i < c->nfmts && !f; i++)
			if (!strcmp(c->fmt_names[i], fname))
				f = c->fmts[i];
		if (!f) {
			fail(c, "%s: the formatter '%s' is not defined in formatters", where.buf, fname);
			goto out;
		}
	}
	int fd = STDERR_FILENO, truncate = 0, delay = 0;
	if (kind == LOG_H_STREAM && stream) {
		if (!strcmp(stream, "ext://sys.stdout"))
			fd = STDOUT_FILENO;
		else if (strcmp(stream, "ext://sys.stderr")) {
			fail(c, "%s: stream '%s' is not supported (ext://sys.stdout or ext://sys.stderr)", where.buf, stream);
			goto out;
		}
	}
	if (kind == LOG_H_FILE || kind == LOG_H_WATCHED_FILE) {
		if (!filename) {
			fail(c, "%s: filename is required", where.buf);
			goto out;
		}
		if (mode && strcmp(mode, "a") && strcmp(mode, "w")) {
			fail(c, "%s: mode '%s' is not supported ('a' or 'w')", where.buf, mode);
			goto out;
		}
		truncate = mode && !strcmp(mode, "w");
		if (encoding && strcasecmp(encoding, "utf-8") && strcasecmp(encoding, "utf8")) {
			fail(c, "%s: encoding '%s' is not supported (lines are written in UTF-8)", where.buf, encoding);
			goto out;
		}
		if (rotating && (int_field(c, n, "maxBytes", where.buf, &max_bytes) ||
				 int_field(c, n, "backupCount", where.buf, &backups)))
			goto out;
		yaml_node_t *d = field(c, n, "delay");
		if (!is_null(d) && (delay = boolean(d)) < 0) {
			fail(c, "%s: delay must be true or false", where.buf);
			goto out;
		}
	}
	sb_t why = SB_INIT;
	log_handler_t *h = log_config_handler(c->cfg, kind, fd, kind == LOG_H_FILE || kind == LOG_H_WATCHED_FILE ?
					      filename : NULL, truncate, delay, level, f, &why);
	if (!h) {
		fail(c, "%s: %s", where.buf, why.buf);
		sb_release(&why);
		goto out;
	}
	sb_release(&why);
	if (rotating)
		log_handler_rotate(h, max_bytes, (int)backups);
	c->h_names = xrealloc(c->h_names, (c->nhs + 1) * sizeof(char *));
	c->hs = xrealloc(c->hs, (c->nhs + 1) * sizeof(*c->hs));
	c->h_names[c->nhs] = xstrdup(name);
	c->hs[c->nhs++] = h;
	rc = 0;
out:
	sb_release(&where);
	return rc;
}

static int logger(struct cx *c, const char *name, yaml_node_t *n, int is_root)
{
	sb_t where = SB_INIT;
	if (is_root)
		sb_adds(&where, "root");
	else
		sb_addf(&where, "loggers.%s", name);
	int rc = -1, level, propagate = 1;
	log_handler_t **hs = NULL;
	size_t nh = 0;
	if (is_null(n)) {
		n = NULL;
	} else if (!is_map(n)) {
		fail(c, "%s: must be a mapping", where.buf);
		goto out;
	}
	if (n) {
		if (keys_ok(c, n, where.buf, is_root ? "level|handlers|filters" : "level|handlers|filters|propagate") ||
		    level_field(c, n, where.buf, &level) || empty_or_absent(c, n, "filters", where.buf))
			goto out;
		yaml_node_t *p = field(c, n, "propagate");
		if (!is_null(p) && (propagate = boolean(p)) < 0) {
			fail(c, "%s: propagate must be true or false", where.buf);
			goto out;
		}
		yaml_node_t *hl = field(c, n, "handlers");
		if (!is_null(hl)) {
			if (hl->type != YAML_SEQUENCE_NODE) {
				fail(c, "%s: handlers must be a list of handler names", where.buf);
				goto out;
			}
			for (yaml_node_item_t *it = hl->data.sequence.items.start; it < hl->data.sequence.items.top; it++) {
				const char *hn = scalar(get(c, *it));
				log_handler_t *h = NULL;
				for (size_t i = 0; hn && i < c->nhs && !h; i++)
					if (!strcmp(c->h_names[i], hn))
						h = c->hs[i];
				if (!h) {
					fail(c, "%s: the handler '%s' is not defined in handlers", where.buf, hn ? hn : "?");
					goto out;
				}
				hs = xrealloc(hs, (nh + 1) * sizeof(*hs));
				hs[nh++] = h;
			}
		}
	} else {
		level = LOG_NOTSET;
	}
	/* the root's level defaults to WARNING, as Python's root logger's */
	if (is_root && (!n || is_null(field(c, n, "level"))))
		level = LOG_WARNING;
	log_config_logger(c->cfg, is_root ? "" : name, level, propagate, hs, nh);
	rc = 0;
out:
	free(hs);
	sb_release(&where);
	return rc;
}

/* Runs fn over each entry of the mapping at key (absent or null: none). */
static int each(struct cx *c, yaml_node_t *top, const char *key, int (*fn)(struct cx *, const char *, yaml_node_t *))
{
	yaml_node_t *m = field(c, top, key);
	if (is_null(m))
		return 0;
	if (!is_map(m))
		return fail(c, "%s: must be a mapping", key);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const char *k = scalar(get(c, p->key));
		if (!k)
			return fail(c, "%s: a name that is not a string", key);
		if (fn(c, k, get(c, p->value)))
			return -1;
	}
	return 0;
}

static int one_logger(struct cx *c, const char *name, yaml_node_t *n)
{
	return logger(c, name, n, 0);
}

static int configure(struct cx *c)
{
	yaml_node_t *top = yaml_document_get_root_node(&c->doc);
	if (!top)
		return fail(c, "the file is empty");
	if (!is_map(top))
		return fail(c, "not a dictConfig mapping (a YAML or JSON object with version: 1)");
	if (keys_ok(c, top, "the configuration",
		    "version|formatters|filters|handlers|loggers|root|incremental|disable_existing_loggers"))
		return -1;
	yaml_node_t *v = field(c, top, "version");
	if (!v)
		return fail(c, "dictionary doesn't specify a version (version: 1)");
	if (!plain(v) || strcmp(scalar(v), "1"))
		return fail(c, "Unsupported version: %s (only 1)", scalar(v) ? scalar(v) : "?");
	yaml_node_t *inc = field(c, top, "incremental");
	if (!is_null(inc) && boolean(inc) != 0)
		return fail(c, "incremental: true is not supported (the file replaces the built-in configuration)");
	yaml_node_t *del = field(c, top, "disable_existing_loggers");
	if (!is_null(del) && boolean(del) < 0)
		return fail(c, "disable_existing_loggers must be true or false");
	if (empty_or_absent(c, top, "filters", "the configuration"))
		return -1;
	if (each(c, top, "formatters", formatter) || each(c, top, "handlers", handler) ||
	    each(c, top, "loggers", one_logger))
		return -1;
	return logger(c, "", field(c, top, "root"), 1);
}

/* A first line of "[loggers]", "[handlers]" or "[formatters]" */
static int looks_like_ini(const char *path)
{
	char line[64] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && (line[0] == '\n' || line[0] == '#' || line[0] == ';'))
		;
	fclose(f);
	return !strncmp(line, "[loggers]", 9) || !strncmp(line, "[handlers]", 10) || !strncmp(line, "[formatters]", 12);
}

int log_configure_file(const char *path, sb_t *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		sb_addf(err, "LOG_CONFIG_FILE=%s: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_t parser;
	struct cx c = { .err = err };
	sb_t why = SB_INIT;
	c.err = &why;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc = -1;
	if (!yaml_parser_load(&parser, &c.doc)) {
		sb_addf(&why, "not valid YAML or JSON: %s at line %zu", parser.problem ? parser.problem : "parse error",
			parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		fclose(f);
		goto out_nodoc;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	c.cfg = log_config_new();
	rc = configure(&c);
	if (rc)
		log_config_free(c.cfg);
	else
		log_config_install(c.cfg);
	yaml_document_delete(&c.doc);
out_nodoc:
	if (rc && looks_like_ini(path))
		sb_adds(&why, "; the file looks like an INI logging.config.fileConfig, which upstream does not read "
			"either (it loads the file with yaml.safe_load and dictConfig): write it as a dictConfig");
	if (rc)
		sb_addf(err, "LOG_CONFIG_FILE=%s: %s", path, why.buf);
	sb_release(&why);
	for (size_t i = 0; i < c.nfmts; i++)
		free(c.fmt_names[i]);
	for (size_t i = 0; i < c.nhs; i++)
		free(c.h_names[i]);
	free(c.fmt_names);
	free(c.fmts);
	free(c.h_names);
	free(c.hs);
	return rc;
}
