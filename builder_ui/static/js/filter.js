// AND/OR filter builder producing the API's filter language (one level of nested groups).
import { html, t, reactive, uid } from './lib.js';
import { fieldByName, opsFor, opLabel, fieldLabel, NUMERIC } from './fields.js';

const NO_VALUE = new Set(['is_empty', 'is_not_empty', 'today']);
const LIST_VALUE = new Set(['in', 'not_in', 'has_any', 'has_all', 'between']);

function toTree(f) {
  const conj = f && f.or ? 'or' : 'and';
  const items = f ? (f.and || f.or || [f]) : [];
  return { conj, items: items.map((x) => (x.and || x.or) ? { k: uid(), group: toTree(x) } : leafIn(x)) };
}
// A rule action's filter may take a value from an expression: {"$expr": "item.sku"} (exprValues).
function leafIn(x) {
  const v = x.value;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.$expr === 'string') return { k: uid(), ...x, value: v.$expr, expr: true };
  return { k: uid(), ...x };
}
function valueOut(fd, op, v) {
  if (NO_VALUE.has(op)) return undefined;
  if (LIST_VALUE.has(op)) {
    const parts = (Array.isArray(v) ? v : String(v ?? '').split(',')).map((x) => String(x).trim()).filter((x) => x !== '');
    return fd && NUMERIC.has(fd.type) ? parts.map(Number) : parts;
  }
  if (fd && NUMERIC.has(fd.type) && v !== '' && v !== null && !isNaN(Number(v))) return Number(v);
  if (fd && fd.type === 'boolean') return v === true || v === 'true';
  return v;
}
export function fromTree(tree, table) {
  const items = tree.items.map((x) => {
    if (x.group) return fromTree(x.group, table);
    if (!x.field) return null;
    const fd = fieldByName(table, x.field);
    const c = { field: x.field, op: x.op || '=' };
    const v = x.expr && !NO_VALUE.has(c.op) ? { $expr: String(x.value ?? '') } : valueOut(fd, c.op, x.value);
    if (v !== undefined) c.value = v;
    return c;
  }).filter(Boolean);
  if (!items.length) return null;
  return items.length === 1 && !tree.items[0].group ? items[0] : { [tree.conj]: items };
}

export function ConditionTree(table, tree, { nested = false, onChange = () => {}, testPrefix = 'cond', exprValues = false } = {}) {
  const fields = table.fields.filter((f) => f.type !== 'json');
  const changed = () => onChange();
  return html`<div class=${'cond-group' + (nested ? ' nested' : '')} role="group" aria-label=${t('filter.group')}>
    <div class="row"><label class="sr-only" for=${testPrefix + '-conj'}>${t('filter.match')}</label>
      <select id=${testPrefix + '-conj'} value=${tree.conj} data-test=${testPrefix + '-conj'} onChange=${(e) => { tree.conj = e.target.value; changed(); }}>
        <option value="and">${t('filter.all')}</option><option value="or">${t('filter.any')}</option></select></div>
    ${tree.items.map((x, i) => x.group
      ? html`<div class="cond-item" key=${x.k}>${ConditionTree(table, x.group, { nested: true, onChange, testPrefix: testPrefix + '-g' + i, exprValues })}
          <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { tree.items.splice(i, 1); changed(); }}>✕</button></div>`
      : html`<div class="cond-item" key=${x.k}>
          <select aria-label=${t('filter.field')} value=${x.field || ''} data-test=${testPrefix + '-field-' + i}
            onChange=${(e) => { x.field = e.target.value; x.op = opsFor(fieldByName(table, x.field))[0]; changed(); }}>
            <option value="">${t('filter.field')}</option>
            ${fields.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>
          <select aria-label=${t('filter.op')} value=${x.op || '='} data-test=${testPrefix + '-op-' + i} onChange=${(e) => { x.op = e.target.value; changed(); }}>
            ${opsFor(fieldByName(table, x.field)).map((op) => html`<option value=${op}>${opLabel(op)}</option>`)}</select>
          ${NO_VALUE.has(x.op) ? null : x.expr
            ? html`<input aria-label=${t('filter.value_expr')} class="mono" value=${x.value ?? ''} data-test=${testPrefix + '-value-' + i}
                placeholder="item.sku" onInput=${(e) => { x.value = e.target.value; changed(); }} />`
            : valueInput(fieldByName(table, x.field), x, changed, testPrefix + '-value-' + i)}
          ${exprValues && !NO_VALUE.has(x.op) ? html`<select aria-label=${t('filter.value_kind')} value=${x.expr ? 'expr' : 'value'}
              data-test=${testPrefix + '-kind-' + i} onChange=${(e) => { x.expr = e.target.value === 'expr'; x.value = ''; changed(); }}>
              <option value="value">${t('filter.kind_value')}</option><option value="expr">${t('filter.kind_expr')}</option></select>` : null}
          <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { tree.items.splice(i, 1); changed(); }}>✕</button>
        </div>`)}
    <div class="row">
      <button type="button" data-test=${testPrefix + '-add'} onClick=${() => { tree.items.push({ k: uid(), field: '', op: '=', value: '' }); changed(); }}>＋ ${t('filter.add_condition')}</button>
      ${nested ? null : html`<button type="button" onClick=${() => { tree.items.push({ k: uid(), group: { conj: tree.conj === 'and' ? 'or' : 'and', items: [{ k: uid(), field: '', op: '=', value: '' }] } }); changed(); }}>＋ ${t('filter.add_group')}</button>`}
    </div></div>`;
}

function valueInput(fd, x, changed, test) {
  if (fd && (fd.type === 'single_select' || fd.type === 'multi_select') && !LIST_VALUE.has(x.op)) {
    return html`<select aria-label=${t('filter.value')} value=${x.value ?? ''} data-test=${test} onChange=${(e) => { x.value = e.target.value; changed(); }}>
      <option value=""></option>${(fd.options?.choices || []).map((c) => html`<option value=${c.label}>${c.label}</option>`)}</select>`;
  }
  if (fd && fd.type === 'boolean') {
    return html`<select aria-label=${t('filter.value')} value=${String(x.value ?? 'true')} data-test=${test} onChange=${(e) => { x.value = e.target.value; changed(); }}>
      <option value="true">${t('common.yes')}</option><option value="false">${t('common.no')}</option></select>`;
  }
  return html`<input aria-label=${t('filter.value')} value=${Array.isArray(x.value) ? x.value.join(',') : (x.value ?? '')} data-test=${test}
    placeholder=${LIST_VALUE.has(x.op) ? t('filter.comma_list') : ''} onInput=${(e) => { x.value = e.target.value; changed(); }} />`;
}

export const FilterBuilder = {
  props: ['table', 'value'],
  emits: ['apply', 'close'],
  setup(props, { emit }) {
    const tree = reactive(toTree(props.value));
    if (!tree.items.length) tree.items.push({ k: uid(), field: '', op: '=', value: '' });
    return () => html`<div class="popover filter-pop" role="dialog" aria-label=${t('grid.filter')} data-test="filter-builder"
        onKeydown=${(e) => e.key === 'Escape' && emit('close')}>
      ${ConditionTree(props.table, tree, { onChange: () => {} })}
      <div class="row end">
        <button type="button" data-test="filter-clear" onClick=${() => { emit('apply', null); emit('close'); }}>${t('filter.clear')}</button>
        <button type="button" class="primary" data-test="filter-apply" onClick=${() => emit('apply', fromTree(tree, props.table))}>${t('filter.apply')}</button>
      </div></div>`;
  },
};
export { toTree };
