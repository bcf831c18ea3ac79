// Rule builder: trigger -> condition (visual tree or expression) -> actions (forms generated
// from the rule catalogue's parameter schemas, nested action lists included); on/off switch,
// dry run, run log.
import { html, state, t, label, fieldLabel, get, post, patch, del, ApiError, msgOf, loadTables, tableByName, go,
  reactive, onMounted, nextTick, toast, uid } from './lib.js';
import { ConditionTree, fromTree, toTree } from './filter.js';
import { fieldByName } from './fields.js';
import { filterToExpr, exprToFilter } from './rule_condition.js';
import { actionFilter, sortsEditor, approverUsers } from './rule_filter.js';

const COMMON = ['update_record', 'notify', 'reject', 'lock_fields', 'adjust_number'];
const ROLES = ['owner', 'admin', 'builder', 'member', 'viewer'];
const isActionList = (sc) => !!sc && sc.type === 'array' && !!sc.items && sc.items.$ref === '#/$defs/action';
// '/actions/0/then/1' -> 'a0-then-1' (ids and data-test names of the controls of that action)
const idOf = (ptr) => ptr.replace(/^\/actions\/(\d+)/, 'a$1').replace(/^\//, '').replace(/\//g, '-');
const isExprSchema = (s) => s && Array.isArray(s.oneOf) && s.oneOf.some((x) => x.type === 'string') && s.oneOf.some((x) => x.required && x.required.includes('value'));

const newAction = (type) => ({ type, _k: uid() });
const ROOT_SCOPE = { bindings: [] };

function blankRule(table) {
  return { api_name: '', label: '', table: table || '', trigger: { type: 'record_updated', fields: [] }, condition: null, actions: [], else: [], enabled: true };
}

export const RulesScreen = {
  props: ['ruleName'],
  setup(props) {
    const s = reactive({ rules: [], cat: null, def: null, existing: null, condMode: 'tree', tree: toTree(null), expr: '',
      errors: {}, general: '', busy: false, dryId: '', dry: null, dryError: '', runs: [], showRuns: false, jsonDraft: {} });
    async function refresh() {
      const [r, c] = await Promise.all([get('/rules'), s.cat ? null : get('/rule-catalogue'), state.tables.length ? null : loadTables()]);
      s.rules = r.rules; if (c) s.cat = c;
      if (!s.conn) loadConnectors();
      if (s.members === undefined) loadMembers();
    }
    // start_approval's member picker; null (ids typed by hand) when the caller may not list members.
    async function loadMembers() {
      s.members = null;
      const m = await get('/members').catch(() => null);
      s.members = m ? m.members : null;
    }
    // The table an action's filter and sorts apply to: its own table (update_records, pick_row,
    // count_records, adjust_number, for_each with a table, recompute).
    const filterTable = (a) => (a.table ? tableByName(a.table) : null);
    // Connector installs (admins only) and manifests: notify/call_connector pick an install and one
    // of its actions, and the action's input schema gives the message form. Without them
    // (a builder), the plain controls stay.
    async function loadConnectors() {
      s.conn = { installs: null, manifests: [] };
      const [i, m] = await Promise.all([get('/connectors').catch(() => null), get('/api/v1/connectors').catch(() => null)]);
      s.conn = { installs: i ? i.installs : null, manifests: m ? m.connectors : [] };
    }
    function connectorAction(a) {
      const inst = s.conn && s.conn.installs && s.conn.installs.find((x) => x.api_name === a.connector);
      const man = inst && s.conn.manifests.find((x) => x.name === inst.connector);
      return { inst, man, spec: man && a.action ? (man.actions || []).find((x) => x.name === a.action) : null };
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
      def.actions = def.actions || [];
      def.else = def.else || [];
      def.trigger = def.trigger || { type: 'record_updated' };
      s.def = def;
      prep(def.actions); prep(def.else);
      if (typeof def.condition === 'string') { s.condMode = 'expr'; s.expr = def.condition; s.tree = toTree(null); }
      else if (def.condition && def.condition.filter) { s.condMode = 'tree'; s.tree = toTree(def.condition.filter); s.expr = ''; }
      else { s.condMode = 'none'; s.tree = toTree(null); s.expr = ''; }
    }
    const table = () => tableByName(s.def?.table);
    const nestedNames = (type) => Object.entries((s.cat.actions.find((x) => x.type === type) || { params: {} }).params).filter(([, sc]) => isActionList(sc)).map(([n]) => n);
    // UI-only state lives on the action under _keys: _k (a stable key), _cond (a branch's
    // condition editor), _raw (the JSON text while the action is edited as JSON).
    function prep(list) {
      for (const a of list || []) {
        a._k = a._k || uid();
        for (const n of nestedNames(a.type)) prep(a[n]);
      }
    }
    function cleanAction(a) {
      const out = {};
      for (const [k, v] of Object.entries(a)) if (!k.startsWith('_')) out[k] = v;
      if (a.type === 'branch' && a._cond) { try { out.if = branchExpr(a); } catch (e) { /* reported by save() */ } }
      const spec = s.cat.actions.find((x) => x.type === a.type);
      for (const n of nestedNames(a.type)) if (Array.isArray(out[n])) out[n] = cleanList(out[n]);
      // an optional list or object left empty (e.g. a values editor opened but unused) is not sent
      for (const [k, v] of Object.entries(out)) {
        const empty = Array.isArray(v) ? !v.length : v && typeof v === 'object' && !Object.keys(v).length;
        if (empty && spec && spec.params[k] && !spec.required.includes(k)) delete out[k];
      }
      return JSON.parse(JSON.stringify(out));
    }
    const cleanList = (list) => (list || []).map(cleanAction);
    const hasErr = (p) => Object.keys(s.errors).some((k) => k === p || k.startsWith(p + '/'));
    const fe = (p) => s.errors[p] ? html`<div class="field-error" role="alert">${s.errors[p]}</div>` : null;
    const feUnder = (p) => Object.entries(s.errors).filter(([k]) => k === p || k.startsWith(p + '/')).map(([k, m]) => html`<div class="field-error" role="alert">${k !== p ? k.slice(p.length + 1) + ': ' : ''}${m}</div>`);

    function definition() {
      const { actions, else: otherwise, ...rest } = s.def;
      const d = JSON.parse(JSON.stringify(rest));
      d.actions = cleanList(actions);
      if (s.condMode !== 'none' && otherwise && otherwise.length) d.else = cleanList(otherwise);
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
      const live = new Set();
      const walk = (list) => { for (const a of list || []) { live.add(a._k); for (const n of nestedNames(a.type)) walk(a[n]); } };
      walk(s.def.actions); walk(s.def.else);
      if (Object.entries(s.jsonDraft).some(([k, x]) => x.bad && live.has(k.split('.')[0]))) { s.general = t('rules.fix_json'); s.busy = false; return; }
      // a visual branch condition the expression language cannot say (e.g. a bad duration)
      const bad = [];
      const check = (list, base) => (list || []).forEach((a, i) => {
        const p = `${base}/${i}`;
        if (a.type === 'branch' && !a._raw) { try { branchExpr(a); } catch (e) { bad.push(`${p}/if`); } }
        for (const n of nestedNames(a.type)) check(a[n], `${p}/${n}`);
      });
      check(s.def.actions, '/actions'); check(s.def.else, '/else');
      if (bad.length) { for (const p of bad) s.errors[p] = t('rules.cond_unsupported'); s.general = t('rules.cond_unsupported'); s.busy = false; return; }
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
    // Every action list (the rule's actions and else, a branch's then/else, an approval's
    // on_approve/on_reject, a guarded adjustment's else, for_each/wait actions...) is rendered by
    // actionList() with the same forms, so nesting goes as deep as the rule needs.
    // `ptr` is the action's JSON pointer in the rule (/actions/0/then/1): errors land there.
    function fieldsOf(a) { return (tableByName(a.table || s.def.table) || { fields: [] }).fields; }
    const paramLabel = (name) => (t('param.' + name) === 'param.' + name ? name : t('param.' + name));
    function paramControl(a, ptr, name, schema, required, scope) {
      const p = `${ptr}/${name}`;
      const id = `${idOf(ptr)}-${name}`;
      const set = (v) => { if (v === '' || v === undefined) delete a[name]; else a[name] = v; delete s.errors[p]; };
      if (isActionList(schema)) return nestedList(a, ptr, name, required, childScope(a, name, scope));
      const lbl = html`<label for=${id}>${paramLabel(name)}${required ? ' *' : ''}</label>`;
      let ctl;
      if (a.type === 'branch' && name === 'if') {
        return html`<div class=${'ctl wide' + (hasErr(p) ? ' has-error' : '')} key=${name}>
          <span class="ctl-label">${t('rules.branch_if')} *</span>${branchCondition(a, p, id)}${feUnder(p)}</div>`;
      } else if (name === 'connector' && schema.$ref && s.conn && s.conn.installs) {
        ctl = html`<select id=${id} value=${a[name] || ''} onChange=${(e) => { set(e.target.value); delete a.action; }} data-test=${id}>
          <option value="">${t('common.choose')}</option>${s.conn.installs.map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)} (${x.connector})</option>`)}</select>`;
      } else if (name === 'action' && connectorAction(a).man) {
        ctl = html`<select id=${id} value=${a[name] || ''} onChange=${(e) => set(e.target.value)} data-test=${id}>
          <option value="">${t('common.choose')}</option>${(connectorAction(a).man.actions || []).map((x) => html`<option value=${x.name}>${label(x.labels, x.name)}</option>`)}</select>`;
      } else if (name === 'input' && connectorAction(a).spec) {
        return html`<div class=${'ctl wide' + (hasErr(p) ? ' has-error' : '')} key=${name} role="group" aria-label=${paramLabel(name)}>
          <span class="ctl-label">${t('rules.message')}${required ? ' *' : ''}</span>${inputForm(a, p, id, connectorAction(a).spec.input_schema || {}, scope)}</div>`;
      } else if ((name === 'table') && schema.$ref) {
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
        ctl = valuesEditor(a, ptr, name, id);
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
          data-test=${id + '-' + r} onChange=${(e) => { const n = new Set(roles); e.target.checked ? n.add(r) : n.delete(r); set({ ...(a.approvers || {}), roles: [...n] }); }} /> ${t('role.' + r)}</label>`)}</div>
          ${approverUsers(a, { id, members: s.members, set })}`;
      } else if ((name === 'filter' || name === 'guard') && schema.type === 'object' && filterTable(a)) {
        return html`<div class=${'ctl wide' + (hasErr(p) ? ' has-error' : '')} key=${name} role="group" aria-label=${paramLabel(name)}>
          <span class="ctl-label">${paramLabel(name)}${required ? ' *' : ''}</span>
          ${actionFilter(a, name, filterTable(a), { id, required, draft: jsonDraftOf(a, name), onChange: () => delete s.errors[p], jsonBox: () => jsonControl(a, name, schema, id, set) })}
          ${feUnder(p)}</div>`;
      } else if (name === 'sorts' && schema.type === 'array' && filterTable(a)) {
        ctl = sortsEditor(a, name, filterTable(a), { id, onChange: () => delete s.errors[p] });
      } else if (schema.type === 'string') {
        ctl = (schema.maxLength || 0) > 4000  // a message template: Jinja placeholders from the record's fields
          ? templateEditor(id, a[name], set, scope)
          : html`<input id=${id} data-test=${id} value=${a[name] ?? ''} onInput=${(e) => set(e.target.value)} />`;
      } else if (schema.type === 'integer' || schema.type === 'number') {
        ctl = html`<input id=${id} type="number" data-test=${id} value=${a[name] ?? ''} onInput=${(e) => set(e.target.value === '' ? undefined : Number(e.target.value))} />`;
      } else {
        ctl = jsonControl(a, name, schema, id, set);
      }
      return html`<div class=${'ctl' + (hasErr(p) ? ' has-error' : '')} key=${name}>${lbl}${ctl}${feUnder(p)}</div>`;
    }
    function jsonDraftOf(a, name) {
      const key = `${a._k}.${name}`;
      return s.jsonDraft[key] || (s.jsonDraft[key] = { text: a[name] === undefined ? '' : JSON.stringify(a[name], null, 1), bad: false });
    }
    // A parameter as JSON text (anything without a form of its own, and a filter's escape hatch).
    function jsonControl(a, name, schema, id, set) {
      const draft = jsonDraftOf(a, name);
      return html`<textarea id=${id} class="mono" rows="3" data-test=${id} aria-label=${paramLabel(name)} value=${draft.text} placeholder=${schema.type === 'array' ? '[...]' : '{...}'}
          onInput=${(e) => { draft.text = e.target.value; try { const v = draft.text.trim() ? JSON.parse(draft.text) : undefined; draft.bad = false; set(v); } catch (err) { draft.bad = true; } }}></textarea>
          ${draft.bad ? html`<div class="field-error" role="alert">${t('rules.bad_json')}</div>` : null}`;
    }
    function valuesEditor(a, ptr, name, id) {
      const obj = a[name] || (a[name] = {});
      // pick_row's `set` writes the picked row's values into the rule's record
      const fields = a.type === 'pick_row' && name === 'set' ? (table() || { fields: [] }).fields : fieldsOf(a);
      return html`<div class="values-editor" id=${id} role="group">
        ${Object.entries(obj).map(([k, v]) => {
          const f = fieldByName({ fields }, k);
          const literal = v && typeof v === 'object' && 'value' in v;
          const setV = (x) => { obj[k] = literal ? { value: x } : x; delete s.errors[`${ptr}/${name}/${k}`]; };
          return html`<div class="row" key=${k}>
            <span class="mono">${f ? fieldLabel(f) : k}</span> =
            ${literal && f && f.type === 'single_select'
              ? html`<select aria-label=${k} data-test=${id + '-' + k} value=${v.value ?? ''} onChange=${(e) => setV(e.target.value)}>
                  <option value=""></option>${f.options.choices.map((c) => html`<option value=${c.label}>${c.label}</option>`)}</select>`
              : html`<input aria-label=${k} class=${literal ? '' : 'mono'} data-test=${id + '-' + k} value=${literal ? (v.value ?? '') : v}
                  onInput=${(e) => setV(literal && f && ['number', 'currency', 'percent'].includes(f.type) && e.target.value !== '' ? Number(e.target.value) : e.target.value)} />`}
            <select aria-label=${t('rules.value_kind')} value=${literal ? 'value' : 'expr'} data-test=${id + '-' + k + '-kind'}
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

    // A branch's condition: the same visual tree as the rule's (written as an expression, see
    // rule_condition.js) or the expression itself.
    function branchCondition(a, p, id) {
      const c = a._cond || (a._cond = condState(a.if));
      const tb = table();
      return html`<div class="branch-cond">
        <div class="row" role="radiogroup" aria-label=${t('rules.branch_if')}>
          ${['tree', 'expr'].map((m) => html`<label class="check"><input type="radio" name=${id + '-mode'} value=${m} checked=${c.mode === m}
            data-test=${id + '-mode-' + m} onChange=${() => switchCond(a, m)} /> ${t('rules.cond_' + m)}</label>`)}</div>
        ${c.mode === 'tree' && tb ? ConditionTree(tb, c.tree, { testPrefix: id, onChange: () => delete s.errors[p] }) : null}
        ${c.mode === 'tree' && !tb ? html`<p class="hint">${t('rules.pick_table_first')}</p>` : null}
        ${c.mode === 'expr' ? html`<textarea class="mono" rows="2" aria-label=${t('rules.cond_expr')} data-test=${id + '-expr'} value=${a.if || ''}
            aria-invalid=${!!s.errors[p]} placeholder="paid > 0 and status == '待付款'"
            onInput=${(e) => { a.if = e.target.value; delete s.errors[p]; }}></textarea>` : null}</div>`;
    }
    function condState(src) {
      const f = exprToFilter(src, table());
      if (f) return { mode: 'tree', tree: toTree(f) };
      if (src && String(src).trim()) return { mode: 'expr', tree: toTree(null) };
      const tree = toTree(null); tree.items.push({ k: uid(), field: '', op: '=', value: '' });
      return { mode: 'tree', tree };
    }
    function switchCond(a, mode) {
      const c = a._cond;
      if (mode === 'expr' && c.mode === 'tree') { try { a.if = branchExpr(a); } catch (e) { /* the tree cannot be said: keep the old text */ } }
      if (mode === 'tree' && c.mode === 'expr') {
        const f = exprToFilter(a.if, table());
        if (!f && a.if && a.if.trim() && !confirm(t('rules.expr_lost'))) { c.mode = 'expr'; return; }
        c.tree = toTree(f);
        if (!c.tree.items.length) c.tree.items.push({ k: uid(), field: '', op: '=', value: '' });
      }
      c.mode = mode;
    }
    function branchExpr(a) {
      const c = a._cond;
      if (!c || c.mode !== 'tree') return a.if || '';
      const tb = table();
      return tb ? filterToExpr(fromTree(c.tree, tb)) : (a.if || '');
    }

    // A connector action's input from its schema: text properties are message templates.
    // `data` (template variables for direct calls) is not offered: a rule renders its texts
    // itself and saving refuses it. Only a rule saved with it before shows it, to clear it.
    function inputForm(a, p, id, schema, scope) {
      const obj = a.input && typeof a.input === 'object' ? a.input : (a.input = {});
      const req = new Set(schema.required || []);
      const props = Object.entries(schema.properties || {}).filter(([k]) => k !== 'data' || obj.data !== undefined);
      return html`<div class="param-grid">${props.map(([k, sc]) => {
        const kid = `${id}-${k}`, kp = `${p}/${k}`;
        const set = (v) => { if (v === '' || v === undefined) delete obj[k]; else obj[k] = v; delete s.errors[kp]; };
        let ctl;
        if (sc.enum) ctl = html`<select id=${kid} data-test=${kid} value=${obj[k] ?? ''} onChange=${(e) => set(e.target.value)}><option value=""></option>
          ${sc.enum.map((x) => html`<option value=${x}>${x}</option>`)}</select>`;
        else if (sc.type === 'string') ctl = templateEditor(kid, obj[k], set, scope);
        else if (sc.type === 'boolean') ctl = html`<input id=${kid} type="checkbox" data-test=${kid} checked=${!!obj[k]} onChange=${(e) => set(e.target.checked)} />`;
        else if (sc.type === 'integer' || sc.type === 'number') ctl = html`<input id=${kid} type="number" data-test=${kid} value=${obj[k] ?? ''} onInput=${(e) => set(e.target.value === '' ? undefined : Number(e.target.value))} />`;
        else {
          const key = `${a._k}.input.${k}`;
          const draft = s.jsonDraft[key] || (s.jsonDraft[key] = { text: obj[k] === undefined ? '' : JSON.stringify(obj[k]), bad: false });
          ctl = html`<textarea id=${kid} class="mono" rows="2" data-test=${kid} value=${draft.text}
            onInput=${(e) => { draft.text = e.target.value; try { const v = draft.text.trim() ? JSON.parse(draft.text) : undefined; draft.bad = false; set(v); } catch (err) { draft.bad = true; } }}></textarea>
            ${draft.bad ? html`<div class="field-error" role="alert">${t('rules.bad_json')}</div>` : null}`;
        }
        const hint = k === 'data' ? t('rules.data_not_used') : sc.description;
        return html`<div class=${'ctl' + (hasErr(kp) ? ' has-error' : '')} key=${k}><label for=${kid}>${sc.title || k}${req.has(k) ? ' *' : ''}</label>${ctl}
          ${hint ? html`<div class="hint">${hint}</div>` : null}${feUnder(kp)}</div>`;
      })}</div>`;
    }

    // A message template with a placeholder picker that inserts at the cursor.
    const caret = {};
    function templateEditor(id, value, set, scope) {
      const insert = (code) => {
        const cur = value ?? '';
        const at = caret[id] ?? cur.length;
        set(cur.slice(0, at) + code + cur.slice(at));
        caret[id] = at + code.length;
        nextTick(() => { const el = document.getElementById(id); if (el) { el.focus(); el.setSelectionRange(caret[id], caret[id]); } });
      };
      return html`<textarea id=${id} rows="3" data-test=${id} value=${value ?? ''} onInput=${(e) => { caret[id] = e.target.selectionStart; set(e.target.value); }}
          onBlur=${(e) => (caret[id] = e.target.selectionStart)}></textarea>
        <select aria-label=${t('rules.insert_field')} data-test=${id + '-insert'} onChange=${(e) => { const v = e.target.value; e.target.value = ''; if (v) insert(v); }}>
          <option value="">{{ }} ${t('rules.insert_field')}</option>
          ${placeholders(scope).map((g) => html`<optgroup label=${g.label}>${g.items.map(([code, text]) => html`<option value=${code}>${text}</option>`)}</optgroup>`)}</select>`;
    }
    function placeholder(prefix, f) {
      const path = `${prefix}.${f.api_name}`;
      if (f.type === 'currency') return `{{ ${path}|money }}`;
      if (['datetime', 'created_time', 'modified_time'].includes(f.type)) return `{{ ${path}|date('YYYY-MM-DD HH:mm') }}`;
      if (f.type === 'date') return `{{ ${path}|date('YYYY-MM-DD') }}`;
      if (f.type === 'multi_select') return `{{ ${path}|join('、') }}`;
      return `{{ ${path} }}`;
    }
    function placeholders(scope) {
      const tb = table();
      const groups = [];
      if (tb) groups.push({ label: label(tb.label, tb.api_name), items: tb.fields.filter((f) => f.type !== 'sub_table').map((f) => [placeholder('record', f), fieldLabel(f)]) });
      for (const b of scope.bindings) groups.push({ label: b.name, items: b.fields.map((f) => [placeholder(b.name, f), `${b.name}.${fieldLabel(f)}`]) });
      groups.push({ label: t('rules.ph_other'), items: [['{{ record_url }}', t('rules.ph_record_url')], ['{{ rule.label }}', t('rules.ph_rule')]] });
      return groups;
    }
    // What a nested list may reference besides the record: for_each's row, pick_row's row, a count.
    function childScope(a, name, scope) {
      let b = null;
      if (a.type === 'for_each' && name === 'actions') {
        let tb = a.table ? tableByName(a.table) : null;
        const f = !tb && a.items ? fieldByName(table() || { fields: [] }, a.items) : null;
        if (f) tb = tableByName(f.type === 'sub_table' ? f.options.table : f.options.target);
        b = { name: a.as || 'item', fields: tb ? tb.fields : [] };
      } else if (a.type === 'pick_row' && name === 'then') {
        const tb = tableByName(a.table);
        b = { name: a.bind || 'row', fields: tb ? tb.fields : [] };
      } else if (a.type === 'count_records' && name === 'then') {
        b = { name: a.as || 'found', fields: [{ api_name: 'count', type: 'number', label: 'count' }] };
      }
      return b ? { bindings: [...scope.bindings.filter((x) => x.name !== b.name), b] } : scope;
    }

    function addActionSelect(onPick, testId, ariaLabel) {
      const actions = [...s.cat.actions].sort((x, y) => (COMMON.includes(y.type) - COMMON.includes(x.type)));
      return html`<select data-test=${testId} id=${testId} aria-label=${ariaLabel} onChange=${(e) => { if (e.target.value) { onPick(e.target.value); e.target.value = ''; } }}>
        <option value="">＋ ${t('rules.add_action')}</option>
        ${actions.map((x) => html`<option value=${x.type}>${label(x.label)}</option>`)}</select>`;
    }
    function nestedList(a, ptr, name, required, scope) {
      const p = `${ptr}/${name}`, id = `${idOf(ptr)}-${name}`;
      const title = t('rules.list_' + name) === 'rules.list_' + name ? paramLabel(name) : t('rules.list_' + name);
      return html`<div class=${'ctl wide nested-actions' + (s.errors[p] ? ' has-error' : '')} key=${name} role="group" aria-label=${title} data-test=${id}>
        <div class="nested-head">${title}${required ? ' *' : ''}</div>
        ${actionList(a[name] || [], p, scope)}
        ${fe(p)}
        <div class="row">${addActionSelect((type) => { (a[name] || (a[name] = [])).push(newAction(type)); delete s.errors[p]; }, id + '-add', title + ': ' + t('rules.add_action'))}</div>
      </div>`;
    }
    function actionList(list, base, scope) {
      return list.map((a, i) => actionForm(a, list, i, `${base}/${i}`, scope));
    }
    function actionForm(a, list, i, ptr, scope) {
      const spec = s.cat.actions.find((x) => x.type === a.type);
      const params = spec ? Object.entries(spec.params) : [];
      const move = (d) => { list.splice(i + d, 0, list.splice(i, 1)[0]); };
      const tid = idOf(ptr);
      return html`<div class=${'action card' + (ptr.split('/').length > 3 ? ' nested' : '')} key=${a._k} data-test=${'action-' + tid.replace(/^a(?=\d)/, '')}>
        <div class="row"><strong>${i + 1}. ${spec ? label(spec.label) : a.type}</strong><span class="spacer"></span>
          <button type="button" class=${'icon' + (a._raw ? ' active' : '')} aria-pressed=${!!a._raw} aria-label=${t('rules.json_mode')} title=${t('rules.json_mode')}
            data-test=${tid + '-json'} onClick=${() => toggleRaw(a)}>{ }</button>
          <button type="button" class="icon" aria-label=${t('designer.move_up')} disabled=${i === 0} onClick=${() => move(-1)}>↑</button>
          <button type="button" class="icon" aria-label=${t('designer.move_down')} disabled=${i === list.length - 1} onClick=${() => move(1)}>↓</button>
          <button type="button" class="icon" aria-label=${t('common.remove')} data-test=${tid + '-remove'} onClick=${() => list.splice(i, 1)}>✕</button></div>
        ${fe(ptr)}${fe(`${ptr}/type`)}
        ${a._raw ? rawEditor(a, ptr, tid)
          : html`<div class="param-grid">${params.map(([n, sc]) => paramControl(a, ptr, n, sc, spec.required.includes(n), scope))}</div>`}
      </div>`;
    }
    // The JSON escape hatch: the whole action (with its nested actions) as text.
    function toggleRaw(a) {
      if (!a._raw) { a._raw = { text: JSON.stringify(cleanAction(a), null, 2), bad: false }; s.jsonDraft[a._k + '.__raw'] = a._raw; return; }
      if (a._raw.bad) return;
      for (const k of Object.keys(s.jsonDraft)) if (k.startsWith(a._k + '.')) delete s.jsonDraft[k];  // drafts of the old contents
      delete a._raw;
      delete a._cond;
      delete a._filters;
      prep([a]);
    }
    function rawEditor(a, ptr, tid) {
      const r = a._raw;
      return html`<textarea class="mono" rows="8" aria-label=${t('rules.json_mode')} data-test=${tid + '-json-text'} value=${r.text}
          onInput=${(e) => {
            r.text = e.target.value;
            try {
              const v = JSON.parse(r.text);
              if (!v || typeof v !== 'object' || Array.isArray(v) || typeof v.type !== 'string') throw new Error('not an action');
              r.bad = false;
              for (const k of Object.keys(a)) if (!['_k', '_raw'].includes(k)) delete a[k];
              Object.assign(a, v);
            } catch (err) { r.bad = true; }
          }}></textarea>
        ${r.bad ? html`<div class="field-error" role="alert">${t('rules.bad_json')}</div>` : null}${feUnder(ptr)}`;
    }
    function editor() {
      const d = s.def, tb = table();
      const tr = d.trigger;
      const triggers = s.cat ? Object.entries(s.cat.triggers) : [];
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
          ${actionList(d.actions, '/actions', ROOT_SCOPE)}
          ${fe('/actions')}
          <div class="row"><label for="add-action" class="sr-only">${t('rules.add_action')}</label>
            ${addActionSelect((type) => d.actions.push(newAction(type)), 'add-action')}</div>
        </fieldset>
        ${s.condMode !== 'none' ? html`<fieldset data-test="rule-else"><legend>④ ${t('rules.otherwise')}</legend>
          ${actionList(d.else, '/else', ROOT_SCOPE)}
          ${fe('/else')}
          <div class="row">${addActionSelect((type) => d.else.push(newAction(type)), 'add-else-action', t('rules.otherwise') + ': ' + t('rules.add_action'))}</div>
        </fieldset>` : null}
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
