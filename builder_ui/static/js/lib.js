// Shared plumbing: Vue + htm, the app state, the API client, i18n helpers.
import { h, reactive, ref, computed, watch, onMounted, onBeforeUnmount, nextTick, createApp, markRaw, shallowRef }
  from '../vendor/vue.esm-browser.prod.js';
import htm from '../vendor/htm.module.js';
import { messages } from './i18n.js';

export { h, reactive, ref, computed, watch, onMounted, onBeforeUnmount, nextTick, createApp, markRaw, shallowRef };
export const html = htm.bind(h);

const savedLang = localStorage.getItem('zs.lang');
export const state = reactive({
  lang: savedLang || 'zh-CN', user: null, csrf: null, tenants: [], tenant: null,
  tables: [], fieldTypes: [], route: parseHash(), toast: null, booted: false,
});

export function t(key, vars) {
  const cat = messages[state.lang] || messages['zh-CN'];
  let s = cat[key] ?? messages.en[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
}
export function setLang(l) { state.lang = l; localStorage.setItem('zs.lang', l); document.documentElement.lang = l; }

// A label may be a string or {"zh-CN": .., "en": ..}.
export function label(x, fallback = '') {
  if (x == null) return fallback;
  if (typeof x === 'string') return x;
  return x[state.lang] || x['zh-CN'] || x.en || Object.values(x)[0] || fallback;
}
export const fieldLabel = (f) => label(f.label, f.api_name);

// -- routing (hash based: the server serves one page) --------------------------------------
export function parseHash() {
  const parts = (location.hash.replace(/^#\/?/, '') || '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, name: parts[0] || 'home' };
}
window.addEventListener('hashchange', () => { state.route = parseHash(); });
export function go(...parts) { location.hash = '#/' + parts.map(encodeURIComponent).join('/'); }

// -- API ------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.body = body; this.code = e.code; this.errors = e.errors || []; this.error = e;
  }
  get text() { return state.lang === 'zh-CN' ? (this.error.message_zh || this.message) : this.message; }
}
export function msgOf(x) {
  if (x instanceof ApiError) return x.text;
  if (x && (x.message || x.message_zh)) return state.lang === 'zh-CN' ? (x.message_zh || x.message) : x.message;
  return String(x);
}
// {pointer: message} in the current language
export function pointerMap(err, prefix = '') {
  const out = {};
  if (!(err instanceof ApiError)) return out;
  for (const e of err.errors) out[prefix + (e.pointer || '')] = msgOf(e);
  if (!err.errors.length) out[prefix || ''] = err.text;
  return out;
}

export function tpath(path) {
  return path.startsWith('/api/') ? path : `/api/v1/tenants/${encodeURIComponent(state.tenant)}${path}`;
}
export async function api(method, path, body, { raw = false, headers = {} } = {}) {
  const h2 = { Accept: 'application/json', ...headers };
  const init = { method, headers: h2, credentials: 'same-origin' };
  if (method !== 'GET' && state.csrf) h2['X-CSRF-Token'] = state.csrf;
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { h2['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const r = await fetch(tpath(path), init);
  if (raw) return r;
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    if (r.status === 401 && !path.includes('/auth/')) { state.user = null; }
    throw new ApiError(r.status, data);
  }
  return data;
}
export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b ?? {});
export const patch = (p, b) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);
export function qs(obj) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') u.set(k, typeof v === 'object' ? JSON.stringify(v) : v);
  const s = u.toString();
  return s ? '?' + s : '';
}

export function toast(text, kind = 'info') {
  state.toast = { text, kind, at: Date.now() };
  const at = state.toast.at;
  setTimeout(() => { if (state.toast && state.toast.at === at) state.toast = null; }, 4000);
}

export async function loadTables() {
  const d = await get('/tables');
  state.tables = d.tables;
  return d.tables;
}
export function tableByName(name) { return state.tables.find((x) => x.api_name === name || String(x.id) === String(name)); }
export function ftype(type) { return state.fieldTypes.find((x) => x.type === type); }

// Small shared bits of markup.
export function FieldError(msg) { return msg ? html`<div class="field-error" role="alert">${msg}</div>` : null; }
export function debounce(fn, ms) { let tm; return (...a) => { clearTimeout(tm); tm = setTimeout(() => fn(...a), ms); }; }
export const CHOICE_COLORS = ['gray', 'red', 'orange', 'yellow', 'green', 'teal', 'blue', 'purple', 'pink'];
export function choiceColor(field, value) {
  const c = (field?.options?.choices || []).find((x) => x.label === value);
  return (c && c.color) || 'gray';
}
export function uid() { return Math.random().toString(36).slice(2, 10); }
