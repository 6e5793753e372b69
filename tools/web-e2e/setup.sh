#!/bin/sh
# Prepares fractal-web for its end-to-end tests against fractalctl, all outside this repository:
#   $FWEB (default /tmp/fweb): fractal-web at $FWEB_REV (default HEAD) of the local bare mirror, npm-installed and built;
#   $FWEB/fractalctl.config.js: a Playwright config that extends fractal-web's own (system chromium, one worker,
#     no web servers of its own: run.sh starts them);
#   $ASSETS (default /tmp/fweb-assets): upstream's fractal_tasks_mock wheel (fractal-server's test data, from its mirror).
set -e
FWEB=${FWEB:-/tmp/fweb}
ASSETS=${ASSETS:-/tmp/fweb-assets}
WEB_MIRROR=${WEB_MIRROR:-/work/.mirror/fractal-analytics-platform+fractal-web/repo}
SERVER_MIRROR=${SERVER_MIRROR:-/work/.mirror/fractal-analytics-platform+fractal-server/repo}
[ -x /usr/bin/chromium ] || apt-get install -y chromium
mkdir -p "$FWEB" "$ASSETS"
if [ ! -f "$FWEB/package.json" ]; then
	git --git-dir="$WEB_MIRROR" archive "${FWEB_REV:-HEAD}" | tar -x -C "$FWEB"
fi
git -C "$SERVER_MIRROR" show HEAD:tests/v2/fractal_tasks_mock/dist/fractal_tasks_mock-0.0.1-py3-none-any.whl \
	>"$ASSETS/fractal_tasks_mock-0.0.1-py3-none-any.whl"
cd "$FWEB"
if [ ! -d node_modules ]; then
	# Node 20 here while fractal-web asks for 22 (only for dev tools); the registry mirror lacks
	# json-diff-viewer-component 0.6.2, 0.6.1 is taken instead
	npm install json-diff-viewer-component@0.6.1 --engine-strict=false --no-audit --no-fund
fi
cat >fractalctl.config.js <<'JS'
import base from './playwright.config.js';

export default {
	...base,
	workers: 1,
	retries: 0,
	reporter: [['list'], ['json', { outputFile: 'e2e-results.json' }]],
	webServer: [],
	projects: base.projects.map((p) => ({
		...p,
		use: { ...p.use, launchOptions: { executablePath: '/usr/bin/chromium' } }
	}))
};
JS
if [ ! -d build ]; then
	sh -c 'set -a; . ./.env.development; set +a; npm run build'
fi
