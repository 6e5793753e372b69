/* slurm_script.c — see slurm_config.h: what one SLURM job is made of (its
 * sbatch script and file names, the worker's input) and what comes back
 * (the worker's output file, the job's stderr), as upstream's
 * BaseSlurmRunner, SlurmConfig.to_sbatch_preamble and slurm_job_task_models
 * have them. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "model/pyrepr.h"
#include "runner/slurm_config.h"

#define PREFIX "#SBATCH"

/* ---- file names ---- */

/* str(Path(dir) / name), name relative */
static void path_join(sb_t *out, const char *dir, const char *name)
{
	sb_t p = SB_INIT;
	if (name[0] == '/' || !dir[0]) {
		sb_adds(&p, name);
	} else {
		sb_adds(&p, dir);
		if (dir[strlen(dir) - 1] != '/')
			sb_addc(&p, '/');
		sb_adds(&p, name);
	}
	py_path_str(out, p.buf);
	sb_release(&p);
}

void slurm_job_file(sb_t *out, const char *dir, const char *prefix, const char *what)
{
	sb_t name = SB_INIT;
	sb_addf(&name, "%s-slurm-%s", prefix, what);
	path_join(out, dir, name.buf);
	sb_release(&name);
}

void slurm_task_file(sb_t *out, const char *dir, const char *prefix, const char *component, const char *what)
{
	sb_t name = SB_INIT;
	sb_addf(&name, "%s-%s-%s.json", prefix, component, what);
	path_join(out, dir, name.buf);
	sb_release(&name);
}

/* ---- the script ---- */

typedef struct lines {
	char **v;
	size_t n, cap;
} lines_t;

static void line_add(lines_t *l, sb_t *text)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = xrealloc(l->v, l->cap * sizeof(char *));
	}
	l->v[l->n++] = sb_detach(text);
}

static void line_addf(lines_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_addf(lines_t *l, const char *fmt, ...)
{
	sb_t s = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&s, fmt, ap);
	va_end(ap);
	line_add(l, &s);
}

static void lines_free(lines_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int starts_with(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

/* the key of sort_script_lines: shebang, #SBATCH lines, the others */
static int line_rank(const slurm_config_t *c, const char *line)
{
	return !strcmp(line, c->shebang_line) ? 0 : starts_with(line, PREFIX) ? 1 : 2;
}

int slurm_script(const slurm_config_t *c, const slurm_job_script_t *j, sb_t *out, slurm_err_t *e)
{
	if (c->parallel_tasks_per_job == SLURM_NONE) {
		/* min(len(cmdlines), None) */
		e->type = "TypeError";
		sb_reset(&e->msg);
		sb_adds(&e->msg, "'<' not supported between instances of 'NoneType' and 'int'");
		return -1;
	}
	int64_t ntasks = (int64_t)j->n < c->parallel_tasks_per_job ? (int64_t)j->n : c->parallel_tasks_per_job;
	for (size_t a = 0; a < c->n_extra_lines; a++)
		for (size_t b = a + 1; b < c->n_extra_lines; b++)
			if (!strcmp(c->extra_lines[a], c->extra_lines[b])) {
				e->type = "ValueError";
				sb_reset(&e->msg);
				sb_adds(&e->msg, "self.extra_lines=[");
				for (size_t k = 0; k < c->n_extra_lines; k++) {
					if (k)
						sb_adds(&e->msg, ", ");
					py_repr_str(&e->msg, c->extra_lines[k], strlen(c->extra_lines[k]));
				}
				sb_adds(&e->msg, "] contains repetitions");
				return -1;
			}
	if (c->use_mem_per_cpu && c->cpus_per_task == 0) {
		e->type = "ZeroDivisionError";
		sb_reset(&e->msg);
		sb_adds(&e->msg, "division by zero");
		return -1;
	}
	/* int(mem / cpus): true division truncated toward zero, as C's */
	int64_t mem_per_cpu = c->use_mem_per_cpu ? (int64_t)((__int128)c->mem_per_task_MB / c->cpus_per_task) : 0;

	/* to_sbatch_preamble */
	lines_t pre = { 0 };
	sb_t s = SB_INIT;
	sb_adds(&s, c->shebang_line);
	line_add(&pre, &s);
	line_addf(&pre, PREFIX " --partition=%s", c->partition);
	line_addf(&pre, PREFIX " --ntasks=%lld", (long long)ntasks);
	line_addf(&pre, PREFIX " --cpus-per-task=%lld", (long long)c->cpus_per_task);
	if (c->use_mem_per_cpu) {
		line_addf(&pre, PREFIX " --mem-per-cpu=%lldM", (long long)mem_per_cpu);
	} else {
		sb_adds(&s, PREFIX " --mem=");
		slurm_add_int128(&s, (__int128)ntasks * c->mem_per_task_MB);
		sb_addc(&s, 'M');
		line_add(&pre, &s);
	}
	const struct {
		const char *option, *value;
	} opts[] = {
		{ "job-name", c->job_name }, { "constraint", c->constraint }, { "gres", c->gres },
		{ "gpus", c->gpus },         { "time", c->time },             { "account", c->account },
		{ "exclude", c->exclude },   { "nodelist", c->nodelist },
	};
	for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++)
		if (opts[i].value)
			line_addf(&pre, PREFIX " --%s=%s", opts[i].option, opts[i].value);
	if (c->nodes != SLURM_NONE)
		line_addf(&pre, PREFIX " --nodes=%lld", (long long)c->nodes);
	/* _sorted_extra_lines: the #SBATCH ones first */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < c->n_extra_lines; i++)
			if (starts_with(c->extra_lines[i], PREFIX) == !pass) {
				sb_adds(&s, c->extra_lines[i]);
				line_add(&pre, &s);
			}
	const char *key;
	json_t *value;
	json_object_foreach(c->user_local_exports, key, value) {
		sb_addf(&s, "export %s=", key);
		path_join(&s, j->user_cache_dir, json_is_string(value) ? json_string_value(value) : "");
		line_add(&pre, &s);
	}
	sb_adds(&s, PREFIX " --err=");
	slurm_job_file(&s, j->workdir, j->prefix, "%j.err");
	line_add(&pre, &s);
	sb_adds(&s, PREFIX " --out=");
	slurm_job_file(&s, j->workdir, j->prefix, "%j.out");
	line_add(&pre, &s);
	sb_adds(&s, PREFIX " -D ");
	py_path_str(&s, j->workdir);
	line_add(&pre, &s);

	/* sort_script_lines (a stable sort), then the body; joined by "\n" */
	int first = 1;
	for (int rank = 0; rank < 3; rank++)
		for (size_t i = 0; i < pre.n; i++)
			if (line_rank(c, pre.v[i]) == rank) {
				if (!first)
					sb_addc(out, '\n');
				first = 0;
				sb_adds(out, pre.v[i]);
			}
	lines_free(&pre);
	sb_adds(out, "\n\necho \"Hostname: $(uname -n)\"\n"
		     "echo \"Current directory: $(pwd)\"\n"
		     "echo \"Start time: $(date +\"%Y-%m-%dT%H:%M:%S%z\")\"\n"
		     "\n");
	for (size_t i = 0; i < j->n; i++) {
		sb_adds(out, "\nsrun --ntasks=1 --cpus-per-task=$SLURM_CPUS_PER_TASK ");
		if (c->use_mem_per_cpu)
			sb_addf(out, "--mem-per-cpu=%lldMB", (long long)mem_per_cpu);
		else
			sb_addf(out, "--mem=%lldMB", (long long)c->mem_per_task_MB);
		sb_addf(out, " %s --input-file %s --output-file %s &", j->worker, j->inputs[i], j->outputs[i]);
	}
	sb_adds(out, "\nwait\n\n\necho \"End time:   $(date +\"%Y-%m-%dT%H:%M:%S%z\")\"");
	return 0;
}

/* ---- the worker ---- */

json_t *slurm_worker_input(json_t *python_version, const char *server_version, const char *command,
			   const char *args_file, const char *metadiff_file, const char *log_file,
			   const char *user_cache_dir)
{
	sb_t cmd = SB_INIT;
	sb_addf(&cmd, "%s --args-json %s --out-json %s", command ? command : "None", args_file, metadiff_file);
	json_t *o = json_object();
	json_object_set(o, "python_version", python_version);
	json_object_set_new(o, "fractal_server_version", json_string(server_version));
	json_object_set_new(o, "full_command", json_stringn(cmd.buf, cmd.len));
	json_object_set_new(o, "metadiff_file_remote", json_string(metadiff_file));
	json_object_set_new(o, "log_file_remote", json_string(log_file));
	json_object_set_new(o, "user_cache_dir", json_string(user_cache_dir));
	sb_release(&cmd);
	return o;
}

/* bool(x) */
static int py_truthy(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return json_object_size(v) > 0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_TRUE:
		return 1;
	default:
		return 0;
	}
}

/* output[i] of a JSON value as Python indexes it: a new reference (a
 * string gives its i-th character), or NULL with str() of the error. */
static json_t *py_index(json_t *v, size_t i, sb_t *why)
{
	switch (json_typeof(v)) {
	case JSON_ARRAY:
		if (i < json_array_size(v))
			return json_incref(json_array_get(v, i));
		sb_adds(why, "list index out of range");
		return NULL;
	case JSON_STRING: {
		/* characters, not bytes: skip UTF-8 continuation bytes */
		const char *s = json_string_value(v);
		size_t n = json_string_length(v), k = 0, at = 0;
		for (; k < n; k++)
			if (((unsigned char)s[k] & 0xc0) != 0x80 && at++ == i)
				break;
		if (k < n) {
			size_t end = k + 1;
			while (end < n && ((unsigned char)s[end] & 0xc0) == 0x80)
				end++;
			return json_stringn(s + k, end - k);
		}
		sb_adds(why, "string index out of range");
		return NULL;
	}
	case JSON_OBJECT:
		sb_addf(why, "%zu", i); /* KeyError(0): JSON keys are strings */
		return NULL;
	default:
		sb_addf(why, "'%s' object is not subscriptable", py_type_name(v));
		return NULL;
	}
}

enum slurm_outcome slurm_output_parse(const char *text, size_t len, const char *read_error, json_t **result,
				      sb_t *exc)
{
	*result = NULL;
	sb_t why = SB_INIT;
	json_t *out = NULL, *flag = NULL, *second = NULL;
	enum slurm_outcome r = SLURM_OUT_JOB_ERROR;
	if (!text) {
		sb_adds(&why, read_error ? read_error : "");
		goto done;
	}
	json_error_t je;
	out = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!out) {
		/* json.load's message for an empty (or blank) file; jansson's otherwise */
		size_t k = 0, line = 1, col0 = 0;
		for (; k < len && strchr(" \t\n\r", text[k]) && text[k]; k++)
			if (text[k] == '\n') {
				line++;
				col0 = k + 1;
			}
		if (k == len)
			sb_addf(&why, "Expecting value: line %zu column %zu (char %zu)", line, k - col0 + 1, k);
		else
			sb_addf(&why, "%s: line %d column %d (char %d)", je.text, je.line, je.column, je.position);
		goto done;
	}
	if (!(flag = py_index(out, 0, &why)) || !(second = py_index(out, 1, &why)))
		goto done;
	if (py_truthy(flag)) {
		if (!json_is_null(second))
			*result = json_incref(second);
		r = SLURM_OUT_RESULT;
		goto done;
	}
	if (!json_is_object(second)) {
		sb_addf(&why, "'%s' object has no attribute 'get'", py_type_name(second));
		goto done;
	}
	/* TaskExecutionError(traceback_string): str() of whatever it holds */
	json_t *tb = json_object_get(second, "traceback_string");
	py_str_json(exc, tb ? tb : json_null());
	r = SLURM_OUT_TASK_ERROR;
done:
	if (r == SLURM_OUT_JOB_ERROR)
		sb_addf(exc, "ERROR, %s", why.buf);
	sb_release(&why);
	json_decref(flag);
	json_decref(second);
	json_decref(out);
	return r;
}

/* ---- the job's stderr ---- */

/* srun's step-creation messages, which say nothing about the job's failure:
 * upstream's four, and SLURM 22.05's wording of the third ("srun: Step
 * created for job N", which upstream's list misses, so that every done job
 * whose steps waited for a CPU got that noise as its executor_error_log) */
static const char *const noise[] = {
	"step creation temporarily disabled, retrying",
	"step creation still disabled, retrying",
	"srun: step created for stepid=",
	"srun: step created for job ",
	"srun: warning: can't run 1 processes on ",
};

static int noisy(const char *line, size_t n)
{
	for (size_t p = 0; p < sizeof(noise) / sizeof(*noise); p++) {
		size_t m = strlen(noise[p]);
		for (size_t i = 0; i + m <= n; i++) {
			size_t k = 0;
			/* str.lower() maps no non-ASCII character onto these patterns' letters */
			while (k < m && (line[i + k] >= 'A' && line[i + k] <= 'Z' ? line[i + k] + 32 : line[i + k]) ==
						noise[p][k])
				k++;
			if (k == m)
				return 1;
		}
	}
	return 0;
}

/* The length of the UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when it is not valid UTF-8 (Python's decoder refuses it). */
static size_t utf8_char(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!len || len > n)
		return 0;
	unsigned v = len == 1 ? s[0] : s[0] & (0x3f >> (len - 1));
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* str.isspace() */
static int uni_space(unsigned cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x3000;
}

int slurm_stderr_filter(const char *text, size_t len, sb_t *out)
{
	/* text mode: decoded as UTF-8, "\r\n" and "\r" read as "\n" */
	sb_t t = SB_INIT;
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t n = utf8_char((const unsigned char *)text + i, len - i, &cp);
		if (!n) {
			sb_release(&t);
			return 0;
		}
		if (text[i] == '\r') {
			sb_addc(&t, '\n');
			i += i + 1 < len && text[i + 1] == '\n' ? 2 : 1;
			continue;
		}
		sb_add(&t, text + i, n);
		i += n;
	}
	/* readlines() keeps each line's "\n"; "\n".join() adds one more between */
	sb_t kept = SB_INIT;
	int any = 0;
	for (size_t i = 0; i < t.len;) {
		const char *nl = memchr(t.buf + i, '\n', t.len - i);
		size_t n = nl ? (size_t)(nl - (t.buf + i)) + 1 : t.len - i;
		if (!noisy(t.buf + i, n)) {
			if (any)
				sb_addc(&kept, '\n');
			any = 1;
			sb_add(&kept, t.buf + i, n);
		}
		i += n;
	}
	sb_release(&t);
	/* strip() */
	size_t a = 0, b = kept.len;
	unsigned cp;
	size_t n;
	while (a < b && (n = utf8_char((const unsigned char *)kept.buf + a, b - a, &cp)) && uni_space(cp))
		a += n;
	while (b > a) {
		size_t k = b - 1;
		while (k > a && ((unsigned char)kept.buf[k] & 0xc0) == 0x80)
			k--;
		if (!utf8_char((const unsigned char *)kept.buf + k, b - k, &cp) || !uni_space(cp))
			break;
		b = k;
	}
	int found = b > a;
	if (found)
		sb_add(out, kept.buf + a, b - a);
	sb_release(&kept);
	return found;
}

/* ---- SLURM's answers ---- */

int slurm_state_finished(const char *s, size_t len)
{
	static const char *const fin[] = { "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
					   "OUT_OF_MEMORY", "PREEMPTED", "SPECIAL_EXIT", "TIMEOUT" };
	for (size_t i = 0; i < sizeof(fin) / sizeof(*fin); i++)
		if (strlen(fin[i]) == len && !strncmp(fin[i], s, len))
			return 1;
	return 0;
}

int slurm_sbatch_transient(const char *msg)
{
	static const char *const words[] = { "Socket timed out", "Unable to contact slurm controller",
					     "temporarily unable", "Connection refused", "Zero Bytes were transmitted" };
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (strstr(msg, words[i]))
			return 1;
	return 0;
}
