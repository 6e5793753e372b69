/* templates.h — the bash scripts of task collection and of the task-group
 * lifecycle, compiled into the binary. Each one has __NAME__ placeholders
 * that collect/steps.c replaces literally (as upstream does) before writing the
 * script next to the task group. Their output lines, and the labels that
 * pip.c and pixi.c parse from the pip-show and pixi post-install scripts, are
 * upstream's. */
#ifndef COLLECT_TEMPLATES_H
#define COLLECT_TEMPLATES_H

typedef struct collect_template {
	const char *name;   /* upstream's file name, e.g. "1_create_venv.sh" */
	const char *text;
} collect_template_t;

extern const collect_template_t tpl_create_venv, tpl_pip_install, tpl_pip_freeze, tpl_pip_show,
	tpl_pip_install_from_freeze, tpl_pixi_extract, tpl_pixi_install, tpl_pixi_post_install;

#endif
