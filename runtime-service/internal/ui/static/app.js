// runtrust live assessment. One ES module, no framework, no build step: it reads the JSON API
// (/api/v1, openapi.yaml) and builds the page with DOM calls. Values from the API only ever become text
// (textContent, attributes), never markup, so an image reference cannot inject anything.
//
// Routing is by the URL's hash (#/images?severity=critical): the server serves one page at "/", a view is
// shareable and bookmarkable, and Back/Forward work without the server knowing the routes. A view's filters
// are exactly the API's query parameters, so what the URL says is what the API is asked.

const API = '/api/v1';
const PAGE = 50;
// The risk severities and integrity verdicts, worst first, as the API serves them (/api/v1/meta/order): the order
// is defined once, in the record contract, and loaded before the first view draws.
let SEVERITIES = [];
let VERDICTS = [];
const VERDICT_LABEL = {
  verified: 'verified', stale_tag: 'stale tag', digest_mismatch: 'digest mismatch',
  artifact_missing: 'missing', unverified: 'unverified',
};
// Shapes beside the words, so severity reads without colour (and in a greyscale printout).
const SEVERITY_MARK = { critical: '◆', high: '▲', medium: '●', low: '▽', none: '✓' };
const UNTRUSTED_CODES = ['untrusted_registry', 'untrusted_by_policy'];
// A registry artifact not seen running for this long is a cleanup candidate when the API does not say.
const UNUSED_AFTER_DAYS = 30;

const main = document.getElementById('main');
const statusEl = document.getElementById('status');

// ---------- DOM helpers ----------

// h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child, …). Strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// add appends children to el, skipping null and false (Element.append would print them).
function add(el, ...children) { append(el, children); }

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const num = (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US'));

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return iso;
  if (s < 0) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: new Date(iso).toISOString() }, ago(iso));
}

function shortDigest(d) {
  if (!d) return '—';
  const [alg, hex] = d.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}…` : d;
}

function severityBadge(sev) {
  const s = sev || 'unknown';
  return h('span', { class: `sev sev-${s}`, 'data-severity': s },
    h('span', { 'aria-hidden': 'true' }, SEVERITY_MARK[s] || '?'), sev ? sev : 'not assessed');
}

function verdictBadge(v) {
  if (!v) return h('span', { class: 'verdict verdict-unverified', 'data-verdict': '' }, 'not assessed');
  return h('span', { class: `verdict verdict-${v}`, 'data-verdict': v }, VERDICT_LABEL[v] || v);
}

function isUntrusted(reasons) {
  return (reasons || []).some((r) => UNTRUSTED_CODES.includes(reasonCode(r)));
}

function reasonCode(r) {
  const i = r.indexOf(':');
  return i < 0 ? r : r.slice(0, i);
}

function untrustedBadge() {
  return h('span', { class: 'verdict verdict-untrusted', 'data-verdict': 'untrusted' }, 'untrusted registry');
}

// copyButton copies text with the Clipboard API, which exists only in secure contexts (https, localhost); over
// plain http on another host it falls back to a hidden textarea and execCommand, and failing that selects the
// text so Ctrl+C does it.
function copyButton(text, label) {
  const done = h('span', { class: 'copied', role: 'status' });
  const btn = h('button', {
    type: 'button', class: 'copy', 'data-copy': text, 'aria-label': `Copy ${label || text}`,
    onclick: async () => {
      let ok = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(text);
          ok = true;
        }
      } catch { /* fall through to the fallback */ }
      if (!ok) ok = legacyCopy(text);
      done.textContent = ok ? 'copied' : 'press Ctrl+C';
      setTimeout(() => { done.textContent = ''; }, 2000);
    },
  }, 'copy');
  return [btn, done];
}

function legacyCopy(text) {
  const ta = h('textarea', { readonly: true, 'aria-hidden': 'true', class: 'offscreen' }); // a class: the CSP refuses style attributes
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

function digestCell(d) {
  if (!d) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'digest' }, h('code', { title: d }, shortDigest(d)), copyButton(d, 'digest'));
}

// splitRef takes a normalized reference apart: registry, repository, tag, digest. Docker Hub's implicit
// registry is spelled out, as the container runtime resolves it.
function splitRef(ref) {
  let rest = ref || '';
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) { digest = rest.slice(at + 1); rest = rest.slice(0, at); }
  let tag = '';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) { tag = rest.slice(colon + 1); rest = rest.slice(0, colon); }
  let registry = 'docker.io';
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    rest = rest.slice(slash + 1);
  } else if (!rest.includes('/')) {
    rest = `library/${rest}`;
  }
  return { registry, repository: rest, tag, digest };
}

// repos groups an image's references by registry/repository, with their tags.
function repos(refs) {
  const by = new Map();
  for (const r of refs || []) {
    const p = splitRef(r);
    const key = `${p.registry}/${p.repository}`;
    if (!by.has(key)) by.set(key, { registry: p.registry, repository: p.repository, tags: [] });
    if (p.tag && !by.get(key).tags.includes(p.tag)) by.get(key).tags.push(p.tag);
  }
  return [...by.values()];
}

// ---------- API ----------

class APIError extends Error {
  constructor(status, message, url) {
    super(message);
    this.status = status;
    this.url = url;
  }
}

// Parameters an endpoint answered "unknown query parameter" to, so they are not sent again. The service and
// this page ship in one binary, but the page degrades rather than breaks against an older or newer API.
const unsupported = new Set();

// api GETs an endpoint with the parameters that are set. It returns {body, dropped}: dropped lists the
// parameters the API does not know (asked once, then left out), so a view can say what it could not apply.
async function api(path, params = {}) {
  const q = new URLSearchParams();
  const dropped = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (unsupported.has(`${path}?${k}`)) { dropped.push(k); continue; }
    q.set(k, v);
  }
  for (;;) {
    const url = API + path + (q.size ? `?${q}` : '');
    let res;
    try {
      res = await fetch(url, { headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new APIError(0, `the service did not answer (${e.message})`, url);
    }
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    if (res.ok) return { body, dropped };
    const msg = (body && body.error) || `${res.status} ${res.statusText}`;
    const m = res.status === 400 ? /unknown query parameter\(s\) ([^;]+);/.exec(msg) : null;
    const names = m ? [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]).filter((n) => q.has(n)) : [];
    if (names.length === 0) throw new APIError(res.status, msg, url);
    for (const n of names) {
      unsupported.add(`${path}?${n}`);
      q.delete(n);
      dropped.push(n);
    }
  }
}

let clusterCache = null;
async function clusterNames() {
  if (!clusterCache) {
    clusterCache = api('/clusters', { limit: 500 }).then((r) => r.body.items).catch(() => []);
  }
  return clusterCache;
}

// ---------- routing ----------

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/images';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  return { path, params };
}

function hrefFor(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return `#${path}${q.size ? `?${q}` : ''}`;
}

let renderSeq = 0;
let lastPath = null;

async function route() {
  const seq = ++renderSeq;
  const { path, params } = parseHash();
  const segs = path.split('/').filter(Boolean);
  const view = segs[0] || 'images';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let ready = view === 'images' && segs[1] ? 'image' : view;
  const out = h('div', { 'data-view': ready });
  const show = (title) => {
    // Only the newest navigation may draw: a slow answer to an older one is dropped.
    if (seq !== renderSeq) return false;
    document.title = `${title} — runtrust`;
    main.replaceChildren(out);
    main.dataset.ready = ready;
    main.dataset.render = String(seq); // counts drawn views, so a test can wait for the next one
    // A new view (not a filter change) moves focus to it, so keyboard and screen reader users start there.
    if (lastPath !== null && lastPath !== path) main.focus({ preventScroll: true });
    lastPath = path;
    // When the view was drawn, in ms since navigation: what the page-load benchmark reads.
    main.dataset.readyMs = String(Math.round(performance.now()));
    statusEl.textContent = `${title} loaded`;
    return true;
  };
  main.dataset.ready = '';
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  try {
    if (view === 'images' && segs[1]) await imageView(out, decodeURIComponent(segs[1]), show);
    else if (view === 'images') await imagesView(out, params, show);
    else if (view === 'clusters') await clustersView(out, params, show);
    else if (view === 'artifacts') await artifactsView(out, params, show);
    else if (view === 'vulnerabilities') await vulnerabilitiesView(out, params, show);
    else if (view === 'policy') await policyView(out, params, show);
    else {
      add(out, h('h1', {}, 'Not found'), h('p', {}, `No view "${path}". `, h('a', { href: '#/images' }, 'Images')));
      show('Not found');
    }
  } catch (e) {
    if (e.status === 401) {
      signInPrompt(out, e.message);
      if (seq === renderSeq) ready = 'signin';
      show('Sign in');
      return;
    }
    out.replaceChildren(h('h1', {}, 'Could not load this view'),
      h('p', { class: 'error', role: 'alert' }, e.message, e.url ? h('span', { class: 'muted' }, ` (${e.url})`) : ''),
      h('p', {}, h('a', { href: `#/${view}` }, 'Show this view without filters')));
    if (seq === renderSeq) ready = 'error';
    show('Error');
  }
}

function go(path, params) {
  location.hash = hrefFor(path, params);
}

// ---------- shared pieces ----------

function pager(path, params, page) {
  const offset = page.offset || 0;
  const shown = page.items.length;
  const from = shown ? offset + 1 : 0;
  const label = `${num(from)}–${num(offset + shown)} of ${num(page.total)}`;
  const prev = offset > 0 ? hrefFor(path, { ...params, offset: Math.max(0, offset - page.limit) || '' }) : null;
  const next = page.next_offset !== null && page.next_offset !== undefined
    ? hrefFor(path, { ...params, offset: page.next_offset }) : null;
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    prev ? h('a', { class: 'button', href: prev, rel: 'prev' }, '← Previous') : h('button', { disabled: true }, '← Previous'),
    h('span', { class: 'page-info' }, label),
    next ? h('a', { class: 'button', href: next, rel: 'next' }, 'Next →') : h('button', { disabled: true }, 'Next →'));
}

function checkboxGroup(name, legend, values, labels, selected) {
  return h('fieldset', {},
    h('legend', {}, legend),
    values.map((v) => h('label', {},
      h('input', { type: 'checkbox', name, value: v, checked: selected.includes(v) }), labels ? labels[v] : v)));
}

async function clusterSelect(selected) {
  const clusters = await clusterNames();
  return h('div', {}, h('label', { for: 'f-cluster' }, 'Cluster'),
    h('select', { id: 'f-cluster', name: 'cluster' },
      h('option', { value: '' }, 'All clusters'),
      clusters.map((c) => h('option', { value: c.name, selected: c.name === selected || c.uid === selected }, c.name))));
}

function textInput(name, label, value, attrs = {}) {
  return h('div', {}, h('label', { for: `f-${name}` }, label),
    h('input', { type: 'text', id: `f-${name}`, name, value: value || '', ...attrs }));
}

// namespaceInput is the namespace filter every list takes (the API refuses what is not a namespace name).
function namespaceInput(value) {
  return textInput('namespace', 'Namespace', value, { placeholder: 'any', pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?', size: 14 });
}

// searchInput is a list's q filter.
function searchInput(value, placeholder) {
  return h('div', {}, h('label', { for: 'f-q' }, 'Search'),
    h('input', { type: 'search', id: 'f-q', name: 'q', value, placeholder }));
}

// selectInput is a filter with fixed choices: [value, label] pairs, the one equal to value selected.
function selectInput(name, label, choices, value) {
  return h('div', {}, h('label', { for: `f-${name}` }, label),
    h('select', { id: `f-${name}`, name }, choices.map(([v, l]) => h('option', { value: v, selected: v === value }, l))));
}

// filterForm wires a form so that any change rewrites the URL (and so the view) with the form's values; text
// fields apply on Enter or when they lose focus.
function filterForm(path, fields, keep = {}) {
  const form = h('form', { class: 'filters', role: 'search' }, fields,
    h('div', {}, h('button', { type: 'submit' }, 'Apply'), ' ', h('a', { href: `#${path}`, class: 'button' }, 'Clear')));
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    const fd = new FormData(form);
    const p = { ...keep };
    for (const k of new Set(fd.keys())) p[k] = fd.getAll(k).filter(Boolean).join(',');
    go(path, p);
  };
  form.addEventListener('submit', apply);
  form.addEventListener('change', (ev) => { if (ev.target.type !== 'text' && ev.target.type !== 'search') apply(); });
  return form;
}

function unsupportedNote(dropped, what) {
  if (!dropped.length) return null;
  return h('p', { class: 'note', 'data-unsupported': dropped.join(',') },
    `This service's API does not take ${dropped.map((d) => `"${d}"`).join(', ')}; ${what}`);
}

// ---------- Images ----------

async function imagesView(out, params, show) {
  const f = {
    cluster: params.get('cluster') || '', namespace: params.get('namespace') || '',
    severity: params.get('severity') || '', verdict: params.get('verdict') || '', q: params.get('q') || '',
    sort: params.get('sort') || '', offset: params.get('offset') || '', limit: params.get('limit') || '',
  };
  const [{ body, dropped }, cs] = await Promise.all([
    api('/images', { ...f, limit: f.limit || PAGE }),
    clusterSelect(f.cluster),
  ]);
  let items = body.items;
  let searchNote = null;
  if (dropped.includes('q') && f.q) {
    // Until the API searches, the search narrows the page it returned (and says so).
    const needle = f.q.toLowerCase();
    items = items.filter((i) => [i.digest, ...i.refs, ...i.reasons].some((s) => s.toLowerCase().includes(needle)));
    searchNote = unsupportedNote(['q'], 'the search only narrows the page shown.');
  }
  const form = filterForm('/images', [
    cs,
    namespaceInput(f.namespace),
    checkboxGroup('severity', 'Severity', SEVERITIES, null, f.severity.split(',')),
    checkboxGroup('verdict', 'Verdict', VERDICTS, VERDICT_LABEL, f.verdict.split(',')),
    searchInput(f.q, 'repository, tag or digest'),
    selectInput('sort', 'Order', [['', 'risk (API ranking)'], ['last_seen', 'last seen'], ['digest', 'digest']], f.sort),
  ], f.limit ? { limit: f.limit } : {});
  const keep = { ...f, offset: '' };
  add(out,
    h('h1', {}, 'Images running now', h('span', { class: 'muted' }, ` — ${num(body.total)}`)),
    form, searchNote,
    imagesTable(items, body.offset || 0),
    pager('/images', keep, body));
  show('Images');
}

function imagesTable(items, offset) {
  if (!items.length) return h('p', { class: 'note', 'data-empty': 'images' }, 'No image matches these filters.');
  return h('table', { class: 'images', 'aria-label': 'Images ranked by risk' },
    h('thead', {}, h('tr', {},
      h('th', { class: 'num', scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Severity'), h('th', { scope: 'col' }, 'Verdict'),
      h('th', { scope: 'col' }, 'Vulnerabilities'), h('th', { scope: 'col' }, 'Registry / repository · tags'), h('th', { scope: 'col' }, 'Running digest'),
      h('th', { scope: 'col' }, 'Blast radius'), h('th', { scope: 'col' }, 'Last seen'))),
    h('tbody', {}, items.map((img, i) => {
      const rs = repos(img.refs);
      const link = `#/images/${encodeURIComponent(img.digest)}`;
      return h('tr', { 'data-digest': img.digest, 'data-severity': img.severity || '', 'data-verdict': img.verdict || '' },
        h('td', { class: 'num rank' }, String(offset + i + 1)),
        h('td', {}, severityBadge(img.severity)),
        h('td', {}, verdictBadge(img.verdict), isUntrusted(img.reasons) ? [' ', untrustedBadge()] : null, driftFlag(img)),
        h('td', { class: 'vulns-cell' }, vulnCounts(img)),
        h('td', {}, rs.length ? rs.map((r) => h('div', {},
          h('div', { class: 'registry' }, r.registry),
          h('a', { class: 'repo', href: link }, r.repository),
          r.tags.length ? h('div', { class: 'tags' }, r.tags.map((t) => h('span', { class: 'tag' }, t))) : null))
          : h('a', { class: 'repo', href: link }, '(no reference recorded)')),
        h('td', {}, digestCell(img.digest)),
        h('td', { class: 'blast' }, blast(img.blast_radius)),
        h('td', {}, when(img.last_seen)));
    })));
}

// driftFlag marks, in the images list, an image whose containers ran programs its layers do not hold as run
// (docs/drift.md); its worst drift raises its rank.
function driftFlag(img) {
  const d = img.drift_counts;
  if (!d || !d.findings) return null;
  return [' ', h('a', { class: 'flag', href: `#/images/${encodeURIComponent(img.digest)}`, 'data-drift-findings': String(d.findings),
    title: `${num(d.findings)} programs drifted from the image, worst ${d.severity}` }, `drift: ${num(d.findings)} ${d.severity}`)];
}

// vulnCounts sums up an image's findings for the list: its critical and high ones, and how many of all were
// loaded at runtime, which is what to fix first. Zero findings reads "—": the list cannot tell an image with
// none from one not scanned (its detail says which).
function vulnCounts(img) {
  const c = img.vulnerability_counts;
  if (!c || !c.total) return h('span', { class: 'muted', title: 'No vulnerability findings (or not scanned)' }, '—');
  const parts = [];
  if (c.critical) parts.push(`${num(c.critical)} critical`);
  if (c.high) parts.push(`${num(c.high)} high`);
  if (!parts.length) parts.push(`${num(c.total)} medium or lower`);
  return h('a', {
    class: 'vuln-counts', href: hrefFor('/vulnerabilities', { digest: img.digest }),
    title: `${num(c.total)} findings · ${num(c.fixable)} with a fix · ${num(c.loaded)} loaded at runtime`,
  }, parts.join(' · '), c.loaded ? [' ', h('span', { class: 'reach reach-loaded', 'data-vuln-loaded': c.loaded }, `${num(c.loaded)} loaded`)] : null);
}

function blast(b) {
  if (!b) return '—';
  const part = (n, one, many) => h('span', { class: 'nw' }, `${num(n)} ${n === 1 ? one : many}`);
  return h('span', { title: `${b.containers} containers` },
    part(b.clusters, 'cluster', 'clusters'), ' · ', part(b.namespaces, 'namespace', 'namespaces'), ' · ',
    part(b.workloads, 'workload', 'workloads'), ' · ', part(b.pods, 'pod', 'pods'));
}

// ---------- Image detail ----------

const MEANING = {
  verified: {
    what: 'The running digest is what the registry holds for the tag now (or a platform manifest of it).',
    fix: 'Nothing to do.',
  },
  stale_tag: {
    what: 'The tag has moved in the registry since the nodes pulled it, and the containers still run the old ' +
      'digest (the registry still has it). This is what a mutable tag such as :latest does with ' +
      'imagePullPolicy IfNotPresent: a node that pulled before the push keeps the old content, and a new ' +
      'node pulls the new one, so one workload runs two versions.',
    fix: 'Pin the digest in the pod spec (below), or set imagePullPolicy: Always and restart the rollout so ' +
      'every pod pulls what the tag holds now.',
  },
  digest_mismatch: {
    what: 'The registry has never held the running digest under this repository: the image did not come from ' +
      'the registry it names (built or loaded on the node, or pulled through a mirror that served something else).',
    fix: 'Treat it as an incident: find how the image reached the nodes below, then redeploy from the registry ' +
      'by digest.',
  },
  artifact_missing: {
    what: 'The tag or repository is gone from the registry while the image still runs. The next reschedule or ' +
      'node replacement will fail to pull it.',
    fix: 'Restore the artifact in the registry, or move the workload to an image that exists, pinned by digest.',
  },
  unverified: {
    what: 'The registry could not be asked (unreachable, refused the credentials, rate-limited, or not ' +
      'configured), so nothing is known either way. The reasons say which.',
    fix: 'Give the collector access to the registry (credentials, network, the registry rules), then look again.',
  },
};

async function imageView(out, digest, show) {
  let body;
  try {
    ({ body } = await api(`/images/${encodeURIComponent(digest)}`));
  } catch (e) {
    if (e.status === 404) {
      add(out, h('h1', {}, 'Image not found'),
        h('p', {}, 'No container runs ', h('code', {}, digest), ' now. ', h('a', { href: '#/images' }, 'All images')));
      show('Image not found');
      return;
    }
    throw e;
  }
  const rs = repos(body.refs);
  const title = rs.length ? rs.map((r) => r.repository).join(', ') : shortDigest(body.digest);
  add(out,
    h('p', {}, h('a', { href: '#/images' }, '← Images')),
    h('h1', {}, title),
    h('dl', { class: 'summary' },
      h('div', {}, h('dt', {}, 'Severity'), h('dd', {}, severityBadge(body.severity))),
      h('div', {}, h('dt', {}, 'Verdict'), h('dd', {}, verdictBadge(body.verdict),
        isUntrusted(body.reasons) ? [' ', untrustedBadge()] : null)),
      body.drift_counts.findings ? h('div', { 'data-drift-summary': body.drift_counts.severity }, h('dt', {}, 'Drift'),
        h('dd', {}, severityBadge(body.drift_counts.severity), ' ', `${num(body.drift_counts.findings)} programs (see Processes)`)) : null,
      h('div', {}, h('dt', {}, 'Runs in'), h('dd', {}, blast(body.blast_radius))),
      h('div', {}, h('dt', {}, 'First seen'), h('dd', {}, when(body.first_seen))),
      h('div', {}, h('dt', {}, 'Last seen'), h('dd', {}, when(body.last_seen)))),
    evidence(body),
    meaning(body),
    body.reasons.length ? [h('h2', {}, 'Findings'),
      h('ul', { class: 'reasons' }, body.reasons.map((r) => h('li', {}, h('code', {}, reasonCode(r)), r.slice(reasonCode(r).length))))] : null,
    vulnSection(body),
    provenanceSection(body.provenance),
    placementSection(body),
    h('h2', { id: 'where' }, 'Where it runs'), placementsTree(body),
    h('h2', { id: 'processes' }, 'Processes it executed'), processesTable(body),
    h('h2', { id: 'files' }, 'Files it opened'), filesTable(body),
    h('h2', { id: 'timeline' }, 'Verdict timeline'), timeline(body));
  show(`Image ${title}`);
}

// evidence puts, for every reference the image runs under, the digest the nodes run beside the digest the
// registry holds for that reference now.
function evidence(body) {
  const byRef = new Map();
  for (const p of body.placements) {
    const ref = p.image_ref || p.image_name;
    const key = `${ref}\u0000${p.expected_digest || ''}`;
    if (!byRef.has(key)) byRef.set(key, { ref, running: p.running_digest, expected: p.expected_digest, verdict: p.verdict, n: 0 });
    byRef.get(key).n++;
  }
  if (byRef.size === 0) {
    byRef.set('', { ref: body.refs[0] || '', running: body.digest, expected: body.expected_digests[0] || null, verdict: body.verdict, n: 0 });
  }
  return h('section', { 'aria-labelledby': 'evidence-h' },
    h('h2', { id: 'evidence-h' }, 'Evidence'),
    [...byRef.values()].map((e) => {
      const same = e.expected && e.expected === e.running;
      return h('div', { class: 'evidence', 'data-ref': e.ref },
        h('div', { class: 'running' },
          h('h3', {}, 'Running on the nodes'),
          h('div', { class: 'ref' }, h('code', {}, e.ref)),
          h('div', { class: 'value', 'data-evidence': 'running' }, e.running), copyButton(e.running, 'running digest')),
        h('div', { class: `expected ${e.expected ? (same ? 'same' : 'differs') : ''}` },
          h('h3', {}, 'In the registry for this reference now'),
          h('div', { class: 'ref' }, verdictBadge(e.verdict)),
          e.expected
            ? [h('div', { class: 'value', 'data-evidence': 'expected' }, e.expected), copyButton(e.expected, 'registry digest')]
            : h('div', { class: 'value muted', 'data-evidence': 'expected' }, 'not known (the registry was not asked or did not answer)'),
          e.expected ? h('p', { class: 'compare' }, same ? '= the same digest' : '≠ a different digest') : null,
          listing(body, e.ref)));
    }));
}

// listing shows what the registry correlation last listed for the reference's tag, when a configured registry
// lists it: a second, independent look at the registry.
function listing(body, ref) {
  const rem = (body.remediation || []).find((r) => r.ref === ref);
  if (!rem || !rem.registry_digest) return null;
  return h('p', { class: 'muted', 'data-listing': rem.registry_digest },
    `Registry ${rem.registry} listed ${rem.tag ? `:${rem.tag}` : 'it'} at `, h('code', {}, shortDigest(rem.registry_digest)), ' ',
    when(rem.listed_at), ' ', copyButton(rem.registry_digest, 'listed digest'));
}

function meaning(body) {
  const v = body.verdict;
  const m = MEANING[v];
  const parts = [];
  if (m) {
    parts.push(h('p', {}, h('strong', {}, `${VERDICT_LABEL[v]}: `), m.what), h('p', {}, h('strong', {}, 'Remediation: '), m.fix));
  } else {
    parts.push(h('p', {}, 'No processor judged this image: the collector that reported it runs without the integrity processor.'));
  }
  if (v === 'stale_tag' || v === 'artifact_missing') parts.push(remediation(body));
  if (isUntrusted(body.reasons)) {
    parts.push(h('p', {}, h('strong', {}, 'untrusted registry: '),
      'the image comes from a registry no rule approves. Mirror it into an approved registry and deploy it from there, ' +
      'or approve the registry if it should be.'));
  }
  return h('section', { class: 'meaning', 'aria-labelledby': 'meaning-h' }, h('h2', { id: 'meaning-h' }, 'What this means'), parts);
}

// remediation lists each workload with its imagePullPolicy and the pinned reference that would stop the drift.
function remediation(body) {
  const rows = new Map();
  for (const p of body.placements) {
    const w = isHostContainer(p) ? `host container ${p.container.slice(0, 12)}`
      : p.workload ? `${p.workload.kind}/${p.workload.name}` : `Pod/${p.pod}`;
    const key = `${p.cluster.name}/${p.namespace}/${w}`;
    if (rows.has(key)) continue;
    const ref = p.image_ref || p.image_name;
    // The API's remediation for this reference (pinned references, the registry's listing); computed here
    // from the placement when an older service does not send it.
    const rem = (body.remediation || []).find((r) => r.ref === ref);
    const repo = rem ? rem.repository : ref.split('@')[0].replace(/:[^:/]+$/, '');
    rows.set(key, {
      cluster: p.cluster.name, namespace: p.namespace, workload: w, ref,
      policy: p.pull_policy || null,
      pinned: rem ? rem.pinned_ref : (p.expected_digest ? `${repo}@${p.expected_digest}` : null),
      frozen: rem ? rem.running_pinned_ref : `${repo}@${p.running_digest}`,
    });
  }
  return h('div', { class: 'remediation' },
    h('table', { 'aria-label': 'Remediation per workload' },
      h('thead', {}, h('tr', {}, ['Workload', 'imagePullPolicy', 'Pin what the tag holds now', 'Or freeze what runs'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, [...rows.values()].map((r) => h('tr', { 'data-workload': r.workload },
        h('td', {}, h('div', {}, r.workload), h('div', { class: 'muted' }, `${r.cluster} / ${r.namespace}`)),
        h('td', { 'data-pull-policy': r.policy || '' }, r.policy
          ? [h('code', {}, r.policy), r.policy === 'IfNotPresent' || r.policy === 'Never'
            ? h('div', { class: 'muted' }, 'nodes keep what they pulled: the tag\'s moves do not reach them') : null]
          : h('span', { class: 'muted' }, 'not reported')),
        h('td', {}, r.pinned ? [h('code', { 'data-pinned': r.pinned }, r.pinned), copyButton(r.pinned, 'pinned reference')] : h('span', { class: 'muted' }, 'registry digest not known')),
        h('td', {}, h('code', {}, r.frozen), copyButton(r.frozen, 'reference of what runs')))))),
    h('pre', {}, `# in the pod template: pin the digest\nimage: ${[...rows.values()][0]?.pinned || '<repository>@<digest>'}\n` +
      '# or keep the tag and make every pod pull it\nimagePullPolicy: Always\n' +
      `kubectl rollout restart ${([...rows.values()][0]?.workload || 'deployment/<name>').toLowerCase()} -n ${[...rows.values()][0]?.namespace || '<namespace>'}`));
}

// isHostContainer: a placement of runtrust.host.container, a container in no pod (docker run, nerdctl, ctr).
function isHostContainer(p) {
  return !p.pod && !p.namespace;
}

function placementsTree(body) {
  if (!body.placements.length) return h('p', { class: 'muted' }, 'No live container runs it.');
  const tree = new Map();
  const hosts = new Map(); // cluster → containers the host's own runtime started: in no pod, no namespace
  for (const p of body.placements) {
    const c = p.cluster.name || p.cluster.uid;
    if (isHostContainer(p)) {
      if (!hosts.has(c)) hosts.set(c, []);
      hosts.get(c).push(p);
      continue;
    }
    const w = p.workload ? `${p.workload.kind} ${p.workload.name}` : '(bare pods)';
    if (!tree.has(c)) tree.set(c, new Map());
    const nss = tree.get(c);
    if (!nss.has(p.namespace)) nss.set(p.namespace, new Map());
    const ws = nss.get(p.namespace);
    if (!ws.has(w)) ws.set(w, []);
    ws.get(w).push(p);
  }
  for (const c of hosts.keys()) if (!tree.has(c)) tree.set(c, new Map());
  const podItem = (p) => h('li', {},
    h('span', { class: 'kind' }, 'pod'), p.pod, ' · ', h('span', { class: 'kind' }, 'container'), p.container,
    ' · ', h('span', { class: 'kind' }, 'node'), p.node || '—', ' · ', when(p.last_seen),
    p.placement ? [' · ', placementBadge(p.placement)] : null);
  const hostItem = (p) => h('li', { 'data-host-container': p.container },
    h('span', { class: 'kind' }, 'container'), h('code', { title: p.container }, p.container.slice(0, 12)),
    ' · ', h('span', { class: 'kind' }, 'host'), p.node || '—', ' · ', when(p.last_seen));
  const namespaceItems = (nss) => [...nss].map(([ns, ws]) => h('li', {}, h('span', { class: 'kind' }, 'namespace'), ns,
    h('ul', {}, [...ws].map(([w, ps]) => h('li', {}, h('span', { class: 'kind' }, 'workload'), w,
      h('ul', {}, ps.map(podItem)))))));
  const hostsItem = (c) => h('li', { 'data-host-containers': c }, h('span', { class: 'kind' }, 'not in a pod'),
    'containers the host\'s own runtime started', h('ul', {}, hosts.get(c).map(hostItem)));
  return [
    h('ul', { class: 'tree' }, [...tree].map(([c, nss]) => h('li', {}, h('span', { class: 'kind' }, 'cluster'), h('strong', {}, c),
      h('ul', {}, namespaceItems(nss), hosts.has(c) ? hostsItem(c) : null)))),
    body.placements_total > body.placements.length
      ? h('p', { class: 'muted' }, `${num(body.placements.length)} of ${num(body.placements_total)} containers shown.`) : null,
  ];
}

// placementBadge says what the placement policy decided for one container (docs/placement.md).
function placementBadge(v) {
  const text = { allowed: 'placement allowed', violation: 'placement refused', pending: 'placement pending' }[v.status] || v.status;
  return h('span', { class: `sev placement-${v.status}`, 'data-placement': v.status, title: v.reason }, text);
}

// placementSection is the image's placement under the policy: for each place it runs in, allowed or not, by
// which rule and why. Absent when no rule selects any of its containers.
function placementSection(body) {
  const judged = body.placements.filter((p) => p.placement);
  if (!judged.length) return null;
  const violations = judged.filter((p) => p.placement.status === 'violation').length;
  return [
    h('h2', { id: 'placement' }, 'Placement'),
    h('p', { class: violations ? 'error' : 'muted' }, violations
      ? `${num(violations)} of ${num(judged.length)} containers run outside the places their rule allows.`
      : 'Every container the policy judges runs where its rule allows.', ' ', h('a', { href: '#/policy' }, 'Placement policy')),
    h('table', { class: 'placement' },
      h('thead', {}, h('tr', {}, ['Cluster', 'Namespace', 'Pod', 'Placement', 'Rule', 'Why'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, judged.map((p) => h('tr', { 'data-placement': p.placement.status, 'data-namespace': p.namespace },
        h('td', {}, p.cluster.name || p.cluster.uid), h('td', {}, p.namespace), h('td', {}, p.pod),
        h('td', {}, placementBadge(p.placement), p.placement.severity ? [' ', severityBadge(p.placement.severity)] : null),
        h('td', {}, h('code', {}, p.placement.rule)), h('td', {}, p.placement.reason))))),
  ];
}

// provenanceSection is the image's signatures and build provenance as last checked (docs/provenance.md): the
// deciding rule's verdict and findings, each signature with who made it, and the build facts of each SLSA
// provenance attestation, verified or not.
function provenanceSection(p) {
  if (!p) return null; // an older service
  const head = h('h2', { id: 'provenance' }, 'Signatures and provenance');
  if (p.state === 'off') {
    return h('section', { class: 'provenance', 'data-provenance': 'off' }, head,
      h('p', { class: 'muted' }, 'Not checked: no signature and provenance policy is loaded (', h('code', {}, '-provenance-file'), ', docs/provenance.md).'));
  }
  if (!p.status) {
    return h('section', { class: 'provenance', 'data-provenance': p.state }, head,
      h('p', { class: 'muted' }, p.state === 'failed' ? 'Not checked: its registry could not be read. ' : 'Not checked yet.',
        p.error ? h('code', {}, p.error) : null));
  }
  const flag = {
    verified: h('span', { class: 'flag flag-ok' }, '✓ verified'),
    finding: h('span', { class: 'flag' }, '⚠ ' + p.findings.map((f) => f.code.replace('_', ' ')).join(', ')),
    not_judged: h('span', { class: 'flag flag-none' }, 'no rule selects it'),
  }[p.status];
  const signer = (s) => s.kind === 'certificate'
    ? [h('span', { class: 'kind' }, 'keyless'), s.subject || '(no identity)', s.issuer ? h('span', { class: 'muted' }, ` · ${s.issuer}`) : null]
    : s.key ? [h('span', { class: 'kind' }, 'key'), s.key, h('span', { class: 'muted' }, ` · ${s.key_fingerprint}`)] : h('span', { class: 'muted' }, 'unknown key');
  const ok = (x) => x.verified ? h('span', { class: 'flag flag-ok' }, '✓') : [h('span', { class: 'flag' }, '✗'), ' ', x.error || ''];
  const fact = (label, field, v, link) => h('div', {}, h('dt', {}, label), h('dd', { 'data-field': field },
    !v ? h('span', { class: 'muted' }, '—') : link && /^https?:\/\//.test(v) ? h('a', { href: v, rel: 'noreferrer' }, v) : h('code', {}, v)));
  return h('section', { class: 'provenance', 'data-provenance': p.state, 'data-provenance-status': p.status }, head,
    h('p', {}, flag, p.rule ? [' rule ', h('code', {}, p.rule)] : null, p.severity ? [' ', severityBadge(p.severity)] : null,
      h('span', { class: 'muted' }, ` · checked ${ago(p.checked_at)}`), ' ', h('a', { href: '#/policy' }, 'Policy'),
      p.state === 'failed' ? h('span', { class: 'error' }, ` last check failed: ${p.error}`) : null),
    p.findings.length ? h('ul', { class: 'reasons' }, p.findings.map((f) => h('li', { 'data-finding': f.code }, h('code', {}, f.code), ' ', f.reason))) : null,
    p.signatures.length
      ? h('table', { class: 'signatures' },
        h('thead', {}, h('tr', {}, ['Signature', 'Where', 'Signed by', 'Verified'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, p.signatures.map((s) => h('tr', { 'data-verified': String(s.verified), 'data-source': s.source },
          h('td', {}, s.format), h('td', {}, s.source.replace('_', ' '), ' ', h('code', {}, shortDigest(s.artifact))),
          h('td', {}, signer(s.signer)), h('td', {}, ok(s))))))
      : h('p', { class: 'muted', 'data-empty': 'signatures' }, 'No signature is attached to the image.'),
    p.provenance.map((a) => h('div', { class: 'provenance-card', 'data-verified': String(a.verified) },
      h('h3', {}, 'Build provenance ', h('span', { class: 'muted' }, `${a.predicate_type || 'unreadable'} · ${a.source.replace('_', ' ')}`), ' ', ok(a)),
      h('dl', { class: 'summary' },
        fact('Builder', 'builder_id', a.builder_id), fact('Source repository', 'source_repo', a.source_repo, true),
        fact('Commit', 'commit', a.commit), fact('Ref', 'ref', a.ref), fact('Build id', 'build_id', a.build_id),
        fact('CI run', 'ci_url', a.ci_url, true), fact('Started', 'started_on', a.started_on),
        h('div', {}, h('dt', {}, 'Signed by'), h('dd', {}, signer(a.signer)))))),
    !p.provenance.length ? h('p', { class: 'muted', 'data-empty': 'provenance' }, 'No SLSA provenance attestation is attached to the image.') : null,
    p.artifactory ? h('p', { 'data-artifactory-build': `${p.artifactory.name} ${p.artifactory.number}` },
      h('span', { class: 'kind' }, 'Artifactory build'), h('code', {}, p.artifactory.name), ' #', h('code', {}, p.artifactory.number)) : null,
    p.notes.length ? h('ul', { class: 'muted' }, p.notes.map((n) => h('li', {}, n))) : null);
}

// policyFileLine says which file a policy section shows and since when it is in force and, when the file's
// current content was refused at a reload, a warning with why: the rules shown are then the ones loaded before
// the edit (docs/placement.md, "Changing the policy").
function policyFileLine(f) {
  if (!f) return null;
  return [
    h('p', { class: 'muted', 'data-policy-file': f.kind }, 'From ', h('code', {}, f.path), ', in force since ', when(f.loaded_at),
      ' (sha256 ', h('code', { title: f.sha256 }, f.sha256.slice(0, 12)), ').'),
    f.reload_error ? h('p', { class: 'error', role: 'alert', 'data-reload-error': f.kind },
      'The file’s current content was refused ', when(f.reload_error.at), ': ', h('code', {}, f.reload_error.message),
      '. The policy loaded before it stays in force until the file is fixed.') : null,
  ];
}

// provenancePolicy lists the signature and provenance rules in the order they are tried, and the running
// images they find wanting (docs/provenance.md).
async function provenancePolicy(out, params) {
  const [{ body: pol }, { body: found }] = await Promise.all([api('/provenance/policy'),
    api('/provenance/findings', { offset: params.get('poffset') || '' })]);
  add(out, h('h1', { id: 'signatures' }, 'Signature and provenance policy'), policyFileLine(pol.file));
  if (!pol.configured) {
    add(out, h('p', { class: 'note' }, 'No signature and provenance policy is loaded: start the service with -provenance-file (docs/provenance.md).'));
    return;
  }
  add(out, h('p', { class: 'muted' }, 'Rules are tried in order; the first that selects an image’s repository decides. Verified offline: no transparency log is asked.',
    pol.trusted_root ? [' Trusted root ', h('code', {}, pol.trusted_root.file), ': ', pol.trusted_root.certificates.join('; ')] : null),
  h('table', { class: 'provenance-rules' },
    h('thead', {}, h('tr', {}, ['#', 'Rule', 'Selects', 'Trusts', 'Requires', 'Severity'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, pol.rules.map((r, i) => h('tr', { 'data-rule': r.name },
      h('td', {}, String(i + 1)), h('td', {}, h('code', {}, r.name)),
      h('td', {}, [['registry', r.match.registry], ['repository', r.match.repository]].filter(([, v]) => v)
        .map(([k, v]) => h('div', {}, h('span', { class: 'kind' }, k), h('code', {}, v))),
      !r.match.registry && !r.match.repository ? 'every image' : null),
      h('td', {}, r.keys.map((k) => h('div', {}, h('span', { class: 'kind' }, 'key'), h('code', {}, k.file), h('span', { class: 'muted' }, ` ${k.fingerprint}`))),
        r.identities.map((id) => h('div', {}, h('span', { class: 'kind' }, 'keyless'), h('code', {}, id)))),
      h('td', {}, r.require.join(', ')), h('td', {}, severityBadge(r.severity)))))));
  add(out, h('h2', { id: 'provenance-findings' }, 'Findings', h('span', { class: 'muted' }, ` — ${num(found.total)}`)));
  if (!found.items.length) {
    add(out, h('p', { class: 'muted', 'data-provenance-findings': '0' }, 'Every running image its rule judges is signed and attested as required.'));
    return;
  }
  add(out, h('table', { class: 'provenance-findings', 'data-provenance-findings': String(found.total) },
    h('thead', {}, h('tr', {}, ['Severity', 'Image', 'Rule', 'Findings', 'Checked'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, found.items.map((f) => h('tr', { 'data-rule': f.rule, 'data-findings': f.findings.map((x) => x.code).join(' ') },
      h('td', {}, severityBadge(f.severity)),
      h('td', {}, h('a', { href: `#/images/${encodeURIComponent(f.digest)}` }, f.refs[0] || shortDigest(f.digest))),
      h('td', {}, h('code', {}, f.rule)),
      h('td', {}, h('ul', { class: 'reasons' }, f.findings.map((x) => h('li', {}, h('code', {}, x.code), ' ', x.reason)))),
      h('td', {}, when(f.checked_at)))))));
}

// policyView lists the loaded placement rules in the order they are tried, and the current violations.
async function policyView(out, params, show) {
  const offset = params.get('offset') || '';
  const [{ body: pol }, { body: found }, { body: files }] = await Promise.all([api('/placement/policy'),
    api('/placement/findings', { offset }), api('/policy/files')]);
  add(out, h('h1', {}, 'Placement policy'), policyFileLine(pol.file));
  if (!pol.configured) {
    add(out, h('p', { class: 'note' }, 'No placement policy is loaded: start the service with -placement-file (docs/placement.md).'));
  } else {
    add(out, h('p', { class: 'muted' }, 'Rules are tried in order; the first that selects an artifact decides. An artifact no rule selects is not judged.'),
      h('table', { class: 'rules' },
        h('thead', {}, h('tr', {}, ['#', 'Rule', 'Selects', 'Allowed places', 'Severity'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, pol.rules.map((r, i) => h('tr', { 'data-rule': r.name },
          h('td', {}, String(i + 1)), h('td', {}, h('code', {}, r.name)),
          h('td', {}, [['registry', r.match.registry], ['repository', r.match.repository], ['label', r.match.label]]
            .filter(([, v]) => v).map(([k, v]) => h('div', {}, h('span', { class: 'kind' }, k), h('code', {}, v))),
          !r.match.registry && !r.match.repository && !r.match.label ? 'every artifact' : null),
          h('td', {}, r.allow.length ? r.allow.join(', ') : (r.allow_from_label ? '' : 'nowhere'),
            r.allow_from_label ? h('div', {}, h('span', { class: 'kind' }, 'from label'), h('code', {}, r.allow_from_label)) : null),
          h('td', {}, severityBadge(r.severity)))))));
  }
  add(out, h('h2', { id: 'violations' }, 'Violations', h('span', { class: 'muted' }, ` — ${num(found.total)}`)));
  if (!found.items.length) {
    add(out, h('p', { class: 'muted', 'data-violations': '0' }, 'No container runs outside the places its rule allows.'));
  } else {
    add(out, h('table', { class: 'violations', 'data-violations': String(found.total) },
      h('thead', {}, h('tr', {}, ['Severity', 'Cluster', 'Namespace', 'Pod', 'Image', 'Rule', 'Why', 'Since'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, found.items.map((f) => h('tr', { 'data-placement': 'violation', 'data-rule': f.rule, 'data-namespace': f.namespace },
        h('td', {}, severityBadge(f.severity)), h('td', {}, f.cluster.name || f.cluster.uid), h('td', {}, f.namespace),
        h('td', {}, f.pod), h('td', {}, h('a', { href: `#/images/${encodeURIComponent(f.digest)}` }, f.image_ref || shortDigest(f.digest))),
        h('td', {}, h('code', {}, f.rule)), h('td', {}, f.reason), h('td', {}, when(f.since)))))));
    if (found.total > found.items.length) add(out, pager('/policy', {}, found));
  }
  await provenancePolicy(out, params);
  // The drift rules have no section of their own (their findings are on each image); their file is shown here
  // so that a refused edit of it is seen too.
  const driftFile = files.items.find((f) => f.kind === 'drift');
  if (driftFile) add(out, h('h1', { id: 'drift-rules' }, 'Drift rules'), policyFileLine(driftFile));
  show('Placement policy');
}

// fromMemory flags an executable run from a memfd: the sensor reports it as "/memfd:<name>" (a file no directory
// holds, runtrust.file.path_detached), the classic fileless payload. runc re-executes itself this way
// ("/memfd:runc_cloned:…") when it starts or enters a container, so that one is named, not alarmed.
function fromMemory(path) {
  if (!path.startsWith('/memfd:')) return null;
  if (path.startsWith('/memfd:runc_cloned:')) {
    return [' ', h('span', { class: 'muted', 'data-fileless': 'runc' }, 'runc re-executing itself from memory')];
  }
  return [' ', h('span', { class: 'flag flag-warn', 'data-fileless': 'yes',
    title: 'Run from a memfd: the program was never a file in the image' }, '⚠ run from memory')];
}

// DRIFT_LABEL says in words where an executed program came from (docs/drift.md).
const DRIFT_LABEL = {
  in_image: 'in image', modified: 'modified', added: 'added', memory: 'from memory', unknown: 'unknown',
};
const DRIFT_TITLE = {
  in_image: "The image's layers hold this path with this SHA-256",
  modified: "The image's layers hold this path with other content: changed on the node",
  added: "The image's layers have no such path: dropped into the container and run",
  memory: 'Run from a memfd or a deleted file: never a file in the image',
  unknown: 'Not decided: not hashed, or the index was cut by a bound and lacks the path',
};

// driftCell is a process's drift verdict, the severity the rules give it, and the rule that allowed it.
function driftCell(d) {
  if (!d) return h('span', { class: 'muted', title: 'Not judged yet (see the drift line below the table)' }, '—');
  return [h('span', { class: `drift drift-${d.verdict}`, 'data-drift-verdict': d.verdict, title: DRIFT_TITLE[d.verdict] || '' },
    DRIFT_LABEL[d.verdict] || d.verdict),
  d.severity !== 'none' ? [' ', severityBadge(d.severity)] : null,
  d.allowed_by ? [' ', h('span', { class: 'muted', 'data-drift-allowed': d.allowed_by }, `allowed: ${d.allowed_by}`)] : null];
}

// driftLine says where the index of the image's layers stands: what the drift column is judged against.
function driftLine(x) {
  const code = (t) => h('code', {}, t);
  let text;
  switch (x.state) {
    case 'off': text = ['Drift is off (', code('-drift off'), ').']; break;
    case 'pending': text = ["Drift: the image's layers are not indexed yet."]; break;
    case 'building': text = ["Drift: the image's layers are being read from the registry now",
      x.error ? [' (the last try failed: ', code(x.error), ')'] : '', '.']; break;
    case 'failed': text = ["Drift: the image's layers could not be read: ", code(x.error || 'unknown error'),
      x.next_try_at ? [' — tried again after ', h('time', { datetime: x.next_try_at }, fmtTime(x.next_try_at))] : '', '.']; break;
    default: text = [`Drift judged against ${num(x.files)} files of the image's layers (${num(x.bytes)} bytes read${x.manifest ? `, manifest ${shortDigest(x.manifest)}` : ''})`,
      x.truncated ? [' — ', h('span', { class: 'flag flag-warn', title: (x.notes || []).join('; ') }, 'truncated'), ': programs it lacks are unknown'] : '', '.'];
  }
  return h('p', { class: x.state === 'failed' ? 'note' : 'muted', 'data-drift-index': x.state }, text);
}

function processesTable(body) {
  if (!body.processes.length) {
    return h('p', { class: 'muted' }, 'No process executions recorded (integrity mode, or no sensor on these nodes).');
  }
  return [
    h('table', { 'aria-label': 'Processes' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Executable'), h('th', { scope: 'col' }, 'SHA-256'),
        h('th', { scope: 'col' }, 'Drift'), h('th', { scope: 'col', class: 'num' }, 'Runs'), h('th', { scope: 'col' }, 'Last run'))),
      h('tbody', {}, body.processes.map((p) => h('tr', { 'data-drift': p.drift ? p.drift.verdict : '', 'data-path': p.path },
        h('td', {}, h('code', {}, p.path), fromMemory(p.path)),
        h('td', {}, p.sha256 ? [h('code', { title: p.sha256 }, `${p.sha256.slice(0, 16)}…`), copyButton(p.sha256, 'SHA-256')] : h('span', { class: 'muted' }, 'not hashed')),
        h('td', { class: 'drift-cell' }, driftCell(p.drift)),
        h('td', { class: 'num' }, num(p.count)),
        h('td', {}, when(p.last_seen)))))),
    body.processes_total > body.processes.length ? h('p', { class: 'muted' }, `${num(body.processes.length)} of ${num(body.processes_total)} shown.`) : null,
    driftLine(body.drift),
  ];
}

function filesTable(body) {
  if (!body.files.length) return h('p', { class: 'muted' }, 'No file opens recorded.');
  return [
    h('table', { 'aria-label': 'Files' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'File'), h('th', { scope: 'col', class: 'num' }, 'Opens'), h('th', { scope: 'col' }, 'Last opened'))),
      h('tbody', {}, body.files.map((f) => h('tr', {},
        h('td', {}, h('code', {}, f.path)), h('td', { class: 'num' }, num(f.count)), h('td', {}, when(f.last_seen)))))),
    body.files_total > body.files.length ? h('p', { class: 'muted' }, `${num(body.files.length)} of ${num(body.files_total)} shown.`) : null,
  ];
}

// timeline lists the verdict changes the service recorded (per cluster and reference), newest first.
function timeline(body) {
  const t = body.timeline;
  if (!Array.isArray(t)) return h('p', { class: 'muted', 'data-timeline': 'absent' }, 'This service does not record verdict changes.');
  if (!t.length) return h('p', { class: 'muted', 'data-timeline': 'empty' }, 'No verdict change recorded.');
  return h('ol', { class: 'timeline', 'data-timeline': 'entries' }, t.map((e) => h('li', { 'data-to': e.to?.verdict || '' },
    h('div', {}, when(e.time), ' ', h('span', { class: 'muted' }, `${fmtTime(e.time)} · ${e.cluster?.name || e.cluster?.uid || ''} · `),
      h('code', {}, e.ref || '')),
    h('div', {},
      e.from ? [verdictBadge(e.from.verdict), ' ', severityBadge(e.from.severity)] : h('span', { class: 'muted' }, 'first assessment'),
      h('span', { class: 'arrow', 'aria-label': 'became' }, ' → '),
      verdictBadge(e.to?.verdict), ' ', severityBadge(e.to?.severity)),
    e.reasons?.length ? h('div', { class: 'muted' }, e.reasons.join('; ')) : null)));
}

function fmtTime(iso) {
  return iso ? `${new Date(iso).toISOString().replace('T', ' ').slice(0, 19)} UTC` : '';
}

// ---------- Clusters ----------

async function clustersView(out, params, show) {
  const offset = params.get('offset') || '';
  const { body } = await api('/clusters', { offset, limit: 20 });
  // The list gives each cluster's sums; the nodes and their sensors come with each cluster's detail.
  const details = await Promise.all(body.items.map((c) => api(`/clusters/${encodeURIComponent(c.uid)}`).then((r) => r.body, () => null)));
  add(out, h('h1', {}, 'Clusters', h('span', { class: 'muted' }, ` — ${num(body.total)}`)));
  if (!body.items.length) add(out, h('p', { class: 'note' }, 'No cluster has enrolled yet.'));
  body.items.forEach((c, i) => add(out, clusterCard(c, details[i])));
  if (body.total > body.items.length) add(out, pager('/clusters', {}, body));
  show('Clusters');
}

// entitlementState is where a cluster stands against its node entitlement: unlimited (no count configured),
// within, at (the next new sensor is refused) or over (it was lowered, or stale sensors came back); null from a
// service that does not report it.
function entitlementState(e) {
  if (!e) return null;
  if (e.nodes === null || e.nodes === undefined) return 'unlimited';
  return e.nodes_used > e.nodes ? 'over' : e.nodes_used === e.nodes ? 'at' : 'within';
}

// entitlementWarning is the card's flag when the cluster is at or over its entitlement, or refused a sensor.
function entitlementWarning(e) {
  const state = entitlementState(e);
  const refused = e ? e.sensors_refused : 0;
  if (state !== 'at' && state !== 'over' && !refused) return null;
  const text = state === 'over' ? `⚠ over its node entitlement: ${num(e.nodes_used)} / ${num(e.nodes)} nodes`
    : state === 'at' ? `⚠ at its node entitlement: ${num(e.nodes)} / ${num(e.nodes)} nodes, new sensors are refused`
      : `⚠ ${num(refused)} sensor${refused === 1 ? '' : 's'} refused`;
  return h('span', { class: 'flag', role: 'status', 'data-entitlement-warning': state }, text);
}

// entitlementSummary is "nodes: used / entitled": the sensors counted against the cluster's licensed node count,
// and the sensors it refused in the last 24 hours.
function entitlementSummary(e) {
  const state = entitlementState(e);
  if (!state) return null;
  const refused = e.sensors_refused
    ? h('div', { class: 'muted', 'data-sensors-refused': e.sensors_refused },
      `${num(e.sensors_refused)} sensor${e.sensors_refused === 1 ? '' : 's'} refused in 24 h; last `,
      h('code', {}, e.last_refused_sensor || '?'), ' ', when(e.last_refused_at))
    : null;
  return h('div', {}, h('dt', {}, 'Entitlement'),
    h('dd', { 'data-entitlement': state, 'data-nodes-used': e.nodes_used, 'data-nodes-entitled': state === 'unlimited' ? '' : e.nodes },
      `nodes: ${num(e.nodes_used)} / ${state === 'unlimited' ? 'unlimited' : num(e.nodes)}`, refused));
}

function clusterCard(c, d) {
  const stale = c.sensors.stale;
  return h('section', { class: 'cluster', 'data-cluster': c.name },
    h('h2', {}, c.name,
      c.mode ? h('span', { class: 'mode', 'data-mode': c.mode }, c.mode === 'impact' ? 'impact · sensors' : 'integrity · controller only')
        : h('span', { class: 'mode' }, 'mode not reported'),
      stale ? h('span', { class: 'flag', 'data-stale-sensors': stale }, `⚠ ${stale} stale sensor${stale === 1 ? '' : 's'}`) : null,
      entitlementWarning(c.entitlement)),
    h('dl', { class: 'summary' },
      h('div', {}, h('dt', {}, 'Heartbeat'), h('dd', {}, when(c.heartbeat_at))),
      h('div', {}, h('dt', {}, 'Last data'), h('dd', {}, when(c.last_ingest_at))),
      h('div', {}, h('dt', {}, 'Collector'), h('dd', {}, c.collector_version || '—')),
      h('div', {}, h('dt', {}, 'Nodes'), h('dd', {}, `${num(c.nodes)} live · ${num(c.reported_nodes)} reported`)),
      entitlementSummary(c.entitlement),
      h('div', {}, h('dt', {}, 'Sensors'), h('dd', {}, `${num(c.sensors.reporting)} reporting · ${num(stale)} stale`)),
      h('div', {}, h('dt', {}, 'Events dropped'), h('dd', {}, num(c.sensors.events_dropped))),
      h('div', {}, h('dt', {}, 'UID'), h('dd', {}, h('code', {}, c.uid)))),
    d ? [h('h3', {}, 'Nodes'), nodesTable(c, d.node_list), collectorsTable(c, d.collectors)]
      : h('p', { class: 'error' }, 'The cluster\'s nodes and collectors could not be loaded.'));
}

// collectorRole says which part a collector plays. The mode alone does not: a controller reports impact mode
// once its cluster has sensors. The chart enrols the controller as "controller"; a sensor reports no nodes (only
// the controller counts them) and runs impact mode.
function collectorRole(k) {
  if (k.id === 'controller') return 'controller';
  if (k.mode === 'impact' && !k.node_count) return 'sensor';
  return k.node_count ? 'controller' : '';
}

// byId orders collector ids by code point, as the same ids compare anywhere (no locale).
const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// collectorsTable lists every enrolled collector of the cluster, each holding its own token. Stale is the API's
// live flag negated (no heartbeat within 5 minutes of the cluster's newest one), never recomputed here from the
// browser's clock, so the page and the cluster's derived mode and version agree. Stale rows come first: a
// sensor that stopped reporting, or a decommissioned node's collector whose token still works, is on top.
function collectorsTable(c, collectors) {
  const head = h('h3', {}, 'Collectors');
  if (!Array.isArray(collectors)) {
    return [head, h('p', { class: 'muted', 'data-collectors': 'absent' }, 'This service does not list its collectors.')];
  }
  if (!collectors.length) return [head, h('p', { class: 'muted', 'data-collectors': 'empty' }, 'No collector has enrolled.')];
  const rows = [...collectors].sort((a, b) => Number(!!a.live) - Number(!!b.live) || byId(a, b));
  const stale = rows.filter((k) => !k.live).length;
  add(head, h('span', { class: 'muted' }, ` — ${num(rows.length)}${stale ? ` · ${num(stale)} stale` : ''}`));
  return [head, h('table', { class: 'collectors', 'aria-label': `Collectors of ${c.name}`, 'data-collectors': rows.length },
    h('thead', {}, h('tr', {}, ['Collector', 'Mode', 'Version', 'Enrolled', 'Last heartbeat', 'State']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((k) => {
      // A version other than the cluster's (its live controller's) is what an operator upgrading looks for.
      const differs = k.version && c.collector_version && k.version !== c.collector_version;
      return h('tr', { class: k.live ? null : 'stale', 'data-collector': k.id, 'data-live': String(!!k.live) },
        h('td', {}, h('code', {}, k.id),
          k.id === 'legacy' ? h('div', { class: 'muted' }, 'enrolled without a collector id (an older exporter)') : null),
        h('td', {}, k.mode ? h('span', { class: 'mode', 'data-collector-mode': k.mode }, collectorRole(k) ? `${k.mode} · ${collectorRole(k)}` : k.mode)
          : h('span', { class: 'muted', 'data-collector-mode': '' }, 'not reported')),
        h('td', { 'data-version': k.version || '' }, k.version ? h('code', {}, k.version) : h('span', { class: 'muted' }, '—'),
          differs ? [' ', h('span', { class: 'flag flag-warn version-differs', title: `The cluster's collector version is ${c.collector_version}` },
            `≠ ${c.collector_version}`)] : null),
        h('td', {}, k.enrolled_at ? h('time', { datetime: k.enrolled_at, title: ago(k.enrolled_at) }, fmtTime(k.enrolled_at)) : '—'),
        h('td', {}, when(k.heartbeat_at)),
        h('td', {}, k.live ? h('span', { class: 'flag flag-ok', 'data-state': 'live' }, '✓ live')
          : h('span', { class: 'flag', 'data-state': 'stale' }, '⚠ stale')));
    }))),
  stale ? h('p', { class: 'muted', 'data-collectors-note': '' },
    'Stale: no heartbeat within 5 minutes of the cluster\'s newest. A collector of a node that is gone keeps a valid ' +
    'token until it is revoked (runtime-service revoke).') : null];
}

// A few drops a minute are not "0/s": anything above zero shows.
const rateText = (r) => (r > 0 && r < 0.1 ? '<0.1' : Number(r).toLocaleString('en-US', { maximumFractionDigits: 1 }));

function nodesTable(c, nodes) {
  if (!nodes.length) return h('p', { class: 'muted' }, 'No node reported.');
  return h('table', { 'aria-label': `Nodes of ${c.name}` },
    h('thead', {}, h('tr', {}, ['Node', 'Sensor', 'Programs', 'Kernel', 'Events seen', 'Events/s', 'Dropped', 'Last sensor heartbeat', 'Node last seen']
      .map((t, i) => h('th', { scope: 'col', class: i >= 4 && i <= 6 ? 'num' : null }, t)))),
    h('tbody', {}, nodes.map((n) => {
      const s = n.sensor;
      const rate = s ? s.events_per_second ?? null : null;
      const drops = s ? s.drops_per_second ?? null : null;
      const programs = s && Array.isArray(s.programs) ? s.programs : null;
      return h('tr', { class: s && s.stale ? 'stale' : null, 'data-node': n.name, 'data-stale': s ? String(!!s.stale) : 'no-sensor' },
        h('td', {}, n.name),
        h('td', {}, !s ? h('span', { class: 'muted' }, c.mode === 'integrity' ? 'none (integrity mode)' : 'no sensor reported')
          : s.stale ? h('span', { class: 'flag' }, '⚠ stale') : h('span', { class: 'flag flag-ok' }, '✓ reporting')),
        h('td', {}, s ? [s.program_status || '—', programs
          ? h('div', { class: 'muted', title: programs.join('\n') }, `${programs.length} attached`) : null,
          s.open_hook ? h('div', { class: 'muted', 'data-open-hook': s.open_hook, title: s.hooks_refused || '' },
            `opens via ${s.open_hook}` + (s.hooks_refused ? ' (cheaper hooks refused by the kernel)' : '')) : null] : '—'),
        h('td', {}, s ? s.kernel || '—' : '—'),
        h('td', { class: 'num' }, s ? num(s.events_seen) : '—'),
        h('td', { class: 'num' }, rate !== null ? rateText(rate) : '—'),
        h('td', { class: 'num' }, s ? [num(s.events_dropped), drops ? h('div', { class: 'muted' }, `${rateText(drops)}/s`) : null] : '—'),
        h('td', {}, s ? when(s.last_seen) : '—'),
        h('td', {}, when(n.last_seen)));
    })));
}

// ---------- Artifacts ----------

const USAGE_LABEL = {
  in_use: 'in use', recently_used: 'ran recently', unused: 'unused', never_seen: 'never seen running',
};
const USAGE_CHOICES = [
  ['', 'all'], ['unused,never_seen', 'cleanup candidates (unused or never seen)'], ['in_use', 'in use now'],
  ['recently_used', 'ran recently, not now'], ['unused', 'unused'], ['never_seen', 'never seen running'],
];

async function artifactsView(out, params, show) {
  const f = {
    registry: params.get('registry') || '', usage: params.get('usage') || '', since: params.get('since') || '',
    cluster: params.get('cluster') || '', namespace: params.get('namespace') || '', sort: params.get('sort') || '',
    offset: params.get('offset') || '',
  };
  const [{ body, dropped }, registries, cs] = await Promise.all([
    api('/artifacts', { ...f, limit: PAGE }),
    api('/registries').then((r) => r.body.items || [], () => null),
    clusterSelect(f.cluster),
  ]);
  const extended = !dropped.includes('usage');
  const usageChoices = USAGE_CHOICES.some(([v]) => v === f.usage) ? USAGE_CHOICES : [...USAGE_CHOICES, [f.usage, f.usage]];
  const form = filterForm('/artifacts', [
    registries && registries.length
      ? h('div', {}, h('label', { for: 'f-registry' }, 'Registry'),
        h('select', { id: 'f-registry', name: 'registry' }, h('option', { value: '' }, 'All registries'),
          registries.map((r) => h('option', { value: r.name, selected: r.name === f.registry }, r.name))))
      : textInput('registry', 'Registry', f.registry, { placeholder: 'host[:port]' }),
    selectInput('usage', 'Usage', usageChoices, f.usage),
    textInput('since', 'Unused after', f.since, { placeholder: '30d', size: 6, title: 'An age (30d, 72h) or an RFC 3339 time' }),
    cs,
    namespaceInput(f.namespace),
    selectInput('sort', 'Order',
      [['', 'last run first'], ['oldest', 'longest unused first'], ['registry', 'registry, repository, tag'], ['ref', 'reference']], f.sort),
  ]);
  const csvParams = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v && k !== 'offset' && !dropped.includes(k)) csvParams.set(k, v);
  add(out,
    h('h1', {}, 'Artifacts', h('span', { class: 'muted' }, ` — ${num(body.total)}`)),
    h('p', { class: 'muted' }, 'The tags each configured registry lists, where their digests run, and when they last ran. ' +
      'Tags never or not recently seen running are cleanup candidates.'),
    registriesList(registries),
    form,
    unsupportedNote(dropped, 'usage is judged here from when each artifact last ran, and only artifacts seen running are listed.'),
    h('p', {}, extended
      ? h('a', { class: 'button', href: `${API}/artifacts.csv${csvParams.size ? `?${csvParams}` : ''}`, 'data-csv': 'link' },
        'Export as CSV (every row, these filters)')
      : h('button', { type: 'button', 'data-csv': 'page', onclick: () => downloadCSV(body.items) }, 'Export this page as CSV')),
    artifactsTable(body.items),
    pager('/artifacts', { ...f, offset: '' }, body));
  show('Artifacts');
}

function registriesList(registries) {
  if (!registries) return null;
  if (!registries.length) {
    return h('p', { class: 'note', 'data-registries': '0' }, 'No registry is configured for listing (-registries-file): ' +
      'only references seen running are shown, and nothing can be "never seen".');
  }
  return h('table', { class: 'registries', 'aria-label': 'Configured registries', 'data-registries': registries.length },
    h('thead', {}, h('tr', {}, ['Registry', 'Last listing', 'Repositories', 'Tags', 'In use'].map((t, i) => h('th', { scope: 'col', class: i >= 2 ? 'num' : null }, t)))),
    h('tbody', {}, registries.map((r) => h('tr', { 'data-registry': r.name },
      h('td', {}, h('strong', {}, r.name), ' ', h('span', { class: 'muted' }, `${r.kind} · ${r.host}`)),
      h('td', {}, h('span', { class: `flag ${r.status === 'ok' ? 'flag-ok' : r.status === 'pending' ? 'flag-warn' : ''}` }, r.status),
        ' ', when(r.last_refresh_at), r.error ? h('div', { class: 'muted' }, r.error) : null),
      h('td', { class: 'num' }, num(r.repositories)), h('td', { class: 'num' }, num(r.tags)), h('td', { class: 'num' }, num(r.in_use))))));
}

// artifactView normalises one artifact: the API's registry artifact, or an older service's reference seen
// running (ref, digest, registry_host, last_seen), whose usage is judged here from when it last ran.
function artifactView(a) {
  const p = splitRef(a.ref || '');
  const lastSeen = 'last_seen_in_runtime' in a ? a.last_seen_in_runtime : a.last_seen;
  let usage = a.usage;
  if (!usage) {
    if (!lastSeen) usage = 'never_seen';
    else usage = Date.now() - Date.parse(lastSeen) > UNUSED_AFTER_DAYS * 86400e3 ? 'unused' : 'in_use';
  }
  return {
    registry: a.registry || a.registry_host || p.registry, host: a.registry_host || p.registry, listed: !!a.registry,
    repository: a.repository || p.repository, tag: a.tag ?? p.tag, digest: a.digest, lastSeen, usage,
    listedAt: a.listed_at || null, where: a.where || null, running: a.running || null, verdict: a.verdict, severity: a.severity,
  };
}

function whereLines(a) {
  if (!a.where || !a.where.length) return null;
  const lines = a.where.map((x) => `${x.cluster.name || x.cluster.uid} / ${x.namespace} / ${x.workload ? `${x.workload.kind} ${x.workload.name}` : 'bare pods'} (${x.pods} pod${x.pods === 1 ? '' : 's'})`);
  if (a.running && a.running.workloads > a.where.length) lines.push(`… ${num(a.running.workloads - a.where.length)} more workloads`);
  return lines;
}

function artifactsTable(items) {
  if (!items.length) return h('p', { class: 'note', 'data-empty': 'artifacts' }, 'No artifact matches these filters.');
  return h('table', { class: 'artifacts', 'aria-label': 'Artifacts' },
    h('thead', {}, h('tr', {}, ['Registry / repository', 'Tag', 'Digest', 'Usage', 'Where it runs', 'Last ran', 'Listed'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, items.map((raw) => {
      const a = artifactView(raw);
      const where = whereLines(a);
      return h('tr', { 'data-usage': a.usage, 'data-repository': a.repository, 'data-tag': a.tag || '' },
        h('td', {}, h('div', { class: 'registry' }, a.registry, a.listed ? '' : ' (not a configured registry)'), h('span', { class: 'repo' }, a.repository)),
        h('td', {}, a.tag ? h('span', { class: 'tag' }, a.tag) : h('span', { class: 'muted' }, '—')),
        h('td', {}, a.digest ? [
          a.usage === 'in_use' ? h('a', { href: `#/images/${encodeURIComponent(a.digest)}`, title: a.digest }, h('code', {}, shortDigest(a.digest)))
            : h('code', { title: a.digest }, shortDigest(a.digest)),
          copyButton(a.digest, 'digest')] : '—'),
        h('td', {}, h('span', { class: `flag ${a.usage === 'in_use' ? 'flag-ok' : a.usage === 'recently_used' ? 'flag-warn' : ''}`, 'data-usage-label': a.usage },
          USAGE_LABEL[a.usage] || a.usage), a.verdict ? [' ', verdictBadge(a.verdict)] : null),
        h('td', {}, where ? where.map((x) => h('div', {}, x)) : h('span', { class: 'muted' }, 'nowhere now')),
        h('td', {}, when(a.lastSeen)),
        h('td', {}, a.listed ? when(a.listedAt) : h('span', { class: 'muted' }, '—')));
    })));
}

// downloadCSV exports the artifacts shown when the API has no CSV endpoint.
function downloadCSV(items) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const rows = [['registry', 'repository', 'tag', 'digest', 'usage', 'last_seen_in_runtime']];
  for (const raw of items) {
    const a = artifactView(raw);
    rows.push([a.registry, a.repository, a.tag, a.digest, a.usage, a.lastSeen]);
  }
  const blob = new Blob([`${rows.map((r) => r.map(cell).join(',')).join('\r\n')}\r\n`], { type: 'text/csv' });
  const link = h('a', { href: URL.createObjectURL(blob), download: 'artifacts.csv' });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---------- Vulnerabilities ----------

const VULN_SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'];
const REACHABILITIES = ['loaded', 'not_loaded', 'unknown'];
const REACH_LABEL = { loaded: 'loaded', not_loaded: 'not loaded', unknown: 'unknown' };
// Shapes beside the words, as for severity: loaded ran, not loaded was watched and did not, unknown was not watched.
const REACH_MARK = { loaded: '▶', not_loaded: '–', unknown: '?' };
const REACH_TITLE = {
  loaded: 'A file of the package was executed or opened in a container of the image',
  not_loaded: 'Sensors watched a container of the image for the reachability window and saw no file of the package used',
  unknown: 'No sensor watched the image\'s containers (Integrity mode), or not for long enough',
};
// The prioritisation funnel's steps, each with the filters that list its findings. The API counts the steps
// over the scope only (cluster, namespace, image), so a step keeps the scope and sets everything else: the table
// under it then lists exactly the step's count.
const FUNNEL = [
  { key: 'all', label: 'All findings', set: {} },
  { key: 'critical_high', label: 'Critical & high', set: { severity: 'critical,high' } },
  { key: 'fix_available', label: 'Fix available', set: { severity: 'critical,high', fix: 'true' } },
  { key: 'loaded', label: 'Loaded at runtime', set: { severity: 'critical,high', fix: 'true', reachability: 'loaded' } },
];
const VULN_FILTERS = ['cluster', 'namespace', 'digest', 'severity', 'reachability', 'fix', 'q'];

async function vulnerabilitiesView(out, params, show) {
  const f = { offset: params.get('offset') || '', limit: params.get('limit') || '' };
  for (const k of VULN_FILTERS) f[k] = params.get(k) || '';
  const [{ body, dropped }, cs] = await Promise.all([
    api('/vulnerabilities', { ...f, limit: f.limit || PAGE }),
    clusterSelect(f.cluster),
  ]);
  const scope = { cluster: f.cluster, namespace: f.namespace, digest: f.digest };
  // The digest is no form field (it comes from an image's page): changing a filter keeps it.
  const keep = {};
  if (f.digest) keep.digest = f.digest;
  if (f.limit) keep.limit = f.limit;
  const form = filterForm('/vulnerabilities', [
    cs,
    namespaceInput(f.namespace),
    checkboxGroup('severity', 'Severity', VULN_SEVERITIES, null, f.severity.split(',')),
    checkboxGroup('reachability', 'At runtime', REACHABILITIES, REACH_LABEL, f.reachability.split(',')),
    selectInput('fix', 'Fix', [['', 'any'], ['true', 'fix available'], ['false', 'no fix']], f.fix),
    searchInput(f.q, 'CVE, alias or package'),
  ], keep);
  const csv = new URLSearchParams();
  for (const k of VULN_FILTERS) if (f[k] && !dropped.includes(k)) csv.set(k, f[k]);
  add(out,
    h('h1', {}, 'Vulnerabilities', h('span', { class: 'muted' }, ` — ${num(body.total)}`)),
    h('p', { class: 'muted' }, 'Known vulnerabilities in the packages of the images running now, matched offline against the ' +
      'vulnerability database. Loaded: the sensors saw a file of the package executed or opened in a container of the image.'),
    f.digest ? h('p', { class: 'note', 'data-scope': 'digest' }, 'Only the image ',
      h('a', { href: `#/images/${encodeURIComponent(f.digest)}` }, h('code', { title: f.digest }, shortDigest(f.digest))), '. ',
      h('a', { href: hrefFor('/vulnerabilities', { ...f, digest: '', offset: '' }) }, 'Show every image')) : null,
    body.funnel && body.funnel.all ? funnel(body.funnel, scope, f) : null,
    form,
    unsupportedNote(dropped, 'the list is not narrowed by them.'),
    body.items.length ? [
      h('p', {}, h('a', { class: 'button', href: `${API}/vulnerabilities.csv${csv.size ? `?${csv}` : ''}`, 'data-csv': 'link' },
        'Download CSV'), h('span', { class: 'muted' }, ' every row of these filters')),
      vulnTable(body.items, true),
      pager('/vulnerabilities', { ...f, offset: '' }, body),
    ] : vulnEmpty(body, f, scope));
  show('Vulnerabilities');
}

// funnel draws the prioritisation as stepped bars, each as wide as its share of all findings, centred so the
// steps narrow like a funnel. A step is a link to its filters.
function funnel(fun, scope, f) {
  const all = fun.all;
  const norm = (v) => (v || '').split(',').filter(Boolean).sort().join(',');
  return h('ol', { class: 'funnel', 'aria-label': 'Prioritisation funnel' }, FUNNEL.map((step) => {
    const n = fun[step.key] ?? 0;
    const share = n / all;
    const active = !f.q && ['severity', 'fix', 'reachability'].every((k) => norm(f[k]) === norm(step.set[k]));
    const bar = h('span', { class: 'bar' });
    // Set through the CSSOM, which the CSP allows (it refuses style attributes); a step of none keeps a sliver.
    bar.style.width = `${Math.max(share * 100, 0.5)}%`;
    const pct = n && share < 0.01 ? '<1%' : `${Math.round(share * 100)}%`;
    return h('li', { 'data-step': step.key, 'data-count': n },
      h('a', { href: hrefFor('/vulnerabilities', { ...scope, ...step.set }), 'aria-current': active ? 'true' : null },
        h('span', { class: 'step-label' }, step.label),
        h('span', { class: 'step-count' }, num(n)),
        h('span', { class: 'step-share', title: 'of all findings' }, pct),
        h('span', { class: 'track', 'aria-hidden': 'true' }, bar)));
  }));
}

function vulnEmpty(body, f, scope) {
  if (!body.funnel || !body.funnel.all) {
    const scoped = Object.values(scope).some(Boolean);
    return h('p', { class: 'note', 'data-empty': 'vulnerabilities-none' },
      scoped ? 'No vulnerability findings for the images in this scope. ' : 'No vulnerability findings. ',
      'Scanning needs ', h('code', {}, '-vulnerability-db'), ' (docs/vulnerabilities.md).');
  }
  return h('p', { class: 'note', 'data-empty': 'vulnerabilities' },
    `No finding matches these filters (${num(body.funnel.all)} in this scope). `,
    h('a', { href: hrefFor('/vulnerabilities', scope) }, 'Show them all'));
}

function reachBadge(r) {
  return h('span', { class: `reach reach-${r}`, 'data-reach': r, title: REACH_TITLE[r] || '' },
    h('span', { 'aria-hidden': 'true' }, REACH_MARK[r] || '?'), REACH_LABEL[r] || r);
}

// clock is an event's time of day, with the date when it was not today (UTC, as fmtTime).
function clock(iso) {
  const s = new Date(iso).toISOString();
  return s.slice(0, 10) === new Date().toISOString().slice(0, 10) ? `${s.slice(11, 16)} UTC` : `${s.slice(0, 10)} ${s.slice(11, 16)} UTC`;
}

// loadedBy says which runtime event made a finding loaded: "exec /usr/bin/curl in container 3f1c2a9b7d4e… at
// 12:03 UTC", or "opened /usr/lib/libssl.so.3 by /usr/bin/python3 in container … at …".
function loadedBy(e) {
  if (!e) return null;
  const what = e.kind === 'exec' ? ['exec ', h('code', {}, e.path)]
    : ['opened ', h('code', {}, e.path), e.process ? [' by ', h('code', {}, e.process)] : null];
  const cid = e.container_id || '';
  return h('div', { class: 'loaded-by', 'data-evidence-kind': e.kind }, what,
    cid ? [' in container ', h('code', { title: cid }, cid.length > 12 ? `${cid.slice(0, 12)}…` : cid)] : null,
    e.at ? [' at ', h('time', { datetime: e.at, title: `${fmtTime(e.at)} (${ago(e.at)})` }, clock(e.at))] : null,
    e.count > 1 ? h('span', { class: 'muted' }, ` · ${num(e.count)} events`) : null);
}

// vulnTable lists findings in the API's order (loaded first); withImage adds the image each is in.
function vulnTable(items, withImage) {
  const head = ['Advisory', 'Severity', 'CVSS', 'Package → fix', 'At runtime'];
  if (withImage) head.push('Image');
  return h('table', { class: 'vulns', 'aria-label': 'Vulnerability findings' },
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col', class: t === 'CVSS' ? 'num' : null }, t)))),
    h('tbody', {}, items.map((v) => h('tr', {
      class: v.reachability === 'loaded' ? 'loaded' : null,
      'data-id': v.id, 'data-digest': v.digest, 'data-severity': v.severity, 'data-reachability': v.reachability,
    },
    h('td', {}, h('strong', { class: 'advisory' }, v.id),
      v.aliases && v.aliases.length ? h('div', { class: 'aliases muted' }, v.aliases.join(', ')) : null,
      v.summary ? h('div', { class: 'vuln-summary', title: v.summary }, v.summary) : null),
    h('td', {}, severityBadge(v.severity)),
    h('td', { class: 'num' }, v.cvss !== null && v.cvss !== undefined
      ? h('span', { title: v.cvss_vector || '' }, Number(v.cvss).toFixed(1)) : h('span', { class: 'muted' }, '—')),
    h('td', {}, h('code', { class: 'pkg' }, `${v.package}@${v.installed_version}`), ' → ',
      v.fixed_version ? h('code', { class: 'fixed' }, v.fixed_version) : h('span', { class: 'muted no-fix' }, 'no fix'),
      v.package_type ? h('div', { class: 'muted' }, v.package_type) : null),
    h('td', {}, reachBadge(v.reachability), v.reachability === 'loaded' ? loadedBy(v.evidence) : null),
    withImage ? h('td', {}, imageRef(v)) : null))));
}

// imageRef names a finding's image by its first reference, registry above repository:tag as the images list
// shows it, linking to the image.
function imageRef(v) {
  const link = `#/images/${encodeURIComponent(v.digest)}`;
  if (!v.refs || !v.refs.length) return h('a', { href: link, title: v.digest }, h('code', {}, shortDigest(v.digest)));
  const p = splitRef(v.refs[0]);
  return [h('div', { class: 'registry' }, p.registry),
    h('a', { class: 'repo', href: link, title: v.refs.join('\n') }, p.repository, p.tag ? `:${p.tag}` : ''),
    v.refs.length > 1 ? h('span', { class: 'muted' }, ` +${v.refs.length - 1}`) : null];
}

// vulnSection is an image's findings on its page, under where its SBOM stands.
function vulnSection(body) {
  if (!body.sbom) return null; // an older service
  const shown = body.vulnerabilities || [];
  const total = body.vulnerabilities_total ?? shown.length;
  const all = hrefFor('/vulnerabilities', { digest: body.digest });
  return h('section', { 'aria-labelledby': 'vulns-h' },
    h('h2', { id: 'vulns-h' }, 'Vulnerabilities', total ? h('span', { class: 'muted' }, ` — ${num(total)}`) : null),
    sbomLine(body.sbom),
    shown.length ? vulnTable(shown, false) : h('p', { class: 'muted', 'data-empty': 'image-vulnerabilities' }, noFindings(body.sbom)),
    total ? h('p', {}, h('a', { href: all, 'data-vulns-link': '' }, total > shown.length
      ? `All ${num(total)} findings in the Vulnerabilities view (${num(shown.length)} shown here)`
      : 'This image in the Vulnerabilities view (filters, CSV)')) : null);
}

function noFindings(s) {
  if (s.state === 'built') return s.database_version ? 'No known vulnerability in its packages.' : 'Not matched against the database yet.';
  if (s.state === 'pending') return 'Findings appear once its SBOM is built.';
  if (s.state === 'failed') return 'No findings: its SBOM could not be built.';
  return 'No findings.';
}

// sbomLine says where the image's SBOM stands: what it was built from, or why there is none.
function sbomLine(s) {
  const parts = [];
  const sep = () => h('span', { class: 'muted' }, ' · ');
  let flag;
  if (s.state === 'built') {
    flag = h('span', { class: 'flag flag-ok' }, '✓ SBOM built');
    for (const x of [s.source && s.format ? `${s.source} · ${s.format}` : s.source || s.format, s.distro,
      `${num(s.packages)} packages`, `${num(s.files)} files`,
      s.database_version ? `database ${s.database_version}` : 'not matched yet']) if (x) parts.push(sep(), x);
  } else if (s.state === 'failed') {
    flag = h('span', { class: 'flag' }, '⚠ SBOM failed');
    parts.push(sep(), `${num(s.attempts)} attempt${s.attempts === 1 ? '' : 's'}`);
    if (s.last_error) parts.push(': ', h('code', { class: 'sbom-error' }, s.last_error));
  } else if (s.state === 'pending') {
    flag = h('span', { class: 'flag flag-warn' }, 'SBOM pending');
    parts.push(sep(), 'waiting to be fetched from the registry or generated');
    if (s.last_error) parts.push(sep(), 'last error: ', h('code', { class: 'sbom-error' }, s.last_error));
  } else {
    flag = h('span', { class: 'flag flag-none' }, 'no SBOM');
    parts.push(sep(), 'vulnerability scanning is off (', h('code', {}, '-vulnerability-db'), ', docs/vulnerabilities.md), or the image is not running');
  }
  if (s.updated_at) parts.push(sep(), 'updated ', when(s.updated_at));
  return [
    h('p', { class: 'sbom', 'data-sbom': s.state }, flag, parts),
    s.truncated || (s.notes && s.notes.length) ? h('ul', { class: 'sbom-notes muted' },
      s.truncated ? h('li', {}, 'Truncated: a bound was reached, so some packages or files may be missing.') : null,
      (s.notes || []).map((n) => h('li', {}, n))) : null,
  ];
}

// ---------- preferences and start ----------

function initPrefs() {
  const btn = document.getElementById('pref-large');
  const apply = (on) => {
    document.documentElement.classList.toggle('large', on);
    btn.setAttribute('aria-pressed', String(on));
  };
  let on = false;
  try { on = localStorage.getItem('runtrust.large') === '1'; } catch { on = false; }
  apply(on);
  btn.addEventListener('click', () => {
    on = !on;
    apply(on);
    try { localStorage.setItem('runtrust.large', on ? '1' : '0'); } catch { /* private mode: the choice lasts this page */ }
  });
}

// loadOrder fills SEVERITIES and VERDICTS. A service that does not answer leaves them empty: the view that draws
// next says the service is unreachable, and the filters fill on the next load.
async function loadOrder() {
  try {
    const { body } = await api('/meta/order');
    SEVERITIES = body.severities;
    VERDICTS = body.verdicts;
  } catch { /* the view's own request reports it */ }
}

// ---------- who is signed in ----------

const whoEl = document.getElementById('who');
// me is /api/v1/me: who this page acts as (a signed-in user, or the development mode); null when signed out.
let me = null;

async function loadMe() {
  try {
    me = (await api('/me')).body;
  } catch (e) {
    me = null;
    if (e.status !== 401) return; // the view's own request says what is wrong
  }
  drawWho();
}

// signInHref starts a sign-in that comes back to this view.
function signInHref() {
  return `/auth/login?return_to=${encodeURIComponent(`/${location.hash}`)}`;
}

function drawWho() {
  if (!me) {
    whoEl.replaceChildren(h('a', { class: 'button', href: signInHref() }, 'Sign in'));
    return;
  }
  const scope = me.clusters ? `clusters ${me.clusters.join(', ')}` : 'every cluster';
  const label = me.kind === 'dev' ? 'Development mode: no sign-in, full access' : `${me.name} · ${me.role} · ${scope}`;
  whoEl.replaceChildren(h('span', { 'data-kind': me.kind, 'data-role': me.role }, label),
    me.kind === 'user' ? h('button', { type: 'button', onclick: signOut }, 'Sign out') : null);
}

async function signOut() {
  const res = await fetch('/auth/logout', { method: 'POST', headers: { 'X-CSRF-Token': me.csrf_token } });
  if (!res.ok) {
    statusEl.textContent = `Signing out failed: ${res.status} ${await res.text()}`;
    return;
  }
  me = null;
  drawWho();
  route();
}

function signInPrompt(out, why) {
  out.replaceChildren(h('h1', {}, 'Sign in to see the live assessment'),
    h('p', {}, 'The inventory of every cluster is only shown to people the service knows. ',
      'Scripts use an API token instead (runtime-service token create).'),
    h('p', { class: 'muted' }, why),
    h('p', {}, h('a', { class: 'button', href: signInHref(), 'data-signin': '' }, 'Sign in')));
}

initPrefs();
Promise.all([loadOrder(), loadMe()]).then(() => {
  window.addEventListener('hashchange', route);
  route();
});
