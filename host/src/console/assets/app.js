// The connector-host console: a one-page app over /console/api/<path>, which runs the
// API's /elements/api-v2/<path> with the session's Authorization value. The page never
// sees that value: it holds only the CSRF token, in memory. Everything data-driven is
// rendered with textContent (never innerHTML).

'use strict';

// Errors a test reads: uncaught errors, rejections and API calls that failed unexpectedly.
window.__consoleErrors = [];
function recordError(what) {
  window.__consoleErrors.push(String(what));
  console.error('console:', what);
}
window.addEventListener('error', (e) => recordError(`error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => recordError(`unhandled rejection: ${e.reason}`));

let csrf = null;
const main = document.getElementById('main');
let pageTimers = [];
let renderToken = 0;

// ---------- DOM helpers ----------

/** An element: `attrs` are attributes (`on*` functions are listeners), children text or nodes. */
function h(tag, attrs, ...children) {
  const isSvg = ['svg', 'g', 'rect', 'line', 'polyline', 'text', 'title', 'path', 'circle'].includes(tag);
  const el = isSvg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !isSvg) el.value = v;
    else if (k === 'checked' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}
function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
function announce(text) {
  const a = document.getElementById('announce');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 30);
}
/** A safe id fragment from a configuration key. */
function slug(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, '_'); }
function fmtDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}
function badge(text, cls) { return h('span', { class: `badge ${cls || text}` }, text); }

// ---------- API ----------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/**
 * Calls /console/api/<path>. Statuses in `expect` are the caller's to handle; any other
 * failure is recorded as an error of the page.
 */
async function api(method, path, body, expect = []) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf || '';
  let res;
  try {
    res = await fetch(`/console/api/${path}`, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    });
  } catch (e) {
    recordError(`${method} ${path}: ${e}`);
    throw e;
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 401) {
    signedOut('Your session has ended: sign in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) {
    if (!expect.includes(res.status)) recordError(`${method} ${path}: ${res.status} ${data && data.message}`);
    throw new ApiError(res.status, data);
  }
  return data;
}

// ---------- session ----------

async function loadSession() {
  const res = await fetch('/console/session', { credentials: 'same-origin', cache: 'no-store' });
  if (res.ok) {
    csrf = (await res.json()).csrf;
    return true;
  }
  csrf = null;
  return false;
}

function signedOut(message) {
  csrf = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  stopTimers();
  renderSignIn(message);
}

async function signOut() {
  try {
    await fetch('/console/session', {
      method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf || '' },
    });
  } catch (e) {
    recordError(`sign out: ${e}`);
  }
  if (location.hash !== '#/sign-in') history.replaceState(null, '', '#/sign-in');
  signedOut('You are signed out.');
}

function renderSignIn(message) {
  clear(main);
  document.title = 'Sign in · connector-host';
  const error = h('p', { id: 'authorization-error', class: 'field-error', 'data-testid': 'sign-in-error', role: 'alert' });
  const input = h('input', {
    id: 'authorization', name: 'authorization', type: 'password', autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'authorization-help authorization-error', 'data-testid': 'sign-in-authorization',
  });
  const form = h('form', { 'data-testid': 'sign-in-form', class: 'card', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'authorization' }, 'Authorization value'),
      h('p', { id: 'authorization-help', class: 'help' },
        'The organization\'s value of the Authorization header: ',
        h('code', {}, 'User …, Organization …'),
        ' (the host writes the first one to data/authorization). It stays on the host: this browser keeps only a session cookie.'),
      input, error),
    h('button', { type: 'submit', 'data-testid': 'sign-in-submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    input.removeAttribute('aria-invalid');
    let res;
    try {
      res = await fetch('/console/session', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ authorization: input.value }),
      });
    } catch (e) {
      recordError(`sign in: ${e}`);
      error.textContent = 'The host did not answer.';
      return;
    }
    const data = await res.json().catch(() => ({}));
    input.value = '';
    if (!res.ok) {
      error.textContent = data.message || `Sign-in refused (${res.status}).`;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    csrf = data.csrf;
    showChrome();
    if (!location.hash || location.hash === '#/sign-in') location.hash = '#/instances';
    else route();
  });
  append(main,
    h('h1', { tabindex: '-1', 'data-testid': 'sign-in-heading' }, 'Sign in to the console'),
    message ? h('p', { class: 'notice', 'data-testid': 'sign-in-message' }, message) : null,
    form);
  input.focus();
}

function showChrome() {
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = false;
}

// ---------- router ----------

function stopTimers() {
  for (const t of pageTimers) clearInterval(t);
  pageTimers = [];
  renderToken += 1;
}
/** Runs `fn` now and every `ms` while the page is shown (one call at a time). */
function every(ms, fn) {
  const token = renderToken;
  let busy = false;
  const tick = async () => {
    if (busy || token !== renderToken) return;
    busy = true;
    try { await fn(); } catch (e) { if (!(e instanceof ApiError)) recordError(e); } finally { busy = false; }
  };
  pageTimers.push(setInterval(tick, ms));
  return tick();
}
function current() { return renderToken; }

const routes = [
  [/^#\/instances\/new$/, () => pageNewInstance()],
  [/^#\/instances\/(\d+)\/events$/, (m) => pageEvents(m[1])],
  [/^#\/instances\/(\d+)$/, (m) => pageInstance(m[1])],
  [/^#\/instances$/, () => pageInstances()],
  [/^#\/events\/(\d+)\/([^/]+)$/, (m) => pageEvent(m[1], decodeURIComponent(m[2]))],
  [/^#\/connectors$/, () => pageConnectors()],
  [/^#\/dead-letters$/, () => pageDeadLetters()],
];

async function route() {
  if (location.hash === '#main') return;
  stopTimers();
  if (!csrf) { renderSignIn(); return; }
  const hash = location.hash || '#/instances';
  for (const a of document.querySelectorAll('#nav a')) {
    const section = a.getAttribute('href');
    if (hash === section || (section === '#/instances' && (hash.startsWith('#/instances') || hash.startsWith('#/events'))))
      a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(main);
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      try { await page(m); } catch (e) { if (!(e instanceof ApiError)) recordError(e); else if (e.status !== 401) showFailure(e); }
      return;
    }
  }
  location.hash = '#/instances';
}

function showFailure(e) {
  append(main, h('p', { class: 'notice bad', role: 'alert', 'data-testid': 'page-error' }, e.message));
}

/** The page's heading, focused so a screen reader and the keyboard start there. */
function heading(text, testid) {
  const el = h('h1', { tabindex: '-1', 'data-testid': testid || 'page-heading' }, text);
  document.title = `${text} · connector-host`;
  return el;
}
function focusHeading() {
  const el = main.querySelector('h1');
  if (el) el.focus({ preventScroll: true });
}

// ---------- instances ----------

function activityCells(i) {
  const a = i.activity || null;
  return [
    h('td', { 'data-testid': 'instance-last-event' }, a ? fmtDate(a.lastEventDate) : '—'),
    h('td', { 'data-testid': 'instance-backlog' }, a && a.backlog !== undefined ? String(a.backlog) : '—'),
    h('td', { 'data-testid': 'instance-dead-letters' }, a && a.deadLetters !== undefined ? String(a.deadLetters) : '—'),
  ];
}

/** Polling health per resource: each resource's last outcome (and failures in a row). */
function pollingCell(i) {
  const entries = Object.entries(i.polling || {});
  if (!entries.length) return h('td', { 'data-testid': `instance-polling-${i.id}` }, '—');
  return h('td', { 'data-testid': `instance-polling-${i.id}` }, h('ul', { class: 'plain' }, entries.map(([r, p]) =>
    h('li', {}, `${r}: `, badge(p.outcome === 'ok' ? 'ok' : 'error'), p.failures ? ` ${p.failures} failed in a row` : ''))));
}

async function pageInstances() {
  append(main,
    heading('Instances', 'instances-heading'),
    h('p', {}, h('a', { href: '#/instances/new', class: 'button', 'data-testid': 'new-instance' }, 'New instance')));
  const tbody = h('tbody', { 'data-testid': 'instances-rows' });
  const table = h('table', { 'data-testid': 'instances-table' },
    h('caption', {}, 'Every instance of the organization, refreshed every few seconds.'),
    h('thead', {}, h('tr', {},
      ['Name', 'Connector', 'Events', 'Polling', 'Last event', 'Backlog', 'Dead letters', ''].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  append(main, table);
  focusHeading();
  let last = '';
  await every(3000, async () => {
    const list = await api('GET', 'instances');
    const key = JSON.stringify(list);
    if (key === last) return;
    last = key;
    clear(tbody);
    if (!list.length) {
      append(tbody, h('tr', {}, h('td', { colspan: 8, 'data-testid': 'no-instances' }, 'No instance yet: create one.')));
    }
    for (const i of list) {
      append(tbody, h('tr', { 'data-testid': `instance-row-${i.id}` },
        h('td', {}, h('a', { href: `#/instances/${i.id}`, 'data-testid': `instance-link-${i.id}` }, i.name)),
        h('td', {}, i.element.key),
        h('td', {}, badge(i.eventsEnabled ? 'on' : 'off'), i.disabled ? ' (disabled)' : ''),
        pollingCell(i),
        activityCells(i),
        h('td', {}, h('a', { href: `#/instances/${i.id}/events`, 'data-testid': `instance-events-${i.id}` }, 'Events'))));
    }
  });
}

/** Host-side event keys every instance may set, shown before the connector's own. */
const EVENT_KEYS = [
  { key: 'event.notification.enabled', description: 'Send event notifications (true or false).', type: 'boolean' },
  { key: 'event.notification.callback.url', description: 'Where notifications are POSTed.', type: 'url' },
  { key: 'event.notification.signature.key', description: 'HMAC-SHA256 key that signs each notification.', secret: true },
  { key: 'event.vendor.type', description: 'webhooks or polling.', type: 'text' },
  { key: 'event.poller.refresh_interval', description: 'Polling: minutes between polls.', type: 'integer' },
];

function fieldFor(k, opts) {
  const id = `f-${slug(k.key)}`;
  const field = `configuration.${k.key}`;
  const helpId = `${id}-help`;
  const errId = `${id}-error`;
  const inputAttrs = {
    id, name: k.key, 'data-field': field, 'data-testid': `field-${k.key}`, 'aria-describedby': `${helpId} ${errId}`,
    autocomplete: 'off', spellcheck: 'false',
  };
  let input;
  if (k.type === 'boolean') {
    input = h('select', inputAttrs,
      h('option', { value: '' }, opts.edit ? '(unchanged)' : '(not set)'),
      h('option', { value: 'true', selected: opts.value === 'true' }, 'true'),
      h('option', { value: 'false', selected: opts.value === 'false' }, 'false'));
    if (opts.edit && opts.value !== undefined) input.value = String(opts.value);
  } else if (k.secret) {
    input = h('input', { ...inputAttrs, type: 'password', placeholder: opts.edit && opts.value !== undefined ? '******** (unchanged unless retyped)' : '' });
  } else {
    input = h('input', { ...inputAttrs, type: 'text', inputmode: k.type === 'integer' ? 'numeric' : undefined });
    if (opts.value !== undefined) input.value = String(opts.value);
  }
  input.dataset.original = k.secret ? '' : (input.value || '');
  const desc = (k.description || '').trim();
  const help = [desc && !/[.!?]$/.test(desc) ? `${desc}.` : desc, k.type ? `Type: ${k.type}.` : '',
    k.secret ? 'Secret: never shown again.' : '', k.required ? 'Required.' : ''].filter(Boolean).join(' ');
  return h('div', { class: 'field' },
    h('label', { for: id }, k.key, k.required ? h('span', { class: 'muted' }, ' (required)') : null),
    h('p', { id: helpId, class: 'help' }, help.trim()),
    input,
    h('p', { id: errId, class: 'field-error', 'data-testid': `error-${k.key}` }));
}

/** Shows a server error beside the input its `field` names, or at the top of the form. */
function showFormError(form, top, e) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  top.textContent = '';
  const field = e.body && e.body.field;
  const input = field ? form.querySelector(`[data-field="${CSS.escape(field)}"]`) : null;
  if (input) {
    const err = document.getElementById(`${input.id}-error`);
    err.textContent = e.message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    top.textContent = field ? `${field}: ${e.message}` : e.message;
    top.focus();
  }
}

async function pageNewInstance() {
  append(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, 'Instances'), ' / new'),
    heading('New instance', 'new-instance-heading'));
  focusHeading();
  const token = current();
  const { elements } = await api('GET', 'elements');
  if (token !== current()) return;
  const select = h('select', { id: 'f-element', 'data-field': 'element.key', 'data-testid': 'field-element.key', 'aria-describedby': 'f-element-error' },
    h('option', { value: '' }, 'Choose a connector'),
    elements.map((e) => h('option', { value: e.key }, `${e.name} (${e.key}, ${e.hub})`)));
  const name = h('input', { id: 'f-name', type: 'text', 'data-field': 'name', 'data-testid': 'field-name', 'aria-describedby': 'f-name-error' });
  const tags = h('input', { id: 'f-tags', type: 'text', 'data-field': 'tags', 'data-testid': 'field-tags', 'aria-describedby': 'f-tags-help f-tags-error' });
  const keys = h('fieldset', { 'data-testid': 'config-fields' }, h('legend', {}, 'Configuration'), h('p', { class: 'muted' }, 'Choose a connector first.'));
  const top = h('p', { class: 'form-error', tabindex: '-1', role: 'alert', 'data-testid': 'form-error' });
  const form = h('form', { class: 'card', 'data-testid': 'create-form', novalidate: true },
    top,
    h('div', { class: 'field' }, h('label', { for: 'f-element' }, 'Connector'), select,
      h('p', { id: 'f-element-error', class: 'field-error', 'data-testid': 'error-element.key' })),
    h('div', { class: 'field' }, h('label', { for: 'f-name' }, 'Name'), name,
      h('p', { id: 'f-name-error', class: 'field-error', 'data-testid': 'error-name' })),
    h('div', { class: 'field' }, h('label', { for: 'f-tags' }, 'Tags'),
      h('p', { id: 'f-tags-help', class: 'help' }, 'Comma-separated.'), tags,
      h('p', { id: 'f-tags-error', class: 'field-error', 'data-testid': 'error-tags' })),
    keys,
    h('button', { type: 'submit', 'data-testid': 'create-submit' }, 'Create instance'));
  select.addEventListener('change', async () => {
    clear(keys);
    append(keys, h('legend', {}, 'Configuration'));
    if (!select.value) return;
    const el = await api('GET', `elements/${encodeURIComponent(select.value)}`);
    const own = el.configuration.map((k) => ({ key: k.key, description: k.description, type: k.type, secret: k.secret, required: k.required }));
    const shown = EVENT_KEYS.filter((k) => !own.some((o) => o.key === k.key));
    append(keys,
      h('p', { class: 'muted' }, `${el.name}: modes ${el.modes.join(', ')}, contract ${el.contractVersion}.`),
      [...own, ...shown].map((k) => fieldFor(k, { edit: false })));
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const configuration = {};
    for (const input of keys.querySelectorAll('[data-field^="configuration."]')) {
      if (input.value !== '') configuration[input.name] = input.value;
    }
    const body = { element: { key: select.value }, configuration };
    if (name.value.trim()) body.name = name.value.trim();
    const tagList = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (tagList.length) body.tags = tagList;
    try {
      const created = await api('POST', 'instances', body, [400, 403, 409, 502, 503]);
      announce(`Instance ${created.name} created.`);
      location.hash = `#/instances/${created.id}`;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) showFormError(form, top, e);
    }
  });

  // The same, from the Open Connectors JSON of an instance.
  const text = h('textarea', { id: 'f-json', 'data-testid': 'json-input', 'aria-describedby': 'f-json-help f-json-error', spellcheck: 'false' });
  const jsonError = h('p', { id: 'f-json-error', class: 'form-error', tabindex: '-1', role: 'alert', 'data-testid': 'json-error' });
  const jsonForm = h('form', { class: 'card', 'data-testid': 'json-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'f-json' }, 'Open Connectors JSON'),
      h('p', { id: 'f-json-help', class: 'help' }, 'The body of POST /instances as is: element.key, configuration, tags, name.'),
      text, jsonError),
    h('button', { type: 'submit', 'data-testid': 'json-submit' }, 'Create from JSON'));
  jsonForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    jsonError.textContent = '';
    try { JSON.parse(text.value); } catch (e) {
      jsonError.textContent = `Not valid JSON: ${e.message}`;
      text.setAttribute('aria-invalid', 'true');
      text.focus();
      return;
    }
    try {
      const created = await api('POST', 'instances', text.value, [400, 403, 409, 502, 503]);
      location.hash = `#/instances/${created.id}`;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) {
        const field = e.body && e.body.field;
        jsonError.textContent = field ? `${field}: ${e.message}` : e.message;
        text.setAttribute('aria-invalid', 'true');
        jsonError.focus();
      }
    }
  });
  append(main, form, h('h2', {}, 'Or paste Open Connectors JSON'), jsonForm);
}

async function pageInstance(id) {
  const token = current();
  const [i, el] = await (async () => {
    const inst = await api('GET', `instances/${id}`, undefined, [404]);
    const elem = await api('GET', `elements/${encodeURIComponent(inst.element.key)}`, undefined, [404, 503]).catch(() => null);
    return [inst, elem];
  })();
  if (token !== current()) return;
  const facts = h('dl', { class: 'facts', 'data-testid': 'instance-facts' });
  const fact = (k, v, testid) => append(facts, h('dt', {}, k), h('dd', { 'data-testid': testid }, v));
  fact('Connector', `${i.element.name || i.element.key} (${i.element.key}, ${i.element.hub || 'not loaded'})`, 'instance-connector');
  fact('Events', badge(i.eventsEnabled ? 'on' : 'off'), 'instance-events-state');
  fact('Disabled', i.disabled ? 'yes' : 'no', 'instance-disabled');
  fact('Tags', (i.tags || []).join(', ') || '—', 'instance-tags');
  fact('Created', fmtDate(i.createdDate), 'instance-created');
  if (i.activity) {
    fact('Last event', fmtDate(i.activity.lastEventDate), 'instance-last-event');
    fact('Backlog', String(i.activity.backlog), 'instance-backlog');
    fact('Dead letters', String(i.activity.deadLetters), 'instance-dead-letters');
  }
  const polling = i.polling ? h('table', { 'data-testid': 'polling-table' },
    h('caption', {}, 'Polling, per resource'),
    h('thead', {}, h('tr', {}, ['Resource', 'Health', 'Last poll', 'Last success', 'Failures', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, Object.entries(i.polling).map(([r, p]) => h('tr', {},
      h('td', {}, r), h('td', {}, badge(p.outcome)), h('td', {}, fmtDate(p.lastPollDate)),
      h('td', {}, fmtDate(p.lastSuccessDate)), h('td', {}, String(p.failures)), h('td', {}, p.error || '—'))))) : null;

  const toggle = h('button', { type: 'button', class: 'secondary', 'data-testid': 'toggle-events' },
    i.eventsEnabled ? 'Disable events' : 'Enable events');
  toggle.addEventListener('click', async () => {
    const on = !i.eventsEnabled;
    try {
      await api('PATCH', `instances/${id}`, { configuration: { 'event.notification.enabled': on ? 'true' : 'false' } }, [400]);
      announce(on ? 'Events enabled.' : 'Events disabled.');
      route();
    } catch (e) { if (e instanceof ApiError && e.status !== 401) actionsError.textContent = e.message; }
  });
  const actionsError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'actions-error' });
  const confirmBox = h('div', { 'data-testid': 'delete-confirm-box' });
  const del = h('button', { type: 'button', class: 'danger', 'data-testid': 'delete-instance' }, 'Delete instance…');
  del.addEventListener('click', () => {
    clear(confirmBox);
    const yes = h('button', { type: 'button', class: 'danger', 'data-testid': 'delete-confirm' }, `Delete ${i.name}`);
    const no = h('button', { type: 'button', class: 'secondary', 'data-testid': 'delete-cancel' }, 'Cancel');
    yes.addEventListener('click', async () => {
      try {
        await api('DELETE', `instances/${id}`);
        announce(`Instance ${i.name} deleted.`);
        location.hash = '#/instances';
      } catch (e) { if (e instanceof ApiError && e.status !== 401) actionsError.textContent = e.message; }
    });
    no.addEventListener('click', () => { clear(confirmBox); del.focus(); });
    append(confirmBox, h('div', { class: 'confirm', role: 'alertdialog', 'aria-labelledby': 'confirm-text' },
      h('p', { id: 'confirm-text' }, `Delete the instance “${i.name}”? Its pending notifications are dropped; this cannot be undone.`),
      h('div', { class: 'row' }, yes, no)));
    no.focus();
  });

  // Edit: only the keys the user changed are sent; secrets are blank unless retyped.
  const declared = el ? el.configuration : [];
  const keys = new Map();
  for (const k of [...declared, ...EVENT_KEYS]) if (!keys.has(k.key)) keys.set(k.key, k);
  for (const key of Object.keys(i.configuration || {})) if (!keys.has(key)) keys.set(key, { key });
  const editTop = h('p', { class: 'form-error', tabindex: '-1', role: 'alert', 'data-testid': 'edit-error' });
  const editFields = [...keys.values()].map((k) => {
    const v = i.configuration[k.key];
    const secret = k.secret || v === '********';
    return fieldFor({ ...k, secret }, { edit: true, value: v === undefined ? undefined : String(v) });
  });
  const edit = h('form', { class: 'card', 'data-testid': 'edit-form', novalidate: true },
    editTop, editFields, h('button', { type: 'submit', 'data-testid': 'edit-submit' }, 'Save changes'));
  edit.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const configuration = {};
    for (const input of edit.querySelectorAll('[data-field^="configuration."]')) {
      if (input.value !== input.dataset.original && input.value !== '') configuration[input.name] = input.value;
    }
    if (!Object.keys(configuration).length) { editTop.textContent = 'Nothing changed.'; return; }
    try {
      await api('PATCH', `instances/${id}`, { configuration }, [400, 403, 409, 502, 503]);
      announce('Configuration saved.');
      route();
    } catch (e) { if (e instanceof ApiError && e.status !== 401) showFormError(edit, editTop, e); }
  });

  const chart = h('div', { class: 'chart card', 'data-testid': 'chart' }, h('p', { class: 'muted' }, 'Loading the last hour…'));
  append(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, 'Instances'), ` / ${i.name}`),
    heading(i.name, 'instance-heading'),
    h('div', { class: 'card' }, facts,
      h('p', { class: 'row' },
        h('a', { href: `#/instances/${id}/events`, class: 'button', 'data-testid': 'open-events' }, 'Events'),
        toggle, del),
      confirmBox, actionsError),
    polling,
    h('h2', {}, 'Deliveries per minute, last hour'), chart,
    h('h2', {}, 'Configuration'),
    h('p', { class: 'muted' }, 'Secrets are never shown; leave them blank to keep them. Only the keys you change are sent.'),
    edit);
  focusHeading();
  await every(5000, () => drawChart(chart, id));
}

// ---------- chart ----------

async function drawChart(box, id) {
  let stats;
  try {
    stats = await api('GET', `instances/${id}/stats?minutes=60`, undefined, [404]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      clear(box);
      append(box, h('p', { class: 'muted', 'data-testid': 'chart-unavailable' }, 'Delivery statistics are not available on this host.'));
      return;
    }
    throw e;
  }
  const series = stats.series || [];
  const W = 720, H = 180, pad = 30;
  const maxN = Math.max(1, ...series.map((s) => s.attempts || 0));
  const maxL = Math.max(1, ...series.map((s) => s.latencyMsAvg || 0));
  const n = Math.max(series.length, 1);
  const bw = (W - 2 * pad) / n;
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title', 'data-testid': 'chart-svg' },
    h('title', { id: 'chart-title' }, `Deliveries per minute (bars: delivered green, failed red) and average latency (line), last ${stats.minutes} minutes; most ${maxN} per minute, ${maxL.toFixed(1)} ms.`),
    h('line', { class: 'axis', x1: pad, y1: H - pad, x2: W - pad, y2: H - pad }),
    h('text', { x: 2, y: pad - 4 }, `${maxN}/min`),
    h('text', { x: W - pad - 60, y: pad - 4 }, `${maxL.toFixed(1)} ms`));
  const y = (v, max) => H - pad - (v / max) * (H - 2 * pad);
  const points = [];
  series.forEach((s, k) => {
    const x = pad + k * bw;
    const ok = s.delivered || 0, bad = s.failed || 0;
    if (ok) append(svg, h('rect', { class: 'bar-ok', x: x + 1, y: y(ok, maxN), width: Math.max(bw - 2, 1), height: H - pad - y(ok, maxN) }));
    if (bad) append(svg, h('rect', { class: 'bar-failed', x: x + 1, y: y(ok + bad, maxN), width: Math.max(bw - 2, 1), height: y(ok, maxN) - y(ok + bad, maxN) }));
    if (s.latencyMsAvg !== null && s.latencyMsAvg !== undefined) points.push(`${x + bw / 2},${y(s.latencyMsAvg, maxL)}`);
  });
  if (points.length) append(svg, h('polyline', { class: 'lat', points: points.join(' ') }));
  const total = series.reduce((a, s) => a + (s.attempts || 0), 0);
  clear(box);
  append(box, svg, h('p', { class: 'muted', 'data-testid': 'chart-total' }, `${total} attempts in the last ${stats.minutes} minutes.`));
}

// ---------- events ----------

const STATUSES = ['NEW', 'DISPATCHED', 'NOTIFIED', 'FAILED', 'DROPPED'];
const eventFilters = { status: '', since: '', until: '' };

function toIso(local) {
  if (!local) return '';
  const d = new Date(local);
  return isNaN(d) ? '' : d.toISOString();
}

async function redeliver(id, eid, out) {
  try {
    await api('POST', `instances/${id}/events/${encodeURIComponent(eid)}/redeliver`, undefined, [404]);
    announce('Redelivery requested.');
    if (out) out.textContent = 'Redelivery requested.';
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401 && out) out.textContent = e.message;
  }
}

async function pageEvents(id) {
  const token = current();
  const i = await api('GET', `instances/${id}`, undefined, [404]);
  if (token !== current()) return;
  const status = h('select', { id: 'filter-status', 'data-testid': 'filter-status' },
    h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: eventFilters.status === s }, s)));
  const since = h('input', { id: 'filter-since', type: 'datetime-local', step: '1', 'data-testid': 'filter-since', value: eventFilters.since });
  const until = h('input', { id: 'filter-until', type: 'datetime-local', step: '1', 'data-testid': 'filter-until', value: eventFilters.until });
  const filters = h('form', { class: 'card row', 'data-testid': 'event-filters', role: 'search' },
    h('div', {}, h('label', { for: 'filter-status' }, 'Status'), status),
    h('div', {}, h('label', { for: 'filter-since' }, 'Since'), since),
    h('div', {}, h('label', { for: 'filter-until' }, 'Until'), until),
    h('button', { type: 'submit', 'data-testid': 'filter-apply' }, 'Apply'));
  const out = h('p', { role: 'status', 'data-testid': 'events-message' });
  const tbody = h('tbody', { 'data-testid': 'events-rows' });
  const count = h('span', { 'data-testid': 'events-count' });
  append(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, 'Instances'), ' / ',
      h('a', { href: `#/instances/${id}`, 'data-testid': 'back-to-instance' }, i.name), ' / events'),
    heading(`Events of ${i.name}`, 'events-heading'),
    filters,
    h('p', { class: 'muted' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), 'Live: new notifications appear within a second. ', count),
    out,
    h('table', { 'data-testid': 'events-table' },
      h('thead', {}, h('tr', {}, ['Notification', 'Accepted', 'Status', 'Events', 'Attempts', ''].map((t) => h('th', { scope: 'col' }, t)))),
      tbody));
  focusHeading();
  let last = '';
  const refresh = async () => {
    const q = new URLSearchParams({ pageSize: '100' });
    if (eventFilters.status) q.set('status', eventFilters.status);
    const sinceIso = toIso(eventFilters.since), untilIso = toIso(eventFilters.until);
    if (sinceIso) q.set('since', sinceIso);
    if (untilIso) q.set('until', untilIso);
    // The host filters: what it answers is what the page shows.
    const list = await api('GET', `instances/${id}/events?${q}`, undefined, [400]);
    const key = JSON.stringify(list);
    if (key === last) return;
    last = key;
    const focused = document.activeElement && tbody.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    clear(tbody);
    count.textContent = `${list.length} shown.`;
    if (!list.length) append(tbody, h('tr', {}, h('td', { colspan: 6, 'data-testid': 'no-events' }, 'No notification matches.')));
    for (const e of list) {
      const again = h('button', { type: 'button', class: 'secondary', 'data-testid': `redeliver-${e.id}` }, 'Redeliver');
      again.addEventListener('click', () => redeliver(id, e.id, out));
      append(tbody, h('tr', { 'data-testid': `event-row-${e.id}`, 'data-status': e.status },
        h('td', {}, h('a', { href: `#/events/${id}/${encodeURIComponent(e.id)}`, 'data-testid': `event-link-${e.id}` }, h('code', {}, e.id))),
        h('td', {}, fmtDate(e.eventDate)),
        h('td', { 'data-testid': `event-status-${e.id}` }, badge(e.status)),
        h('td', {}, String(e.eventCount)),
        h('td', {}, String(e.attempts)),
        h('td', {}, again)));
    }
    if (focused) { const el = tbody.querySelector(`[data-testid="${CSS.escape(focused)}"]`); if (el) el.focus(); }
  };
  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    eventFilters.status = status.value;
    eventFilters.since = since.value;
    eventFilters.until = until.value;
    last = '';
    refresh().catch((e) => { if (!(e instanceof ApiError)) recordError(e); });
  });
  await every(500, refresh);
}

async function pageEvent(id, eid) {
  const out = h('p', { role: 'status', 'data-testid': 'event-message' });
  const facts = h('dl', { class: 'facts', 'data-testid': 'event-facts' });
  const attempts = h('tbody', { 'data-testid': 'attempts-rows' });
  const envelope = h('pre', { 'data-testid': 'event-envelope', tabindex: '0' });
  const raw = h('pre', { 'data-testid': 'event-raw', tabindex: '0' });
  const again = h('button', { type: 'button', 'data-testid': 'redeliver' }, 'Redeliver');
  again.addEventListener('click', () => redeliver(id, eid, out));
  const crumbs = h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, 'Instances'), ' / ',
    h('a', { href: `#/instances/${id}/events`, 'data-testid': 'back-to-events' }, 'events'), ' / notification');
  append(main, crumbs, heading(`Notification ${eid}`, 'event-heading'),
    h('div', { class: 'card' }, facts, h('p', {}, again), out),
    h('h2', {}, 'Attempts'),
    h('table', { 'data-testid': 'attempts-table' },
      h('thead', {}, h('tr', {}, ['Round', 'Attempt', 'Time', 'HTTP status', 'Latency', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
      attempts),
    h('div', { class: 'grid2' },
      h('section', {}, h('h2', {}, 'Envelope'), envelope),
      h('section', {}, h('h2', {}, 'Raw body (providerData)'), raw)));
  focusHeading();
  let last = '';
  let bodyShown = false;
  await every(1000, async () => {
    const d = await api('GET', `instances/${id}/events/${encodeURIComponent(eid)}/deliveries`, undefined, [404]);
    const key = JSON.stringify(d);
    if (key !== last) {
      last = key;
      const e = d.event;
      clear(facts);
      const fact = (k, v, t) => append(facts, h('dt', {}, k), h('dd', { 'data-testid': t }, v));
      fact('Status', badge(e.status), 'event-status');
      fact('Accepted', fmtDate(e.eventDate), 'event-date');
      fact('Callback URL', h('code', {}, e.callbackUrl), 'event-callback');
      fact('Events', String(e.eventCount), 'event-count');
      fact('Attempts', String(e.attempts), 'event-attempts');
      if (e.nextAttemptDate) fact('Next attempt', fmtDate(e.nextAttemptDate), 'event-next');
      if (e.deliveredDate) fact('Delivered', fmtDate(e.deliveredDate), 'event-delivered');
      clear(attempts);
      const rows = d.deliveries.flatMap((r) => r.attempts);
      if (!rows.length) append(attempts, h('tr', {}, h('td', { colspan: 6, 'data-testid': 'no-attempts' }, 'Not tried yet.')));
      for (const a of rows) {
        append(attempts, h('tr', { 'data-testid': `attempt-${a.delivery}-${a.attempt}` },
          h('td', {}, String(a.delivery)), h('td', {}, String(a.attempt)), h('td', {}, fmtDate(a.date)),
          h('td', {}, a.statusCode === null || a.statusCode === undefined ? '—' : String(a.statusCode)),
          h('td', {}, `${Number(a.latencyMs).toFixed(1)} ms`), h('td', {}, a.error || '—')));
      }
    }
    if (!bodyShown) {
      const full = await api('GET', `instances/${id}/events/${encodeURIComponent(eid)}`, undefined, [404]);
      envelope.textContent = JSON.stringify(full.notification ?? null, null, 2);
      raw.textContent = JSON.stringify(full.providerData ?? null, null, 2);
      bodyShown = true;
    }
  });
}

// ---------- connectors ----------

async function pageConnectors() {
  const list = h('div', { 'data-testid': 'connectors-list' });
  const loading = h('div', { 'data-testid': 'connectors-loading' });
  const failures = h('div', { 'data-testid': 'connectors-failures' });
  append(main, heading('Connectors', 'connectors-heading'),
    h('p', { class: 'muted' }, 'The connectors directory is watched: a file dropped in appears here within seconds.'),
    list, h('h2', {}, 'Loading'), loading, h('h2', {}, 'Failed to load'), failures);
  focusHeading();
  let last = '';
  await every(2000, async () => {
    const d = await api('GET', 'elements');
    const key = JSON.stringify(d);
    if (key === last) return;
    last = key;
    clear(list); clear(loading); clear(failures);
    for (const e of d.elements) {
      append(list, h('section', { class: 'card', 'data-testid': `connector-${e.key}` },
        h('h2', {}, `${e.name} `, h('code', {}, e.key)),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Hub'), h('dd', { 'data-testid': `connector-hub-${e.key}` }, e.hub),
          h('dt', {}, 'Modes'), h('dd', { 'data-testid': `connector-modes-${e.key}` }, e.modes.join(', ')),
          h('dt', {}, 'Contract'), h('dd', { 'data-testid': `connector-contract-${e.key}` }, e.contractVersion),
          h('dt', {}, 'File'), h('dd', {}, h('code', {}, e.file || '—')),
          e.instanceFinder ? [h('dt', {}, 'Instance finder'), h('dd', {}, h('code', {}, e.instanceFinder))] : null),
        h('table', {},
          h('caption', {}, 'Configuration keys'),
          h('thead', {}, h('tr', {}, ['Key', 'Type', 'Secret', 'Required', 'Description'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, e.configuration.map((k) => h('tr', {},
            h('td', {}, h('code', {}, k.key)), h('td', {}, k.type || 'untyped'), h('td', {}, k.secret ? 'yes' : 'no'),
            h('td', {}, k.required ? 'yes' : 'no'), h('td', {}, k.description || '')))))));
    }
    if (!d.elements.length) append(list, h('p', {}, 'No connector is loaded.'));
    if (d.loading && d.loading.length) {
      append(loading, h('ul', {}, d.loading.map((l) => h('li', {}, h('code', {}, l.file), ` for ${(l.elapsedMs / 1000).toFixed(1)} s`, l.serving ? ` (${l.serving} still serves)` : ''))));
    } else append(loading, h('p', { class: 'muted' }, 'Nothing is loading.'));
    if (d.failures && d.failures.length) {
      append(failures, h('ul', {}, d.failures.map((f) => h('li', { 'data-testid': `failure-${f.file}` }, h('code', {}, f.file), ': ', f.error))));
    } else append(failures, h('p', { class: 'muted', 'data-testid': 'no-failures' }, 'No file failed to load.'));
  });
}

// ---------- dead letters ----------

async function pageDeadLetters() {
  append(main, heading('Dead letters', 'dead-letters-heading'),
    h('p', { class: 'muted' }, 'Notifications whose every attempt failed, across instances. Redeliver one, or every one of an instance since a time.'));
  focusHeading();
  const token = current();
  const instances = await api('GET', 'instances');
  if (token !== current()) return;
  const which = h('select', { id: 'dl-instance', 'data-testid': 'dl-instance' },
    h('option', { value: '' }, 'every instance'), instances.map((i) => h('option', { value: String(i.id) }, `${i.name} (${i.id})`)));
  const since = h('input', { id: 'dl-since', type: 'datetime-local', step: '1', 'data-testid': 'dl-since' });
  const out = h('p', { role: 'status', 'data-testid': 'dl-message' });
  const bulk = h('button', { type: 'button', class: 'danger', 'data-testid': 'dl-bulk' }, 'Redeliver all shown of this instance');
  const form = h('form', { class: 'card row', role: 'search', 'data-testid': 'dl-filters' },
    h('div', {}, h('label', { for: 'dl-instance' }, 'Instance'), which),
    h('div', {}, h('label', { for: 'dl-since' }, 'Since'), since),
    h('button', { type: 'submit', 'data-testid': 'dl-apply' }, 'Show'), bulk);
  const tbody = h('tbody', { 'data-testid': 'dl-rows' });
  const table = h('table', { 'data-testid': 'dl-table' },
    h('thead', {}, h('tr', {}, ['Instance', 'Connector', 'Notification', 'Accepted', 'Attempts', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody);
  append(main, form, out, table);
  let last = '';
  let available = true;
  const refresh = async () => {
    if (!available) return;
    const q = new URLSearchParams();
    if (which.value) q.set('instanceId', which.value);
    if (toIso(since.value)) q.set('since', toIso(since.value));
    let list;
    try {
      list = await api('GET', `dead-letters?${q}`, undefined, [404]);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        available = false;
        clear(main);
        append(main, heading('Dead letters', 'dead-letters-heading'),
          h('p', { class: 'notice', 'data-testid': 'dl-unavailable' }, 'Dead letters across instances are not available on this host.'));
        return;
      }
      throw e;
    }
    const items = Array.isArray(list) ? list : (list.events || list.deadLetters || []);
    const key = JSON.stringify(items);
    if (key === last) return;
    last = key;
    clear(tbody);
    if (!items.length) append(tbody, h('tr', {}, h('td', { colspan: 6, 'data-testid': 'dl-none' }, 'No dead letter.')));
    for (const e of items) {
      const again = h('button', { type: 'button', class: 'secondary', 'data-testid': `dl-redeliver-${e.id}` }, 'Redeliver');
      again.addEventListener('click', () => redeliver(e.instanceId, e.id, out));
      append(tbody, h('tr', { 'data-testid': `dl-row-${e.id}` },
        h('td', {}, h('a', { href: `#/instances/${e.instanceId}/events` }, e.instanceName || String(e.instanceId))),
        h('td', {}, e.elementKey || '—'),
        h('td', {}, h('a', { href: `#/events/${e.instanceId}/${encodeURIComponent(e.id)}` }, h('code', {}, e.id))),
        h('td', {}, fmtDate(e.eventDate)), h('td', {}, String(e.attempts)), h('td', {}, again)));
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); last = ''; refresh().catch((e) => { if (!(e instanceof ApiError)) recordError(e); }); });
  bulk.addEventListener('click', async () => {
    if (!which.value) { out.textContent = 'Choose an instance first: a bulk redelivery is per instance.'; which.focus(); return; }
    const body = {};
    if (toIso(since.value)) body.since = toIso(since.value);
    try {
      const r = await api('POST', `instances/${which.value}/dead-letters/redeliver`, body, [400, 404]);
      out.textContent = `${r.redelivered} redelivered${r.more ? ' (more remain: press again)' : ''}.`;
      last = '';
      await refresh();
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) out.textContent = e.status === 404 ? 'Bulk redelivery is not available on this host.' : e.message;
    }
  });
  await every(2000, refresh);
}

// ---------- start ----------

document.getElementById('sign-out').addEventListener('click', signOut);
document.getElementById('skip-link').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', route);

(async () => {
  try {
    if (await loadSession()) showChrome();
  } catch (e) {
    recordError(`session: ${e}`);
  }
  await route();
})();
