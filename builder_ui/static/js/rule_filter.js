// Filters, sorts and approvers inside rule actions (update_records, adjust_number's filter and
// guard, pick_row, count_records, for_each, recompute): the grid's visual AND/OR editor over the
// action's target table, whose values may also be expressions ({"$expr": "item.sku"}); a field +
// direction picker for sorts; a member picker for start_approval. A filter the visual editor
// cannot say (NOT, paths through links, unknown fields) opens as JSON, which stays available.
import { html, t, uid, fieldLabel } from './lib.js';
import { ConditionTree, fromTree, toTree } from './filter.js';
import { fieldByName, opsFor } from './fields.js';

const EMPTY = { and: [] };

// Can the visual editor show this filter without losing anything?
export function fitsTree(node, table, depth = 0) {
  if (node === undefined || node === null) return true;
  if (typeof node !== 'object' || Array.isArray(node)) return false;
  const keys = Object.keys(node);
  if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or')) {
    return Array.isArray(node[keys[0]]) && depth < 3 && node[keys[0]].every((x) => fitsTree(x, table, depth + 1));
  }
  if (!keys.every((k) => ['field', 'op', 'value'].includes(k))) return false;
  const f = fieldByName(table, node.field);
  if (!f || f.type === 'json' || !opsFor(f).includes(node.op)) return false;
  const v = node.value;
  const scalar = (x) => x === null || ['string', 'number', 'boolean'].includes(typeof x);
  return v === undefined || scalar(v) || (Array.isArray(v) && v.every(scalar))
    || (typeof v === 'object' && Object.keys(v).length === 1 && typeof v.$expr === 'string');
}

function treeOf(flt) {
  const tree = toTree(flt && (flt.and || flt.or) && !(flt.and || flt.or).length ? null : flt);
  if (!tree.items.length) tree.items.push({ k: uid(), field: '', op: '=', value: '' });
  return tree;
}

// The editor for a[name]; `st` is the action's UI state (a._filters), `draft` its JSON text box.
export function actionFilter(a, name, table, { id, required, draft, onChange, jsonBox }) {
  const all = a._filters || (a._filters = {});
  let st = all[name];
  if (!st || st.table !== table.api_name) {
    const fits = fitsTree(a[name], table);
    st = all[name] = { table: table.api_name, mode: fits ? 'tree' : 'json', tree: treeOf(fits ? a[name] : null) };
  }
  const write = () => {
    const f = fromTree(st.tree, table);
    if (f) a[name] = f; else if (required) a[name] = { ...EMPTY }; else delete a[name];
    draft.text = a[name] === undefined ? '' : JSON.stringify(a[name], null, 1); draft.bad = false;
    onChange();
  };
  const toMode = (m) => {
    if (m === st.mode) return;
    if (m === 'tree') {
      if (draft.bad || !fitsTree(a[name], table)) { st.cannot = true; return; }
      st.tree = treeOf(a[name]);
    } else {
      draft.text = a[name] === undefined ? '' : JSON.stringify(a[name], null, 1); draft.bad = false;
    }
    st.cannot = false; st.mode = m;
  };
  return html`<div class="action-filter" data-test=${id + '-editor'}>
    <div class="row" role="radiogroup" aria-label=${t('rfilter.mode')}>
      ${['tree', 'json'].map((m) => html`<label class="check"><input type="radio" name=${id + '-fmode'} value=${m} checked=${st.mode === m}
        data-test=${id + '-mode-' + m} onChange=${() => toMode(m)} /> ${t('rfilter.mode_' + m)}</label>`)}
      <span class="muted small">${t('rfilter.of_table', { table: table.api_name })}</span></div>
    ${st.cannot ? html`<div class="field-error" role="alert">${t('rfilter.cannot')}</div>` : null}
    ${st.mode === 'tree'
      ? html`${ConditionTree(table, st.tree, { testPrefix: id, exprValues: true, onChange: write })}
          <p class="hint">${required ? t('rfilter.empty_all') + ' ' : ''}${t('rfilter.expr_hint')}</p>`
      : jsonBox()}</div>`;
}

// Sorts: [{field, direction}] (at most 5, the schema's limit).
export function sortsEditor(a, name, table, { id, onChange }) {
  const list = Array.isArray(a[name]) ? a[name] : [];
  const put = (next) => { if (next.length) a[name] = next; else delete a[name]; onChange(); };
  const fields = table.fields.filter((f) => !['sub_table', 'json', 'multi_select', 'attachment'].includes(f.type));
  return html`<div class="sorts-editor" id=${id} role="group" aria-label=${t('rfilter.sorts')}>
    ${list.map((x, i) => html`<div class="row" key=${i}>
      <select aria-label=${t('rfilter.sort_field', { n: i + 1 })} data-test=${id + '-field-' + i} value=${x.field || ''}
        onChange=${(e) => put(list.map((y, j) => (j === i ? { ...y, field: e.target.value } : y)))}>
        <option value="">${t('common.choose')}</option>
        ${fieldByName(table, x.field) || !x.field ? null : html`<option value=${x.field}>${x.field}</option>`}
        ${fields.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>
      <select aria-label=${t('rfilter.sort_dir', { n: i + 1 })} data-test=${id + '-dir-' + i} value=${x.direction || 'asc'}
        onChange=${(e) => put(list.map((y, j) => (j === i ? { ...y, direction: e.target.value } : y)))}>
        <option value="asc">${t('rfilter.asc')}</option><option value="desc">${t('rfilter.desc')}</option></select>
      <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => put(list.filter((y, j) => j !== i))}>✕</button></div>`)}
    ${list.length < 5 ? html`<div class="row"><select aria-label=${t('rfilter.add_sort')} data-test=${id + '-add'}
        onChange=${(e) => { const v = e.target.value; e.target.value = ''; if (v) put([...list, { field: v, direction: 'asc' }]); }}>
        <option value="">＋ ${t('rfilter.add_sort')}</option>
        ${fields.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select></div>` : null}</div>`;
}

// start_approval's users: the tenant's members to tick (ids stored), or, when the caller may not
// list members, the ids typed by hand.
export function approverUsers(a, { id, members, set }) {
  const ap = a.approvers || {};
  const cur = new Set(ap.users || []);
  const put = (ids) => { const next = { ...ap }; if (ids.length) next.users = ids; else delete next.users; set(next); };
  if (!members) {
    return html`<input aria-label=${t('rfilter.user_ids')} class="mono" data-test=${id + '-users'} placeholder="12, 15" value=${(ap.users || []).join(', ')}
      onChange=${(e) => put(e.target.value.split(/[,\s]+/).filter((x) => /^\d+$/.test(x)).map(Number))} />`;
  }
  const known = new Set(members.map((m) => m.id));
  return html`<div class="approver-users" role="group" aria-label=${t('rfilter.users')}>
    <span class="muted small">${t('rfilter.users')}:</span>
    ${members.map((m) => html`<label class="check" key=${m.id}><input type="checkbox" checked=${cur.has(m.id)} data-test=${id + '-user-' + m.email}
      onChange=${(e) => { const n = new Set(cur); e.target.checked ? n.add(m.id) : n.delete(m.id); put([...n]); }} />
      ${m.name || m.email}${m.name ? html` <span class="muted small">${m.email}</span>` : null}</label>`)}
    ${[...cur].filter((x) => !known.has(x)).map((x) => html`<label class="check" key=${'u' + x}><input type="checkbox" checked
      onChange=${() => put([...cur].filter((y) => y !== x))} /> #${x} <span class="muted small">${t('rfilter.not_member')}</span></label>`)}</div>`;
}
