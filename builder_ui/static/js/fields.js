// Showing and editing one value of a field, shared by the grid, forms and kanban cards.
import { html, t, label, state, choiceColor, fieldLabel } from './lib.js';

export const NUMERIC = new Set(['number', 'currency', 'percent']);
export const INLINE_EDITABLE = new Set(['text', 'long_text', 'email', 'phone', 'url', 'number', 'currency', 'percent',
  'date', 'datetime', 'single_select', 'boolean', 'link']);
export const READ_ONLY = new Set(['formula', 'lookup', 'rollup', 'autonumber', 'created_by', 'modified_by', 'created_time', 'modified_time']);

export function isEditable(f) { return !READ_ONLY.has(f.type); }

export function display(f, v) {
  if (v === null || v === undefined || v === '') return '';
  switch (f.type) {
    case 'single_select': return html`<span class=${'pill c-' + choiceColor(f, v)}>${v}</span>`;
    case 'multi_select': return (v || []).map((x) => html`<span class=${'pill c-' + choiceColor(f, x)}>${x}</span>`);
    case 'boolean': return v ? '✓' : '';
    case 'currency': return (f.options?.symbol || '¥') + Number(v).toFixed(f.options?.decimals ?? 2);
    case 'percent': return `${v}%`;
    case 'datetime': case 'created_time': case 'modified_time': return String(v).slice(0, 16).replace('T', ' ');
    case 'attachment': return (v || []).map((a) => a.filename).join(', ');
    case 'sub_table': return Array.isArray(v) ? t('grid.n_rows', { n: v.length }) : '';
    case 'link': return Array.isArray(v) ? v.map((x) => '#' + (x.id ?? x)).join(', ') : '#' + (v.id ?? v);
    case 'address': case 'json': return typeof v === 'object' ? JSON.stringify(v) : String(v);
    default: return String(v);
  }
}

export function toInput(f, v) {
  if (v === null || v === undefined) return '';
  if (f.type === 'datetime') return String(v).slice(0, 16);
  if (f.type === 'link') return Array.isArray(v) ? v.map((x) => x.id ?? x).join(',') : String(v.id ?? v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function fromInput(f, s) {
  if (s === '' || s === null || s === undefined) return null;
  if (NUMERIC.has(f.type)) return isNaN(Number(s)) ? s : Number(s);
  if (f.type === 'boolean') return !!s;
  if (f.type === 'link') {
    const ids = String(s).split(/[,\s]+/).filter(Boolean).map((x) => (isNaN(+x) ? x : +x));
    return f.options?.relationship && f.options.relationship !== 'many_to_one' ? ids : (ids[0] ?? null);
  }
  if (f.type === 'json' || f.type === 'address') { try { return JSON.parse(s); } catch (e) { return s; } }
  return s;
}

function inputType(f) {
  if (NUMERIC.has(f.type)) return 'number';
  return { date: 'date', datetime: 'datetime-local', email: 'email', url: 'url', phone: 'tel' }[f.type] || 'text';
}

// An editor control for a form; onChange gets the API value.
export function editor(f, value, onChange, attrs = {}) {
  const id = attrs.id;
  if (f.type === 'single_select') {
    return html`<select id=${id} value=${value ?? ''} onChange=${(e) => onChange(e.target.value || null)} ...${attrs}>
      <option value="">—</option>${(f.options?.choices || []).map((c) => html`<option value=${c.label}>${c.label}</option>`)}</select>`;
  }
  if (f.type === 'multi_select') {
    const cur = new Set(value || []);
    return html`<div class="multi" role="group" ...${attrs}>${(f.options?.choices || []).map((c) => html`<label class="check">
      <input type="checkbox" checked=${cur.has(c.label)} onChange=${(e) => { const n = new Set(cur); e.target.checked ? n.add(c.label) : n.delete(c.label); onChange([...n]); }} />
      <span class=${'pill c-' + (c.color || 'gray')}>${c.label}</span></label>`)}</div>`;
  }
  if (f.type === 'boolean') return html`<input type="checkbox" id=${id} checked=${!!value} onChange=${(e) => onChange(e.target.checked)} ...${attrs} />`;
  if (f.type === 'long_text' || f.type === 'json' || f.type === 'address') {
    return html`<textarea id=${id} rows="3" value=${toInput(f, value)} onInput=${(e) => onChange(fromInput(f, e.target.value))} ...${attrs}></textarea>`;
  }
  if (!isEditable(f) || f.type === 'attachment') return html`<output id=${id} class="readonly">${display(f, value)}</output>`;
  return html`<input id=${id} type=${inputType(f)} step=${NUMERIC.has(f.type) ? 'any' : undefined} value=${toInput(f, value)}
    onInput=${(e) => onChange(fromInput(f, e.target.value))} ...${attrs} />`;
}

export function visibleFields(table) {
  return table.fields.filter((f) => f.type !== 'json');
}
export function primaryField(table) {
  return table.fields.find((f) => f.api_name === table.primary_field)
    || table.fields.find((f) => ['autonumber', 'text'].includes(f.type)) || table.fields[0];
}
export function fieldByName(table, name) { return table.fields.find((f) => f.api_name === name); }
export const opLabel = (op) => t('op.' + op) === 'op.' + op ? op : t('op.' + op);
export function opsFor(f) {
  if (!f) return ['='];
  const ft = state.fieldTypes.find((x) => x.type === f.type);
  return ft ? ft.operators : ['=', '!='];
}
export { label, fieldLabel };
