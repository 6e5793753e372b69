/* templates.c — see templates.h. Every script stops at the first failing
 * command (set -e); progress lines go to stdout as
 * "[<tag>, <UTC time>] <message>". Values come only from FRACTAL_*
 * environment variables and positional arguments, expanded inside double
 * quotes or as "${array[@]}": none is ever read as shell text. */
#include "collect/templates.h"

#define LOG_FN(tag)                                                        \
	"#!/bin/bash\n"                                                    \
	"set -e\n"                                                         \
	"say() { echo \"[" tag ", $(date -u +%Y-%m-%dT%H:%M:%SZ)] $1\"; }\n"

#define FOOTER                                                             \
	"say \"All good up to here.\"\n"                                   \
	"say \"Elapsed: $(( $(date +%s) - STARTED )) seconds\"\n"          \
	"say \"Exit.\"\n"                                                  \
	"echo\n"

const collect_template_t tpl_create_venv = { "1_create_venv.sh",
	LOG_FN("collect-task")
	"ENV_DIR=\"$FRACTAL_PACKAGE_ENV_DIR\"\n"
	"PYTHON=\"$FRACTAL_PYTHON\"\n"
	"STARTED=$(date +%s)\n"
	"say \"START create venv in ${ENV_DIR}\"\n"
	"\"$PYTHON\" -m venv \"$ENV_DIR\" --copies\n"
	"say \"END   create venv in ${ENV_DIR}\"\n"
	"echo\n"
	FOOTER };

/* The pip cache argument: --cache-dir DIR, or --no-cache-dir when
 * FRACTAL_PIP_CACHE_DIR is empty. */
#define PIP_CACHE_ARG                                                      \
	"if [ -n \"$FRACTAL_PIP_CACHE_DIR\" ]; then\n"                      \
	"    CACHE_ARG=(--cache-dir \"$FRACTAL_PIP_CACHE_DIR\")\n"          \
	"else\n"                                                           \
	"    CACHE_ARG=(--no-cache-dir)\n"                                 \
	"fi\n"

/* The pinned versions are the arguments, one "name==version" each: the
 * first FRACTAL_PINNED_PRE_COUNT are installed before the package, the
 * others after it. */
const collect_template_t tpl_pip_install = { "2_pip_install.sh",
	LOG_FN("collect-task")
	"ENV_DIR=\"$FRACTAL_PACKAGE_ENV_DIR\"\n"
	"INSTALL_STRING=\"$FRACTAL_INSTALL_STRING\"\n"
	"NPRE=$(( FRACTAL_PINNED_PRE_COUNT ))\n"
	"PRE=(\"${@:1:NPRE}\")\n"
	"POST=(\"${@:NPRE+1}\")\n"
	PIP_CACHE_ARG
	"STARTED=$(date +%s)\n"
	"PY=${ENV_DIR}/bin/python\n"
	"say \"START upgrade pip and install setuptools\"\n"
	"\"$PY\" -m pip install \"${CACHE_ARG[@]}\" pip setuptools --upgrade\n"
	"say \"END   upgrade pip and install setuptools\"\n"
	"echo\n"
	"if [ ${#PRE[@]} -gt 0 ]; then\n"
	"    say \"START install with PINNED_PACKAGE_LIST_PRE=${PRE[*]}\"\n"
	"    \"$PY\" -m pip install \"${CACHE_ARG[@]}\" \"${PRE[@]}\"\n"
	"    say \"END install with PINNED_PACKAGE_LIST_PRE=${PRE[*]}\"\n"
	"    echo\n"
	"else\n"
	"    say \"SKIP installing pre-pinned versions ${PRE[*]} (empty list)\"\n"
	"fi\n"
	"say \"START install with INSTALL_STRING=${INSTALL_STRING}\"\n"
	"\"$PY\" -m pip install \"${CACHE_ARG[@]}\" \"$INSTALL_STRING\"\n"
	"say \"END   install with INSTALL_STRING=${INSTALL_STRING}\"\n"
	"echo\n"
	"if [ ${#POST[@]} -gt 0 ]; then\n"
	"    say \"START install with PINNED_PACKAGE_LIST_POST=${POST[*]}\"\n"
	"    \"$PY\" -m pip install \"${CACHE_ARG[@]}\" \"${POST[@]}\"\n"
	"    say \"END install with PINNED_PACKAGE_LIST_POST=${POST[*]}\"\n"
	"    echo\n"
	"else\n"
	"    say \"SKIP installing post-pinned versions ${POST[*]} (empty list)\"\n"
	"fi\n"
	FOOTER };

const collect_template_t tpl_pip_freeze = { "3_pip_freeze.sh",
	"#!/bin/bash\n"
	"set -e\n"
	"ENV_DIR=\"$FRACTAL_PACKAGE_ENV_DIR\"\n"
	"\"${ENV_DIR}/bin/python\" -m pip freeze --all\n" };

/* Prints the labelled lines pip.c parses; exits 2 when the package
 * lists no __FRACTAL_MANIFEST__.json among its files. */
const collect_template_t tpl_pip_show = { "4_pip_show.sh",
	LOG_FN("collect-task")
	"ENV_DIR=\"$FRACTAL_PACKAGE_ENV_DIR\"\n"
	"NAME=\"$FRACTAL_PACKAGE_NAME\"\n"
	"STARTED=$(date +%s)\n"
	"PY=${ENV_DIR}/bin/python\n"
	"say \"Python interpreter: $PY\"\n"
	"echo\n"
	"say \"START pip show\"\n"
	"SHOW=$(\"$PY\" -m pip show \"$NAME\")\n"
	"say \"END   pip show\"\n"
	"echo\n"
	"field() { echo \"$SHOW\" | grep \"^$1:\" | cut -d \":\" -f 2- | tr -d \"[:space:]\"; }\n"
	"NAME=$(field Name)\n"
	"say \"Package name: $NAME\"\n"
	"echo\n"
	"say \"Package version: $(field Version)\"\n"
	"echo\n"
	"LOCATION=$(field Location)\n"
	"say \"Package parent folder: $LOCATION\"\n"
	"echo\n"
	"MANIFEST=$(\"$PY\" -m pip show \"$NAME\" --files | grep \"__FRACTAL_MANIFEST__.json\" | tr -d \"[:space:]\" || true)\n"
	"say \"Manifest relative path: $MANIFEST\"\n"
	"echo\n"
	"if [ -z \"$MANIFEST\" ]; then\n"
	"    say \"ERROR: manifest path not found for $NAME\"\n"
	"    exit 2\n"
	"fi\n"
	"say \"OK: manifest path exists\"\n"
	"echo\n"
	"say \"Manifest absolute path: ${LOCATION}/${MANIFEST}\"\n"
	"echo\n"
	FOOTER };

const collect_template_t tpl_pip_install_from_freeze = { "5_pip_install_from_freeze.sh",
	LOG_FN("collect-task")
	"ENV_DIR=\"$FRACTAL_PACKAGE_ENV_DIR\"\n"
	"FREEZE_FILE=\"$FRACTAL_PIP_FREEZE_FILE\"\n"
	PIP_CACHE_ARG
	"STARTED=$(date +%s)\n"
	"PY=${ENV_DIR}/bin/python\n"
	"say \"START upgrade pip and install setuptools\"\n"
	"\"$PY\" -m pip install \"${CACHE_ARG[@]}\" pip setuptools --upgrade\n"
	"say \"END   upgrade pip and install setuptools\"\n"
	"echo\n"
	"say \"START installing requirements from ${FREEZE_FILE}\"\n"
	"\"$PY\" -m pip install \"${CACHE_ARG[@]}\" -r \"${FREEZE_FILE}\"\n"
	"say \"END   installing requirements from ${FREEZE_FILE}\"\n"
	"echo\n"
	FOOTER };

#define PIXI_FOOTER                                                        \
	"say \"Elapsed: $(( $(date +%s) - STARTED )) seconds\"\n"          \
	"say \"All ok, exit.\"\n"                                          \
	"echo\n"

const collect_template_t tpl_pixi_extract = { "pixi_1_extract.sh",
	LOG_FN("extract-tar-gz-pixi")
	"PACKAGE_DIR=\"$FRACTAL_PACKAGE_DIR\"\n"
	"TAR_GZ=\"$FRACTAL_TAR_GZ_PATH\"\n"
	"SOURCE_DIR=\"${PACKAGE_DIR%/}/${FRACTAL_SOURCE_DIR_NAME}\"\n"
	"MEMBER=$(basename \"$TAR_GZ\" .tar.gz)\n"
	"STARTED=$(date +%s)\n"
	"cd \"$PACKAGE_DIR\"\n"
	"say \"Changed working directory to ${PACKAGE_DIR}\"\n"
	"say \"START 'tar xz -f ${TAR_GZ} ${MEMBER}'\"\n"
	"tar xz -f \"$TAR_GZ\" \"$MEMBER\"\n"
	"say \"END   'tar xz -f ${TAR_GZ} ${MEMBER}'\"\n"
	"echo\n"
	"say \"START 'mv ${PACKAGE_DIR%/}/${MEMBER} ${SOURCE_DIR}'\"\n"
	"mv \"${PACKAGE_DIR%/}/${MEMBER}\" \"$SOURCE_DIR\"\n"
	"say \"END   'mv ${PACKAGE_DIR%/}/${MEMBER} ${SOURCE_DIR}'\"\n"
	"echo\n"
	PIXI_FOOTER };

#define PIXI_ENV                                                           \
	"PIXI_HOME=\"${FRACTAL_PIXI_HOME%/}\"\n"                           \
	"PACKAGE_DIR=\"${FRACTAL_PACKAGE_DIR%/}\"\n"                       \
	"PIXI=\"${PIXI_HOME}/bin/pixi\"\n"                                 \
	"SOURCE_DIR=\"${PACKAGE_DIR}/${FRACTAL_SOURCE_DIR_NAME}\"\n"       \
	"PYPROJECT=\"${SOURCE_DIR}/pyproject.toml\"\n"                     \
	"export PIXI_HOME\n"                                               \
	"export PIXI_CACHE_DIR=\"$FRACTAL_PIXI_CACHE_DIR\"\n"              \
	"export RATTLER_AUTH_FILE=\"${PIXI_HOME}/credentials.json\"\n"

const collect_template_t tpl_pixi_install = { "pixi_2_install.sh",
	LOG_FN("install-tasks-pixi")
	PIXI_ENV
	"FROZEN=\"$FRACTAL_FROZEN_OPTION\"\n"
	"export TOKIO_WORKER_THREADS=\"$FRACTAL_TOKIO_WORKER_THREADS\"\n"
	"STARTED=$(date +%s)\n"
	"say \"Hostname: $(hostname)\"\n"
	"cd \"$PACKAGE_DIR\"\n"
	"say \"Changed working directory to ${PACKAGE_DIR}\"\n"
	"say \"START '${PIXI} install ${FROZEN} --manifest-path ${PYPROJECT}'\"\n"
	"\"$PIXI\" install --concurrent-solves \"$FRACTAL_PIXI_CONCURRENT_SOLVES\" "
	"--concurrent-downloads \"$FRACTAL_PIXI_CONCURRENT_DOWNLOADS\" ${FROZEN:+\"$FROZEN\"} --manifest-path \"$PYPROJECT\"\n"
	"say \"END   '${PIXI} install ${FROZEN} --manifest-path ${PYPROJECT}'\"\n"
	"echo\n"
	PIXI_FOOTER };

const collect_template_t tpl_pixi_post_install = { "pixi_3_post_install.sh",
	LOG_FN("after-install-pixi")
	PIXI_ENV
	"ACTIVATE=\"${SOURCE_DIR}/activate_project.sh\"\n"
	"WRAPPER=\"${SOURCE_DIR}/project_python.sh\"\n"
	"FINDER=\"${SOURCE_DIR}/find_package_folder.sh\"\n"
	"STARTED=$(date +%s)\n"
	"cd \"$PACKAGE_DIR\"\n"
	"say \"Changed working directory to ${PACKAGE_DIR}\"\n"
	"say \"START '${PIXI} shell-hook --manifest-path ${PYPROJECT}'\"\n"
	"\"$PIXI\" shell-hook --manifest-path \"$PYPROJECT\" > \"$ACTIVATE\"\n"
	"say \"END   '${PIXI} shell-hook --manifest-path ${PYPROJECT}'\"\n"
	"echo\n"
	"PROJECT_PYTHON=$(\"$PIXI\" run --manifest-path \"$PYPROJECT\" which python)\n"
	"say \"Found PROJECT_PYTHON_BIN=${PROJECT_PYTHON}\"\n"
	"printf '#!/bin/bash\\nsource %q\\nexport PYTHONNOUSERSITE=1\\n%q \"$@\"\\n' \"$ACTIVATE\" \"$PROJECT_PYTHON\" > \"$WRAPPER\"\n"
	"chmod 755 \"$WRAPPER\"\n"
	"say \"Written ${WRAPPER} with 755 permissions\"\n"
	"say \"Project Python wrapper: ${WRAPPER}\"\n"
	"say \"Project-Python version: $(\"$WRAPPER\" --version)\"\n"
	"echo\n"
	"printf 'source %q\\n%q -c \"import importlib, os, sys; p = importlib.import_module(sys.argv[1]); "
	"print(os.path.dirname(p.__file__))\" %q\\n' \"$ACTIVATE\" \"$PROJECT_PYTHON\" \"$FRACTAL_IMPORT_PACKAGE_NAME\" "
	"> \"$FINDER\"\n"
	"say \"Package folder: $(bash \"$FINDER\")\"\n"
	"echo\n"
	PIXI_FOOTER };
