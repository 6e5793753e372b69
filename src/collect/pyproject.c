/* pyproject.c — see pyproject.h. The text is cut into statements: a table
 * header, or a key with its whole value (arrays and inline tables may span
 * lines; brackets inside strings and comments do not count), or blank and
 * comment lines; then statements are kept, dropped or replaced by the
 * table they are in. */
#include "collect/pyproject.h"

#include <ctype.h>
#include <string.h>

/* Bracket depth change of one line, outside strings and comments. */
static int depth_delta(const char *s, size_t n)
{
	int d = 0;
	char q = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (q) {
			if (c == '\\' && q == '"')
				i++;
			else if (c == q)
				q = 0;
		} else if (c == '"' || c == '\'') {
			q = c;
		} else if (c == '#') {
			break;
		} else if (c == '[' || c == '{') {
			d++;
		} else if (c == ']' || c == '}') {
			d--;
		}
	}
	return d;
}

/* The table name of a header line ("[a.b]" / "[[a.b]]"), spaces removed
 * and quotes kept; 0 if the line is no header. */
static int header_name(const char *s, size_t n, sb_t *name)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i >= n || s[i] != '[')
		return 0;
	sb_reset(name);
	for (; i < n && s[i] != '#'; i++)
		if (s[i] != '[' && s[i] != ']' && !isspace((unsigned char)s[i]))
			sb_addc(name, s[i]);
	return 1;
}

/* The key of a "key = value" statement (bare or quoted), or 0. */
static int key_name(const char *s, size_t n, sb_t *key)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i >= n || s[i] == '#')
		return 0;
	const char *eq = memchr(s + i, '=', n - i);
	if (!eq)
		return 0;
	size_t e = (size_t)(eq - s);
	while (e > i && isspace((unsigned char)s[e - 1]))
		e--;
	sb_reset(key);
	if ((s[i] == '"' || s[i] == '\'') && e > i + 1 && s[e - 1] == s[i])
		sb_add(key, s + i + 1, e - i - 2);
	else
		sb_add(key, s + i, e - i);
	return 1;
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

int pyproject_simplify(const char *text, const char *environment, const char *platform, sb_t *out, sb_t *why)
{
	if (!strstr(text, "tool.pixi")) {
		sb_adds(out, text);
		return 0;
	}
	sb_t table = SB_INIT, name = SB_INIT, key = SB_INIT, res = SB_INIT;
	int has_envs = 0, kept_env = 0;
	const char *p = text;
	while (*p) {
		/* one statement: this line and, while brackets are open, the next ones */
		const char *start = p;
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		int depth = depth_delta(p, n);
		int is_header = header_name(p, n, &name);
		p += n + (eol ? 1 : 0);
		while (!is_header && depth > 0 && *p) {
			eol = strchr(p, '\n');
			n = eol ? (size_t)(eol - p) : strlen(p);
			depth += depth_delta(p, n);
			p += n + (eol ? 1 : 0);
		}
		size_t len = (size_t)(p - start);
		if (is_header) {
			sb_reset(&table);
			sb_add(&table, name.buf, name.len);
			int drop = !strcmp(table.buf, "tool.pixi.tasks") || starts_with(table.buf, "tool.pixi.tasks.");
			if (starts_with(table.buf, "tool.pixi.environments.")) {
				has_envs = 1;
				if (strcmp(table.buf + strlen("tool.pixi.environments."), environment))
					drop = 1;
				else
					kept_env = 1;
			}
			if (!strcmp(table.buf, "tool.pixi.environments"))
				has_envs = 1;
			if (!drop)
				sb_add(&res, start, len);
			continue;
		}
		int dropped_table = !strcmp(table.buf, "tool.pixi.tasks") || starts_with(table.buf, "tool.pixi.tasks.") ||
				    (starts_with(table.buf, "tool.pixi.environments.") &&
				     strcmp(table.buf + strlen("tool.pixi.environments."), environment));
		if (dropped_table)
			continue;
		int is_key = key_name(start, len, &key);
		if (is_key && (!strcmp(table.buf, "tool.pixi.workspace") || !strcmp(table.buf, "tool.pixi.project")) &&
		    !strcmp(key.buf, "platforms")) {
			sb_addf(&res, "platforms = [\"%s\"]\n", platform);
			continue;
		}
		if (is_key && !strcmp(table.buf, "tool.pixi.environments")) {
			if (strcmp(key.buf, environment))
				continue;
			kept_env = 1;
		}
		if (is_key && !strcmp(table.buf, "tool.pixi") && !strcmp(key.buf, "tasks"))
			continue;
		sb_add(&res, start, len);
	}
	int rc = 0;
	if (has_envs && !kept_env) {
		sb_addf(why, "No '%s' pixi environment found.", environment);
		rc = -1;
	} else {
		sb_add(out, res.buf, res.len);
	}
	sb_release(&table);
	sb_release(&name);
	sb_release(&key);
	sb_release(&res);
	return rc;
}
