/* log.c — see log.h. A configuration is immutable once installed (the
 * loggers, their handlers, the formatters); only a handler's buffer and
 * file change, under that handler's mutex. Installed configurations are
 * never freed: a thread may still be reading the one it found. */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/timeutil.h"

/* ---- formatters ---- */

enum field {
	F_LITERAL = -1,
	F_NAME, F_LEVELNO, F_LEVELNAME, F_PATHNAME, F_FILENAME, F_MODULE, F_LINENO, F_FUNCNAME,
	F_CREATED, F_ASCTIME, F_MSECS, F_RELATIVE, F_THREAD, F_THREADNAME, F_PROCESS, F_PROCESSNAME,
	F_MESSAGE,
	/* uvicorn's formatters only */
	F_LEVELPREFIX, F_CLIENT_ADDR, F_REQUEST_LINE, F_STATUS_CODE,
};

enum ftype { T_STR, T_INT, T_FLOAT };

static const struct {
	const char *name;
	enum ftype type;
} fields[] = {
	[F_NAME] = { "name", T_STR },
	[F_LEVELNO] = { "levelno", T_INT },
	[F_LEVELNAME] = { "levelname", T_STR },
	[F_PATHNAME] = { "pathname", T_STR },
	[F_FILENAME] = { "filename", T_STR },
	[F_MODULE] = { "module", T_STR },
	[F_LINENO] = { "lineno", T_INT },
	[F_FUNCNAME] = { "funcName", T_STR },
	[F_CREATED] = { "created", T_FLOAT },
	[F_ASCTIME] = { "asctime", T_STR },
	[F_MSECS] = { "msecs", T_FLOAT },
	[F_RELATIVE] = { "relativeCreated", T_FLOAT },
	[F_THREAD] = { "thread", T_INT },
	[F_THREADNAME] = { "threadName", T_STR },
	[F_PROCESS] = { "process", T_INT },
	[F_PROCESSNAME] = { "processName", T_STR },
	[F_MESSAGE] = { "message", T_STR },
	[F_LEVELPREFIX] = { "levelprefix", T_STR },
	[F_CLIENT_ADDR] = { "client_addr", T_STR },
	[F_REQUEST_LINE] = { "request_line", T_STR },
	[F_STATUS_CODE] = { "status_code", T_STR },
};
#define NFIELDS ((int)(sizeof(fields) / sizeof(fields[0])))

struct piece {
	int field;          /* enum field; F_LITERAL: text[off, off+len) of the format */
	size_t off, len;
	char spec[24];      /* the printf conversion, e.g. "%-8s", "%03lld"; "" for a bare %s */
	int repr;           /* %(x)r: quoted */
};

struct log_formatter {
	enum log_formatter_kind kind;
	char *fmt;
	char *datefmt;
	struct piece *p;
	size_t np;
	struct log_formatter *next;
};

/* ---- handlers ---- */

struct log_handler {
	enum log_handler_kind kind;
	int level;
	log_formatter_t *fmt;
	pthread_mutex_t mu;  /* buf */
	pthread_mutex_t wmu; /* fd and the writes, taken before mu: one writer at a time, in order */
	int fd;              /* -1: not open (delay, or a failed reopen) */
	int owned;           /* fd is ours to close */
	char *path;
	int truncate;
	dev_t dev;
	ino_t ino;
	long long size;      /* of the file, for rotation */
	long long max_bytes; /* RotatingFileHandler's maxBytes, backupCount */
	int backups;
	sb_t buf;            /* lines not written yet */
	struct log_handler *next;       /* in its configuration */
	struct log_handler *next_all;   /* in all_handlers, for the flusher */
};

struct logger {
	char *name;          /* "" is the root */
	size_t len;
	int level;
	int propagate;
	log_handler_t **h;
	size_t nh;
};

struct log_config {
	struct logger *loggers; /* longest name first; the root last */
	size_t n;
	int min_level;
	log_formatter_t *fmts;
	log_handler_t *handlers;
	struct log_config *next_installed; /* every one installed stays reachable */
};

#define LOG_FORMAT "%(asctime)s - %(name)s - %(levelname)s - %(message)s"

static _Atomic(log_config_t *) current;
static log_config_t *builtin;
static log_config_t *last_resort_cfg;
static log_handler_t *last_resort; /* Python's: stderr, WARNING, "%(message)s" */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static log_handler_t *all_handlers;
static log_config_t *installed;
static int64_t t_start_usec;

static const char *level_name(int level, char *buf, size_t n)
{
	switch (level) {
	case LOG_CRITICAL: return "CRITICAL";
	case LOG_ERROR: return "ERROR";
	case LOG_WARNING: return "WARNING";
	case LOG_INFO: return "INFO";
	case LOG_DEBUG: return "DEBUG";
	case LOG_NOTSET: return "NOTSET";
	}
	snprintf(buf, n, "Level %d", level);
	return buf;
}

static int field_of(const char *name, size_t len)
{
	for (int i = 0; i < NFIELDS; i++)
		if (strlen(fields[i].name) == len && !strncmp(fields[i].name, name, len))
			return i;
	return -1;
}

static void add_piece(log_formatter_t *f, struct piece pc)
{
	f->p = xrealloc(f->p, (f->np + 1) * sizeof(*f->p));
	f->p[f->np++] = pc;
}

/* Compiles f->fmt into pieces: Python's %-style, "%(key)[flags][width]
 * [.precision]type" and "%%". */
static int compile(log_formatter_t *f, sb_t *err)
{
	const char *s = f->fmt;
	size_t lit = 0, i = 0;
	while (s[i]) {
		if (s[i] != '%') {
			i++;
			continue;
		}
		if (i > lit)
			add_piece(f, (struct piece){ .field = F_LITERAL, .off = lit, .len = i - lit });
		if (s[i + 1] == '%') {
			add_piece(f, (struct piece){ .field = F_LITERAL, .off = i + 1, .len = 1 });
			i += 2;
			lit = i;
			continue;
		}
		if (s[i + 1] != '(') {
			sb_addf(err, "format '%s': '%%' must be followed by '(field)' or '%%' (at offset %zu)", s, i);
			return -1;
		}
		const char *key = s + i + 2, *close = strchr(key, ')');
		if (!close) {
			sb_addf(err, "format '%s': unclosed '%%('", s);
			return -1;
		}
		int fld = field_of(key, (size_t)(close - key));
		int uvicorn_only = fld >= F_LEVELPREFIX;
		int access_only = fld >= F_CLIENT_ADDR;
		if (fld < 0 || (uvicorn_only && f->kind == LOG_FMT_PLAIN) ||
		    (access_only && f->kind != LOG_FMT_UVICORN_ACCESS)) {
			sb_addf(err, "format '%s': the field %%(%.*s) is not supported", s, (int)(close - key), key);
			if (fld >= 0)
				sb_adds(err, fld >= F_CLIENT_ADDR ? " (only by uvicorn.logging.AccessFormatter)" :
					" (only by uvicorn's formatters)");
			sb_adds(err, "; supported: name, levelno, levelname, pathname, filename, module, lineno, funcName, "
				"created, asctime, msecs, relativeCreated, thread, threadName, process, processName, message");
			return -1;
		}
		const char *p = close + 1;
		size_t spec_start = (size_t)(p - s);
		while (*p && strchr("#0- +", *p))
			p++;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		char conv = *p;
		if (!conv || !strchr("diouxXeEfFgGcrsa", conv)) {
			sb_addf(err, "format '%s': the field %%(%.*s) has no valid conversion type (s, d, f...)", s,
				(int)(close - key), key);
			return -1;
		}
		size_t flen = (size_t)(p - s) - spec_start;
		if (flen > 12) {
			sb_addf(err, "format '%s': the width of %%(%.*s) is too long", s, (int)(close - key), key);
			return -1;
		}
		struct piece pc = { .field = fld };
		enum ftype t = fields[fld].type;
		int numeric_conv = strchr("diouxXeEfFgGc", conv) != NULL;
		if (t == T_STR && numeric_conv) {
			sb_addf(err, "format '%s': %%(%.*s)%c needs a number, and that field is text", s,
				(int)(close - key), key, conv);
			return -1;
		}
		if (conv == 'c') {
			sb_addf(err, "format '%s': the conversion %%c is not supported", s);
			return -1;
		}
		const char *flags = s + spec_start;
		if (!numeric_conv) /* s, r, a: text (a number becomes its decimal form) */
			snprintf(pc.spec, sizeof(pc.spec), "%%%.*ss", (int)flen, flags);
		else if (strchr("diouxX", conv))
			snprintf(pc.spec, sizeof(pc.spec), "%%%.*sll%c", (int)flen, flags, conv == 'i' || conv == 'u' ? 'd' : conv);
		else
			snprintf(pc.spec, sizeof(pc.spec), "%%%.*s%c", (int)flen, flags, conv);
		if (!strcmp(pc.spec, "%s"))
			pc.spec[0] = '\0';
		pc.repr = conv == 'r' || conv == 'a';
		add_piece(f, pc);
		i = (size_t)(p - s) + 1;
		lit = i;
	}
	if (i > lit)
		add_piece(f, (struct piece){ .field = F_LITERAL, .off = lit, .len = i - lit });
	return 0;
}

/* ---- records ---- */

struct rec {
	int level;
	const char *name;
	const char *msg;
	const char *file;
	int line;
	const char *func;
	struct timeval tv;
	const struct log_access *access;
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* "YYYY-mm-dd HH:MM:SS" of the record's second, cached per thread: the
 * time zone lookup of localtime_r takes a process-wide lock */
static const char *default_time(time_t sec)
{
	static __thread time_t cached_sec = -1;
	static __thread char cached[32];
	if (sec != cached_sec) {
		struct tm tm;
		localtime_r(&sec, &tm);
		strftime(cached, sizeof(cached), "%Y-%m-%d %H:%M:%S", &tm);
		cached_sec = sec;
	}
	return cached;
}

static void add_str(sb_t *out, const struct piece *pc, const char *v)
{
	if (pc->repr) {
		sb_addc(out, '\'');
		sb_adds(out, v);
		sb_addc(out, '\'');
	} else if (!pc->spec[0]) {
		sb_adds(out, v);
	} else {
		sb_addf(out, pc->spec, v);
	}
}

static void add_num(sb_t *out, const struct piece *pc, double v, int integral)
{
	size_t n = strlen(pc->spec);
	char conv = n ? pc->spec[n - 1] : 's';
	if (!n || conv == 's') {
		char buf[48];
		if (integral)
			snprintf(buf, sizeof(buf), "%lld", (long long)v);
		else
			snprintf(buf, sizeof(buf), "%.6f", v);
		add_str(out, pc, buf);
	} else if (strchr("dxXo", conv)) {
		sb_addf(out, pc->spec, (long long)v);
	} else {
		sb_addf(out, pc->spec, v);
	}
}

static void format_record(const log_formatter_t *f, const struct rec *r, sb_t *out)
{
	char lvbuf[24];
	for (size_t i = 0; i < f->np; i++) {
		const struct piece *pc = &f->p[i];
		char tmp[64];
		switch (pc->field) {
		case F_LITERAL:
			sb_add(out, f->fmt + pc->off, pc->len);
			break;
		case F_NAME: add_str(out, pc, r->name); break;
		case F_LEVELNO: add_num(out, pc, r->level, 1); break;
		case F_LEVELNAME: add_str(out, pc, level_name(r->level, lvbuf, sizeof(lvbuf))); break;
		case F_PATHNAME: add_str(out, pc, r->file); break;
		case F_FILENAME: add_str(out, pc, base_name(r->file)); break;
		case F_MODULE: {
			const char *b = base_name(r->file);
			const char *dot = strrchr(b, '.');
			snprintf(tmp, sizeof(tmp), "%.*s", (int)(dot ? dot - b : (long)strlen(b)), b);
			add_str(out, pc, tmp);
			break;
		}
		case F_LINENO: add_num(out, pc, r->line, 1); break;
		case F_FUNCNAME: add_str(out, pc, r->func); break;
		case F_CREATED: add_num(out, pc, (double)r->tv.tv_sec + r->tv.tv_usec / 1e6, 0); break;
		case F_ASCTIME:
			if (f->datefmt) {
				struct tm tm;
				localtime_r(&r->tv.tv_sec, &tm);
				strftime(tmp, sizeof(tmp), f->datefmt, &tm);
				add_str(out, pc, tmp);
			} else {
				/* the common case, by hand: "YYYY-mm-dd HH:MM:SS,mmm" */
				const char *t = default_time(r->tv.tv_sec);
				size_t tl = strlen(t);
				int ms = (int)(r->tv.tv_usec / 1000);
				memcpy(tmp, t, tl);
				tmp[tl] = ',';
				tmp[tl + 1] = (char)('0' + ms / 100);
				tmp[tl + 2] = (char)('0' + ms / 10 % 10);
				tmp[tl + 3] = (char)('0' + ms % 10);
				tmp[tl + 4] = '\0';
				add_str(out, pc, tmp);
			}
			break;
		case F_MSECS: add_num(out, pc, r->tv.tv_usec / 1000.0, 0); break;
		case F_RELATIVE: add_num(out, pc, (double)(mono_usec() - t_start_usec) / 1000.0, 0); break;
		case F_THREAD: add_num(out, pc, (double)(unsigned long)pthread_self(), 1); break;
		case F_THREADNAME: {
			long tid = syscall(SYS_gettid);
			if (tid == getpid())
				snprintf(tmp, sizeof(tmp), "MainThread");
			else
				snprintf(tmp, sizeof(tmp), "Thread-%ld", tid);
			add_str(out, pc, tmp);
			break;
		}
		case F_PROCESS: add_num(out, pc, getpid(), 1); break;
		case F_PROCESSNAME: add_str(out, pc, "MainProcess"); break;
		case F_MESSAGE: add_str(out, pc, r->msg); break;
		case F_LEVELPREFIX: {
			/* uvicorn: the level name, a colon, padded to 9 */
			const char *ln = level_name(r->level, lvbuf, sizeof(lvbuf));
			snprintf(tmp, sizeof(tmp), "%s:%*s", ln, (int)(strlen(ln) < 8 ? 8 - strlen(ln) : 0), "");
			add_str(out, pc, tmp);
			break;
		}
		case F_CLIENT_ADDR: add_str(out, pc, r->access ? r->access->client_addr : ""); break;
		case F_REQUEST_LINE: add_str(out, pc, r->access ? r->access->request_line : ""); break;
		case F_STATUS_CODE: add_str(out, pc, r->access ? r->access->status_code : ""); break;
		}
	}
}

/* ---- writing ---- */

static int open_file(log_handler_t *h)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (h->truncate ? O_TRUNC : O_APPEND);
	h->fd = open(h->path, flags, 0666);
	if (h->fd < 0)
		return -1;
	h->truncate = 0; /* a reopen (watched file) appends */
	struct stat st;
	if (!fstat(h->fd, &st)) {
		h->dev = st.st_dev;
		h->ino = st.st_ino;
		h->size = (long long)st.st_size;
	}
	return 0;
}

static void write_all(int fd, const char *p, size_t left)
{
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
}

/* RotatingFileHandler's doRollover: path.N-1 -> path.N ... path -> path.1,
 * then a new, empty path */
static void rotate(log_handler_t *h)
{
	close(h->fd);
	h->fd = -1;
	size_t n = strlen(h->path) + 16;
	char *from = xmalloc(n), *to = xmalloc(n);
	for (int i = h->backups - 1; i >= 1; i--) {
		snprintf(from, n, "%s.%d", h->path, i);
		snprintf(to, n, "%s.%d", h->path, i + 1);
		rename(from, to);
	}
	snprintf(to, n, "%s.1", h->path);
	rename(h->path, to);
	free(from);
	free(to);
	h->truncate = 1;
	open_file(h);
}

/* Writes the lines of [p, p+len) to a rotating file: as Python's, a line
 * that would take the file to maxBytes or past it goes to a new file. */
static void write_rotating(log_handler_t *h, const char *p, size_t len)
{
	const char *chunk = p, *end = p + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		long long at = h->size + (long long)(p - chunk); /* the file's size before this line */
		if (at > 0 && at + (long long)ll >= h->max_bytes) {
			write_all(h->fd, chunk, (size_t)(p - chunk));
			rotate(h);
			if (h->fd < 0)
				return;
			chunk = p;
		}
		p += ll;
	}
	write_all(h->fd, chunk, (size_t)(p - chunk));
	h->size += (long long)(p - chunk);
}

/* Writes what h's buffer holds. The buffer is taken under mu and written
 * under wmu alone, so that request threads keep appending while a write is
 * under way; wmu, held from before the swap, keeps the batches in order. */
static void flush(log_handler_t *h)
{
	pthread_mutex_lock(&h->wmu);
	pthread_mutex_lock(&h->mu);
	sb_t out = h->buf;
	if (out.len)
		sb_init(&h->buf, out.alloc > 4 * LOG_BUFFER_BYTES ? 0 : out.alloc);
	pthread_mutex_unlock(&h->mu);
	if (!out.len) {
		pthread_mutex_unlock(&h->wmu);
		return;
	}
	if (h->kind == LOG_H_WATCHED_FILE && h->fd >= 0) {
		/* logrotate moved or removed the file: write to a new one */
		struct stat st;
		if (stat(h->path, &st) || st.st_dev != h->dev || st.st_ino != h->ino) {
			close(h->fd);
			h->fd = -1;
		}
	}
	/* nowhere to write: dropped, as Python's handleError goes on */
	if (h->fd >= 0 || !h->path || !open_file(h)) {
		if (h->max_bytes > 0 && h->backups > 0)
			write_rotating(h, out.buf, out.len);
		else
			write_all(h->fd, out.buf, out.len);
	}
	pthread_mutex_unlock(&h->wmu);
	sb_release(&out);
}

static void *flusher(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, LOG_FLUSH_MSEC * 1000000L };
		nanosleep(&ts, NULL);
		log_flush();
	}
	return NULL;
}

static void start_flusher(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* no signal of the server's reaches it (http_start blocks them first) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_create(&t, &a, flusher, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	atexit(log_flush);
}

static pthread_once_t flusher_once = PTHREAD_ONCE_INIT;

/* Each thread formats its lines in a buffer of its own, outside any lock
 * (freed when the thread ends). */
static pthread_key_t line_key;
static pthread_once_t line_once = PTHREAD_ONCE_INIT;

static void free_line(void *p)
{
	sb_release(p);
	free(p);
}

static void make_line_key(void)
{
	pthread_key_create(&line_key, free_line);
}

static sb_t *thread_line(void)
{
	pthread_once(&line_once, make_line_key);
	sb_t *sb = pthread_getspecific(line_key);
	if (!sb) {
		sb = xmalloc(sizeof(*sb));
		sb_init(sb, 256);
		pthread_setspecific(line_key, sb);
	}
	return sb;
}

static void handler_emit(log_handler_t *h, const struct rec *r, int buffered)
{
	if (h->kind == LOG_H_NULL)
		return;
	sb_t *line = thread_line();
	sb_reset(line);
	format_record(h->fmt, r, line);
	sb_addc(line, '\n');
	pthread_mutex_lock(&h->mu);
	sb_add(&h->buf, line->buf, line->len);
	int now = !buffered || h->buf.len >= LOG_BUFFER_BYTES;
	pthread_mutex_unlock(&h->mu);
	if (now)
		flush(h);
	else
		pthread_once(&flusher_once, start_flusher);
}

void log_flush(void)
{
	pthread_mutex_lock(&all_mu);
	for (log_handler_t *h = all_handlers; h; h = h->next_all)
		flush(h);
	pthread_mutex_unlock(&all_mu);
}

/* ---- configurations ---- */

log_config_t *log_config_new(void)
{
	log_config_t *c = xcalloc(1, sizeof(*c));
	return c;
}

log_formatter_t *log_config_formatter(log_config_t *cfg, enum log_formatter_kind kind, const char *fmt,
				      const char *datefmt, sb_t *err)
{
	log_formatter_t *f = xcalloc(1, sizeof(*f));
	f->kind = kind;
	f->fmt = xstrdup(fmt ? fmt : "%(message)s");
	f->datefmt = datefmt ? xstrdup(datefmt) : NULL;
	if (compile(f, err)) {
		free(f->fmt);
		free(f->datefmt);
		free(f->p);
		free(f);
		return NULL;
	}
	f->next = cfg->fmts;
	cfg->fmts = f;
	return f;
}

static log_handler_t *handler_new(enum log_handler_kind kind, int fd, int level, log_formatter_t *fmt)
{
	log_handler_t *h = xcalloc(1, sizeof(*h));
	h->kind = kind;
	h->fd = fd;
	h->level = level;
	h->fmt = fmt;
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->wmu, NULL);
	sb_init(&h->buf, 0);
	return h;
}

log_handler_t *log_config_handler(log_config_t *cfg, enum log_handler_kind kind, int fd, const char *path,
				  int truncate, int delay, int level, log_formatter_t *fmt, sb_t *err)
{
	if (!fmt && !(fmt = log_config_formatter(cfg, LOG_FMT_PLAIN, NULL, NULL, err)))
		return NULL;
	log_handler_t *h = handler_new(kind, kind == LOG_H_STREAM ? fd : -1, level, fmt);
	if (path) {
		h->path = xstrdup(path);
		h->truncate = truncate;
		h->owned = 1;
		if (!delay && open_file(h)) {
			sb_addf(err, "cannot open the log file '%s': %s", path, strerror(errno));
			free(h->path);
			sb_release(&h->buf);
			pthread_mutex_destroy(&h->mu);
			pthread_mutex_destroy(&h->wmu);
			free(h);
			return NULL;
		}
	}
	h->next = cfg->handlers;
	cfg->handlers = h;
	return h;
}

void log_handler_rotate(log_handler_t *h, long long max_bytes, int backup_count)
{
	h->max_bytes = max_bytes;
	h->backups = backup_count;
}

void log_config_logger(log_config_t *cfg, const char *name, int level, int propagate, log_handler_t **handlers,
		       size_t nhandlers)
{
	struct logger *l = NULL;
	for (size_t i = 0; i < cfg->n; i++)
		if (!strcmp(cfg->loggers[i].name, name))
			l = &cfg->loggers[i];
	if (!l) {
		cfg->loggers = xrealloc(cfg->loggers, (cfg->n + 1) * sizeof(*cfg->loggers));
		l = &cfg->loggers[cfg->n++];
		l->name = xstrdup(name);
		l->len = strlen(name);
	} else {
		free(l->h);
	}
	l->level = level;
	l->propagate = propagate;
	l->h = xmalloc((nhandlers ? nhandlers : 1) * sizeof(*l->h));
	if (nhandlers)
		memcpy(l->h, handlers, nhandlers * sizeof(*l->h));
	l->nh = nhandlers;
}

static int by_length_desc(const void *a, const void *b)
{
	const struct logger *x = a, *y = b;
	return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/* sorts the loggers, adds a root when there is none (Python's: WARNING, no
 * handler), and computes the lowest level any logger lets through */
static void finish(log_config_t *c)
{
	int has_root = 0;
	for (size_t i = 0; i < c->n; i++)
		has_root |= c->loggers[i].len == 0;
	if (!has_root)
		log_config_logger(c, "", LOG_WARNING, 1, NULL, 0);
	qsort(c->loggers, c->n, sizeof(*c->loggers), by_length_desc);
	int min = 100;
	for (size_t i = 0; i < c->n; i++)
		if (c->loggers[i].level != LOG_NOTSET || c->loggers[i].len == 0)
			min = c->loggers[i].level < min ? c->loggers[i].level : min;
	c->min_level = min;
}

static void install(log_config_t *cfg)
{
	finish(cfg);
	pthread_mutex_lock(&all_mu);
	for (log_handler_t *h = cfg->handlers; h; h = h->next) {
		h->next_all = all_handlers;
		all_handlers = h;
	}
	cfg->next_installed = installed;
	installed = cfg;
	pthread_mutex_unlock(&all_mu);
	atomic_store(&current, cfg);
}

void log_config_free(log_config_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->loggers[i].name);
		free(cfg->loggers[i].h);
	}
	free(cfg->loggers);
	for (log_handler_t *h = cfg->handlers, *next; h; h = next) {
		next = h->next;
		if (h->owned && h->fd >= 0)
			close(h->fd);
		free(h->path);
		sb_release(&h->buf);
		pthread_mutex_destroy(&h->mu);
		pthread_mutex_destroy(&h->wmu);
		free(h);
	}
	for (log_formatter_t *f = cfg->fmts, *next; f; f = next) {
		next = f->next;
		free(f->fmt);
		free(f->datefmt);
		free(f->p);
		free(f);
	}
	free(cfg);
}

/* The built-in configuration: upstream's with `fractalctl start` (its
 * set_logger() stream handlers at FRACTAL_LOGGING_LEVEL on stderr,
 * uvicorn's access logger at INFO on stdout, both in LOG_FORMAT). */
static void make_builtin(void)
{
	sb_t err = SB_INIT;
	t_start_usec = mono_usec();
	log_config_t *c = log_config_new();
	log_formatter_t *f = log_config_formatter(c, LOG_FMT_PLAIN, LOG_FORMAT, NULL, &err);
	log_handler_t *err_h = log_config_handler(c, LOG_H_STREAM, STDERR_FILENO, NULL, 0, 0, LOG_NOTSET, f, &err);
	log_handler_t *out_h = log_config_handler(c, LOG_H_STREAM, STDOUT_FILENO, NULL, 0, 0, LOG_NOTSET, f, &err);
	log_config_logger(c, "", LOG_INFO, 1, &err_h, 1);
	log_config_logger(c, "uvicorn.access", LOG_INFO, 0, &out_h, 1);
	builtin = c;
	log_config_t *lr = last_resort_cfg = log_config_new();
	last_resort = log_config_handler(lr, LOG_H_STREAM, STDERR_FILENO, NULL, 0, 0, LOG_WARNING, NULL, &err);
	install(lr);
	install(c);
	sb_release(&err);
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

void log_config_install(log_config_t *cfg)
{
	/* the built-in one first, so that it never replaces cfg later */
	pthread_once(&builtin_once, make_builtin);
	install(cfg);
}

static log_config_t *config(void)
{
	pthread_once(&builtin_once, make_builtin);
	return atomic_load(&current);
}

void log_set_level(int level)
{
	log_config_t *c = config();
	if (c != builtin)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->loggers[i].len == 0)
			c->loggers[i].level = level;
	finish(c);
}

/* The configured loggers on name's path, most specific first, the root
 * last; returns how many. */
static size_t chain_of(const log_config_t *c, const char *name, const struct logger **out, size_t max)
{
	size_t n = 0, len = strlen(name);
	for (size_t i = 0; i < c->n && n < max; i++) {
		const struct logger *l = &c->loggers[i];
		if (l->len == 0 || (l->len <= len && !strncmp(name, l->name, l->len) &&
				    (name[l->len] == '\0' || name[l->len] == '.')))
			out[n++] = l;
	}
	return n;
}

static int effective_level(const struct logger **chain, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (chain[i]->level != LOG_NOTSET)
			return chain[i]->level;
	return LOG_NOTSET;
}

int log_enabled_for(const char *name, int level)
{
	const log_config_t *c = config();
	if (level < c->min_level)
		return 0;
	const struct logger *chain[16];
	size_t n = chain_of(c, name, chain, 16);
	return level >= effective_level(chain, n);
}

static void vemit(const char *file, int line, const char *func, int level, const char *name, int force,
		  int buffered, const struct log_access *access, const char *fmt, va_list ap)
{
	const log_config_t *c = config();
	if (!force && level < c->min_level)
		return;
	const struct logger *chain[16];
	size_t n = chain_of(c, name, chain, 16);
	if (!force && level < effective_level(chain, n))
		return;
	char small[1024];
	char *msg = small;
	va_list aq;
	va_copy(aq, ap);
	int len = vsnprintf(small, sizeof(small), fmt, aq);
	va_end(aq);
	if (len >= (int)sizeof(small)) {
		msg = xmalloc((size_t)len + 1);
		vsnprintf(msg, (size_t)len + 1, fmt, ap);
	}
	struct rec r = { .level = level, .name = name, .msg = msg, .file = file, .line = line, .func = func,
			 .access = access };
	gettimeofday(&r.tv, NULL);
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < chain[i]->nh; k++) {
			found++;
			if (level >= chain[i]->h[k]->level)
				handler_emit(chain[i]->h[k], &r, buffered);
		}
		if (!chain[i]->propagate)
			break;
	}
	if (!found && level >= last_resort->level)
		handler_emit(last_resort, &r, 0);
	if (msg != small)
		free(msg);
}

void log_msg_at(const char *file, int line, const char *func, int level, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(file, line, func, level, name, 0, 0, NULL, fmt, ap);
	va_end(ap);
}

void log_always_at(const char *file, int line, const char *func, int level, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(file, line, func, level, name, 1, 0, NULL, fmt, ap);
	va_end(ap);
}

void log_access_at(const char *file, int line, const char *func, int level, const char *name,
		   const struct log_access *access, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(file, line, func, level, name, 0, 1, access, fmt, ap);
	va_end(ap);
}
