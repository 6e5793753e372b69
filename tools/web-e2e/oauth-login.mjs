// oauth-login.mjs — run by oauth.sh: fractal-web's "Log in with institutional account" in Chromium, through the
// test OpenID provider's login form, against fractalctl. Exits non-zero on the first failed expectation.
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';

const require = createRequire(`${process.env.FWEB}/package.json`);
const { chromium } = require('@playwright/test');
const WEB = 'http://localhost:5183';

function check(ok, what) {
	if (!ok) {
		console.error(`oauth-login: FAILED: ${what}`);
		process.exit(1);
	}
	console.log(`oauth-login: ok: ${what}`);
}

async function login(browser, account) {
	const context = await browser.newContext(); // a fresh cookie jar: a fresh provider session
	const page = await context.newPage();
	await page.goto(`${WEB}/auth/login`);
	await page.getByText('Log in with institutional account').click();
	await page.waitForURL(/127\.0\.0\.1:5556\/interaction/);
	await page.fill('input[name=login]', account);
	await page.fill('input[name=password]', 'any');
	await page.getByRole('button', { name: 'Sign-in' }).click();
	await page.getByRole('button', { name: 'Continue' }).click();
	await page.waitForURL((u) => u.host === 'localhost:5183' && !u.pathname.startsWith('/auth/login/oauth2'),
		{ timeout: 15000 }).catch(() => {});
	return { context, page };
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
{
	const { context, page } = await login(browser, 'admin@fractal.xy');
	check(new URL(page.url()).pathname.startsWith('/v2/projects'), `the admin reaches /v2/projects (at ${page.url()})`);
	await page.goto(`${WEB}/profile`);
	await page.getByText('admin@fractal.xy').first().waitFor({ timeout: 10000 });
	check(true, 'the profile page shows the admin, logged in through the provider');
	await context.close();
}
{
	const { context, page } = await login(browser, 'newbie@example.org');
	await page.getByText('Thank you for registering for the Fractal service.').first()
		.waitFor({ timeout: 10000 });
	check(true, 'an unknown user sees upstream\'s registration text');
	await context.close();
}
await browser.close();
const spooled = readdirSync(process.env.SPOOL).filter((f) => f.endsWith('.json'));
check(spooled.length === 1, `the admins got one mail (${spooled.length})`);
