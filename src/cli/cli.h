/* cli.h — the fractalctl commands. Each returns the process exit code:
 * 0 success, 1 a runtime failure (message on stderr), 2 a usage error.
 * Only code under src/cli/ and main.c may decide to exit. */
#ifndef CLI_H
#define CLI_H

struct cli_opt {
	const char *long_name;   /* "--port"; a name without a leading '-'
	                            ("FILE") is a positional argument */
	const char *short_name;  /* "-p" or NULL */
	const char *metavar;     /* NULL: a flag without value */
	const char *help;
	const char *value;       /* out: given value ("1" for flags), or NULL */
};

/* Parses argv (after the command name) against opts; positional arguments
 * take the non-option arguments in order. Does not check that an argument
 * was given: the command does. On an unknown option, a missing value or a
 * stray argument prints usage to stderr and returns 2;
 * on --help prints usage to stdout and returns -1; else 0. */
int cli_parse(const char *cmd, const char *desc, int argc, char **argv, struct cli_opt *opts, int nopts);

int cmd_set_db(int argc, char **argv);
int cmd_init_db_data(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_recent(int argc, char **argv);
int cmd_sync_core_tasks(int argc, char **argv);
int cmd_update_db_data(int argc, char **argv);
int cmd_openapi(int argc, char **argv);
/* Prints usage and "the following arguments are required: NAME" to stderr
 * (argparse's words); returns 2. */
int cli_required(const char *cmd, const char *desc, const struct cli_opt *opts, int nopts, const char *name);

/* Loads the settings groups or prints the error; 0 or exit code 1. */
int cli_load_settings(int groups);

#endif
