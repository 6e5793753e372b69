/* main.c — fractalctl: one binary, subcommands as upstream's CLI
 * (fractal_server/cli/). Parses the command line, dispatches, exits. */
#include <stdio.h>
#include <string.h>

#include "build_config.h"
#include "cli/cli.h"
#include "config/settings.h"
#include "util/log.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
	{ "start", cmd_start, "Start the server" },
	{ "set-db", cmd_set_db, "Initialise/upgrade database schemas" },
	{ "init-db-data", cmd_init_db_data, "Populate database with initial data" },
	{ "update-db-data", cmd_update_db_data, "Apply data-migration script to an existing database" },
	{ "recent", cmd_recent, "Review recent jobs and task-group activities" },
	{ "sync-core-tasks", cmd_sync_core_tasks, "Synchronize core tasks" },
	{ "dump", cmd_dump, "Write a snapshot of the whole database to a file" },
	{ "restore", cmd_restore, "Load a dump into a new, empty database" },
	{ "openapi", cmd_openapi, "Save the `openapi.json` file" },
	{ "version", cmd_version, "Print the version" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: fractalctl [-h] [--version] {");
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "%s%s", c == commands ? "" : ",", c->name);
	fprintf(out, "} ...\n\nfractal-server commands (fractal-server in C, %s)\n\nCommands:\n", FRACTAL_VERSION);
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "  %-14s %s\n", c->name, c->help);
	fprintf(out, "\nRun 'fractalctl <command> --help' for the options of a command.\n"
		     "Settings come from the environment and from .fractal_server.env in the working directory.\n");
}

static int cmd_version(int argc, char **argv)
{
	struct cli_opt none[1];
	int rc = cli_parse("version", "Print the version", argc, argv, none, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	printf("fractal-server %s\n", FRACTAL_VERSION);
	return 0;
}

static int opt_matches(const struct cli_opt *o, const char *arg, const char **inline_val)
{
	size_t n = strlen(o->long_name);
	*inline_val = NULL;
	if (!strncmp(arg, o->long_name, n) && (arg[n] == '\0' || arg[n] == '=')) {
		if (arg[n] == '=')
			*inline_val = arg + n + 1;
		return 1;
	}
	return o->short_name && !strcmp(arg, o->short_name);
}

static int is_positional(const struct cli_opt *o)
{
	return o->long_name[0] != '-';
}

static void cmd_usage(FILE *out, const char *cmd, const char *desc, const struct cli_opt *opts, int nopts)
{
	fprintf(out, "usage: fractalctl %s [-h]", cmd);
	for (int i = 0; i < nopts; i++)
		if (!is_positional(&opts[i]))
			fprintf(out, " [%s%s%s]", opts[i].long_name, opts[i].metavar ? " " : "",
				opts[i].metavar ? opts[i].metavar : "");
	for (int i = 0; i < nopts; i++)
		if (is_positional(&opts[i]))
			fprintf(out, " %s", opts[i].long_name);
	fprintf(out, "\n\n%s\n\n", desc);
	int npos = 0;
	for (int i = 0; i < nopts; i++)
		npos += is_positional(&opts[i]);
	if (npos) {
		fprintf(out, "positional arguments:\n");
		for (int i = 0; i < nopts; i++)
			if (is_positional(&opts[i]))
				fprintf(out, "  %-21s %s\n", opts[i].long_name, opts[i].help);
		fprintf(out, "\n");
	}
	fprintf(out, "options:\n  -h, --help            show this help message and exit\n");
	for (int i = 0; i < nopts; i++) {
		if (is_positional(&opts[i]))
			continue;
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s%s%s", opts[i].short_name ? opts[i].short_name : "",
			 opts[i].short_name ? ", " : "", opts[i].long_name, opts[i].metavar ? " " : "",
			 opts[i].metavar ? opts[i].metavar : "");
		fprintf(out, "  %-21s %s\n", left, opts[i].help);
	}
}

int cli_parse(const char *cmd, const char *desc, int argc, char **argv, struct cli_opt *opts, int nopts)
{
	for (int i = 0; i < nopts; i++)
		opts[i].value = NULL;
	for (int a = 0; a < argc; a++) {
		const char *arg = argv[a];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			cmd_usage(stdout, cmd, desc, opts, nopts);
			return -1;
		}
		int found = 0;
		if (arg[0] != '-' || !strcmp(arg, "-")) {
			/* the next positional argument still without a value */
			for (int i = 0; i < nopts && !found; i++)
				if (is_positional(&opts[i]) && !opts[i].value) {
					opts[i].value = arg;
					found = 1;
				}
		}
		for (int i = 0; i < nopts && !found; i++) {
			const char *inl;
			if (is_positional(&opts[i]))
				continue;
			if (!opt_matches(&opts[i], arg, &inl))
				continue;
			found = 1;
			if (!opts[i].metavar) {
				opts[i].value = "1";
			} else if (inl) {
				opts[i].value = inl;
			} else if (a + 1 < argc) {
				opts[i].value = argv[++a];
			} else {
				cmd_usage(stderr, cmd, desc, opts, nopts);
				fprintf(stderr, "fractalctl %s: error: argument %s: expected one argument\n", cmd, opts[i].long_name);
				return 2;
			}
		}
		if (!found) {
			cmd_usage(stderr, cmd, desc, opts, nopts);
			fprintf(stderr, "fractalctl %s: error: unrecognized arguments: %s\n", cmd, arg);
			return 2;
		}
	}
	return 0;
}

int cli_required(const char *cmd, const char *desc, const struct cli_opt *opts, int nopts, const char *name)
{
	cmd_usage(stderr, cmd, desc, opts, nopts);
	fprintf(stderr, "fractalctl %s: error: the following arguments are required: %s\n", cmd, name);
	return 2;
}

int cli_load_settings(int groups)
{
	sb_t err = SB_INIT;
	if (settings_load(groups, &err)) {
		fprintf(stderr, "fractalctl: error: %s\n", err.buf);
		sb_release(&err);
		return 1;
	}
	sb_release(&err);
	if (groups & SETTINGS_APP)
		log_set_level(settings.logging_level);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		fprintf(stderr, "fractalctl: error: the following arguments are required: cmd\n");
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(0, NULL);
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 2, argv + 2);
	usage(stderr);
	fprintf(stderr, "fractalctl: error: argument cmd: invalid choice: '%s'\n", argv[1]);
	return 2;
}
