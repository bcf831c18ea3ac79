// Rule builder: trigger -> condition (visual tree or expression) -> actions (forms generated
// from the rule catalogue's parameter schemas); on/off switch, dry run, run log.
import { html, state, t, label, fieldLabel, get, post, patch, del, ApiError, msgOf, loadTables, tableByName, go,
  reactive, onMounted, toast, uid } from './lib.js';
import { ConditionTree, fromTree, toTree } from './filter.js';
import { fieldByName } from './fields.js';

const COMMON = ['update_record', 'notify', 'reject', 'lock_fields', 'adjust_number'];
const ROLES = ['owner', 'admin', 'builder', 'member', 'viewer'];
const isExprSchema = (s) => s && Array.isArray(s.oneOf) && s.oneOf.some((x) => x.type === 'string') && s.oneOf.some((x) => x.required && x.required.includes('value'));

function blankRule(table) {
  return { api_name: '', label: '', table: table || '', trigger: { type: 'record_updated', fields: [] }, condition: null, actions: [], enabled: true };
}

export const RulesScreen = {
  props: ['ruleName'],
  setup(props) {
    const s = reactive({ rules: [], cat: null, def: null, existing: null, condMode: 'tree', tree: toTree(null), expr: '',
      errors: {}, general: '', busy: false, dryId: '', dry: null, dryError: '', runs: [], showRuns: false, jsonDraft: {} });
    async function refresh() {
      const [r, c] = await Promise.all([get('/rules'), s.cat ? null : get('/rule-catalogue'), state.tables.length ? null : loadTables()]);
      s.rules = r.rules; if (c) s.cat = c;
    }
    onMounted(async () => {
      try { await refresh(); } catch (e) { s.general = msgOf(e); }
      if (props.ruleName === 'new') edit(null);
      else if (props.ruleName) edit(s.rules.find((x) => x.api_name === props.ruleName) || null);
    });
    function edit(rule) {
      s.errors = {}; s.general = ''; s.dry = null; s.runs = []; s.showRuns = false; s.jsonDraft = {};
      if (!rule) { s.existing = null; s.def = blankRule(state.tables.find((x) => !x.parent_table)?.api_name); s.condMode = 'tree'; s.tree = toTree(null); s.tree.items.push({ k: uid(), field: '', op: '>', value: '' }); s.expr = ''; return; }
      s.existing = rule;
      const { id, position, disabled_reason, updated_at, ...def } = JSON.parse(JSON.stringify(rule));
      def.actions = (def.actions || []).map((a) => ({ ...a, _k: uid() }));
      def.trigger = def.trigger || { type: 'record_updated' };
      s.def = def;
      if (typeof def.condition === 'string') { s.condMode = 'expr'; s.expr = def.condition; s.tree = toTree(null); }
      else if (def.condition && def.condition.filter) { s.condMode = 'tree'; s.tree = toTree(def.condition.filter); s.expr = ''; }
      else { s.condMode = 'none'; s.tree = toTree(null); s.expr = ''; }
    }
    const table = () => tableByName(s.def?.table);
    const fe = (p) => s.errors[p] ? html`<div class="field-error" role="alert">${s.errors[p]}</div>` : null;
    const feUnder = (p) => Object.entries(s.errors).filter(([k]) => k === p || k.startsWith(p + '/')).map(([k, m]) => html`<div class="field-error" role="alert">${k !== p ? k.slice(p.length + 1) + ': ' : ''}${m}</div>`);

    function definition() {
      const d = JSON.parse(JSON.stringify(s.def));
      d.actions = d.actions.map(({ _k, ...a }) => a);
      delete d._apiTouched;
      if (!d.label) delete d.label;
      if (!d.table) delete d.table;
      const tr = d.trigger;
      if (tr.type !== 'record_updated' || !(tr.fields && tr.fields.length)) delete tr.fields;
      for (const k of Object.keys(tr)) if (tr[k] === '' || tr[k] === null) delete tr[k];
      if (s.condMode === 'expr') d.condition = s.expr;
      else if (s.condMode === 'tree') { const f = fromTree(s.tree, table()); if (f) d.condition = { filter: f }; else delete d.condition; }
      else delete d.condition;
      return d;
    }
    async function save() {
      s.errors = {}; s.general = ''; s.busy = true;
      if (Object.values(s.jsonDraft).some((x) => x.bad)) { s.general = t('rules.fix_json'); s.busy = false; return; }
      const d = definition();
      try {
        const res = s.existing ? await patch(`/rules/${s.existing.api_name}`, d) : await post('/rules', d);
        toast(t('rules.saved'), 'ok');
        await refresh();
        edit(s.rules.find((x) => x.id === res.rule.id));
        go('rules', res.rule.api_name);
      } catch (e) {
        if (e instanceof ApiError && e.errors.length) { for (const x of e.errors) s.errors[x.pointer || ''] = msgOf(x); s.general = e.text; }
        else s.general = msgOf(e);
      } finally { s.busy = false; }
    }
    async function toggle(rule, on) {
      try { await patch(`/rules/${rule.api_name}`, { enabled: on }); await refresh(); if (s.existing && s.existing.id === rule.id) s.def.enabled = on; }
      catch (e) { toast(msgOf(e), 'error'); }
    }
    async function remove() {
      if (!s.existing || !confirm(t('rules.confirm_delete'))) return;
      await del(`/rules/${s.existing.api_name}`); s.def = null; s.existing = null; await refresh(); go('rules');
    }
    async function dryRun() {
      s.dry = null; s.dryError = '';
      try { s.dry = await post(`/rules/${s.existing.api_name}/dry-run`, s.def.table ? { record_id: Number(s.dryId) } : {}); }
      catch (e) { s.dryError = e instanceof ApiError && e.errors.length ? msgOf(e.errors[0]) : msgOf(e); }
    }
    async function loadRuns() {
      s.showRuns = true;
      try { s.runs = (await get(`/rules/${s.existing.api_name}/runs?limit=50`)).runs; } catch (e) { s.general = msgOf(e); }
    }

    // -- action parameter forms generated from the catalogue's schemas ---------------------------
    function fieldsOf(a) { return (tableByName(a.table || s.def.table) || { fields: [] }).fields; }
    function paramControl(a, i, name, schema, required) {
      const ptr = `/actions/${i}/${name}`;
      const id = `a${i}-${name}`;
      const lbl = html`<label for=${id}>${t('param.' + name) === 'param.' + name ? name : t('param.' + name)}${required ? ' *' : ''}</label>`;
      const set = (v) => { if (v === '' || v === undefined) delete a[name]; else a[name] = v; delete s.errors[ptr]; };
      let ctl;
      if ((name === 'table') && schema.$ref) {
        ctl = html`<select id=${id} value=${a[name] || ''} onChange=${(e) => set(e.target.value)} data-test=${id}>
          <option value="">${t('common.choose')}</option>${state.tables.map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>`;
      } else if ((name === 'field') && schema.$ref) {
        ctl = html`<select id=${id} value=${a[name] || ''} onChange=${(e) => set(e.target.value)} data-test=${id}>
          <option value="">${t('common.choose')}</option>${fieldsOf(a).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>`;
      } else if (name === 'fields' && schema.type === 'array') {
        const cur = new Set(a[name] || []);
        ctl = html`<div class="multi" id=${id} role="group" aria-label=${name}>${fieldsOf(a).map((f) => html`<label class="check">
          <input type="checkbox" checked=${cur.has(f.api_name)} data-test=${id + '-' + f.api_name}
            onChange=${(e) => { const n = new Set(a[name] || []); e.target.checked ? n.add(f.api_name) : n.delete(f.api_name); set([...n]); }} /> ${fieldLabel(f)}</label>`)}</div>`;
      } else if (schema.type === 'object' && schema.additionalProperties && isExprSchema(schema.additionalProperties)) {
        ctl = valuesEditor(a, i, name, id);
      } else if (isExprSchema(schema)) {
        const v = a[name];
        ctl = html`<input id=${id} class="mono" data-test=${id} value=${v && typeof v === 'object' ? v.value : (v ?? '')} placeholder=${t('rules.expr_placeholder')}
          onInput=${(e) => { const x = e.target.value; set(x !== '' && !isNaN(Number(x)) ? Number(x) : x); }} />`;
      } else if (schema.enum) {
        ctl = html`<select id=${id} value=${a[name] || ''} onChange=${(e) => set(e.target.value)} data-test=${id}><option value=""></option>
          ${schema.enum.map((x) => html`<option value=${x}>${x}</option>`)}</select>`;
      } else if (name === 'approvers') {
        const roles = new Set((a.approvers && a.approvers.roles) || []);
        ctl = html`<div class="multi" id=${id} role="group">${ROLES.map((r) => html`<label class="check"><input type="checkbox" checked=${roles.has(r)}
          onChange=${(e) => { const n = new Set(roles); e.target.checked ? n.add(r) : n.delete(r); set({ ...(a.approvers || {}), roles: [...n] }); }} /> ${t('role.' + r)}</label>`)}</div>`;
      } else if (schema.type === 'string') {
        ctl = (schema.maxLength || 0) > 4000  // a message template: Jinja placeholders from the record's fields
          ? html`<textarea id=${id} rows="3" data-test=${id} value=${a[name] ?? ''} onInput=${(e) => set(e.target.value)}></textarea>
              <select aria-label=${t('rules.insert_field')} onChange=${(e) => { if (e.target.value) { set((a[name] || '') + `{{ record.${e.target.value} }}`); e.target.value = ''; } }}>
                <option value="">{{ }} ${t('rules.insert_field')}</option>
                ${fieldsOf(a).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>`
          : html`<input id=${id} data-test=${id} value=${a[name] ?? ''} onInput=${(e) => set(e.target.value)} />`;
      } else if (schema.type === 'integer' || schema.type === 'number') {
        ctl = html`<input id=${id} type="number" value=${a[name] ?? ''} onInput=${(e) => set(e.target.value === '' ? undefined : Number(e.target.value))} />`;
      } else {
        const key = `${a._k}.${name}`;
        const draft = s.jsonDraft[key] || (s.jsonDraft[key] = { text: a[name] === undefined ? '' : JSON.stringify(a[name], null, 1), bad: false });
        ctl = html`<textarea id=${id} class="mono" rows="3" value=${draft.text} placeholder=${schema.type === 'array' ? '[...]' : '{...}'}
          onInput=${(e) => { draft.text = e.target.value; try { const v = draft.text.trim() ? JSON.parse(draft.text) : undefined; draft.bad = false; set(v); } catch (err) { draft.bad = true; } }}></textarea>
          ${draft.bad ? html`<div class="field-error" role="alert">${t('rules.bad_json')}</div>` : null}`;
      }
      return html`<div class=${'ctl' + (Object.keys(s.errors).some((k) => k === ptr || k.startsWith(ptr + '/')) ? ' has-error' : '')} key=${name}>${lbl}${ctl}${feUnder(ptr)}</div>`;
    }
    function valuesEditor(a, i, name, id) {
      const obj = a[name] || (a[name] = {});
      const fields = fieldsOf(a);
      return html`<div class="values-editor" id=${id} role="group">
        ${Object.entries(obj).map(([k, v]) => {
          const f = fieldByName({ fields }, k);
          const literal = v && typeof v === 'object' && 'value' in v;
          const setV = (x) => { obj[k] = literal ? { value: x } : x; delete s.errors[`/actions/${i}/${name}/${k}`]; };
          return html`<div class="row" key=${k}>
            <span class="mono">${f ? fieldLabel(f) : k}</span> =
            ${literal && f && f.type === 'single_select'
              ? html`<select aria-label=${k} data-test=${id + '-' + k} value=${v.value ?? ''} onChange=${(e) => setV(e.target.value)}>
                  <option value=""></option>${f.options.choices.map((c) => html`<option value=${c.label}>${c.label}</option>`)}</select>`
              : html`<input aria-label=${k} class=${literal ? '' : 'mono'} data-test=${id + '-' + k} value=${literal ? (v.value ?? '') : v}
                  onInput=${(e) => setV(literal && f && ['number', 'currency', 'percent'].includes(f.type) && e.target.value !== '' ? Number(e.target.value) : e.target.value)} />`}
            <select aria-label=${t('rules.value_kind')} value=${literal ? 'value' : 'expr'}
              onChange=${(e) => { obj[k] = e.target.value === 'value' ? { value: literal ? v.value : v } : (literal ? JSON.stringify(v.value ?? '') .replace(/^"|"$/g, "'") : v); }}>
              <option value="value">${t('rules.literal')}</option><option value="expr">${t('rules.expression')}</option></select>
            <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { delete obj[k]; }}>✕</button>
          </div>`;
        })}
        <div class="row"><select aria-label=${t('rules.set_field')} data-test=${id + '-add'} onChange=${(e) => { if (e.target.value) { obj[e.target.value] = { value: '' }; e.target.value = ''; } }}>
          <option value="">＋ ${t('rules.set_field')}</option>
          ${fields.filter((f) => !(f.api_name in obj)).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select></div>
      </div>`;
    }
    function actionForm(a, i) {
      const spec = s.cat.actions.find((x) => x.type === a.type);
      const params = spec ? Object.entries(spec.params) : [];
      return html`<div class="action card" key=${a._k} data-test=${'action-' + i}>
        <div class="row"><strong>${i + 1}. ${spec ? label(spec.label) : a.type}</strong><span class="spacer"></span>
          <button type="button" class="icon" aria-label=${t('designer.move_up')} disabled=${i === 0} onClick=${() => { const l = s.def.actions; l.splice(i - 1, 0, l.splice(i, 1)[0]); }}>↑</button>
          <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => s.def.actions.splice(i, 1)}>✕</button></div>
        ${fe(`/actions/${i}`)}${fe(`/actions/${i}/type`)}
        <div class="param-grid">${params.map(([n, sc]) => paramControl(a, i, n, sc, spec.required.includes(n)))}</div>
      </div>`;
    }

    function editor() {
      const d = s.def, tb = table();
      const tr = d.trigger;
      const triggers = s.cat ? Object.entries(s.cat.triggers) : [];
      const actions = s.cat ? [...s.cat.actions].sort((x, y) => (COMMON.includes(y.type) - COMMON.includes(x.type))) : [];
      return html`<div class="rule-editor" data-test="rule-editor">
        <div class="row"><h2>${s.existing ? label(s.existing.label, s.existing.api_name) : t('rules.new')}</h2><span class="spacer"></span>
          <label class="switch"><input type="checkbox" role="switch" checked=${d.enabled !== false} data-test="rule-enabled"
            onChange=${(e) => (s.existing ? toggle(s.existing, e.target.checked) : (d.enabled = e.target.checked))} /> ${t('rules.enabled')}</label></div>
        ${s.existing && s.existing.disabled_reason ? html`<div class="banner warn">${s.existing.disabled_reason}</div>` : null}
        ${s.general ? html`<div class="banner error" role="alert" data-test="rule-errors">${s.general}</div>` : null}
        <div class="param-grid">
          <div class=${'ctl' + (s.errors['/label'] ? ' has-error' : '')}><label for="r-label">${t('rules.name')}</label>
            <input id="r-label" data-test="rule-label" value=${d.label || ''} onInput=${(e) => { d.label = e.target.value; if (!s.existing && !d._apiTouched) d.api_name = (e.target.value.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '')); }} />${fe('/label')}</div>
          <div class=${'ctl' + (s.errors['/api_name'] ? ' has-error' : '')}><label for="r-api">${t('designer.api_name')}</label>
            <input id="r-api" class="mono" data-test="rule-api-name" value=${d.api_name} onInput=${(e) => { d.api_name = e.target.value; d._apiTouched = true; }} />${fe('/api_name')}</div>
          <div class=${'ctl' + (s.errors['/table'] ? ' has-error' : '')}><label for="r-table">${t('rules.table')}</label>
            <select id="r-table" data-test="rule-table" value=${d.table} onChange=${(e) => { d.table = e.target.value; }}>
              <option value="">—</option>${state.tables.map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>${fe('/table')}</div>
        </div>
        <fieldset class=${Object.keys(s.errors).some((k) => k.startsWith('/trigger')) ? 'has-error' : ''}><legend>① ${t('rules.trigger')}</legend>
          <select aria-label=${t('rules.trigger')} data-test="rule-trigger" value=${tr.type} onChange=${(e) => (tr.type = e.target.value)}>
            ${triggers.map(([k, v]) => html`<option value=${k}>${label(v)}</option>`)}</select>
          ${tr.type === 'record_updated' && tb ? html`<div class="multi" role="group" aria-label=${t('rules.on_fields')}><span class="muted">${t('rules.on_fields')}:</span>
            ${tb.fields.map((f) => html`<label class="check"><input type="checkbox" checked=${(tr.fields || []).includes(f.api_name)} data-test=${'trigger-field-' + f.api_name}
              onChange=${(e) => { const n = new Set(tr.fields || []); e.target.checked ? n.add(f.api_name) : n.delete(f.api_name); tr.fields = [...n]; }} /> ${fieldLabel(f)}</label>`)}</div>` : null}
          ${tr.type === 'time_after' ? html`<div class="row">
            <select aria-label=${t('rules.date_field')} value=${tr.field || ''} onChange=${(e) => (tr.field = e.target.value)}><option value="">${t('rules.date_field')}</option>
              ${(tb ? tb.fields.filter((f) => ['date', 'datetime', 'created_time', 'modified_time'].includes(f.type)) : []).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>
            <input aria-label=${t('rules.offset')} placeholder="2 hours" value=${tr.offset || ''} onInput=${(e) => (tr.offset = e.target.value)} /></div>` : null}
          ${tr.type === 'schedule' ? html`<input aria-label=${t('rules.every')} placeholder="10 minutes" value=${tr.every || ''} onInput=${(e) => (tr.every = e.target.value)} />` : null}
          ${feUnder('/trigger')}
        </fieldset>
        <fieldset class=${s.errors['/condition'] ? 'has-error' : ''}><legend>② ${t('rules.condition')}</legend>
          <div class="row" role="radiogroup" aria-label=${t('rules.condition')}>
            ${['none', 'tree', 'expr'].map((m) => html`<label class="check"><input type="radio" name="condmode" value=${m} checked=${s.condMode === m}
              data-test=${'cond-mode-' + m} onChange=${() => (s.condMode = m)} /> ${t('rules.cond_' + m)}</label>`)}</div>
          ${s.condMode === 'tree' && tb ? ConditionTree(tb, s.tree, { testPrefix: 'rc' }) : null}
          ${s.condMode === 'expr' ? html`<textarea class="mono" rows="2" aria-label=${t('rules.cond_expr')} data-test="rule-expr" value=${s.expr}
              aria-invalid=${!!s.errors['/condition']} placeholder="paid > 0 and status == '待付款'"
              onInput=${(e) => { s.expr = e.target.value; delete s.errors['/condition']; }}></textarea>
              ${tb ? html`<p class="hint">${t('designer.formula_fields')}: ${tb.fields.map((f) => f.api_name).join(', ')}</p>` : null}` : null}
          ${feUnder('/condition')}
        </fieldset>
        <fieldset><legend>③ ${t('rules.actions')}</legend>
          ${d.actions.map(actionForm)}
          ${fe('/actions')}
          <div class="row"><label for="add-action" class="sr-only">${t('rules.add_action')}</label>
            <select id="add-action" data-test="add-action" onChange=${(e) => { if (e.target.value) { d.actions.push({ type: e.target.value, _k: uid() }); e.target.value = ''; } }}>
              <option value="">＋ ${t('rules.add_action')}</option>
              ${actions.map((x) => html`<option value=${x.type}>${label(x.label)}</option>`)}</select></div>
        </fieldset>
        <div class="row">
          <button type="button" class="primary" data-test="rule-save" disabled=${s.busy} onClick=${save}>${t('common.save')}</button>
          ${s.existing ? html`<button type="button" class="danger" onClick=${remove}>${t('common.delete')}</button>` : null}
        </div>
        ${s.existing ? html`<fieldset><legend>${t('rules.dry_run')}</legend>
          <div class="row">${d.table ? html`<label for="dry-id">${t('rules.record_id')}</label>
            <input id="dry-id" type="number" min="1" data-test="dry-id" value=${s.dryId} onInput=${(e) => (s.dryId = e.target.value)} />` : null}
            <button type="button" data-test="dry-run" onClick=${dryRun}>${t('rules.run_dry')}</button></div>
          ${s.dryError ? html`<div class="field-error" role="alert">${s.dryError}</div>` : null}
          ${s.dry ? html`<pre class="dry" data-test="dry-result">${JSON.stringify(s.dry, null, 2)}</pre>` : null}
        </fieldset>
        <fieldset><legend>${t('rules.runs')}</legend>
          <button type="button" data-test="load-runs" onClick=${loadRuns}>${t('rules.show_runs')}</button>
          ${s.showRuns ? html`<div class="table-scroll"><table class="list" data-test="runs"><thead><tr><th>${t('rules.at')}</th><th>${t('rules.record')}</th><th>${t('rules.trigger')}</th><th>${t('rules.status')}</th><th>${t('rules.detail')}</th></tr></thead>
            <tbody>${s.runs.map((x) => html`<tr key=${x.id}><td>${x.at.slice(0, 19).replace('T', ' ')}</td><td>${x.record_id ?? ''}</td><td>${x.trigger}</td>
              <td><span class=${'pill ' + (x.status === 'ok' ? 'c-green' : x.status === 'error' ? 'c-red' : 'c-gray')}>${x.status}</span></td>
              <td class="mono small">${x.error ? x.error : JSON.stringify(x.actions)}</td></tr>`)}
            ${s.runs.length ? null : html`<tr><td colspan="5" class="muted">${t('common.none')}</td></tr>`}</tbody></table></div>` : null}
        </fieldset>` : null}
      </div>`;
    }

    return () => html`<section class="rules-screen">
      <header class="screen-head"><h1>${t('nav.rules')}</h1><span class="spacer"></span>
        <a class="button primary" href="#/rules/new" data-test="new-rule" onClick=${() => edit(null)}>＋ ${t('rules.new')}</a></header>
      <div class="split">
        <ul class="rule-list" aria-label=${t('nav.rules')}>
          ${s.rules.map((r) => html`<li key=${r.id} class=${s.existing && s.existing.id === r.id ? 'active' : ''}>
            <a href=${'#/rules/' + r.api_name} onClick=${() => edit(r)}>${label(r.label, r.api_name)}</a>
            <span class="muted small">${tableByName(r.table) ? label(tableByName(r.table).label) : ''}</span>
            <label class="switch small"><input type="checkbox" role="switch" checked=${r.enabled} aria-label=${t('rules.enabled') + ' ' + r.api_name}
              onChange=${(e) => toggle(r, e.target.checked)} /></label></li>`)}
          ${s.rules.length ? null : html`<li class="muted">${t('rules.none')}</li>`}
        </ul>
        <div class="rule-main">${s.def && s.cat ? editor() : html`<p class="muted">${t('rules.pick')}</p>`}</div>
      </div></section>`;
  },
};
