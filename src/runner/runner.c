/* runner.c — see runner.h. The parts, in upstream's words:
 *   job_main          submit_workflow (folder, workflow.log, final status, zip)
 *   execute_tasks     runner.py (filtering, HistoryRun, dispatch, merging)
 *   run_non_parallel, run_parallel, run_compound   runner_functions.py
 *   run_units         LocalRunner.submit/multisubmit + call_command_wrapper
 * Errors travel as a jerr_t: upstream's JobExecutionError (with or without
 * `info`) or any other exception ("UNKNOWN ERROR"). */
#include "runner/runner.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "config/settings.h"
#include "model/images.h"
#include "model/pyrepr.h"
#include "model/task.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/sb.h"
#include "util/timeutil.h"
#include "util/zipwrite.h"

#define MAX_PARALLELIZATION_LIST_SIZE 20000
#define MAX_LEN_STDERR 100000
#define IMAGE_STATUS_KEY "__wftask_dataset_image_status__"
#define SHUTDOWN_LOG "\nJob stopped due to app shutdown\n"

/* ---- the registry of running jobs and task processes (for shutdown) ---- */

#define MAX_PIDS 4096
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static int reg_jobs;                 /* job threads alive */
static int64_t reg_job_ids[1024];    /* their job ids (0: free slot) */
static pid_t reg_pids[MAX_PIDS];     /* task process groups alive (0: free) */
static atomic_int stopping;

static void reg_pid(pid_t pid, int add)
{
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_PIDS; i++)
		if (add ? reg_pids[i] == 0 : reg_pids[i] == pid) {
			reg_pids[i] = add ? pid : 0;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
}

static void kill_all(int sig)
{
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_PIDS; i++)
		if (reg_pids[i])
			proc_kill_group(reg_pids[i], sig);
	pthread_mutex_unlock(&reg_mu);
}

/* ---- errors ---- */

enum { JE_NONE, JE_JOB, JE_UNKNOWN };
typedef struct jerr {
	int kind;
	int has_info;      /* JobExecutionError(info=...) */
	const char *type;  /* exception type for UNKNOWN ERROR */
	sb_t msg;
} jerr_t;

static void jerr_set(jerr_t *e, int kind, int has_info, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void jerr_set(jerr_t *e, int kind, int has_info, const char *type, const char *fmt, ...)
{
	e->kind = kind;
	e->has_info = has_info;
	e->type = type;
	sb_reset(&e->msg);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&e->msg, fmt, ap);
	va_end(ap);
}

/* ---- the job context ---- */

typedef struct job {
	runner_job_t a;
	char *strings[6];
	db_t *db;
	FILE *log;                 /* workflow.log */
	char logger[64];           /* WF<wf>_job<id> */
	int64_t ptpj_default;      /* jobs_runner_config.parallel_tasks_per_job, -1: null */
	int pool;                  /* min(32, ncpu + 4) */
	char *cache_env;           /* FRACTAL_CACHE_DIR=... */
} job_t;

static void wlog(job_t *j, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void wlog(job_t *j, const char *level, const char *fmt, ...)
{
	if (!j->log)
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	char ts[40];
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	sb_t line = SB_INIT;
	sb_addf(&line, "%s,%03ld - %s - %s - ", ts, (long)(tv.tv_usec / 1000), j->logger, level);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&line, fmt, ap);
	va_end(ap);
	sb_addc(&line, '\n');
	fwrite(line.buf, 1, line.len, j->log);
	fflush(j->log);
	sb_release(&line);
}

static int db_fail(job_t *j, const char *what)
{
	log_error("job %lld: database error (%s): %s", (long long)j->a.job_id, what, db_errmsg(j->db));
	db_rollback(j->db);
	return -1;
}

/* ---- small file helpers ---- */

/* grep -i -q WARNING, streaming. */
static int file_has_warning(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static const char pat[] = "warning";
	size_t m = 0;
	int c, found = 0;
	while (!found && (c = getc(f)) != EOF) {
		c = tolower(c);
		if (c == pat[m]) {
			if (++m == sizeof(pat) - 1)
				found = 1;
		} else {
			m = (c == pat[0]);
		}
	}
	fclose(f);
	return found;
}

static int read_whole(const char *path, sb_t *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(out, buf, n);
	fclose(f);
	return 0;
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			k++;
	return k;
}

/* The log content for "STDERR: ...", or upstream's placeholder when it is
 * longer than MAX_LEN_STDERR characters; never loads more than 4 bytes per
 * allowed character. */
static void stderr_text(const char *path, sb_t *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	sb_t buf = SB_INIT;
	size_t chars = 0;
	char chunk[65536];
	size_t n;
	int big = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		chars += utf8_chars(chunk, n);
		if (!big)
			sb_add(&buf, chunk, n);
		if (buf.len > 4 * MAX_LEN_STDERR) {
			big = 1;
			sb_release(&buf);
		}
	}
	fclose(f);
	if (chars > MAX_LEN_STDERR)
		sb_addf(out, "Cannot display stderr of length %zu. You can find the detailed logs by downloading the job-log folder.",
			chars);
	else
		sb_add(out, buf.buf, buf.len);
	sb_release(&buf);
}

/* Python's json.dump(obj, f): ", " and ": " separators, ASCII only. */
static int write_json_file(const char *path, json_t *v)
{
	return json_dump_file(v, path, JSON_ENSURE_ASCII | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

/* str(OSError) as Python prints it: "[Errno 17] File exists: '/x'". */
static void os_error(sb_t *out, int err, const char *path)
{
	sb_addf(out, "[Errno %d] %s: ", err, strerror(err));
	py_repr_str(out, path, strlen(path));
}

static const char *os_error_type(int err)
{
	switch (err) {
	case EEXIST: return "FileExistsError";
	case ENOENT: return "FileNotFoundError";
	case EACCES: case EPERM: return "PermissionError";
	case ENOTDIR: return "NotADirectoryError";
	default: return "OSError";
	}
}

static int mkdir_parents(const char *path)
{
	sb_t p = SB_INIT;
	sb_adds(&p, path);
	for (char *s = p.buf + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p.buf, 0755) && errno != EEXIST) {
				int e = errno;
				sb_release(&p);
				errno = e;
				return -1;
			}
			*s = '/';
		}
	sb_release(&p);
	return 0;
}

/* upstream's sanitize_string: lower case, punctuation and spaces to "_". */
static void sanitize(sb_t *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (ispunct(c) || isspace(c))
			sb_addc(out, '_');
		else
			sb_addc(out, (char)tolower(c));
	}
}

/* ---- images ---- */

/* Python equality of two attribute values (1 == 1.0 == True). */
static int py_eq(json_t *a, json_t *b)
{
	if (json_is_string(a) || json_is_string(b))
		return json_is_string(a) && json_is_string(b) && !strcmp(json_string_value(a), json_string_value(b));
	if ((json_is_number(a) || json_is_boolean(a)) && (json_is_number(b) || json_is_boolean(b))) {
		double x = json_is_boolean(a) ? json_is_true(a) : json_number_value(a);
		double y = json_is_boolean(b) ? json_is_true(b) : json_number_value(b);
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return x == y;
	}
	return json_is_null(a) && json_is_null(b);
}

static int match_types(json_t *img, json_t *type_filters)
{
	json_t *types = json_object_get(img, "types");
	const char *k;
	json_t *v;
	json_object_foreach(type_filters, k, v) {
		json_t *t = json_object_get(types, k);
		int have = t ? json_is_true(t) : 0;
		if (have != json_is_true(v))
			return 0;
	}
	return 1;
}

static int match_attributes(json_t *img, json_t *attribute_filters)
{
	json_t *attrs = json_object_get(img, "attributes");
	const char *k;
	json_t *vals;
	json_object_foreach(attribute_filters, k, vals) {
		json_t *a = json_object_get(attrs, k);
		if (!a)
			a = json_null();
		int found = 0;
		size_t i;
		json_t *x;
		json_array_foreach(vals, i, x)
			if (py_eq(a, x)) {
				found = 1;
				break;
			}
		if (!found)
			return 0;
	}
	return 1;
}

/* zarr_url -> index of its first occurrence. */
static json_t *index_images(json_t *images)
{
	json_t *idx = json_object();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		const char *u = json_string_value(json_object_get(img, "zarr_url"));
		if (u && !json_object_get(idx, u))
			json_object_set_new(idx, u, json_integer((json_int_t)i));
	}
	return idx;
}

static long find_image(json_t *idx, const char *url)
{
	json_t *v = json_object_get(idx, url);
	return v ? (long)json_integer_value(v) : -1;
}

/* ---- pydantic-shaped messages for task outputs ---- */

static void pyd_errors(sb_t *out, const char *model, json_t *errs)
{
	size_t n = json_array_size(errs);
	sb_addf(out, "%zu validation error%s for %s", n, n == 1 ? "" : "s", model);
	size_t i;
	json_t *e;
	json_array_foreach(errs, i, e) {
		sb_addc(out, '\n');
		json_t *loc = json_object_get(e, "loc");
		size_t k;
		json_t *l;
		json_array_foreach(loc, k, l) {
			if (k)
				sb_addc(out, '.');
			if (json_is_integer(l))
				sb_addf(out, "%lld", (long long)json_integer_value(l));
			else
				sb_adds(out, json_string_value(l));
		}
		const char *type = json_string_value(json_object_get(e, "type"));
		json_t *input = json_object_get(e, "input");
		sb_addf(out, "\n  %s [type=%s, input_value=", json_string_value(json_object_get(e, "msg")), type);
		py_repr_json(out, input ? input : json_null());
		sb_addf(out, ", input_type=%s]", py_type_name(input ? input : json_null()));
		sb_addf(out, "\n    For further information visit https://errors.pydantic.dev/2.13/v/%s", type);
	}
}

static void verr_push(verr_t *e, const char *type, json_t *loc, const char *msg, json_t *input)
{
	verr_add(e, type, loc, msg, input, NULL);
}

/* SingleImageTaskOutput: SingleImage whose attributes may be null. */
static json_t *image_output_validate(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "model_type", json_incref(loc),
			 "Input should be a valid dictionary or instance of SingleImageTaskOutput", in,
			 json_pack("{s:s}", "class_name", "SingleImageTaskOutput"));
		return NULL;
	}
	json_t *copy = json_copy(in);
	json_t *attrs = json_object_get(copy, "attributes");
	json_t *nulls = json_array();
	if (json_is_object(attrs)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(attrs, tmp, k, v) {
			if (json_is_null(v)) {
				json_array_append_new(nulls, json_string(k));
				json_object_del(attrs, k);
			}
		}
	}
	json_t *out = image_validate(copy, loc, e);
	json_decref(copy);
	if (out) {
		json_t *a = json_object_get(out, "attributes");
		size_t i;
		json_t *k;
		json_array_foreach(nulls, i, k) {
			/* keys are stripped as the others */
			const char *s = json_string_value(k);
			while (isspace((unsigned char)*s))
				s++;
			size_t n = strlen(s);
			while (n && isspace((unsigned char)s[n - 1]))
				n--;
			char *key = xstrndup(s, n);
			json_object_set_new(a, key, json_null());
			free(key);
		}
	}
	json_decref(nulls);
	return out;
}

/* loc is stolen */
static json_t *zarr_url_value(json_t *v, json_t *loc, verr_t *e)
{
	if (!json_is_string(v)) {
		verr_push(e, "string_type", loc, "Input should be a valid string", v);
		return NULL;
	}
	const char *why = NULL;
	char *norm = zarr_url_normalise(json_string_value(v), &why);
	if (!norm) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Value error, %s", why);
		verr_add(e, "value_error", loc, m.buf, v, json_pack("{s:{}}", "error"));
		sb_release(&m);
		return NULL;
	}
	json_decref(loc);
	json_t *r = json_string(norm);
	free(norm);
	return r;
}

static void extra_forbidden(json_t *obj, const char **allowed, json_t *base, verr_t *e)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int ok = 0;
		for (const char **a = allowed; *a; a++)
			ok |= !strcmp(*a, k);
		if (!ok) {
			json_t *loc = json_copy(base);
			json_array_append_new(loc, json_string(k));
			verr_push(e, "extra_forbidden", loc, "Extra inputs are not permitted", v);
		}
	}
}

static json_t *list_field(json_t *obj, const char *name, verr_t *e)
{
	json_t *v = json_object_get(obj, name);
	if (!v || json_is_array(v))
		return v;
	verr_push(e, "list_type", json_pack("[s]", name), "Input should be a valid list", v);
	return NULL;
}

/* The end of both output validations: unknown top-level keys, then either
 * out (the validated output) or NULL with upstream's message naming what
 * and the model. Frees e; out is stolen. */
static json_t *output_validated(json_t *result, const char **allowed, verr_t *e, const char *what, const char *model,
				json_t *out, sb_t *msg)
{
	json_t *empty = json_array();
	extra_forbidden(result, allowed, empty, e);
	json_decref(empty);
	if (json_array_size(e->list)) {
		sb_addf(msg, "Validation of %s failed.\nOriginal error: ", what);
		pyd_errors(msg, model, e->list);
		sb_adds(msg, "\nOriginal data: ");
		py_repr_json(msg, result);
		sb_adds(msg, ".");
		json_decref(out);
		out = NULL;
	}
	verr_free(e);
	return out;
}

/* TaskOutput(**result): a new {"image_list_updates": [...],
 * "image_list_removals": [...]}, or NULL with upstream's message in msg.
 * result must be an object. */
static json_t *task_output_validate(json_t *result, sb_t *msg)
{
	verr_t e;
	verr_init(&e);
	static const char *allowed[] = { "image_list_updates", "image_list_removals", NULL };
	json_t *out = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
	json_t *ups = list_field(result, "image_list_updates", &e);
	size_t i;
	json_t *x;
	json_array_foreach(ups, i, x) {
		json_t *loc = json_pack("[s,I]", "image_list_updates", (json_int_t)i);
		json_t *img = image_output_validate(x, loc, &e);
		json_decref(loc);
		if (img)
			json_array_append_new(json_object_get(out, "image_list_updates"), img);
	}
	json_t *rms = list_field(result, "image_list_removals", &e);
	json_array_foreach(rms, i, x) {
		json_t *u = zarr_url_value(x, json_pack("[s,I]", "image_list_removals", (json_int_t)i), &e);
		if (u)
			json_array_append_new(json_object_get(out, "image_list_removals"), u);
	}
	return output_validated(result, allowed, &e, "task output", "TaskOutput", out, msg);
}

/* InitTaskOutput(**result): the parallelization list, or NULL with msg. */
static json_t *init_output_validate(json_t *result, sb_t *msg)
{
	verr_t e;
	verr_init(&e);
	static const char *allowed[] = { "parallelization_list", NULL };
	static const char *item_allowed[] = { "zarr_url", "init_args", NULL };
	json_t *out = json_array();
	json_t *list = list_field(result, "parallelization_list", &e);
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		json_t *base = json_pack("[s,I]", "parallelization_list", (json_int_t)i);
		if (!json_is_object(x)) {
			verr_add(&e, "model_type", json_incref(base), "Input should be a valid dictionary or instance of InitArgsModel",
				 x, json_pack("{s:s}", "class_name", "InitArgsModel"));
			json_decref(base);
			continue;
		}
		json_t *item = json_object();
		json_t *zu = json_object_get(x, "zarr_url");
		json_t *loc = json_copy(base);
		json_array_append_new(loc, json_string("zarr_url"));
		if (!zu) {
			verr_push(&e, "missing", loc, "Field required", x);
		} else {
			json_t *u = zarr_url_value(zu, loc, &e);
			if (u)
				json_object_set_new(item, "zarr_url", u);
		}
		json_t *ia = json_object_get(x, "init_args");
		if (!ia) {
			json_object_set_new(item, "init_args", json_object());
		} else if (!json_is_object(ia)) {
			json_t *l2 = json_copy(base);
			json_array_append_new(l2, json_string("init_args"));
			verr_push(&e, "dict_type", l2, "Input should be a valid dictionary", ia);
		} else {
			json_object_set(item, "init_args", ia);
		}
		extra_forbidden(x, item_allowed, base, &e);
		json_decref(base);
		json_array_append_new(out, item);
	}
	return output_validated(result, allowed, &e, "init-task output", "InitTaskOutput", out, msg);
}

/* deduplicate_list: exact duplicates removed, first kept. Steals list. */
static json_t *dedupe(json_t *list)
{
	json_t *seen = json_object(), *out = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		char *key = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			json_array_append(out, x);
		}
		free(key);
	}
	json_decref(seen);
	json_decref(list);
	return out;
}

/* ---- units: one subprocess each ---- */

typedef struct unit {
	json_t *args;
	sb_t args_path, log_path, out_path;
	int64_t hu_id;
	pid_t pid;
	int state;          /* 0 pending, 1 running, 2 finished */
	json_t *result;     /* NULL: no output file; else the parsed JSON */
	char *exc;          /* the exception text, or NULL */
} unit_t;

static void unit_free(unit_t *u)
{
	json_decref(u->args);
	json_decref(u->result);
	sb_release(&u->args_path);
	sb_release(&u->log_path);
	sb_release(&u->out_path);
	free(u->exc);
}

static void unit_files(unit_t *u, const char *subfolder, const char *prefix_component)
{
	sb_addf(&u->args_path, "%s/%s-args.json", subfolder, prefix_component);
	sb_addf(&u->log_path, "%s/%s-log.txt", subfolder, prefix_component);
	sb_addf(&u->out_path, "%s/%s-metadiff.json", subfolder, prefix_component);
}

static void unit_fail(unit_t *u, const char *msg)
{
	free(u->exc);
	u->exc = xstrdup(msg);
	u->state = 2;
}

/* run_single_task up to the start of the process (call_command_wrapper's
 * checks included). */
static void unit_start(job_t *j, unit_t *u, const char *base_command)
{
	if (atomic_load(&stopping)) {
		unit_fail(u, "Task not started: the server is shutting down.");
		return;
	}
	sb_t err = SB_INIT;
	if (write_json_file(u->args_path.buf, u->args)) {
		os_error(&err, errno, u->args_path.buf);
		unit_fail(u, err.buf);
		sb_release(&err);
		return;
	}
	sb_t cmd = SB_INIT;
	sb_addf(&cmd, "%s --args-json %s --out-json %s", base_command ? base_command : "None", u->args_path.buf,
		u->out_path.buf);
	sb_t m = SB_INIT;
	const char *bad = task_validate_cmd(cmd.buf, NULL, NULL, &m);
	if (bad) {
		sb_addf(&err, "Invalid command. Original error: %s", bad);
		unit_fail(u, err.buf);
		goto out;
	}
	int argc;
	const char *why = NULL;
	char **argv = proc_split(cmd.buf, &argc, &why);
	if (!argv) {
		unit_fail(u, why);
		goto out;
	}
	if (proc_which(argv[0])) {
		sb_addf(&err, "Command \"%s\" is not valid. Hint: make sure that it is executable.", argv[0]);
		unit_fail(u, err.buf);
		free(argv);
		goto out;
	}
	int fd = open(u->log_path.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		os_error(&err, errno, u->log_path.buf);
		unit_fail(u, err.buf);
		free(argv);
		goto out;
	}
	close(fd);
	char *env[] = { j->cache_env, NULL };
	u->pid = proc_start(argv, env, u->log_path.buf, &why);
	free(argv);
	if (u->pid < 0) {
		sb_addf(&err, "%s", why ? why : strerror(errno));
		unit_fail(u, err.buf);
		goto out;
	}
	/* a shutdown that began meanwhile missed this process: stop it here */
	reg_pid(u->pid, 1);
	if (atomic_load(&stopping))
		proc_kill_group(u->pid, SIGTERM);
	u->state = 1;
out:
	sb_release(&cmd);
	sb_release(&m);
	sb_release(&err);
}

static void unit_finish(unit_t *u, int rc)
{
	reg_pid(u->pid, 0);
	u->state = 2;
	if (rc != 0) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Task failed with returncode=%d.\nSTDERR: ", rc);
		stderr_text(u->log_path.buf, &m);
		unit_fail(u, m.buf);
		sb_release(&m);
		return;
	}
	sb_t text = SB_INIT;
	if (read_whole(u->out_path.buf, &text)) {
		sb_release(&text);
		return; /* no metadiff file: result None */
	}
	json_error_t je;
	u->result = json_loadb(text.buf, text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!u->result) {
		sb_t m = SB_INIT;
		size_t k = 0;
		while (k < text.len && isspace((unsigned char)text.buf[k]))
			k++;
		if (k == text.len)
			sb_addf(&m, "Expecting value: line %d column %d (char %zu)", 1 + 0, (int)k + 1, k);
		else
			sb_addf(&m, "%s: line %d column %d (char %d)", je.text, je.line, je.column, je.position);
		unit_fail(u, m.buf);
		sb_release(&m);
	}
	sb_release(&text);
}

/* on_done(ctx, index) is called as each unit ends (history updates). */
typedef void (*unit_done_fn)(job_t *j, unit_t *u, void *ctx);

/* Runs units in chunks of chunk (0: all), at most j->pool at once, as
 * LocalRunner.multisubmit on a ThreadPoolExecutor does. */
static void run_units(job_t *j, unit_t *units, size_t n, size_t chunk, const char *cmd, unit_done_fn done, void *ctx)
{
	if (!chunk)
		chunk = n;
	for (size_t c0 = 0; c0 < n; c0 += chunk) {
		size_t c1 = c0 + chunk < n ? c0 + chunk : n;
		size_t next = c0, running = 0, left = c1 - c0;
		useconds_t nap = 2000;
		while (left) {
			while (next < c1 && running < (size_t)j->pool) {
				unit_start(j, &units[next], cmd);
				if (units[next].state == 1)
					running++;
				else {
					left--;
					if (done)
						done(j, &units[next], ctx);
				}
				next++;
			}
			int progressed = 0;
			for (size_t i = c0; i < next; i++) {
				int rc;
				if (units[i].state == 1 && proc_poll(units[i].pid, &rc)) {
					unit_finish(&units[i], rc);
					running--;
					left--;
					progressed = 1;
					if (done)
						done(j, &units[i], ctx);
				}
			}
			if (left && !progressed) {
				usleep(nap);
				if (nap < 100000)
					nap *= 2;
			} else {
				nap = 2000;
			}
		}
	}
}

/* ---- history rows ---- */

static int unit_set_status(job_t *j, int64_t hu_id, const char *status, const char *logfile)
{
	return db_exec(j->db, "UPDATE historyunit SET status = $1, has_warnings = $2 WHERE id = $3",
		       (db_param_t[]){ P_TEXT(status), P_BOOL(file_has_warning(logfile)), P_INT(hu_id) }, 3, NULL);
}

static int run_set_status(job_t *j, int64_t run_id, const char *status)
{
	if (db_exec(j->db, "UPDATE historyrun SET status = $1 WHERE id = $2",
		    (db_param_t[]){ P_TEXT(status), P_INT(run_id) }, 2, NULL))
		return db_fail(j, "history run");
	return 0;
}

static int64_t unit_insert(job_t *j, int64_t run_id, const char *logfile, json_t *urls)
{
	char *arr = json_dumps(urls, JSON_COMPACT);
	db_res_t *r = NULL;
	int64_t id = -1;
	if (!db_exec(j->db,
		     "INSERT INTO historyunit (history_run_id, logfile, status, zarr_urls, has_warnings) "
		     "VALUES ($1, $2, 'submitted', $3, $4) RETURNING id",
		     (db_param_t[]){ P_INT(run_id), P_TEXT(logfile), P_ARRAY(arr), P_BOOL(0) }, 4, &r))
		id = db_int(r, 0, 0);
	db_res_free(r);
	free(arr);
	return id;
}

/* bulk_upsert_image_cache_fast: every url -> unit id (parallel arrays). */
static int cache_upsert(job_t *j, int64_t dataset_id, int64_t wftask_id, json_t *urls, const int64_t *unit_ids)
{
	size_t n = json_array_size(urls);
	for (size_t b = 0; b < n; b += 500) {
		size_t e = b + 500 < n ? b + 500 : n;
		sb_t sql = SB_INIT;
		sb_adds(&sql, "INSERT INTO historyimagecache (zarr_url, dataset_id, workflowtask_id, latest_history_unit_id) VALUES ");
		db_param_t *p = xcalloc(4 * (e - b), sizeof(*p));
		for (size_t i = b; i < e; i++) {
			size_t k = 4 * (i - b);
			sb_addf(&sql, "%s($%zu, $%zu, $%zu, $%zu)", i > b ? ", " : "", k + 1, k + 2, k + 3, k + 4);
			p[k] = P_TEXT(json_string_value(json_array_get(urls, i)));
			p[k + 1] = P_INT(dataset_id);
			p[k + 2] = P_INT(wftask_id);
			p[k + 3] = P_INT(unit_ids[i]);
		}
		sb_adds(&sql, " ON CONFLICT (zarr_url, dataset_id, workflowtask_id) DO UPDATE SET "
			      "latest_history_unit_id = excluded.latest_history_unit_id");
		int rc = db_exec(j->db, sql.buf, p, (int)(4 * (e - b)), NULL);
		free(p);
		sb_release(&sql);
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- one workflow task ---- */

typedef struct wft {
	int64_t id, workflow_id, order, task_id, tg_id;
	const char *name, *type, *task_type, *cmd_np, *cmd_p, *version, *alias;
	json_t *meta_np, *meta_p, *args_np, *args_p, *type_filters, *input_types, *output_types;
	const char *pkg_name, *tg_version;
} wft_t;

/* An outcome of one unit: the validated TaskOutput, or an exception. */
typedef struct outcome {
	json_t *output;
	char *exc;
	int invalid_output;
} outcome_t;

typedef struct dispatch {
	outcome_t *out;
	size_t n;
	int64_t num_tasks;
} dispatch_t;

static void dispatch_free(dispatch_t *d)
{
	for (size_t i = 0; i < d->n; i++) {
		json_decref(d->out[i].output);
		free(d->out[i].exc);
	}
	free(d->out);
	d->out = NULL;
	d->n = 0;
}

/* _process_task_output. A non-object result makes TaskOutput(**result)
 * raise a TypeError, which escapes the dispatch: returned as -1 in msg. */
static int process_output(unit_t *u, outcome_t *o, sb_t *typeerr)
{
	if (u->exc) {
		o->exc = xstrdup(u->exc);
		return 0;
	}
	if (!u->result || json_is_null(u->result)) {
		o->output = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
		return 0;
	}
	if (!json_is_object(u->result)) {
		sb_addf(typeerr, "fractal_server.runner.v2.task_interface.TaskOutput() argument after ** must be a mapping, not %s",
			py_type_name(u->result));
		return -1;
	}
	sb_t m = SB_INIT;
	o->output = task_output_validate(u->result, &m);
	if (!o->output) {
		o->exc = sb_detach(&m);
		o->invalid_output = 1;
	}
	sb_release(&m);
	return 0;
}

static int64_t ptpj_for(job_t *j, json_t *meta)
{
	json_t *v = json_object_get(meta, "parallel_tasks_per_job");
	if (v)
		return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
	return j->ptpj_default;
}

/* parallel status updates, as each unit ends */
struct par_ctx {
	int update;   /* parallel: the runner sets unit statuses */
};

static void par_done(job_t *j, unit_t *u, void *ctx)
{
	struct par_ctx *c = ctx;
	if (!c->update)
		return;
	if (unit_set_status(j, u->hu_id, u->exc ? "failed" : "done", u->log_path.buf))
		log_error("job %lld: cannot update history unit %lld: %s", (long long)j->a.job_id, (long long)u->hu_id,
			  db_errmsg(j->db));
}

/* The task subfolder: <root>/<order>_<sanitized name>. */
static void subfolder(job_t *j, const char *root, const wft_t *w, sb_t *out)
{
	(void)j;
	sb_addf(out, "%s/%lld_", root, (long long)w->order);
	sanitize(out, w->name);
}

/* LocalRunner.submit for one unit (non-parallel, init). submit_status:
 * whether the runner sets the unit's status on success. */
static void submit_one(job_t *j, const char *root, const wft_t *w, unit_t *u, const char *cmd, int set_done)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	if (mkdir(dir.buf, 0755)) {
		sb_t m = SB_INIT;
		os_error(&m, errno, dir.buf);
		unit_fail(u, m.buf);
		sb_release(&m);
	} else {
		run_units(j, u, 1, 1, cmd, NULL, NULL);
	}
	sb_release(&dir);
	if (u->exc || set_done) {
		if (unit_set_status(j, u->hu_id, u->exc ? "failed" : "done", u->log_path.buf))
			log_error("job %lld: cannot update history unit: %s", (long long)j->a.job_id, db_errmsg(j->db));
	}
}

static json_t *urls_of(json_t *images)
{
	json_t *urls = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
		json_array_append(urls, json_object_get(img, "zarr_url"));
	return urls;
}

/* args of a non-parallel unit: zarr_dir, args_non_parallel, [zarr_urls] */
static json_t *args_np(const char *zarr_dir, const wft_t *w, json_t *urls)
{
	json_t *a = json_pack("{s:s}", "zarr_dir", zarr_dir);
	if (json_is_object(w->args_np))
		json_object_update(a, w->args_np);
	if (urls)
		json_object_set(a, "zarr_urls", urls);
	return a;
}

/*
 * The one non-parallel unit of a non_parallel or compound task (its init):
 * args with zarr_urls (none for a converter) and files non_par-*. Returns
 * the zarr_urls the unit covers (new reference; empty for a converter).
 */
static json_t *np_unit(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir, unit_t *u)
{
	int converter = !strncmp(w->type, "converter_", 10);
	json_t *urls = converter ? json_array() : urls_of(images);
	u->args = args_np(zarr_dir, w, converter ? NULL : urls);
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	unit_files(u, dir.buf, "non_par-");
	sb_release(&dir);
	return urls;
}

static int run_non_parallel(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir,
			    int64_t run_id, dispatch_t *d, jerr_t *err)
{
	unit_t u = { 0 };
	json_t *urls = np_unit(j, root, w, images, zarr_dir, &u);
	int rc = -1;
	if (db_begin(j->db) || (u.hu_id = unit_insert(j, run_id, u.log_path.buf, urls)) < 0)
		goto dberr;
	int64_t *ids = xcalloc(json_array_size(urls) + 1, sizeof(*ids));
	for (size_t i = 0; i < json_array_size(urls); i++)
		ids[i] = u.hu_id;
	int crc = cache_upsert(j, j->a.dataset_id, w->id, urls, ids);
	free(ids);
	if (crc || db_commit(j->db))
		goto dberr;
	submit_one(j, root, w, &u, w->cmd_np, 1);
	d->n = 1;
	d->out = xcalloc(1, sizeof(outcome_t));
	d->num_tasks = 1;
	sb_t te = SB_INIT;
	if (process_output(&u, &d->out[0], &te)) {
		jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
		sb_release(&te);
		goto out;
	}
	sb_release(&te);
	if (d->out[0].invalid_output && unit_set_status(j, u.hu_id, "failed", u.log_path.buf))
		goto dberr;
	rc = 0;
	goto out;
dberr:
	db_fail(j, "history unit");
	jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
out:
	unit_free(&u);
	json_decref(urls);
	return rc;
}

/* Units for a multisubmit: files par-<batch>-<index>, history rows. */
static int prepare_multi(job_t *j, const char *root, const wft_t *w, unit_t *units, size_t n, int64_t batch,
			 int64_t run_id)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	if (batch <= 0)
		batch = (int64_t)n;
	for (size_t i = 0; i < n; i++) {
		char pc[64];
		snprintf(pc, sizeof(pc), "par-%06lld-%07zu", (long long)((int64_t)i / batch), i);
		unit_files(&units[i], dir.buf, pc);
	}
	sb_release(&dir);
	if (db_begin(j->db))
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *urls = json_pack("[O]", json_object_get(units[i].args, "zarr_url"));
		units[i].hu_id = unit_insert(j, run_id, units[i].log_path.buf, urls);
		json_decref(urls);
		if (units[i].hu_id < 0)
			return -1;
	}
	return 0;
}

/* multisubmit's preliminary phase: the subfolder (may exist). */
static const char *multi_mkdir(job_t *j, const char *root, const wft_t *w, sb_t *msg)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	const char *r = NULL;
	if (mkdir(dir.buf, 0755) && errno != EEXIST) {
		os_error(msg, errno, dir.buf);
		r = msg->buf;
	}
	sb_release(&dir);
	return r;
}

static int run_parallel(job_t *j, const char *root, const wft_t *w, json_t *images, int64_t run_id, dispatch_t *d,
			jerr_t *err)
{
	size_t n = json_array_size(images);
	if (n == 0)
		return 0;
	if (n > MAX_PARALLELIZATION_LIST_SIZE) {
		jerr_set(err, JE_JOB, 0, NULL, "Too many parallelization items.\n   %zu\n   MAX_PARALLELIZATION_LIST_SIZE=%d\n", n,
			 MAX_PARALLELIZATION_LIST_SIZE);
		return -1;
	}
	int64_t ptpj = ptpj_for(j, w->meta_p);
	unit_t *units = xcalloc(n, sizeof(unit_t));
	json_t *urls = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *zu = json_object_get(json_array_get(images, i), "zarr_url");
		units[i].args = json_pack("{s:O}", "zarr_url", zu);
		if (json_is_object(w->args_p))
			json_object_update(units[i].args, w->args_p);
		json_array_append(urls, zu);
	}
	int rc = -1;
	if (prepare_multi(j, root, w, units, n, ptpj > 0 ? ptpj : 0, run_id))
		goto dberr;
	int64_t *ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = units[i].hu_id;
	int crc = cache_upsert(j, j->a.dataset_id, w->id, urls, ids);
	free(ids);
	if (crc || db_commit(j->db))
		goto dberr;
	sb_t m = SB_INIT;
	const char *pre = multi_mkdir(j, root, w, &m);
	json_t *seen = index_images(images);
	if (!pre && json_object_size(seen) != n)
		pre = "Non-unique zarr_urls";
	json_decref(seen);
	if (!pre && ptpj == 0)
		pre = "range() arg 3 must not be zero";
	struct par_ctx pc = { 1 };
	if (pre) {
		for (size_t i = 0; i < n; i++) {
			unit_fail(&units[i], pre);
			par_done(j, &units[i], &pc);
		}
	} else {
		run_units(j, units, n, ptpj > 0 ? (size_t)ptpj : 0, w->cmd_p, par_done, &pc);
	}
	sb_release(&m);
	d->n = n;
	d->out = xcalloc(n, sizeof(outcome_t));
	d->num_tasks = (int64_t)n;
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		sb_t te = SB_INIT;
		if (process_output(&units[i], &d->out[i], &te)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
			rc = -1;
		} else if (d->out[i].invalid_output && unit_set_status(j, units[i].hu_id, "failed", units[i].log_path.buf)) {
			db_fail(j, "history unit");
		}
		sb_release(&te);
	}
	if (rc)
		dispatch_free(d);
	goto out;
dberr:
	db_fail(j, "history units");
	jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
out:
	for (size_t i = 0; i < n; i++)
		unit_free(&units[i]);
	free(units);
	json_decref(urls);
	return rc;
}

static int bulk_status(job_t *j, const int64_t *ids, size_t n, const char *status, unit_t *units, size_t nunits,
		       unit_t *init)
{
	/* has_warnings first (only ever set to true), then the status */
	for (size_t i = 0; i <= nunits; i++) {
		unit_t *u = i < nunits ? &units[i] : init;
		if (file_has_warning(u->log_path.buf) &&
		    db_exec(j->db, "UPDATE historyunit SET has_warnings = $1 WHERE id = $2",
			    (db_param_t[]){ P_BOOL(1), P_INT(u->hu_id) }, 2, NULL))
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (db_exec(j->db, "UPDATE historyunit SET status = $1 WHERE id = $2",
			    (db_param_t[]){ P_TEXT(status), P_INT(ids[i]) }, 2, NULL))
			return -1;
	return 0;
}

static int run_compound(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir,
			int64_t run_id, dispatch_t *d, jerr_t *err)
{
	unit_t init = { 0 };
	json_t *urls = np_unit(j, root, w, images, zarr_dir, &init);
	int rc = -1;
	unit_t *units = NULL;
	size_t n = 0;
	json_t *plist = NULL;
	if (db_begin(j->db) || (init.hu_id = unit_insert(j, run_id, init.log_path.buf, urls)) < 0)
		goto dberr;
	int64_t *ids = xcalloc(json_array_size(urls) + 1, sizeof(*ids));
	for (size_t i = 0; i < json_array_size(urls); i++)
		ids[i] = init.hu_id;
	int crc = cache_upsert(j, j->a.dataset_id, w->id, urls, ids);
	free(ids);
	if (crc || db_commit(j->db))
		goto dberr;
	/* the runner leaves a compound init's status alone on success */
	submit_one(j, root, w, &init, w->cmd_np, 0);
	d->num_tasks = 1;
	char *init_exc = init.exc ? xstrdup(init.exc) : NULL;
	if (!init_exc) {
		if (!init.result || json_is_null(init.result)) {
			plist = json_array();
		} else if (!json_is_object(init.result)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError",
				 "fractal_server.runner.v2.task_interface.InitTaskOutput() argument after ** must be a mapping, not %s",
				 py_type_name(init.result));
			goto out;
		} else {
			sb_t m = SB_INIT;
			plist = init_output_validate(init.result, &m);
			if (!plist)
				init_exc = sb_detach(&m);
			sb_release(&m);
		}
	}
	if (init_exc) {
		d->n = 1;
		d->out = xcalloc(1, sizeof(outcome_t));
		d->out[0].exc = init_exc;
		rc = 0;
		goto out;
	}
	plist = dedupe(plist);
	n = json_array_size(plist);
	d->num_tasks = 1 + (int64_t)n;
	if (n > MAX_PARALLELIZATION_LIST_SIZE) {
		jerr_set(err, JE_JOB, 0, NULL, "Too many parallelization items.\n   %zu\n   MAX_PARALLELIZATION_LIST_SIZE=%d\n", n,
			 MAX_PARALLELIZATION_LIST_SIZE);
		goto out;
	}
	if (n == 0) {
		if (unit_set_status(j, init.hu_id, "done", init.log_path.buf))
			goto dberr;
		d->n = 1;
		d->out = xcalloc(1, sizeof(outcome_t));
		d->out[0].output = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
		rc = 0;
		goto out;
	}
	int64_t ptpj = ptpj_for(j, w->meta_p);
	units = xcalloc(n, sizeof(unit_t));
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(plist, i);
		units[i].args = json_pack("{s:O,s:O}", "zarr_url", json_object_get(item, "zarr_url"), "init_args",
					  json_object_get(item, "init_args"));
		if (json_is_object(w->args_p))
			json_object_update(units[i].args, w->args_p);
	}
	if (prepare_multi(j, root, w, units, n, ptpj > 0 ? ptpj : 0, run_id) || db_commit(j->db))
		goto dberr;
	sb_t m = SB_INIT;
	const char *pre = multi_mkdir(j, root, w, &m);
	if (!pre && ptpj == 0)
		pre = "range() arg 3 must not be zero";
	if (pre)
		for (size_t i = 0; i < n; i++)
			unit_fail(&units[i], pre);
	else
		run_units(j, units, n, ptpj > 0 ? (size_t)ptpj : 0, w->cmd_p, NULL, NULL);
	sb_release(&m);
	d->n = n;
	d->out = xcalloc(n, sizeof(outcome_t));
	int failure = 0;
	for (size_t i = 0; i < n; i++) {
		sb_t te = SB_INIT;
		if (process_output(&units[i], &d->out[i], &te)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
			sb_release(&te);
			dispatch_free(d);
			goto out;
		}
		sb_release(&te);
		if (d->out[i].exc)
			failure = 1;
	}
	int64_t *all = xcalloc(n + 1, sizeof(*all));
	for (size_t i = 0; i < n; i++)
		all[i] = units[i].hu_id;
	all[n] = init.hu_id;
	int brc = db_begin(j->db) || bulk_status(j, all, n + 1, failure ? "failed" : "done", units, n, &init) ||
		  db_commit(j->db);
	free(all);
	if (brc)
		goto dberr;
	rc = 0;
	goto out;
dberr:
	db_fail(j, "history units");
	jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
out:
	unit_free(&init);
	for (size_t i = 0; i < n && units; i++)
		unit_free(&units[i]);
	free(units);
	json_decref(urls);
	json_decref(plist);
	return rc;
}

/* ---- execute_tasks ---- */

static json_t *jparse(const char *s)
{
	return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

static void wft_free(wft_t *w)
{
	json_decref(w->meta_np);
	json_decref(w->meta_p);
	json_decref(w->args_np);
	json_decref(w->args_p);
	json_decref(w->type_filters);
	json_decref(w->input_types);
	json_decref(w->output_types);
}

static void add_json_or_null(sb_t *o, const char *raw)
{
	sb_adds(o, raw ? raw : "null");
}

static void add_str_or_null(sb_t *o, const char *s)
{
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

#define WFT_SQL                                                                                                   \
	"SELECT w.id, w.workflow_id, w.\"order\", w.meta_parallel, w.meta_non_parallel, w.args_parallel, "        \
	"w.args_non_parallel, w.type_filters, w.task_type, w.task_id, w.alias, w.description, "                   \
	"t.name, t.type, t.command_non_parallel, t.command_parallel, t.version, t.input_types, t.output_types, "  \
	"g.id, g.origin, g.pkg_name, g.version, g.python_version, g.pip_extras, g.pinned_package_versions_pre, "  \
	"g.pinned_package_versions_post, g.path, g.venv_path, g.archive_path "                                     \
	"FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id " \
	"WHERE w.workflow_id = $1 ORDER BY w.\"order\""

/* WorkflowTaskDump-like dump of row i (model_dump of the wftask plus a
 * TaskDump), and TaskGroupDump. */
static void wft_dumps(db_res_t *r, int i, sb_t *wd, sb_t *gd)
{
	sb_addf(wd, "{\"id\":%lld,\"workflow_id\":%lld,\"order\":%lld,\"meta_parallel\":", (long long)db_int(r, i, 0),
		(long long)db_int(r, i, 1), (long long)db_int(r, i, 2));
	add_json_or_null(wd, db_text(r, i, 3));
	sb_adds(wd, ",\"meta_non_parallel\":");
	add_json_or_null(wd, db_text(r, i, 4));
	sb_adds(wd, ",\"args_parallel\":");
	add_json_or_null(wd, db_text(r, i, 5));
	sb_adds(wd, ",\"args_non_parallel\":");
	add_json_or_null(wd, db_text(r, i, 6));
	sb_adds(wd, ",\"type_filters\":");
	add_json_or_null(wd, db_text(r, i, 7));
	sb_adds(wd, ",\"task_type\":");
	add_str_or_null(wd, db_text(r, i, 8));
	sb_addf(wd, ",\"task_id\":%lld,\"alias\":", (long long)db_int(r, i, 9));
	add_str_or_null(wd, db_text(r, i, 10));
	sb_adds(wd, ",\"description\":");
	add_str_or_null(wd, db_text(r, i, 11));
	sb_addf(wd, ",\"task\":{\"id\":%lld,\"name\":", (long long)db_int(r, i, 9));
	add_str_or_null(wd, db_text(r, i, 12));
	sb_adds(wd, ",\"type\":");
	add_str_or_null(wd, db_text(r, i, 13));
	sb_adds(wd, ",\"command_non_parallel\":");
	add_str_or_null(wd, db_text(r, i, 14));
	sb_adds(wd, ",\"command_parallel\":");
	add_str_or_null(wd, db_text(r, i, 15));
	sb_adds(wd, ",\"version\":");
	add_str_or_null(wd, db_text(r, i, 16));
	sb_adds(wd, ",\"input_types\":");
	add_json_or_null(wd, db_text(r, i, 17));
	sb_adds(wd, ",\"output_types\":");
	add_json_or_null(wd, db_text(r, i, 18));
	sb_adds(wd, "}}");
	sb_addf(gd, "{\"id\":%lld,\"origin\":", (long long)db_int(r, i, 19));
	add_str_or_null(gd, db_text(r, i, 20));
	static const char *names[] = { "pkg_name", "version", "python_version", "pip_extras" };
	for (int k = 0; k < 4; k++) {
		sb_addf(gd, ",\"%s\":", names[k]);
		add_str_or_null(gd, db_text(r, i, 21 + k));
	}
	sb_adds(gd, ",\"pinned_package_versions_pre\":");
	sb_adds(gd, db_text(r, i, 25) ? db_text(r, i, 25) : "{}");
	sb_adds(gd, ",\"pinned_package_versions_post\":");
	sb_adds(gd, db_text(r, i, 26) ? db_text(r, i, 26) : "{}");
	static const char *paths[] = { "path", "venv_path", "archive_path" };
	for (int k = 0; k < 3; k++) {
		sb_addf(gd, ",\"%s\":", paths[k]);
		add_str_or_null(gd, db_text(r, i, 27 + k));
	}
	sb_addc(gd, '}');
}

/* merge_type_filters; -1 with the ValueError text. */
static json_t *merge_type_filters(json_t *input_types, json_t *wft_filters, sb_t *msg)
{
	const char *k;
	json_t *v;
	json_object_foreach(input_types, k, v) {
		json_t *o = json_object_get(wft_filters, k);
		if (o && json_is_true(o) != json_is_true(v)) {
			sb_adds(msg, "Cannot merge type filters `");
			py_repr_json(msg, input_types);
			sb_adds(msg, "` (from task) and `");
			py_repr_json(msg, wft_filters);
			sb_adds(msg, "` (from workflowtask).");
			return NULL;
		}
	}
	json_t *m = json_copy(input_types);
	json_object_update(m, wft_filters);
	return m;
}

/* enrich_images_unsorted_sync: images with a status attribute, the
 * processed ones first. Steals images. */
static json_t *enrich_status(job_t *j, json_t *images, int64_t wftask_id)
{
	db_res_t *r = NULL;
	if (db_exec(j->db,
		    "SELECT c.zarr_url, u.status FROM historyimagecache c JOIN historyunit u ON u.id = c.latest_history_unit_id "
		    "WHERE c.dataset_id = $1 AND c.workflowtask_id = $2",
		    (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(wftask_id) }, 2, &r)) {
		log_error("job %lld: %s", (long long)j->a.job_id, db_errmsg(j->db));
		return images;
	}
	json_t *byurl = json_object();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
		json_object_set(byurl, json_string_value(json_object_get(img, "zarr_url")), img);
	json_t *out = json_array(), *done = json_object();
	for (int k = 0; k < db_nrows(r); k++) {
		json_t *m = json_object_get(byurl, db_text(r, k, 0));
		if (!m || json_object_get(done, db_text(r, k, 0)))
			continue;
		json_t *c = json_deep_copy(m);
		json_object_set_new(json_object_get(c, "attributes"), IMAGE_STATUS_KEY, json_string(db_text(r, k, 1)));
		json_array_append_new(out, c);
		json_object_set_new(done, db_text(r, k, 0), json_true());
	}
	json_array_foreach(images, i, img) {
		const char *u = json_string_value(json_object_get(img, "zarr_url"));
		if (json_object_get(done, u))
			continue;
		json_t *c = json_deep_copy(img);
		json_object_set_new(json_object_get(c, "attributes"), IMAGE_STATUS_KEY, json_string("unset"));
		json_array_append_new(out, c);
		json_object_set_new(done, u, json_true());
	}
	db_res_free(r);
	json_decref(byurl);
	json_decref(done);
	json_decref(images);
	return out;
}

/* Applies the merged output to tmp_images (upstream's post-task block).
 * Returns the number of new images, or -1 with err set. */
static long apply_output(json_t *tmp_images, json_t *output, json_t *output_types, const char *zarr_dir, jerr_t *err)
{
	json_t *ups = json_object_get(output, "image_list_updates");
	json_t *rms = json_object_get(output, "image_list_removals");
	/* check_zarr_urls_are_unique */
	json_t *count = json_object();
	size_t i;
	json_t *x;
	json_t *all = json_array();
	json_array_foreach(ups, i, x)
		json_array_append(all, json_object_get(x, "zarr_url"));
	json_array_extend(all, rms);
	int dup = 0;
	json_array_foreach(all, i, x) {
		json_t *c = json_object_get(count, json_string_value(x));
		json_object_set_new(count, json_string_value(x), json_integer(c ? json_integer_value(c) + 1 : 1));
		if (c)
			dup = 1;
	}
	if (dup) {
		jerr_set(err, JE_UNKNOWN, 0, "ValueError", "TaskOutput (%zu image_list_updates and %zu image_list_removals) has non-unique zarr_urls:",
			 json_array_size(ups), json_array_size(rms));
		const char *k;
		json_object_foreach(count, k, x)
			if (json_integer_value(x) > 1)
				sb_addf(&err->msg, "\n%s", k);
	}
	json_decref(count);
	json_decref(all);
	if (dup)
		return -1;
	json_t *idx = index_images(tmp_images);
	long num_new = 0;
	json_array_foreach(ups, i, x) {
		const char *url = json_string_value(json_object_get(x, "zarr_url"));
		json_t *origin = json_object_get(x, "origin");
		const char *ourl = json_is_string(origin) ? json_string_value(origin) : NULL;
		long at = find_image(idx, url);
		json_t *attrs, *types, *img;
		if (at >= 0) {
			json_t *old = json_array_get(tmp_images, (size_t)at);
			img = json_pack("{s:s}", "zarr_url", url);
			if (!ourl || !strcmp(ourl, url)) {
				attrs = json_copy(json_object_get(old, "attributes"));
				types = json_copy(json_object_get(old, "types"));
				json_t *oo = json_object_get(old, "origin");
				if (oo)
					json_object_set(img, "origin", oo);
			} else {
				long o = find_image(idx, ourl);
				json_t *oimg = o >= 0 ? json_array_get(tmp_images, (size_t)o) : NULL;
				attrs = oimg ? json_copy(json_object_get(oimg, "attributes")) : json_object();
				types = oimg ? json_copy(json_object_get(oimg, "types")) : json_object();
				json_object_set(img, "origin", origin);
			}
		} else {
			if (strncmp(url, zarr_dir, strlen(zarr_dir)) || !strcmp(url, zarr_dir)) {
				jerr_set(err, JE_JOB, 0, NULL,
					 "Cannot create image if zarr_url is not a subfolder of zarr_dir.\nzarr_dir: %s\nzarr_url: %s",
					 zarr_dir, url);
				json_decref(idx);
				return -1;
			}
			long o = ourl ? find_image(idx, ourl) : -1;
			json_t *oimg = o >= 0 ? json_array_get(tmp_images, (size_t)o) : NULL;
			attrs = oimg ? json_copy(json_object_get(oimg, "attributes")) : json_object();
			types = oimg ? json_copy(json_object_get(oimg, "types")) : json_object();
			img = json_pack("{s:s,s:O}", "zarr_url", url, "origin", origin ? origin : json_null());
		}
		if (!attrs)
			attrs = json_object();
		if (!types)
			types = json_object();
		json_object_update(attrs, json_object_get(x, "attributes"));
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(attrs, tmp, k, v)
			if (json_is_null(v))
				json_object_del(attrs, k);
		json_object_update(types, json_object_get(x, "types"));
		json_object_update(types, output_types);
		json_object_set_new(img, "attributes", attrs);
		json_object_set_new(img, "types", types);
		if (at >= 0) {
			json_array_set_new(tmp_images, (size_t)at, img);
		} else {
			json_array_append_new(tmp_images, img);
			json_object_set_new(idx, url, json_integer((json_int_t)json_array_size(tmp_images) - 1));
			num_new++;
		}
	}
	json_array_foreach(rms, i, x) {
		long at = find_image(idx, json_string_value(x));
		if (at < 0) {
			jerr_set(err, JE_JOB, 0, NULL, "Cannot remove missing image (zarr_url=%s).", json_string_value(x));
			json_decref(idx);
			return -1;
		}
		json_array_remove(tmp_images, (size_t)at);
		json_decref(idx);
		idx = index_images(tmp_images);
	}
	json_decref(idx);
	return num_new;
}

/* merge_outputs over the successful outcomes, with the "flag every input
 * image" rule. New reference. */
static json_t *merged_output(dispatch_t *d, json_t *filtered)
{
	json_t *ups = json_array(), *rms = json_array(), *seen = json_object();
	int any = 0;
	for (size_t i = 0; i < d->n; i++) {
		json_t *o = d->out[i].output;
		if (!o)
			continue;
		any = 1;
		json_array_extend(ups, json_object_get(o, "image_list_updates"));
		size_t k;
		json_t *x;
		json_array_foreach(json_object_get(o, "image_list_removals"), k, x)
			if (!json_object_get(seen, json_string_value(x))) {
				json_object_set_new(seen, json_string_value(x), json_true());
				json_array_append(rms, x);
			}
	}
	json_decref(seen);
	ups = dedupe(ups);
	if (any && !json_array_size(ups) && !json_array_size(rms)) {
		size_t k;
		json_t *img;
		json_array_foreach(filtered, k, img)
			json_array_append_new(ups, json_pack("{s:O,s:n,s:{},s:{}}", "zarr_url", json_object_get(img, "zarr_url"),
							     "origin", "attributes", "types"));
	}
	return json_pack("{s:o,s:o}", "image_list_updates", ups, "image_list_removals", rms);
}

static int write_images(job_t *j, json_t *tmp_images, int strip_status)
{
	sb_t js = SB_INIT;
	sb_addc(&js, '[');
	size_t i;
	json_t *img;
	json_array_foreach(tmp_images, i, img) {
		if (i)
			sb_addc(&js, ',');
		if (strip_status) {
			json_t *c = json_deep_copy(img);
			json_object_del(json_object_get(c, "attributes"), IMAGE_STATUS_KEY);
			image_dump(&js, c);
			json_decref(c);
		} else {
			image_dump(&js, img);
		}
	}
	sb_addc(&js, ']');
	int rc = db_exec(j->db, "UPDATE datasetv2 SET images = $1 WHERE id = $2",
			 (db_param_t[]){ P_JSON(js.buf), P_INT(j->a.dataset_id) }, 2, NULL);
	sb_release(&js);
	return rc;
}

static int execute_tasks(job_t *j, db_res_t *wr, int first, int last, const char *root, const char *zarr_dir,
			 json_t **images_p, json_t *job_type_filters, json_t *attribute_filters, jerr_t *err)
{
	json_t *current_tf = json_copy(job_type_filters);
	int enrich = json_object_get(attribute_filters, IMAGE_STATUS_KEY) != NULL;
	int rc = -1;
	for (int row = first; row <= last; row++) {
		if (atomic_load(&stopping)) {
			jerr_set(err, JE_JOB, 0, NULL, "Job stopped due to app shutdown");
			goto out;
		}
		wft_t w = {
			.id = db_int(wr, row, 0), .workflow_id = db_int(wr, row, 1), .order = db_int(wr, row, 2),
			.meta_p = jparse(db_text(wr, row, 3)), .meta_np = jparse(db_text(wr, row, 4)),
			.args_p = jparse(db_text(wr, row, 5)), .args_np = jparse(db_text(wr, row, 6)),
			.type_filters = jparse(db_text(wr, row, 7)), .task_type = db_text(wr, row, 8),
			.task_id = db_int(wr, row, 9), .alias = db_text(wr, row, 10), .name = db_text(wr, row, 12),
			.type = db_text(wr, row, 13), .cmd_np = db_text(wr, row, 14), .cmd_p = db_text(wr, row, 15),
			.version = db_text(wr, row, 16), .input_types = jparse(db_text(wr, row, 17)),
			.output_types = jparse(db_text(wr, row, 18)), .tg_id = db_int(wr, row, 19),
			.pkg_name = db_text(wr, row, 21), .tg_version = db_text(wr, row, 22),
		};
		if (!w.type_filters)
			w.type_filters = json_object();
		if (!w.input_types)
			w.input_types = json_object();
		if (!w.output_types)
			w.output_types = json_object();
		sb_t desc = SB_INIT;
		sb_addf(&desc, "%lld-th task (", (long long)w.order);
		if (w.alias && *w.alias)
			sb_addf(&desc, "'%s', ", w.alias);
		sb_addf(&desc, "'%s', %s %s)", w.name, w.pkg_name, w.tg_version ? w.tg_version : "None");
		wlog(j, "DEBUG", "SUBMIT %s", desc.buf);
		int converter = !strncmp(w.task_type ? w.task_type : "", "converter_", 10);
		json_t *filtered = json_array(), *type_filters = NULL;
		long num_available = 0;
		int step_rc = -1;
		dispatch_t d = { 0 };
		int64_t run_id = -1;
		if (!converter) {
			sb_t m = SB_INIT;
			json_t *patch = merge_type_filters(w.input_types, w.type_filters, &m);
			if (!patch) {
				jerr_set(err, JE_UNKNOWN, 0, "ValueError", "%s", m.buf);
				sb_release(&m);
				goto next;
			}
			sb_release(&m);
			type_filters = json_copy(current_tf);
			json_object_update(type_filters, patch);
			json_decref(patch);
			if (row == first && enrich)
				*images_p = enrich_status(j, *images_p, w.id);
			size_t i;
			json_t *img;
			json_array_foreach(*images_p, i, img) {
				if (!match_types(img, type_filters))
					continue;
				num_available++;
				if (match_attributes(img, attribute_filters))
					json_array_append_new(filtered, json_deep_copy(img));
			}
		}
		/* HistoryRun */
		{
			sb_t wd = SB_INIT, gd = SB_INIT;
			wft_dumps(wr, row, &wd, &gd);
			char now[40];
			utc_now_iso(now, sizeof(now));
			db_res_t *r = NULL;
			int qrc = db_begin(j->db) ||
				  db_exec(j->db,
					  "INSERT INTO historyrun (dataset_id, workflowtask_id, job_id, task_id, workflowtask_dump, "
					  "task_group_dump, timestamp_started, status, num_available_images) "
					  "VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8) RETURNING id",
					  (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(w.id), P_INT(j->a.job_id), P_INT(w.task_id),
							  P_JSON(wd.buf), P_JSON(gd.buf), P_TS(now), P_INT(num_available) },
					  8, &r);
			if (!qrc)
				run_id = db_int(r, 0, 0);
			db_res_free(r);
			sb_release(&wd);
			sb_release(&gd);
			if (qrc || db_exec(j->db, "UPDATE jobv2 SET executor_error_log = NULL WHERE id = $1",
					   (db_param_t[]){ P_INT(j->a.job_id) }, 1, NULL) ||
			    db_commit(j->db)) {
				db_fail(j, "history run");
				jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
				goto next;
			}
		}
		if (!converter && json_array_size(filtered) == 0) {
			jerr_set(err, JE_JOB, 0, NULL, "Cannot run task '%s' for an empty image list (obtained after applying type_filters=",
				 w.name);
			py_repr_json(&err->msg, type_filters);
			sb_adds(&err->msg, " and attribute_filters=");
			py_repr_json(&err->msg, attribute_filters);
			sb_adds(&err->msg, ").");
			wlog(j, "INFO", "%s", err->msg.buf);
			run_set_status(j, run_id, "failed");
			goto next;
		}
		{
			db_res_t *r = NULL;
			if (db_exec(j->db, "SELECT name, prevent_new_submissions FROM resource WHERE id = $1",
				    (db_param_t[]){ P_INT(j->a.resource_id) }, 1, &r)) {
				db_fail(j, "resource");
				jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
				goto next;
			}
			if (db_nrows(r) && db_bool(r, 0, 1)) {
				jerr_set(err, JE_JOB, 0, NULL, "Cannot run '%s', since the '%s' resource is not currently active.",
					 w.name, db_text(r, 0, 0));
				db_res_free(r);
				wlog(j, "INFO", "%s", err->msg.buf);
				run_set_status(j, run_id, "failed");
				goto next;
			}
			db_res_free(r);
		}
		/* dispatch: any error escaping it becomes the one failed outcome */
		{
			jerr_t de = { 0 };
			sb_init(&de.msg, 0);
			int drc;
			if (!strcmp(w.type, "non_parallel") || !strcmp(w.type, "converter_non_parallel"))
				drc = run_non_parallel(j, root, &w, filtered, zarr_dir, run_id, &d, &de);
			else if (!strcmp(w.type, "parallel"))
				drc = run_parallel(j, root, &w, filtered, run_id, &d, &de);
			else if (!strcmp(w.type, "compound") || !strcmp(w.type, "converter_compound"))
				drc = run_compound(j, root, &w, filtered, zarr_dir, run_id, &d, &de);
			else {
				drc = -1;
				jerr_set(&de, JE_UNKNOWN, 0, "ValueError", "Unexpected error: Invalid task.type='%s'.", w.type);
			}
			if (drc) {
				dispatch_free(&d);
				d.n = 1;
				d.out = xcalloc(1, sizeof(outcome_t));
				d.out[0].exc = xstrdup(de.msg.buf);
				d.num_tasks = 0;
			}
			sb_release(&de.msg);
		}
		/* post-processing */
		json_t *output = merged_output(&d, filtered);
		long num_new = apply_output(*images_p, output, w.output_types, zarr_dir, err);
		if (num_new < 0) {
			if (err->kind == JE_UNKNOWN)
				wlog(j, "ERROR", "Unexpected error in post-task-execution block. Original error: %s", err->msg.buf);
			else
				wlog(j, "ERROR", "Unexpected error in post-task-execution block. Original error: %s", err->msg.buf);
			if (db_exec(j->db, "UPDATE historyunit SET status = 'failed' WHERE history_run_id = $1",
				    (db_param_t[]){ P_INT(run_id) }, 1, NULL))
				db_fail(j, "history units");
			json_decref(output);
			goto next;
		}
		json_object_update(current_tf, w.output_types);
		{
			char now[40];
			utc_now_iso(now, sizeof(now));
			int wrc = db_begin(j->db) || write_images(j, *images_p, enrich);
			json_t *rms = json_object_get(output, "image_list_removals");
			size_t i;
			json_t *x;
			json_array_foreach(rms, i, x) {
				if (wrc)
					break;
				wrc = db_exec(j->db,
					      "DELETE FROM historyimagecache WHERE dataset_id = $1 AND workflowtask_id = $2 AND zarr_url = $3",
					      (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(w.id), P_TEXT(json_string_value(x)) }, 3,
					      NULL);
			}
			wrc = wrc || db_exec(j->db, "UPDATE jobv2 SET executor_error_log = NULL WHERE id = $1",
					     (db_param_t[]){ P_INT(j->a.job_id) }, 1, NULL) ||
			      db_exec(j->db,
				      "INSERT INTO accountingrecord (user_id, \"timestamp\", num_tasks, num_new_images) VALUES ($1, $2, $3, $4)",
				      (db_param_t[]){ P_INT(j->a.user_id), P_TS(now), P_INT(d.num_tasks), P_INT(num_new) }, 4, NULL) ||
			      db_commit(j->db);
			json_decref(output);
			if (wrc) {
				db_fail(j, "dataset images");
				jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
				goto next;
			}
		}
		{
			const char *first_exc = NULL;
			for (size_t i = 0; i < d.n && !first_exc; i++)
				first_exc = d.out[i].exc;
			if (first_exc) {
				run_set_status(j, run_id, "failed");
				wlog(j, "WARNING", "END    %s - ERROR.", desc.buf);
				jerr_set(err, JE_JOB, 1, NULL, "An error occurred.\nOriginal error:\n%s", first_exc);
				goto next;
			}
			run_set_status(j, run_id, "done");
			wlog(j, "DEBUG", "END    %s", desc.buf);
		}
		step_rc = 0;
next:
		dispatch_free(&d);
		json_decref(filtered);
		json_decref(type_filters);
		sb_release(&desc);
		wft_free(&w);
		if (step_rc)
			goto out;
	}
	rc = 0;
out:
	json_decref(current_tf);
	return rc;
}

/* ---- the job thread ---- */

static void fail_job(job_t *j, const char *text)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_t msg = SB_INIT;
	sb_adds(&msg, text);
	if (atomic_load(&stopping))
		sb_adds(&msg, SHUTDOWN_LOG);
	if (db_exec(j->db, "UPDATE jobv2 SET status = 'failed', end_timestamp = $1, log = $2 WHERE id = $3",
		    (db_param_t[]){ P_TS(now), P_TEXT(msg.buf), P_INT(j->a.job_id) }, 3, NULL))
		log_error("job %lld: cannot mark it failed: %s", (long long)j->a.job_id, db_errmsg(j->db));
	sb_release(&msg);
}

static void job_run(job_t *j)
{
	sb_t err = SB_INIT;
	db_res_t *jr = NULL, *dr = NULL, *wr = NULL, *tr = NULL;
	json_t *images = NULL, *attr_f = NULL, *type_f = NULL;
	char *working_dir = NULL;
	for (int attempt = 0; attempt < 50 && !j->db; attempt++) {
		sb_reset(&err);
		if (!(j->db = db_open(0, &err)))
			usleep(100000);
	}
	if (!j->db) {
		log_error("job %lld: cannot open the database: %s", (long long)j->a.job_id, err.buf);
		goto out;
	}
	if (db_exec(j->db,
		    "SELECT working_dir, working_dir_user, first_task_index, last_task_index, attribute_filters, type_filters "
		    "FROM jobv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.job_id) }, 1, &jr) ||
	    !db_nrows(jr)) {
		log_error("JobV2 %lld not found.", (long long)j->a.job_id);
		goto out;
	}
	if (db_exec(j->db, "SELECT name, zarr_dir, images FROM datasetv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.dataset_id) }, 1, &dr) ||
	    db_exec(j->db, "SELECT name FROM workflowv2 WHERE id = $1", (db_param_t[]){ P_INT(j->a.workflow_id) }, 1, &wr) ||
	    !db_nrows(dr) || !db_nrows(wr)) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Cannot fetch dataset %lld and/or workflow %lld (as part of job %lld).", (long long)j->a.dataset_id,
			(long long)j->a.workflow_id, (long long)j->a.job_id);
		log_error("%s", m.buf);
		fail_job(j, m.buf);
		sb_release(&m);
		goto out;
	}
	if (strcmp(j->a.resource_type ? j->a.resource_type : "", "local")) {
		sb_t m = SB_INIT;
		sb_addf(&m, "UNKNOWN ERROR in Fractal job %lld\nTRACEBACK:\nNotImplementedError: the '%s' runner is not "
			    "available in this server (only 'local' is).\n", (long long)j->a.job_id, j->a.resource_type);
		fail_job(j, m.buf);
		sb_release(&m);
		goto out;
	}
	working_dir = xstrdup(db_text(jr, 0, 0));
	if (mkdir_parents(working_dir) || mkdir(working_dir, 0755)) {
		int e = errno;
		sb_t m = SB_INIT;
		sb_addf(&m, "%s error while creating local job folder. Original error: ", os_error_type(e));
		os_error(&m, e, working_dir);
		log_error("%s", m.buf);
		fail_job(j, m.buf);
		sb_release(&m);
		free(working_dir);
		working_dir = NULL; /* upstream zips anyway; there is nothing of ours to zip */
		goto out;
	}
	const char *wf_name = db_text(wr, 0, 0);
	sb_t log_path = SB_INIT;
	sb_addf(&log_path, "%s/workflow.log", working_dir);
	j->log = fopen(log_path.buf, "a");
	if (j->log)
		fcntl(fileno(j->log), F_SETFD, FD_CLOEXEC);
	wlog(j, "INFO", "Start execution of workflow \"%s\"; more logs at %s", wf_name, log_path.buf);
	wlog(j, "DEBUG", "Resource name: %s", j->a.resource_name);
	wlog(j, "DEBUG", "Profile name: %s", j->a.profile_name);
	wlog(j, "DEBUG", "Username: %s", j->a.profile_username ? j->a.profile_username : "None");
	wlog(j, "DEBUG", "job.id: %lld", (long long)j->a.job_id);
	wlog(j, "DEBUG", "job.working_dir: %s", working_dir);
	wlog(j, "DEBUG", "job.working_dir_user: %s", db_text(jr, 0, 1) ? db_text(jr, 0, 1) : "None");
	wlog(j, "DEBUG", "job.first_task_index: %lld", (long long)db_int(jr, 0, 2));
	wlog(j, "DEBUG", "job.last_task_index: %lld", (long long)db_int(jr, 0, 3));
	wlog(j, "DEBUG", "START workflow \"%s\"", wf_name);

	jerr_t je = { 0 };
	sb_init(&je.msg, 0);
	int rc = -1;
	if (db_exec(j->db, WFT_SQL, (db_param_t[]){ P_INT(j->a.workflow_id) }, 1, &tr)) {
		jerr_set(&je, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
	} else {
		int n = db_nrows(tr);
		int first = (int)db_int(jr, 0, 2), last = (int)db_int(jr, 0, 3);
		if (first < 0 || last > n - 1 || first > last) {
			jerr_set(&je, JE_UNKNOWN, 0, "ValueError", "Invalid first_task_index=%d or last_task_index=%d (num_tasks=%d)",
				 first, last, n);
		} else {
			images = jparse(db_text(dr, 0, 2));
			if (!json_is_array(images)) {
				json_decref(images);
				images = json_array();
			}
			attr_f = jparse(db_text(jr, 0, 4));
			type_f = jparse(db_text(jr, 0, 5));
			if (!attr_f)
				attr_f = json_object();
			if (!type_f)
				type_f = json_object();
			rc = execute_tasks(j, tr, first, last, working_dir, db_text(dr, 0, 1), &images, type_f, attr_f, &je);
		}
	}
	if (!rc) {
		wlog(j, "INFO", "End execution of workflow \"%s\"; more logs at %s", wf_name, log_path.buf);
		wlog(j, "DEBUG", "END workflow \"%s\"", wf_name);
		sb_t content = SB_INIT;
		read_whole(log_path.buf, &content);
		char now[40];
		utc_now_iso(now, sizeof(now));
		if (db_exec(j->db, "UPDATE jobv2 SET status = 'done', end_timestamp = $1, log = $2 WHERE id = $3",
			    (db_param_t[]){ P_TS(now), P_TEXT(content.buf), P_INT(j->a.job_id) }, 3, NULL))
			log_error("job %lld: cannot mark it done: %s", (long long)j->a.job_id, db_errmsg(j->db));
		sb_release(&content);
	} else if (je.kind == JE_JOB) {
		wlog(j, "DEBUG", "FAILED workflow \"%s\", JobExecutionError.", wf_name);
		wlog(j, "INFO", "Workflow \"%s\" failed (JobExecutionError).", wf_name);
		sb_t m = SB_INIT;
		sb_addf(&m, "JOB ERROR in Fractal job %lld:\nTRACEBACK:\nJobExecutionError\n", (long long)j->a.job_id);
		if (je.has_info)
			sb_addf(&m, "\n%s\n\n", je.msg.buf);
		else
			sb_adds(&m, je.msg.buf);
		fail_job(j, m.buf);
		sb_release(&m);
	} else {
		wlog(j, "DEBUG", "FAILED workflow \"%s\", unknown error.", wf_name);
		wlog(j, "INFO", "Workflow \"%s\" failed (unkwnon error).", wf_name);
		sb_t m = SB_INIT;
		/* there is no Python traceback here: the exception's type and text */
		sb_addf(&m, "UNKNOWN ERROR in Fractal job %lld\nTRACEBACK:\n%s: %s\n", (long long)j->a.job_id,
			je.type ? je.type : "Exception", je.msg.buf);
		fail_job(j, m.buf);
		sb_release(&m);
	}
	sb_release(&je.msg);
	sb_release(&log_path);
	if (j->log) {
		fclose(j->log);
		j->log = NULL;
	}
out:
	if (working_dir)
		zip_folder_and_remove(working_dir);
	free(working_dir);
	json_decref(images);
	json_decref(attr_f);
	json_decref(type_f);
	db_res_free(jr);
	db_res_free(dr);
	db_res_free(wr);
	db_res_free(tr);
	sb_release(&err);
}

static void job_free(job_t *j)
{
	db_close(j->db);
	for (int i = 0; i < 6; i++)
		free(j->strings[i]);
	json_decref(j->a.runner_config);
	free(j->cache_env);
	free(j);
}

static void *job_main(void *arg)
{
	job_t *j = arg;
	job_run(j);
	int64_t job_id = j->a.job_id;
	job_free(j);
	/* a large job's image lists and units are freed now, but glibc keeps the
	 * pages of this thread's arena: give them back to the system */
	malloc_trim(0);
	/* as in collect.c: free this detached thread's OpenSSL state before
	 * runner_shutdown() may let the process exit */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < 1024; i++)
		if (reg_job_ids[i] == job_id) {
			reg_job_ids[i] = 0;
			break;
		}
	reg_jobs--;
	pthread_cond_broadcast(&reg_cv);
	pthread_mutex_unlock(&reg_mu);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int runner_submit(const runner_job_t *a)
{
	job_t *j = xcalloc(1, sizeof(*j));
	j->a = *a;
	j->a.user_cache_dir = j->strings[0] = dup_or_null(a->user_cache_dir);
	j->a.resource_name = j->strings[1] = dup_or_null(a->resource_name);
	j->a.resource_type = j->strings[2] = dup_or_null(a->resource_type);
	j->a.profile_name = j->strings[3] = dup_or_null(a->profile_name);
	j->a.profile_username = j->strings[4] = dup_or_null(a->profile_username);
	j->a.runner_config = json_deep_copy(a->runner_config);
	json_t *p = json_object_get(j->a.runner_config, "parallel_tasks_per_job");
	j->ptpj_default = json_is_integer(p) ? (int64_t)json_integer_value(p) : -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	j->pool = (int)(ncpu > 0 ? ncpu + 4 : 5);
	if (j->pool > 32)
		j->pool = 32;
	sb_t e = SB_INIT;
	sb_addf(&e, "FRACTAL_CACHE_DIR=%s", a->user_cache_dir ? a->user_cache_dir : "");
	j->cache_env = sb_detach(&e);
	snprintf(j->logger, sizeof(j->logger), "WF%lld_job%lld", (long long)a->workflow_id, (long long)a->job_id);
	pthread_mutex_lock(&reg_mu);
	reg_jobs++;
	for (int i = 0; i < 1024; i++)
		if (!reg_job_ids[i]) {
			reg_job_ids[i] = a->job_id;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (rc) {
		log_error("job %lld: cannot start its thread: %s", (long long)a->job_id, strerror(rc));
		pthread_mutex_lock(&reg_mu);
		reg_jobs--;
		for (int i = 0; i < 1024; i++)
			if (reg_job_ids[i] == a->job_id)
				reg_job_ids[i] = 0;
		pthread_mutex_unlock(&reg_mu);
		sb_t err = SB_INIT;
		j->db = db_open(0, &err);
		if (j->db)
			fail_job(j, "Could not start the job: no thread available.");
		sb_release(&err);
		job_free(j);
		return -1;
	}
	return 0;
}

/* Marks jobs failed (with their latest run and its unfinished units). */
static int mark_failed(db_t *db, int64_t job_id, const char *suffix)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r = NULL;
	int rc = db_begin(db) ||
		 db_exec(db,
			 "UPDATE jobv2 SET status = 'failed', end_timestamp = $1, log = COALESCE(log, '') || $2 "
			 "WHERE id = $3 AND status = 'submitted' RETURNING id",
			 (db_param_t[]){ P_TS(now), P_TEXT(suffix), P_INT(job_id) }, 3, &r);
	int changed = !rc && db_nrows(r) > 0;
	db_res_free(r);
	if (!rc && changed)
		rc = db_exec(db,
			     "UPDATE historyunit SET status = 'failed' WHERE status = 'submitted' AND history_run_id IN "
			     "(SELECT id FROM historyrun WHERE job_id = $1 AND status = 'submitted')",
			     (db_param_t[]){ P_INT(job_id) }, 1, NULL) ||
		     db_exec(db, "UPDATE historyrun SET status = 'failed' WHERE job_id = $1 AND status = 'submitted'",
			     (db_param_t[]){ P_INT(job_id) }, 1, NULL);
	if (rc || db_commit(db)) {
		log_error("cannot mark job %lld failed: %s", (long long)job_id, db_errmsg(db));
		db_rollback(db);
		return -1;
	}
	return changed;
}

int runner_recover(db_t *db)
{
	db_res_t *r = NULL;
	if (db_exec(db, "SELECT id FROM jobv2 WHERE status = 'submitted' ORDER BY id", NULL, 0, &r))
		return -1;
	int n = 0;
	for (int i = 0; i < db_nrows(r); i++) {
		int64_t id = db_int(r, i, 0);
		int c = mark_failed(db, id,
				    "\nJob marked as failed at server start-up: it was still 'submitted' when the previous "
				    "server process stopped, so its execution was interrupted.\n");
		if (c > 0) {
			log_warning("Job %lld was still 'submitted' at start-up: marked as failed.", (long long)id);
			n++;
		}
	}
	db_res_free(r);
	return n;
}

void runner_shutdown(void)
{
	atomic_store(&stopping, 1);
	pthread_mutex_lock(&reg_mu);
	int jobs = reg_jobs;
	pthread_mutex_unlock(&reg_mu);
	if (!jobs)
		return;
	log_warning("Shutdown: stopping %d running job(s)", jobs);
	kill_all(SIGTERM);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	double wait = settings.graceful_shutdown_time;
	deadline.tv_sec += (time_t)wait;
	deadline.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&reg_mu);
	while (reg_jobs > 0)
		if (pthread_cond_timedwait(&reg_cv, &reg_mu, &deadline))
			break;
	pthread_mutex_unlock(&reg_mu);
	kill_all(SIGKILL);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&reg_mu);
	while (reg_jobs > 0)
		if (pthread_cond_timedwait(&reg_cv, &reg_mu, &deadline))
			break;
	int64_t left[1024];
	int nleft = 0;
	for (int i = 0; i < 1024; i++)
		if (reg_job_ids[i])
			left[nleft++] = reg_job_ids[i];
	pthread_mutex_unlock(&reg_mu);
	if (!nleft)
		return;
	sb_t err = SB_INIT;
	db_t *db = db_open(0, &err);
	for (int i = 0; db && i < nleft; i++)
		mark_failed(db, left[i], SHUTDOWN_LOG);
	if (!db)
		log_error("Shutdown: cannot open the database to mark %d job(s) failed: %s", nleft, err.buf);
	db_close(db);
	sb_release(&err);
}
