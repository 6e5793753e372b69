/* test_slurm.c — src/runner/slurm_config.c and slurm_script.c against the
 * table of slurm_cases.json (its path is argv[1]; expected values from
 * upstream's own code, see its "about"): slurm_mem_to_MB, the batching
 * heuristics, get_slurm_config (with null = unset), the sbatch script with
 * the worker's input file and the file names, the stderr filter and the
 * parser of the worker's output; then what the table does not reach. */
#include <jansson.h>
#include <stdlib.h>

#include "runner/slurm_config.h"
#include "unit.h"

static const char *name_of(json_t *c)
{
	const char *n = json_string_value(json_object_get(c, "name"));
	return n ? n : "";
}

/* An error case: e holds [type, text]; or no error at all (want NULL). */
static void check_error(json_t *c, const char *what, int rc, const slurm_err_t *e, json_t *want)
{
	unit_checks++;
	if (!want) {
		if (rc) {
			unit_fail(__FILE__, __LINE__, what);
			fprintf(stderr, "    case %s: unexpected %s: %s\n", name_of(c), e->type, e->msg.buf);
		}
		return;
	}
	const char *type = json_string_value(json_array_get(want, 0));
	const char *text = json_string_value(json_array_get(want, 1));
	if (!rc || !e->type || strcmp(e->type, type) || strcmp(e->msg.buf, text)) {
		unit_fail(__FILE__, __LINE__, what);
		fprintf(stderr, "    case %s\n    got  %s: %s\n    want %s: %s\n", name_of(c), rc ? e->type : "(none)",
			rc ? e->msg.buf : "", type, text);
	}
}

static void check_json(json_t *c, const char *what, json_t *got, json_t *want)
{
	unit_checks++;
	if (!json_equal(got, want) && !(json_is_null(want) && !got)) {
		char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
		unit_fail(__FILE__, __LINE__, what);
		fprintf(stderr, "    case %s\n    got  %s\n    want %s\n", name_of(c), g ? g : "NULL", w);
		free(g);
		free(w);
	}
}

static void check_text(json_t *c, const char *what, const char *got, const char *want)
{
	unit_checks++;
	if (strcmp(got, want)) {
		unit_fail(__FILE__, __LINE__, what);
		fprintf(stderr, "    case %s\n    got  ---\n%s\n    want ---\n%s\n", name_of(c), got, want);
	}
}

/* the batching's answer [tasks_per_job, parallel_tasks_per_job] */
static void check_batched(json_t *c, const slurm_config_t *cfg, json_t *want)
{
	json_t *got = json_pack("[I,I]", (json_int_t)cfg->tasks_per_job, (json_int_t)cfg->parallel_tasks_per_job);
	check_json(c, "slurm_batching", got, want);
	json_decref(got);
}

static int64_t int_or_none(json_t *v)
{
	return json_is_integer(v) ? json_integer_value(v) : SLURM_NONE;
}

static json_t *opt_int(int64_t v)
{
	return v == SLURM_NONE ? json_null() : json_integer(v);
}

static json_t *opt_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* the SlurmConfig's model_dump() (without prefix) */
static json_t *dump(const slurm_config_t *c)
{
	json_t *lines = json_array();
	for (size_t i = 0; i < c->n_extra_lines; i++)
		json_array_append_new(lines, json_string(c->extra_lines[i]));
	json_t *o = json_object();
	json_object_set_new(o, "partition", opt_str(c->partition));
	json_object_set_new(o, "cpus_per_task", opt_int(c->cpus_per_task));
	json_object_set_new(o, "mem_per_task_MB", opt_int(c->mem_per_task_MB));
	json_object_set_new(o, "shebang_line", opt_str(c->shebang_line));
	json_object_set_new(o, "use_mem_per_cpu", json_boolean(c->use_mem_per_cpu));
	json_object_set_new(o, "job_name", opt_str(c->job_name));
	json_object_set_new(o, "constraint", opt_str(c->constraint));
	json_object_set_new(o, "gres", opt_str(c->gres));
	json_object_set_new(o, "gpus", opt_str(c->gpus));
	json_object_set_new(o, "time", opt_str(c->time));
	json_object_set_new(o, "account", opt_str(c->account));
	json_object_set_new(o, "nodelist", opt_str(c->nodelist));
	json_object_set_new(o, "nodes", opt_int(c->nodes));
	json_object_set_new(o, "exclude", opt_str(c->exclude));
	json_object_set_new(o, "extra_lines", lines);
	json_object_set(o, "user_local_exports", c->user_local_exports);
	json_object_set_new(o, "tasks_per_job", opt_int(c->tasks_per_job));
	json_object_set_new(o, "parallel_tasks_per_job", opt_int(c->parallel_tasks_per_job));
	json_object_set_new(o, "target_cpus_per_job", opt_int(c->target_cpus_per_job));
	json_object_set_new(o, "max_cpus_per_job", opt_int(c->max_cpus_per_job));
	json_object_set_new(o, "target_mem_per_job", opt_int(c->target_mem_per_job));
	json_object_set_new(o, "max_mem_per_job", opt_int(c->max_mem_per_job));
	json_object_set_new(o, "target_num_jobs", opt_int(c->target_num_jobs));
	json_object_set_new(o, "max_num_jobs", opt_int(c->max_num_jobs));
	return o;
}

static void mem_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		slurm_err_t e = SLURM_ERR_INIT;
		json_t *got = slurm_mem_to_mb(json_object_get(c, "in"), &e);
		check_error(c, "slurm_mem_to_mb error", !got, &e, json_object_get(c, "error"));
		if (got)
			check_json(c, "slurm_mem_to_mb", got, json_object_get(c, "out"));
		json_decref(got);
		slurm_err_release(&e);
	}
}

static void heuristics_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		json_t *a = json_object_get(c, "args");
		slurm_config_t cfg = { 0 };
		cfg.tasks_per_job = int_or_none(json_object_get(a, "tasks_per_job"));
		cfg.parallel_tasks_per_job = int_or_none(json_object_get(a, "parallel_tasks_per_job"));
		cfg.cpus_per_task = json_integer_value(json_object_get(a, "cpus_per_task"));
		cfg.mem_per_task_MB = json_integer_value(json_object_get(a, "mem_per_task"));
		cfg.target_cpus_per_job = json_integer_value(json_object_get(a, "target_cpus_per_job"));
		cfg.max_cpus_per_job = json_integer_value(json_object_get(a, "max_cpus_per_job"));
		cfg.target_mem_per_job = json_integer_value(json_object_get(a, "target_mem_per_job"));
		cfg.max_mem_per_job = json_integer_value(json_object_get(a, "max_mem_per_job"));
		cfg.target_num_jobs = json_integer_value(json_object_get(a, "target_num_jobs"));
		cfg.max_num_jobs = json_integer_value(json_object_get(a, "max_num_jobs"));
		slurm_err_t e = SLURM_ERR_INIT;
		int rc = slurm_batching(&cfg, json_integer_value(json_object_get(a, "tot_tasks")), &e);
		check_error(c, "slurm_batching error", rc, &e, json_object_get(c, "error"));
		if (!rc) {
			json_t *want = json_pack("[O,O]", json_object_get(c, "tasks_per_job"),
						 json_object_get(c, "parallel_tasks_per_job"));
			check_batched(c, &cfg, want);
			json_decref(want);
		}
		slurm_err_release(&e);
	}
}

static void config_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		slurm_config_t cfg;
		slurm_err_t e = SLURM_ERR_INIT;
		int rc = slurm_config_get(json_object_get(c, "runner_config"), json_object_get(c, "meta"),
					  json_string_value(json_object_get(c, "task_name")), &cfg, &e);
		check_error(c, "slurm_config_get error", rc, &e, json_object_get(c, "error"));
		if (!rc) {
			json_t *got = dump(&cfg);
			check_json(c, "slurm_config_get", got, json_object_get(c, "expect"));
			json_decref(got);
			slurm_err_release(&e);
			rc = slurm_batching(&cfg, json_integer_value(json_object_get(c, "tot_tasks")), &e);
			check_error(c, "slurm_batching error", rc, &e, json_object_get(c, "batch_error"));
			if (!rc)
				check_batched(c, &cfg, json_object_get(c, "batched"));
		}
		slurm_config_free(&cfg);
		slurm_err_release(&e);
	}
}

static const char *opt(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

static void script_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		slurm_config_t cfg = { 0 };
		slurm_err_t e = SLURM_ERR_INIT;
		sb_t out = SB_INIT;
		json_t *ins = json_object_get(c, "inputs"), *outs = json_object_get(c, "outputs");
		size_t n = (size_t)json_integer_value(json_object_get(c, "n"));
		const char **in = xcalloc(n + 1, sizeof(char *)), **ou = xcalloc(n + 1, sizeof(char *));
		for (size_t k = 0; k < n; k++) {
			in[k] = json_string_value(json_array_get(ins, k));
			ou[k] = json_string_value(json_array_get(outs, k));
		}
		int rc = slurm_worker_init_check(opt(c, "worker_init"), &e);
		if (!rc)
			rc = slurm_config_get(json_object_get(c, "runner_config"), json_object_get(c, "meta"), "My task", &cfg,
					      &e);
		if (!rc)
			rc = slurm_batching(&cfg, json_integer_value(json_object_get(c, "tot_tasks")), &e);
		if (!rc) {
			slurm_config_finish(&cfg, opt(c, "account"), opt(c, "worker_init"));
			slurm_job_script_t j = { .workdir = opt(c, "workdir"), .prefix = opt(c, "prefix"),
						 .worker = opt(c, "worker"), .user_cache_dir = opt(c, "user_cache_dir"),
						 .n = n, .inputs = in, .outputs = ou };
			rc = slurm_script(&cfg, &j, &out, &e);
		}
		check_error(c, "slurm_script error", rc, &e, json_object_get(c, "error"));
		if (!rc)
			check_text(c, "slurm_script", out.buf, opt(c, "expect"));
		/* the first unit's files and worker input, as upstream named and wrote them */
		if (n && !json_object_get(c, "error")) {
			const char *local = "/local/job/1_task", *prefix = opt(c, "prefix");
			sb_reset(&out);
			slurm_task_file(&out, local, prefix, "0000000", "input");
			check_text(c, "slurm_task_file input", out.buf, in[0]);
			sb_reset(&out);
			slurm_task_file(&out, opt(c, "workdir"), prefix, "0000000", "output");
			check_text(c, "slurm_task_file output", out.buf, ou[0]);
			json_t *pv = json_pack("[i,i,i]", 3, 11, 7);
			json_t *wi = slurm_worker_input(pv, "2.24.2", opt(c, "command"), opt(c, "args_file"),
							opt(c, "metadiff_file"), opt(c, "log_file"), opt(c, "user_cache_dir"));
			char *text = json_dumps(wi, JSON_INDENT(2) | JSON_ENSURE_ASCII);
			check_text(c, "slurm_worker_input", text, opt(c, "input_json"));
			free(text);
			json_decref(wi);
			json_decref(pv);
		}
		free(in);
		free(ou);
		sb_release(&out);
		slurm_config_free(&cfg);
		slurm_err_release(&e);
	}
}

static void stderr_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *hex = opt(c, "hex");
		size_t n = strlen(hex) / 2;
		char *bytes = xmalloc(n + 1);
		for (size_t k = 0; k < n; k++) {
			unsigned v;
			sscanf(hex + 2 * k, "%2x", &v);
			bytes[k] = (char)v;
		}
		sb_t out = SB_INIT;
		int found = slurm_stderr_filter(bytes, n, &out);
		json_t *want = json_object_get(c, "expect");
		CHECK_INT(found, !json_is_null(want));
		if (found && json_is_string(want))
			check_text(c, "slurm_stderr_filter", out.buf, json_string_value(want));
		sb_release(&out);
		free(bytes);
	}
}

static void output_cases(json_t *cases)
{
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		json_t *t = json_object_get(c, "text");
		json_t *result = NULL;
		sb_t exc = SB_INIT;
		enum slurm_outcome k = slurm_output_parse(json_string_value(t), json_string_length(t), opt(c, "read_error"),
							  &result, &exc);
		const char *kind = opt(c, "kind");
		CHECK_STR(k == SLURM_OUT_RESULT ? "result" : k == SLURM_OUT_TASK_ERROR ? "task" : "job", kind);
		if (k == SLURM_OUT_RESULT)
			check_json(c, "slurm_output_parse", result, json_object_get(c, "result"));
		else
			check_text(c, "slurm_output_parse exc", exc.buf, opt(c, "exc"));
		json_decref(result);
		sb_release(&exc);
	}
}

/* ---- what the table does not reach ---- */

static void others(void)
{
	sb_t s = SB_INIT;
	slurm_job_file(&s, "/a//b/", "non_par", "submit.sh");
	CHECK_STR(s.buf, "/a/b/non_par-slurm-submit.sh");
	sb_reset(&s);
	slurm_job_file(&s, "/a", "p", "4321.err");
	CHECK_STR(s.buf, "/a/p-slurm-4321.err");
	sb_release(&s);

	/* worker_init: split on "\n", an empty one is one empty line; NULL adds nothing */
	slurm_config_t c = { 0 };
	slurm_config_finish(&c, NULL, NULL);
	CHECK_INT(c.n_extra_lines, 0);
	CHECK(c.account == NULL);
	slurm_config_finish(&c, "acc", "");
	CHECK_INT(c.n_extra_lines, 1);
	CHECK_STR(c.extra_lines[0], "");
	CHECK_STR(c.account, "acc");
	slurm_config_finish(&c, "acc2", "a\n\nb");
	CHECK_INT(c.n_extra_lines, 4);
	CHECK_STR(c.extra_lines[3], "b");
	CHECK_STR(c.account, "acc2");
	slurm_config_free(&c);
	slurm_config_free(&c);
	CHECK(c.extra_lines == NULL);

	slurm_err_t e = SLURM_ERR_INIT;
	CHECK_INT(slurm_worker_init_check(NULL, &e), 0);
	CHECK_INT(slurm_worker_init_check(" #SBATCH --account=x\n#SBATCH --accounts", &e), 0);
	CHECK_INT(slurm_worker_init_check("a\n#SBATCH --account=x\nb", &e), -1);
	CHECK_STR(e.type, "RuntimeError");

	/* no parallel_tasks_per_job yet: upstream's min(len(cmdlines), None) */
	c.parallel_tasks_per_job = SLURM_NONE;
	slurm_job_script_t j = { .workdir = "/w", .prefix = "p", .worker = "w", .user_cache_dir = "/c" };
	CHECK_INT(slurm_script(&c, &j, &s, &e), -1);
	CHECK_STR(e.type, "TypeError");
	CHECK_STR(e.msg.buf, "'<' not supported between instances of 'NoneType' and 'int'");
	slurm_err_release(&e);

	/* the stored form's nulls, gpu set omitted or null: unset */
	json_t *rc = json_pack("{s:{s:s,s:i,s:i,s:n},s:n,s:{s:i,s:i,s:i,s:i,s:i,s:i},s:n}", "default_slurm_config",
			       "partition", "p", "cpus_per_task", 1, "mem", 5, "time", "gpu_slurm_config",
			       "batching_config", "target_num_jobs", 1, "max_num_jobs", 1, "target_cpus_per_job", 1,
			       "max_cpus_per_job", 1, "target_mem_per_job", 5, "max_mem_per_job", 5, "user_local_exports");
	json_t *meta = json_pack("{s:b}", "needs_gpu", 1);
	CHECK_INT(slurm_config_get(rc, meta, "a b", &c, &e), 0);
	CHECK_STR(c.partition, "p");
	CHECK(c.time == NULL);
	CHECK_STR(c.job_name, "a_b");
	CHECK_INT(json_object_size(c.user_local_exports), 0);
	slurm_config_free(&c);
	json_decref(meta);
	/* int() of a decimal string beyond int64: ours stops there */
	meta = json_pack("{s:s}", "cpus_per_task", "99999999999999999999");
	CHECK_INT(slurm_config_get(rc, meta, "t", &c, &e), -1);
	CHECK_STR(e.type, "ValueError");
	CHECK_STR(e.msg.buf, "'99999999999999999999' is beyond a 64-bit integer");
	json_decref(meta);
	meta = json_pack("{s:s}", "cpus_per_task", "-9223372036854775808");
	CHECK_INT(slurm_config_get(rc, meta, "t", &c, &e), 0);
	CHECK_INT(c.cpus_per_task, INT64_MIN);
	slurm_config_free(&c);
	json_decref(meta);
	/* a meta that is not an object is no meta */
	meta = json_pack("[s]", "x");
	CHECK_INT(slurm_config_get(rc, meta, "t", &c, &e), 0);
	slurm_config_free(&c);
	json_decref(meta);
	json_decref(rc);
	slurm_err_release(&e);

	/* an unreadable output file without a reason */
	json_t *result = (json_t *)1;
	sb_t exc = SB_INIT;
	CHECK_INT(slurm_output_parse(NULL, 0, NULL, &result, &exc), SLURM_OUT_JOB_ERROR);
	CHECK(result == NULL);
	CHECK_STR(exc.buf, "ERROR, ");
	sb_release(&exc);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s slurm_cases.json\n", argv[0]);
		return 2;
	}
	json_error_t jerr;
	json_t *doc = json_load_file(argv[1], 0, &jerr);
	if (!CHECK(doc != NULL)) {
		fprintf(stderr, "    %s: %s\n", argv[1], jerr.text);
		return unit_done("slurm");
	}
	mem_cases(json_object_get(doc, "mem"));
	heuristics_cases(json_object_get(doc, "heuristics"));
	config_cases(json_object_get(doc, "config"));
	script_cases(json_object_get(doc, "script"));
	stderr_cases(json_object_get(doc, "stderr"));
	output_cases(json_object_get(doc, "output"));
	CHECK_INT(json_array_size(json_object_get(doc, "config")) > 40, 1);
	others();
	json_decref(doc);
	return unit_done("slurm");
}
