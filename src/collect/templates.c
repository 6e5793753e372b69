/* templates.c — see templates.h. Every script stops at the first failing
 * command (set -e); progress lines go to stdout as
 * "[<tag>, <UTC time>] <message>". */
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
	"ENV_DIR=__PACKAGE_ENV_DIR__\n"
	"PYTHON=__PYTHON__\n"
	"STARTED=$(date +%s)\n"
	"say \"START create venv in ${ENV_DIR}\"\n"
	"\"$PYTHON\" -m venv \"$ENV_DIR\" --copies\n"
	"say \"END   create venv in ${ENV_DIR}\"\n"
	"echo\n"
	FOOTER };

/* The pinned lists stay unquoted where they are used: they are several
 * words ("a==1" "b==2", whose quotes the assignment already removed). */
const collect_template_t tpl_pip_install = { "2_pip_install.sh",
	LOG_FN("collect-task")
	"ENV_DIR=__PACKAGE_ENV_DIR__\n"
	"INSTALL_STRING=\"__INSTALL_STRING__\"\n"
	"PRE=\"__PINNED_PACKAGE_LIST_PRE__\"\n"
	"POST=\"__PINNED_PACKAGE_LIST_POST__\"\n"
	"CACHE_ARG=\"__FRACTAL_PIP_CACHE_DIR_ARG__\"\n"
	"STARTED=$(date +%s)\n"
	"PY=${ENV_DIR}/bin/python\n"
	"say \"START upgrade pip and install setuptools\"\n"
	"\"$PY\" -m pip install ${CACHE_ARG} pip setuptools --upgrade\n"
	"say \"END   upgrade pip and install setuptools\"\n"
	"echo\n"
	"if [ -n \"$PRE\" ]; then\n"
	"    say \"START install with PINNED_PACKAGE_LIST_PRE=${PRE}\"\n"
	"    \"$PY\" -m pip install ${CACHE_ARG} $PRE\n"
	"    say \"END install with PINNED_PACKAGE_LIST_PRE=${PRE}\"\n"
	"    echo\n"
	"else\n"
	"    say \"SKIP installing pre-pinned versions $PRE (empty list)\"\n"
	"fi\n"
	"say \"START install with INSTALL_STRING=${INSTALL_STRING}\"\n"
	"\"$PY\" -m pip install ${CACHE_ARG} \"$INSTALL_STRING\"\n"
	"say \"END   install with INSTALL_STRING=${INSTALL_STRING}\"\n"
	"echo\n"
	"if [ -n \"$POST\" ]; then\n"
	"    say \"START install with PINNED_PACKAGE_LIST_POST=${POST}\"\n"
	"    \"$PY\" -m pip install ${CACHE_ARG} $POST\n"
	"    say \"END install with PINNED_PACKAGE_LIST_POST=${POST}\"\n"
	"    echo\n"
	"else\n"
	"    say \"SKIP installing post-pinned versions $POST (empty list)\"\n"
	"fi\n"
	FOOTER };

const collect_template_t tpl_pip_freeze = { "3_pip_freeze.sh",
	"#!/bin/bash\n"
	"set -e\n"
	"ENV_DIR=__PACKAGE_ENV_DIR__\n"
	"\"${ENV_DIR}/bin/python\" -m pip freeze --all\n" };

/* Prints the labelled lines pip.c parses; exits 2 when the package
 * lists no __FRACTAL_MANIFEST__.json among its files. */
const collect_template_t tpl_pip_show = { "4_pip_show.sh",
	LOG_FN("collect-task")
	"ENV_DIR=__PACKAGE_ENV_DIR__\n"
	"NAME=__PACKAGE_NAME__\n"
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
	"ENV_DIR=__PACKAGE_ENV_DIR__\n"
	"FREEZE_FILE=__PIP_FREEZE_FILE__\n"
	"CACHE_ARG=\"__FRACTAL_PIP_CACHE_DIR_ARG__\"\n"
	"STARTED=$(date +%s)\n"
	"PY=${ENV_DIR}/bin/python\n"
	"say \"START upgrade pip and install setuptools\"\n"
	"\"$PY\" -m pip install ${CACHE_ARG} pip setuptools --upgrade\n"
	"say \"END   upgrade pip and install setuptools\"\n"
	"echo\n"
	"say \"START installing requirements from ${FREEZE_FILE}\"\n"
	"\"$PY\" -m pip install ${CACHE_ARG} -r \"${FREEZE_FILE}\"\n"
	"say \"END   installing requirements from ${FREEZE_FILE}\"\n"
	"echo\n"
	FOOTER };

#define PIXI_FOOTER                                                        \
	"say \"Elapsed: $(( $(date +%s) - STARTED )) seconds\"\n"          \
	"say \"All ok, exit.\"\n"                                          \
	"echo\n"

const collect_template_t tpl_pixi_extract = { "pixi_1_extract.sh",
	LOG_FN("extract-tar-gz-pixi")
	"PACKAGE_DIR=\"__PACKAGE_DIR__\"\n"
	"TAR_GZ=\"__TAR_GZ_PATH__\"\n"
	"SOURCE_DIR=\"${PACKAGE_DIR%/}/__SOURCE_DIR_NAME__\"\n"
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
	"PIXI_HOME=\"__PIXI_HOME__\"\n"                                    \
	"PIXI_HOME=${PIXI_HOME%/}\n"                                       \
	"PACKAGE_DIR=\"__PACKAGE_DIR__\"\n"                                \
	"PACKAGE_DIR=${PACKAGE_DIR%/}\n"                                   \
	"PIXI=\"${PIXI_HOME}/bin/pixi\"\n"                                 \
	"SOURCE_DIR=\"${PACKAGE_DIR}/__SOURCE_DIR_NAME__\"\n"              \
	"PYPROJECT=\"${SOURCE_DIR}/pyproject.toml\"\n"                     \
	"export PIXI_HOME\n"                                               \
	"export PIXI_CACHE_DIR=\"__PIXI_CACHE_DIR__\"\n"                   \
	"export RATTLER_AUTH_FILE=\"${PIXI_HOME}/credentials.json\"\n"

const collect_template_t tpl_pixi_install = { "pixi_2_install.sh",
	LOG_FN("install-tasks-pixi")
	PIXI_ENV
	"FROZEN=\"__FROZEN_OPTION__\"\n"
	"export TOKIO_WORKER_THREADS=\"__TOKIO_WORKER_THREADS__\"\n"
	"STARTED=$(date +%s)\n"
	"say \"Hostname: $(hostname)\"\n"
	"cd \"$PACKAGE_DIR\"\n"
	"say \"Changed working directory to ${PACKAGE_DIR}\"\n"
	"say \"START '${PIXI} install ${FROZEN} --manifest-path ${PYPROJECT}'\"\n"
	"\"$PIXI\" install --concurrent-solves \"__PIXI_CONCURRENT_SOLVES__\" "
	"--concurrent-downloads \"__PIXI_CONCURRENT_DOWNLOADS__\" ${FROZEN} --manifest-path \"$PYPROJECT\"\n"
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
	"printf '#!/bin/bash\\nsource %s\\nexport PYTHONNOUSERSITE=1\\n%s \"$@\"\\n' \"$ACTIVATE\" \"$PROJECT_PYTHON\" > \"$WRAPPER\"\n"
	"chmod 755 \"$WRAPPER\"\n"
	"say \"Written ${WRAPPER} with 755 permissions\"\n"
	"say \"Project Python wrapper: ${WRAPPER}\"\n"
	"say \"Project-Python version: $(\"$WRAPPER\" --version)\"\n"
	"echo\n"
	"printf 'source %s\\n%s -c \"import __IMPORT_PACKAGE_NAME__ as p, os; print(os.path.dirname(p.__file__))\"\\n' "
	"\"$ACTIVATE\" \"$PROJECT_PYTHON\" > \"$FINDER\"\n"
	"say \"Package folder: $(bash \"$FINDER\")\"\n"
	"echo\n"
	PIXI_FOOTER };
