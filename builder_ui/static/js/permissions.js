// Admin › permissions: a table's `permissions` document edited per role — table access,
// hidden / read-only / masked fields and a row scope (own records, a field equal to a member
// attribute, or a filter as JSON). Saved with PATCH /tables/<t>; the API's errors are shown at
// the control their pointer names. Owners and admins always have full access.
import { html, state, t, label, fieldLabel, patch, ApiError, msgOf, reactive, loadTables, toast, onMounted } from './lib.js';

const ROLES = ['builder', 'member', 'viewer'];
const DEFAULT_ACCESS = { builder: 'write', member: 'write', viewer: 'read' };
const OWN = { field: 'created_by', op: '=', value: '$me' };

// rows filter -> the scope editor's state
function scopeOf(rows) {
  if (!rows) return { mode: 'all', field: '', attr: '', json: '' };
  if (rows.field === 'created_by' && rows.op === '=' && rows.value === '$me' && Object.keys(rows).length === 3) return { mode: 'own', field: '', attr: '', json: '' };
  if (rows.field && rows.op === '=' && typeof rows.value === 'string' && /^\$user\.[A-Za-z_][A-Za-z0-9_]*$/.test(rows.value) && Object.keys(rows).length === 3) {
    return { mode: 'attr', field: rows.field, attr: rows.value.slice(6), json: '' };
  }
  return { mode: 'custom', field: '', attr: '', json: JSON.stringify(rows, null, 1) };
}

function roleState(conf) {
  conf = conf || {};
  return { access: conf.access || null, fields: { ...(conf.fields || {}) }, scope: scopeOf(conf.rows) };
}

export const PermissionsPanel = {
  setup() {
    const s = reactive({ table: '', roles: null, errors: {}, general: '', busy: false, dirty: false });
    const tables = () => state.tables.filter((x) => !x.parent_table);
    const tb = () => state.tables.find((x) => x.api_name === s.table);
    function pick(name) {
      s.table = name; s.errors = {}; s.general = ''; s.dirty = false;
      const p = (tb() && tb().permissions) || {};
      s.roles = Object.fromEntries(ROLES.map((r) => [r, roleState(p[r])]));
    }
    onMounted(async () => {
      if (!state.tables.length) await loadTables();
      if (!s.table && tables().length) pick(tables()[0].api_name);
    });
    const changed = (ptr) => { s.dirty = true; for (const k of Object.keys(s.errors)) if (k === ptr || k.startsWith(ptr + '/')) delete s.errors[k]; };
    const errAt = (ptr) => Object.entries(s.errors).filter(([k]) => k === ptr || k.startsWith(ptr + '/')).map(([, m]) => html`<div class="field-error" role="alert">${m}</div>`);
    const bad = (ptr) => Object.keys(s.errors).some((k) => k === ptr || k.startsWith(ptr + '/'));

    const SYSTEM = ['id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by'];
    const known = () => new Set([...SYSTEM, ...tb().fields.map((f) => f.api_name)]);
    const fieldsIn = (node) => (Array.isArray(node) ? node.flatMap(fieldsIn)
      : node && typeof node === 'object' ? [...(typeof node.field === 'string' ? [node.field] : []), ...Object.values(node).flatMap(fieldsIn)] : []);
    // the document sent to the API; local problems go to s.errors like the API's
    function documentOf() {
      const out = {};
      for (const r of ROLES) {
        const st = s.roles[r];
        const conf = { access: st.access || DEFAULT_ACCESS[r] };
        const fields = Object.fromEntries(Object.entries(st.fields).filter(([, v]) => v));
        if (Object.keys(fields).length) conf.fields = fields;
        const sc = st.scope;
        if (sc.mode === 'own') conf.rows = { ...OWN };
        else if (sc.mode === 'attr') {
          if (!sc.field) s.errors[`/permissions/${r}/rows/field`] = t('perm.pick_field');
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(sc.attr)) s.errors[`/permissions/${r}/rows/value`] = t('perm.bad_attribute');
          conf.rows = { field: sc.field, op: '=', value: '$user.' + sc.attr };
        } else if (sc.mode === 'custom') {
          try { conf.rows = JSON.parse(sc.json); } catch (e) { s.errors[`/permissions/${r}/rows`] = t('rules.bad_json'); continue; }
          // the API checks the filter's shape only; an unknown field would lock the role out on every read
          const unknown = fieldsIn(conf.rows).filter((f) => !known().has(f.split('.')[0]));
          if (unknown.length) s.errors[`/permissions/${r}/rows`] = t('perm.unknown_field', { name: unknown[0] });
        }
        out[r] = conf;
      }
      return out;
    }
    async function save() {
      s.errors = {}; s.general = '';
      const doc = documentOf();
      if (Object.keys(s.errors).length) { s.general = t('perm.fix'); return; }
      s.busy = true;
      try {
        await patch(`/tables/${s.table}`, { permissions: doc });
        await loadTables();
        pick(s.table);
        toast(t('perm.saved'), 'ok');
      } catch (e) {
        if (e instanceof ApiError && e.errors.length) for (const x of e.errors) s.errors[x.pointer || ''] = msgOf(x);
        else {  // a bad row filter answers with the pointer in its message only
          const m = /\/permissions\/[a-z]+\/rows[^\s:]*/.exec(e.message || '');
          if (m) s.errors[m[0]] = msgOf(e);
        }
        s.general = msgOf(e);
      } finally { s.busy = false; }
    }

    function roleRow(r) {
      const st = s.roles[r], sc = st.scope, base = `/permissions/${r}`;
      const access = st.access || DEFAULT_ACCESS[r];
      const fields = tb().fields;
      return html`<tr key=${r} data-test=${'perm-' + r}>
        <th scope="row">${t('role.' + r)}</th>
        <td class=${bad(base + '/access') ? 'has-error' : ''}>
          <select aria-label=${t('perm.access') + ' ' + t('role.' + r)} data-test=${'perm-' + r + '-access'} value=${access}
            onChange=${(e) => { st.access = e.target.value; changed(base + '/access'); }}>
            ${['none', 'read', 'write'].map((x) => html`<option value=${x} disabled=${r === 'viewer' && x === 'write'}>${t('perm.access_' + x)}</option>`)}</select>
          ${errAt(base + '/access')}</td>
        <td class=${bad(base + '/rows') ? 'has-error' : ''}>
          <div class="row wrap">
            <select aria-label=${t('perm.rows') + ' ' + t('role.' + r)} data-test=${'perm-' + r + '-scope'} value=${sc.mode}
              onChange=${(e) => { sc.mode = e.target.value; if (sc.mode === 'custom' && !sc.json) sc.json = '{"field": "", "op": "=", "value": "$user."}'; changed(base + '/rows'); }}>
              ${['all', 'own', 'attr', 'custom'].map((x) => html`<option value=${x}>${t('perm.scope_' + x)}</option>`)}</select>
            ${sc.mode === 'attr' ? html`
              <select aria-label=${t('perm.scope_field') + ' ' + t('role.' + r)} data-test=${'perm-' + r + '-scope-field'} value=${sc.field}
                aria-invalid=${bad(base + '/rows/field')} onChange=${(e) => { sc.field = e.target.value; changed(base + '/rows'); }}>
                <option value="">${t('common.choose')}</option>
                ${fields.filter((f) => !['sub_table', 'json', 'attachment'].includes(f.type)).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>
              <span>= ${t('perm.member_attribute')}</span>
              <input class="mono" list="perm-attrs" aria-label=${t('perm.member_attribute') + ' ' + t('role.' + r)} data-test=${'perm-' + r + '-scope-attr'}
                placeholder="region" value=${sc.attr} aria-invalid=${bad(base + '/rows/value')} onInput=${(e) => { sc.attr = e.target.value.trim(); changed(base + '/rows'); }} />` : null}
          </div>
          ${sc.mode === 'custom' ? html`<textarea class="mono" rows="3" aria-label=${t('perm.scope_custom') + ' ' + t('role.' + r)} data-test=${'perm-' + r + '-scope-json'}
              value=${sc.json} onInput=${(e) => { sc.json = e.target.value; changed(base + '/rows'); }}></textarea>
            <div class="hint">${t('perm.custom_hint')}</div>` : null}
          ${errAt(base + '/rows')}</td></tr>`;
    }

    function fieldMatrix() {
      const fields = tb().fields;
      return html`<table class="list perm-fields" data-test="perm-fields">
        <caption>${t('perm.fields')}</caption>
        <thead><tr><th scope="col">${t('filter.field')}</th>${ROLES.map((r) => html`<th scope="col">${t('role.' + r)}</th>`)}</tr></thead>
        <tbody>${fields.map((f) => html`<tr key=${f.api_name}><th scope="row">${fieldLabel(f)} <span class="muted small mono">${f.api_name}</span></th>
          ${ROLES.map((r) => {
            const ptr = `/permissions/${r}/fields/${f.api_name}`;
            const v = s.roles[r].fields[f.api_name] || '';
            return html`<td class=${bad(ptr) ? 'has-error' : ''}><select aria-label=${fieldLabel(f) + ' · ' + t('role.' + r)} data-test=${`perm-${r}-field-${f.api_name}`}
                value=${v} onChange=${(e) => { s.roles[r].fields[f.api_name] = e.target.value; changed(ptr); }}>
                <option value="">${t('perm.f_visible')}</option>
                <option value="read_only">${t('perm.f_read_only')}</option>
                <option value="hidden">${t('perm.f_hidden')}</option>
                ${f.type === 'phone' || v === 'masked' ? html`<option value="masked">${t('perm.f_masked')}</option>` : null}</select>${errAt(ptr)}</td>`;
          })}</tr>`)}</tbody></table>`;
    }

    return () => html`<div class="permissions" data-test="permissions">
      <div class="row">
        <label for="perm-table">${t('rules.table')}</label>
        <select id="perm-table" data-test="perm-table" value=${s.table}
          onChange=${(e) => { if (s.dirty && !confirm(t('perm.discard'))) { e.target.value = s.table; return; } pick(e.target.value); }}>
          ${tables().map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>
        <span class="spacer"></span>
        ${s.dirty ? html`<span class="muted small">${t('designer.unsaved')}</span>` : null}
        <button type="button" class="primary" data-test="perm-save" disabled=${s.busy || !s.roles} onClick=${save}>${t('common.save')}</button>
      </div>
      ${s.general ? html`<div class="banner error" role="alert" data-test="perm-errors">${s.general}</div>` : null}
      ${s.roles && tb() ? html`
        <table class="list perm-roles"><caption>${t('perm.roles')}</caption>
          <thead><tr><th scope="col">${t('admin.role')}</th><th scope="col">${t('perm.access')}</th><th scope="col">${t('perm.rows')}</th></tr></thead>
          <tbody>
            <tr class="muted"><th scope="row">${t('role.owner')} / ${t('role.admin')}</th><td>${t('perm.access_write')}</td><td>${t('perm.always_full')}</td></tr>
            ${ROLES.map(roleRow)}</tbody></table>
        <datalist id="perm-attrs"><option value="region"></option><option value="warehouse"></option><option value="team"></option></datalist>
        ${fieldMatrix()}
        <p class="hint">${t('perm.hint')}</p>` : html`<p class="muted">${t('common.none')}</p>`}
    </div>`;
  },
};
