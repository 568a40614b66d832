// Drives the dashboard in Debian's chromium, as an operator would (keyboard
// and clicks, no page reloads), for t/48-dashboard.t. Prints one JSON line
// per check ({"ok": bool, "name": "..."}); screenshots go to SHOTS.
//   node drive.js BASE USER PASSWORD SHOTS
'use strict';

const puppeteer = require('puppeteer-core');
const http = require('http');

const [base, user, password, shots] = process.argv.slice(2);
const edge = new URL(base);
let failed = 0;
let foreign = [], violations = [], errors = [];

function check(ok, name, extra) {
  if (!ok) failed++;
  console.log(JSON.stringify({ ok: !!ok, name, extra: extra === undefined ? null : String(extra) }));
}

// a request to the edge with a Host of our choosing (a tenant's), or a cookie
function raw(path, headers) {
  return new Promise((resolve) => {
    const req = http.request({ host: edge.hostname, port: edge.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

async function text(page, sel) {
  return page.$eval(sel, (e) => e.textContent).catch(() => null);
}

// a click as a person makes it: on the element there when the click lands.
// The page re-renders a view when its data arrives, so an element found a
// moment before may have been replaced: find it again and retry.
async function click(page, sel, opts) {
  const end = Date.now() + 10000;
  for (;;) {
    try {
      await page.waitForSelector(sel, { timeout: 10000 });
      await page.click(sel, opts);
      return;
    } catch (e) {
      if (!/detached|not clickable|No node found/i.test(String(e)) || Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function until(fn, secs) {
  const end = Date.now() + secs * 1000;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage']
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    foreign = []; violations = []; errors = [];
    page.on('request', (r) => { if (!r.url().startsWith(edge.origin)) foreign.push(r.url()); });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      // answers of the API are the page's business (a 404 is "no certificate")
      else if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().includes('/api/')) errors.push(r.status() + ' ' + r.url());
    });
    page.on('pageerror', (e) => errors.push(String(e)));

    // --- sign-in ----------------------------------------------------------
    const resp = await page.goto(base + '/dashboard/', { waitUntil: 'networkidle0' });
    const csp = resp.headers()['content-security-policy'] || '';
    check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), 'the page has a CSP without unsafe-inline', csp);
    await page.waitForSelector('#user');
    await page.screenshot({ path: shots + '/signin.png' });
    await page.type('#user', user);
    await page.type('#password', 'not the password');
    await click(page, '#signin-submit');
    check(await until(async () => /wrong user name or password/.test(await text(page, '#signin-error') || ''), 10),
          'a wrong password is refused, and the page says so');
    check(await page.$('#tenant-rows') === null, '... and shows no tenants');

    // by keyboard: focus starts in the user field; Tab to the password, Enter
    await click(page, '#user', { clickCount: 3 });
    await page.keyboard.type(user);
    await page.keyboard.press('Tab');
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
    check(await page.waitForSelector('#tenant-rows', { timeout: 10000 }).then(() => true, () => false),
          'signed in by keyboard: the tenant list');
    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === 'ngx_tenant_session');
    check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly, SameSite=Strict');
    check(await page.evaluate(() => document.cookie.indexOf('ngx_tenant_session') < 0), '... out of the page\'s scripts\' reach');

    // --- create, credentials once -----------------------------------------
    await click(page, '#new-tenant');
    await page.waitForSelector('#create-dialog[open]');
    await page.type('#create-name', 'webshop');
    await page.select('#create-blueprint', 'static');
    await page.select('#create-theme', 'fashion');
    await click(page, '#create-submit');
    check(await page.waitForSelector('#cred-password', { timeout: 60000 }).then(() => true, () => false),
          'the create job runs in a dialog and ends with the admin credentials');
    const pw = await text(page, '#cred-password');
    check(/^[A-Za-z0-9]{20}$/.test(pw || ''), 'the admin password is shown', (pw || '').length + ' characters');
    await page.screenshot({ path: shots + '/create-credentials.png' });
    await click(page, '#job-close');

    // live: the row turns active without a reload
    check(await until(async () => (await text(page, 'tr[data-tenant="webshop"] .tenant-status')) === 'active', 60),
          'the new tenant goes active in the list without a reload');
    const navs = await page.evaluate(() => performance.getEntriesByType('navigation').length);
    check(navs === 1, 'one page load in all', navs);
    await page.screenshot({ path: shots + '/tenants.png' });
    const site = await raw('/', { Host: 'webshop.localhost' });
    check(site.status === 200, 'its shop answers through the edge', site.status);

    // search
    await page.type('#search', 'web');
    check(await until(async () => (await page.$$('tr[data-tenant]')).length === 1, 10), 'search by name prefix: one row');

    // --- the tenant's page: suspend, resume, pictures ------------------------
    await click(page, 'tr[data-tenant="webshop"] a');
    await page.waitForSelector('#act-suspend', { timeout: 10000 });
    await click(page, '#act-suspend');
    check(await until(async () => (await text(page, '#detail-status')) === 'suspended', 30), 'suspend: the page shows suspended');
    check((await raw('/', { Host: 'webshop.localhost' })).status === 503, '... and the edge answers 503');
    await page.waitForSelector('#act-resume', { timeout: 10000 });
    await click(page, '#act-resume');
    check(await until(async () => (await text(page, '#detail-status')) === 'active', 60), 'resume: active again');
    // seed-admin from the page: the new login works on the tenant's admin
    await click(page, '#act-seed-admin');
    await page.waitForSelector('#seed-dialog[open]');
    await page.type('#seed-dialog input[name="email"]', 'owner@webshop.test');
    await page.type('#seed-dialog input[name="password"]', 'Owner-pass-1234');
    await click(page, '#seed-dialog button[type="submit"]');
    check(await until(async () => {
      const rows = await page.$$eval('#tenant-jobs tr', (trs) => trs.map((tr) => tr.textContent));
      return rows.some((r) => /seed_admin\s*done/.test(r));
    }, 30), 'seed-admin from the page: its job done');
    const basic = 'Basic ' + Buffer.from('owner@webshop.test:Owner-pass-1234').toString('base64');
    const adm = await raw('/', { Host: 'admin.webshop.localhost', Authorization: basic });
    check(adm.status === 200, '... and the new login opens the tenant\'s admin', adm.status);
    // traffic for the charts, while the page samples every 5 s
    let stop = false;
    (async () => { while (!stop) { await raw('/', { Host: 'webshop.localhost' }); await new Promise((r) => setTimeout(r, 20)); } })();
    check(await until(async () => /req\/s/.test(await text(page, '#chart-rate .value') || ''), 30),
          'the request-rate chart draws from the edge\'s counters');
    check(await until(async () => {
      const v = parseFloat(await text(page, '#chart-rate .value') || '0');
      return v > 1;
    }, 30), 'and shows the traffic sent', await text(page, '#chart-rate .value'));
    // two intervals: a line over time, not one level
    check(await until(async () => /last (1[0-9]|[2-9][0-9]) s/.test(await text(page, '#chart-rate') || ''), 30),
          'the chart spans more than one sample');
    stop = true;
    check(await until(async () => (await page.$$('#tenant-jobs tr')).length >= 4, 10), 'recent jobs: create, suspend, resume, seed-admin');
    check(await until(async () => / \| /.test(await text(page, '#tenant-logs') || ''), 20), 'the logs show the services\' lines');
    await page.type('input[name="host"]', 'shop.example.com');
    await page.keyboard.press('Enter');
    check(await until(async () => /certificate/.test(await text(page, 'li[data-domain="shop.example.com"]') || '')
                               && !/…/.test(await text(page, 'li[data-domain="shop.example.com"]') || ''), 15),
          'a custom domain added from the page, with its certificate state',
          await text(page, 'li[data-domain="shop.example.com"]'));
    check((await raw('/', { Host: 'shop.example.com' })).status === 200, '... and the edge routes it');
    await page.screenshot({ path: shots + '/tenant.png', fullPage: true });

    // a change without the CSRF token, from the page's own origin
    const nocsrf = await page.evaluate(async () =>
      (await fetch('/api/tenants/webshop/suspend', { method: 'POST', credentials: 'same-origin' })).status);
    check(nocsrf === 403, 'a change with the cookie and no CSRF token is refused', nocsrf);

    // --- the platform --------------------------------------------------------
    await click(page, '#nav-platform');
    check(await until(async () => /Registry/.test(await text(page, '#health-overall') || ''), 10), 'the platform page: health');
    check(await until(async () => /cache entries/.test(await text(page, '#edge-stats') || ''), 15), '... and this edge\'s cache');
    check(await until(async () => (await page.$$('#provisioners tr')).length === 1, 10), '... the provisioner');
    check(await until(async () => (await page.$$('#edges tr')).length >= 1, 10), '... the edges listening');
    await page.screenshot({ path: shots + '/platform.png', fullPage: true });

    // --- on a phone ---------------------------------------------------------
    // isMobile reloads the page too
    await page.setViewport({ width: 375, height: 740, isMobile: true });
    await page.waitForSelector('header:not([hidden]) #nav-tenants', { timeout: 10000 });
    await click(page, '#nav-tenants');
    await page.waitForSelector('tr[data-tenant="webshop"]', { timeout: 10000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, 'readable on a phone: nothing wider than the screen', overflow + ' px');
    await page.screenshot({ path: shots + '/tenants-phone.png' });
    // leaving isMobile reloads the page: wait for its list again
    await page.setViewport({ width: 1200, height: 900 });
    await page.waitForSelector('tr[data-tenant="webshop"] a', { timeout: 10000 });

    // --- delete, typed ---------------------------------------------------------
    await click(page, 'tr[data-tenant="webshop"] a');
    await page.waitForSelector('#act-delete', { timeout: 10000 });
    await click(page, '#act-delete');
    await page.waitForSelector('#confirm-dialog[open]');
    check(await page.$eval('#confirm-ok', (b) => b.disabled), 'delete waits for the name to be typed');
    await page.type('#confirm-name', 'webshox');
    check(await page.$eval('#confirm-ok', (b) => b.disabled), '... a wrong name does not do');
    await click(page, '#confirm-name', { clickCount: 3 });
    await page.type('#confirm-name', 'webshop');
    check(!(await page.$eval('#confirm-ok', (b) => b.disabled)), '... the right one does');
    await page.screenshot({ path: shots + '/delete-confirm.png' });
    await click(page, '#confirm-ok');
    check(await until(async () => /no tenant|not found|no_such/i.test(await text(page, '#tenant-details') || '')
                               || (await text(page, '#detail-status')) === 'deleting', 60),
          'deleted: the page shows it going');

    // --- sign-out ---------------------------------------------------------------
    await click(page, '#signout');
    check(await page.waitForSelector('#user', { timeout: 10000 }).then(() => true, () => false), 'signed out: the sign-in page');
    const after = await raw('/api/tenants', { Host: 'localhost', Cookie: 'ngx_tenant_session=' + (session ? session.value : '') });
    check(after.status === 401, 'the old session cookie is refused after sign-out', after.status);

    check(foreign.length === 0, 'no request left the edge', foreign.join(' '));
    check(violations.length === 0, 'no CSP violation', violations.join(' | '));
    check(errors.length === 0, 'no script error', errors.join(' | '));
  } catch (e) {
    check(false, 'the drive ran to its end',
          (e && e.stack) + '\npage errors: ' + errors.join(' | ') + '\nCSP: ' + violations.join(' | '));
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
