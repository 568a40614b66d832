/*
 * The operator's dashboard: a page of the admin API (/api/), signed in with
 * an operator's session (POST /api/session). Every value a tenant or the
 * registry supplies reaches the page as text nodes, never as HTML, and the
 * page loads nothing but this file and app.css (the CSP says so).
 */
'use strict';

const API = '/api/';
let session = null;          // {user, csrf}
let timers = [];             // cleared when the page changes
const samples = [];          // GET traffic, every 5 s while a page needs it

/* --- small helpers -------------------------------------------------------- */

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function badge(status) {
  return el('span', { class: 'status ' + String(status).replace(/[^a-z]/g, '') }, status);
}

function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  setTimeout(() => { if (t.textContent === text) t.textContent = ''; }, 4000);
}

function every(ms, fn) {
  fn();
  timers.push(setInterval(fn, ms));
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf;
  const r = await fetch(API + path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  let json = null;
  try { json = await r.json(); } catch (e) { json = null; }
  if (r.status === 401 && path !== 'session') {
    session = null;
    go('#/signin');
  }
  return { status: r.status, json };
}

function errorText(r) {
  const e = r.json && r.json.error;
  if (!e) return 'HTTP ' + r.status;
  return e.message + (e.field ? ' (' + e.field + ')' : '');
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function page(title, ...kids) {
  timers.forEach(clearInterval);
  timers = [];
  const main = document.getElementById('main');
  main.replaceChildren(el('h1', {}, title), ...kids);
  document.title = title + ' · ngx_tenant';
  for (const a of document.querySelectorAll('header nav a')) {
    if (location.hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  return main;
}

/* --- sign-in ---------------------------------------------------------------- */

function signinPage() {
  document.getElementById('top').hidden = true;
  const msg = el('p', { class: 'error', role: 'alert', id: 'signin-error' });
  const form = el('form', { onsubmit: async (ev) => {
      ev.preventDefault();
      msg.textContent = '';
      const f = ev.target;
      const r = await api('POST', 'session', { user: f.user.value, password: f.password.value });
      f.password.value = '';
      if (r.status === 200) {
        session = r.json;
        go('#/tenants');
      } else {
        msg.textContent = errorText(r);
      }
    } },
    el('label', {}, 'User', el('input', { name: 'user', id: 'user', autocomplete: 'username', required: true })),
    el('label', {}, 'Password', el('input', { name: 'password', id: 'password', type: 'password',
                                           autocomplete: 'current-password', required: true })),
    el('button', { type: 'submit', id: 'signin-submit' }, 'Sign in'),
    msg);
  const main = page('Sign in', el('div', { class: 'card signin' }, form));
  main.querySelector('#user').focus();
}

/* --- tenants ------------------------------------------------------------------ */

function tenantsPage() {
  const state = { prefix: '', status: '', after: '', history: [] };
  const tbody = el('tbody', { id: 'tenant-rows' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: true,
                              onclick: () => { state.history.push(state.after); state.after = more.dataset.next; load(); } },
                  'Next page');
  const first = el('button', { type: 'button', class: 'secondary', onclick: () => { state.after = ''; state.history = []; load(); } },
                   'First page');
  const search = el('input', { id: 'search', type: 'search', placeholder: 'name starts with…',
                               'aria-label': 'Search tenants by name',
                               oninput: (ev) => { state.prefix = ev.target.value.toLowerCase(); state.after = ''; load(); } });
  const filter = el('select', { id: 'status-filter', 'aria-label': 'Status',
                                onchange: (ev) => { state.status = ev.target.value; state.after = ''; load(); } },
    ['', 'provisioning', 'active', 'suspended', 'failed', 'deleting'].map(s =>
      el('option', { value: s }, s || 'any status')));
  const note = el('p', { class: 'error', role: 'alert' });

  async function load() {
    const q = new URLSearchParams({ limit: '25' });
    if (state.prefix) q.set('prefix', state.prefix);
    if (state.status) q.set('status', state.status);
    if (state.after) q.set('after', state.after);
    const r = await api('GET', 'tenants?' + q);
    if (r.status !== 200) { note.textContent = errorText(r); return; }
    note.textContent = '';
    tbody.replaceChildren(...r.json.tenants.map(t => el('tr', { 'data-tenant': t.name },
      el('td', {}, el('a', { href: '#/tenant/' + encodeURIComponent(t.name) }, t.name)),
      el('td', { class: 'tenant-status' }, badge(t.status)),
      el('td', {}, t.blueprint),
      el('td', { class: 'hide-narrow' }, t.theme),
      el('td', { class: 'hide-narrow' }, t.mode),
      el('td', { class: 'hide-narrow' }, new Date(t.created_at).toLocaleString()))));
    if (!r.json.tenants.length) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No tenants here.')));
    more.disabled = !r.json.next;
    more.dataset.next = r.json.next || '';
  }

  page('Tenants',
    el('div', { class: 'row card' }, search, filter,
       el('button', { type: 'button', id: 'new-tenant', onclick: createDialog }, 'New tenant')),
    note,
    el('table', {}, el('thead', {}, el('tr', {}, ['Name', 'Status', 'Blueprint'].map(h => el('th', { scope: 'col' }, h)),
                                        ['Theme', 'Mode', 'Created'].map(h => el('th', { scope: 'col', class: 'hide-narrow' }, h)))),
       tbody),
    el('div', { class: 'row' }, first, more));
  // statuses change as jobs run: the page follows without a reload
  every(3000, load);
}

async function createDialog() {
  const bp = await api('GET', 'blueprints');
  const blueprints = (bp.json && bp.json.blueprints) || [];
  const msg = el('p', { class: 'error', role: 'alert', id: 'create-error' });
  const theme = el('select', { name: 'theme', id: 'create-theme' });
  const mode = el('select', { name: 'mode', id: 'create-mode' });
  const fill = (name) => {
    const b = blueprints.find(x => x.name === name) || { themes: [], modes: [] };
    theme.replaceChildren(...(b.themes || []).map(t => el('option', {}, t)));
    mode.replaceChildren(...(b.modes || []).map(m => el('option', {}, m)));
  };
  const blueprint = el('select', { name: 'blueprint', id: 'create-blueprint', onchange: (ev) => fill(ev.target.value) },
                       blueprints.map(b => el('option', {}, b.name)));
  fill(blueprints.length ? blueprints[0].name : '');
  const dlg = el('dialog', { id: 'create-dialog', 'aria-labelledby': 'create-title' });
  const form = el('form', { onsubmit: async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const r = await api('POST', 'tenants', { name: f.name.value, blueprint: f.blueprint.value,
                                               theme: f.theme.value, mode: f.mode.value });
      if (r.status !== 202) { msg.textContent = errorText(r); return; }
      dlg.close();
      dlg.remove();
      followJob(r.json.job.id, f.name.value);
    } },
    el('h2', { id: 'create-title' }, 'New tenant'),
    el('label', {}, 'Name (3-30 of a-z, 0-9, -)', el('input', { name: 'name', id: 'create-name', required: true,
                                                             pattern: '[a-z0-9\\-]{3,30}' })),
    el('label', {}, 'Blueprint', blueprint),
    el('label', {}, 'Theme', theme),
    el('label', {}, 'Mode', mode),
    msg,
    el('div', { class: 'row' },
       el('button', { type: 'submit', id: 'create-submit' }, 'Create'),
       el('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); dlg.remove(); } }, 'Cancel')));
  dlg.append(form);
  document.body.append(dlg);
  dlg.showModal();
  form.name.focus();
}

/* a job's progress in a dialog; a create's admin credentials, once */
async function followJob(id, tenant) {
  const status = el('p', { id: 'job-status' }, 'queued');
  const body = el('div', {});
  const close = el('button', { type: 'button', id: 'job-close', onclick: () => { dlg.close(); dlg.remove(); } }, 'Close');
  const dlg = el('dialog', { id: 'job-dialog', 'aria-labelledby': 'job-title' },
                 el('h2', { id: 'job-title' }, 'Creating ' + tenant), status, body, close);
  document.body.append(dlg);
  dlg.showModal();
  for (;;) {
    const r = await api('GET', 'jobs/' + id + '?wait=10');
    if (r.status !== 200) { status.textContent = errorText(r); return; }
    const job = r.json.job;
    status.replaceChildren('Job ' + job.id + ': ', badge(job.status));
    if (job.status === 'failed') {
      body.replaceChildren(el('p', { class: 'error' }, job.error || 'failed'));
      return;
    }
    if (job.status === 'done') {
      const admin = job.result && job.result.admin;
      if (admin && admin.password) {
        body.replaceChildren(
          el('p', {}, 'The tenant admin\'s credentials. They are shown this once: the registry has already forgotten the password.'),
          el('p', {}, 'Admin: ', el('span', { id: 'cred-url' }, 'admin.' + tenant)),
          el('p', {}, 'Email: ', el('span', { class: 'secret', id: 'cred-email' }, admin.email || '')),
          el('p', {}, 'Password: ', el('span', { class: 'secret', id: 'cred-password' }, admin.password)));
      } else {
        body.replaceChildren(el('p', {}, 'Done.'));
      }
      close.focus();
      return;
    }
  }
}

/* --- one tenant --------------------------------------------------------------- */

function tenantPage(name) {
  const details = el('div', { class: 'card', id: 'tenant-details' });
  const actions = el('div', { class: 'row card' });
  const jobs = el('tbody', { id: 'tenant-jobs' });
  const logs = el('pre', { id: 'tenant-logs', tabindex: 0 }, '…');
  const charts = el('div', { class: 'charts', id: 'tenant-charts' });
  const follow = el('input', { type: 'checkbox', id: 'follow-logs' });
  const domainMsg = el('p', { class: 'error', role: 'alert' });

  const act = (label, path, cls, confirmIt) => el('button', { type: 'button', class: cls, id: 'act-' + (path.split('/').pop() || 'delete'),
    onclick: async () => {
      if (confirmIt && !(await typedConfirm(name))) return;
      const r = await api(path === '' ? 'DELETE' : 'POST', 'tenants/' + encodeURIComponent(name) + path);
      toast(r.status === 202 ? label + ': job ' + r.json.job.id + ' queued' : label + ': ' + errorText(r));
      load();
    } }, label);

  async function load() {
    const r = await api('GET', 'tenants/' + encodeURIComponent(name));
    if (r.status !== 200) { details.replaceChildren(el('p', { class: 'error' }, errorText(r))); return; }
    const t = r.json.tenant || r.json;
    details.replaceChildren(
      el('p', {}, 'Status: ', el('span', { id: 'detail-status' }, badge(t.status)), '  Blueprint: ', t.blueprint,
         '  Theme: ', t.theme, '  Mode: ', t.mode),
      el('h2', {}, 'Endpoints'),
      (t.endpoints || []).length
        ? el('ul', {}, t.endpoints.map(e => el('li', {}, e.role + ': ' + e.address)))
        : el('p', { class: 'muted' }, 'none yet'),
      el('h2', {}, 'Domains'),
      el('ul', { id: 'tenant-domains' },
         (t.domains || []).map(d => el('li', { 'data-domain': d.host }, d.host + ' (' + d.role + ') ',
                                       el('span', { class: 'cert muted' }, 'certificate: …'))),
         (t.domain_claims || []).map(c => el('li', {}, c.host + ' ', badge(c.status),
                                             c.token ? ' TXT _ngx-tenant.' + c.host + ' = ' + c.token : ''))),
      el('form', { class: 'row', onsubmit: async (ev) => {
          ev.preventDefault();
          const r2 = await api('POST', 'tenants/' + encodeURIComponent(name) + '/domains', { host: ev.target.host.value });
          domainMsg.textContent = (r2.status === 201 || r2.status === 202) ? '' : errorText(r2);
          load();
        } },
        el('label', {}, 'Add a domain', el('input', { name: 'host', placeholder: 'shop.example.com', required: true })),
        el('button', { type: 'submit' }, 'Add')),
      domainMsg);
    for (const li of details.querySelectorAll('li[data-domain]')) {
      const host = li.dataset.domain;
      const c = await api('GET', 'tenants/' + encodeURIComponent(name) + '/domains/' + encodeURIComponent(host) + '/certificate');
      const cert = c.json && (c.json.certificate || c.json);
      li.querySelector('.cert').textContent = c.status === 200 && cert && cert.not_after
        ? 'certificate until ' + new Date(cert.not_after).toLocaleDateString() + ' (' + (cert.source || '') + ')'
        : 'no certificate';
    }
    actions.replaceChildren(
      t.status === 'suspended' ? act('Resume', '/resume', '') : act('Suspend', '/suspend', 'secondary'),
      el('button', { type: 'button', class: 'secondary', id: 'act-seed-admin', onclick: () => seedDialog(name) }, 'Seed admin'),
      act('Delete', '', 'danger', true));
    const j = await api('GET', 'jobs?tenant=' + encodeURIComponent(name) + '&limit=10');
    if (j.status === 200) {
      jobs.replaceChildren(...j.json.jobs.map(x => el('tr', {},
        el('td', {}, String(x.id)), el('td', {}, x.kind), el('td', {}, badge(x.status)),
        el('td', { class: 'hide-narrow' }, new Date(x.created_at).toLocaleString()),
        el('td', { class: 'hide-narrow' }, x.error || ''))));
    }
  }

  async function loadLogs() {
    const r = await api('GET', 'tenants/' + encodeURIComponent(name) + '/logs?lines=100&wait=10');
    const job = r.json && r.json.job;
    const lines = job && job.result && job.result.lines;
    logs.textContent = lines
      ? lines.map(l => (l.service || '') + ' ' + (l.at || '-') + ' | ' + (l.line || '')).join('\n') || '(no output yet)'
      : (r.status === 200 || r.status === 202 ? 'waiting for the provisioner…' : errorText(r));
  }

  page(name,
    el('p', {}, el('a', { href: '#/tenants' }, '← all tenants')),
    actions, details,
    el('h2', {}, 'Traffic on this edge'), charts,
    el('h2', {}, 'Recent jobs'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Job', 'Kind', 'Status'].map(h => el('th', { scope: 'col' }, h)),
                                        ['Created', 'Error'].map(h => el('th', { scope: 'col', class: 'hide-narrow' }, h)))), jobs),
    el('h2', {}, 'Logs'),
    el('div', { class: 'row' }, el('button', { type: 'button', class: 'secondary', onclick: loadLogs }, 'Tail'),
       el('label', {}, el('span', {}, 'Follow'), follow)),
    logs);
  every(3000, load);
  loadLogs();
  timers.push(setInterval(() => { if (follow.checked) loadLogs(); }, 5000));
  every(5000, async () => { await sample(); drawTenant(charts, name); });
}

/* a typed confirmation: the tenant's name, as GitHub asks for a repository */
function typedConfirm(name) {
  return new Promise((resolve) => {
    const input = el('input', { id: 'confirm-name', autocomplete: 'off', 'aria-label': 'Type the tenant name' });
    const ok = el('button', { type: 'submit', class: 'danger', id: 'confirm-ok', disabled: true }, 'Delete ' + name);
    input.addEventListener('input', () => { ok.disabled = input.value !== name; });
    const dlg = el('dialog', { id: 'confirm-dialog', 'aria-labelledby': 'confirm-title' },
      el('form', { onsubmit: (ev) => { ev.preventDefault(); dlg.close(); dlg.remove(); resolve(input.value === name); } },
         el('h2', { id: 'confirm-title' }, 'Delete ' + name + '?'),
         el('p', {}, 'Its stack, files and database go. Type ', el('strong', {}, name), ' to confirm.'),
         input,
         el('div', { class: 'row' }, ok,
            el('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); dlg.remove(); resolve(false); } }, 'Cancel'))));
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

function seedDialog(name) {
  const msg = el('p', { class: 'error', role: 'alert' });
  const dlg = el('dialog', { id: 'seed-dialog', 'aria-labelledby': 'seed-title' });
  dlg.append(el('form', { onsubmit: async (ev) => {
      ev.preventDefault();
      const r = await api('POST', 'tenants/' + encodeURIComponent(name) + '/seed-admin',
                          { email: ev.target.email.value, password: ev.target.password.value });
      if (r.status !== 202) { msg.textContent = errorText(r); return; }
      dlg.close(); dlg.remove();
      toast('seed-admin: job ' + r.json.job.id + ' queued');
    } },
    el('h2', { id: 'seed-title' }, 'Reset the admin of ' + name),
    el('label', {}, 'Email', el('input', { name: 'email', type: 'email', required: true })),
    el('label', {}, 'Password', el('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' })),
    msg,
    el('div', { class: 'row' }, el('button', { type: 'submit' }, 'Reset'),
       el('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); dlg.remove(); } }, 'Cancel'))));
  document.body.append(dlg);
  dlg.showModal();
}

/* --- traffic, sampled ----------------------------------------------------------- */

async function sample() {
  const r = await api('GET', 'traffic');
  if (r.status !== 200) return;
  samples.push({ t: Date.now() / 1000, doc: r.json });
  while (samples.length > 61) samples.shift();
}

function find(doc, name) {
  return (doc.tenants || []).find(x => x.tenant === name);
}

/* per interval between samples: rate, share of 5xx, mean upstream time */
function series(name) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = find(samples[i - 1].doc, name), b = find(samples[i].doc, name);
    const dt = samples[i].t - samples[i - 1].t;
    if (!a || !b || dt <= 0) { out.push(null); continue; }
    const sum = (x) => x.requests.reduce((p, c) => p + c, 0);
    const n = Math.max(0, sum(b) - sum(a));
    const err = Math.max(0, b.requests[4] - a.requests[4]);
    const un = b.upstream_count - a.upstream_count;
    out.push({ rate: n / dt, errors: n ? 100 * err / n : 0,
               latency: un > 0 ? (b.upstream_ms - a.upstream_ms) / un : 0 });
  }
  return out;
}

function chart(title, unit, values, id) {
  const w = 300, h = 120, max = Math.max(1, ...values.filter(v => v !== null));
  const y = (v) => (h - 4 - v * (h - 8) / max).toFixed(1);
  // one value is a level line across, until the next sample
  const pts = values.length === 1 && values[0] !== null
    ? '0,' + y(values[0]) + ' ' + w + ',' + y(values[0])
    : values.map((v, i) => v === null ? null : (i * w / (values.length - 1)).toFixed(1) + ',' + y(v))
        .filter(Boolean).join(' ');
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.setAttribute('role', 'img');
  const last = values.length ? values[values.length - 1] : null;
  svg.setAttribute('aria-label', title + ': ' + (last === null ? 'no data yet' : last.toFixed(1) + ' ' + unit));
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts);
  svg.append(line);
  return el('div', { class: 'chart card', id },
            el('div', {}, title), el('div', { class: 'value' }, last === null ? '–' : last.toFixed(1) + ' ' + unit),
            svg, el('div', { class: 'muted' }, 'max ' + max.toFixed(1) + ' · last ' + values.length * 5 + ' s'));
}

function drawTenant(box, name) {
  const s = series(name);
  if (!s.length) { box.replaceChildren(el('p', { class: 'muted' }, 'sampling… (every 5 s)')); return; }
  box.replaceChildren(
    chart('Requests', 'req/s', s.map(x => x && x.rate), 'chart-rate'),
    chart('Errors (5xx)', '%', s.map(x => x && x.errors), 'chart-errors'),
    chart('Upstream time', 'ms', s.map(x => x && x.latency), 'chart-latency'));
}

/* --- the platform ---------------------------------------------------------------- */

function platformPage() {
  const checks = el('tbody', { id: 'health-checks' });
  const overall = el('p', { id: 'health-overall' });
  const edge = el('dl', { id: 'edge-stats', class: 'card' });
  const provs = el('tbody', { id: 'provisioners' });
  const edges = el('tbody', { id: 'edges' });
  const counts = el('p', { id: 'platform-counts' });
  const busy = el('tbody', { id: 'busy-tenants' });
  const failed = el('tbody', { id: 'failed-jobs' });

  async function load() {
    const h = await api('GET', 'health?deep');
    const doc = h.json || {};
    overall.replaceChildren('Registry: ', badge((doc.registry && doc.registry.status) || 'unavailable'),
                            '  Overall: ', badge(doc.status || String(h.status)));
    checks.replaceChildren(...(doc.checks || []).map(c => el('tr', {},
      el('td', {}, c.provisioner), el('td', {}, c.name), el('td', {}, badge(c.status)),
      el('td', {}, c.value === null || c.value === undefined ? '' : String(c.value)),
      el('td', { class: 'hide-narrow' }, c.detail || ''))));
    const p = await api('GET', 'platform');
    if (p.status === 200) {
      const ago = (t) => t ? Math.round((Date.now() - new Date(t)) / 1000) + ' s ago' : 'never';
      provs.replaceChildren(...p.json.provisioners.map(x => el('tr', {},
        el('td', {}, x.id), el('td', {}, x.driver), el('td', {}, ago(x.seen_at)), el('td', {}, ago(x.checked_at)))));
      edges.replaceChildren(...p.json.edges.map(x => el('tr', {},
        el('td', {}, x.address), el('td', {}, String(x.pid)), el('td', {}, new Date(x.since).toLocaleString()))));
      const line = (o) => Object.entries(o).map(([k, v]) => k + ' ' + v).join(', ') || 'none';
      counts.textContent = 'Tenants: ' + line(p.json.tenants) + ' · Jobs: ' + line(p.json.jobs);
    }
    const f = await api('GET', 'jobs?status=failed&limit=20');
    if (f.status === 200) {
      failed.replaceChildren(...f.json.jobs.map(x => el('tr', {},
        el('td', {}, String(x.id)), el('td', {}, x.tenant || ''), el('td', {}, x.kind),
        el('td', {}, x.error || ''))));
    }
    await sample();
    const last = samples.length ? samples[samples.length - 1].doc : null;
    if (last && last.edge) {
      const e = last.edge;
      edge.replaceChildren(...[['cache entries', e.entries], ['hits', e.hits], ['misses', e.misses],
        ['stale answers', e.stale], ['evictions', e.evictions], ['registry errors', e.registry_errors],
        ['notifications', e.notifications], ['listener', e.listener_up ? 'up' : 'down'],
        ['propagation (last probe)', e.propagation_last_ms.toFixed(2) + ' ms']]
        .map(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]).flat());
    }
    if (samples.length > 1 && last) {
      const prev = samples[samples.length - 2].doc, dt = samples[samples.length - 1].t - samples[samples.length - 2].t;
      const rates = (last.tenants || []).map(t => {
        const p = find(prev, t.tenant);
        const sum = (x) => x.requests.reduce((a, b) => a + b, 0);
        return { tenant: t.tenant, rate: p ? (sum(t) - sum(p)) / dt : 0, active: t.active };
      }).sort((a, b) => b.rate - a.rate).slice(0, 10);
      busy.replaceChildren(...rates.map(x => el('tr', {},
        el('td', {}, el('a', { href: '#/tenant/' + encodeURIComponent(x.tenant) }, x.tenant)),
        el('td', {}, x.rate.toFixed(1)), el('td', {}, String(x.active)))));
    }
  }

  page('Platform', overall, counts,
    el('h2', {}, 'Provisioners'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Provisioner', 'Driver', 'Seen', 'Checked'].map(x => el('th', { scope: 'col' }, x)))), provs),
    el('h2', {}, 'Edges listening to the registry'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Address', 'Registry backend', 'Since'].map(x => el('th', { scope: 'col' }, x)))), edges),
    el('h2', {}, 'Health checks'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Provisioner', 'Check', 'Status', 'Value'].map(x => el('th', { scope: 'col' }, x)),
                                        el('th', { scope: 'col', class: 'hide-narrow' }, 'Detail'))), checks),
    el('h2', {}, 'This edge'), edge,
    el('h2', {}, 'Busiest tenants on this edge'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Tenant', 'req/s', 'in flight'].map(x => el('th', { scope: 'col' }, x)))), busy),
    el('h2', {}, 'Failed jobs'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Job', 'Tenant', 'Kind', 'Error'].map(x => el('th', { scope: 'col' }, x)))), failed));
  every(5000, load);
}

/* --- routing ------------------------------------------------------------------------ */

async function route() {
  const hash = location.hash || '#/tenants';
  if (!session) {
    const r = await api('GET', 'session');
    if (r.status === 200 && r.json.user) session = r.json;
  }
  if (!session || hash === '#/signin') {
    if (session && hash === '#/signin') { go('#/tenants'); return; }
    signinPage();
    return;
  }
  document.getElementById('top').hidden = false;
  document.getElementById('whoami').textContent = session.user;
  const m = hash.match(/^#\/tenant\/([a-z0-9-]+)$/);
  if (m) tenantPage(m[1]);
  else if (hash === '#/platform') platformPage();
  else tenantsPage();
  document.getElementById('main').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('signout').addEventListener('click', async () => {
    await api('DELETE', 'session');
    session = null;
    go('#/signin');
  });
  window.addEventListener('hashchange', route);
  route();
});
