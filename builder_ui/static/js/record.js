// The record form: every field, sub-table lines (add/remove/reorder), history, comments and rule runs.
import { html, state, t, label, fieldLabel, get, post, patch, api, tpath, ApiError, msgOf, reactive, ref, onMounted, onBeforeUnmount,
  nextTick, toast, uid, debounce, tableByName } from './lib.js';
import { editor, display, isEditable, primaryField } from './fields.js';
import Sortable from '../vendor/sortable.esm.js';
import { CommentsPanel } from './comments.js';

export const RecordForm = {
  props: ['table', 'recordId'],
  emits: ['close'],
  setup(props, { emit }) {
    const isNew = !props.recordId;
    const r = reactive({ rec: null, values: {}, lines: {}, tab: 'form', history: [], runs: [], errors: {}, general: '',
      conflict: null, busy: false, changed: false });
    const subFields = props.table.fields.filter((f) => f.type === 'sub_table');
    const child = (f) => state.tables.find((x) => x.api_name === f.options.table) || { fields: f.options.fields || [] };
    const lineLists = {};
    let sortables = [];

    function fill(rec) {
      r.rec = rec; r.values = {};
      for (const f of subFields) r.lines[f.api_name] = (rec[f.api_name] || []).map((x) => ({ ...x, _k: uid() }));
    }
    async function load() {
      if (isNew) { fill({}); return; }
      try { fill(await get(`/tables/${props.table.api_name}/records/${props.recordId}`)); }
      catch (e) { r.general = msgOf(e); }
    }
    onMounted(async () => { await load(); await nextTick(); bindSortables(); const el = document.querySelector('.record-form input, .record-form select, .record-form textarea'); el && el.focus(); });
    const onEsc = (e) => { if (e.key === 'Escape' && !e.defaultPrevented) emit('close', r.changed); };
    window.addEventListener('keydown', onEsc);
    onBeforeUnmount(() => { sortables.forEach((s) => s.destroy()); window.removeEventListener('keydown', onEsc); });
    function bindSortables() {
      sortables.forEach((s) => s.destroy()); sortables = [];
      for (const f of subFields) {
        const el = lineLists[f.api_name];
        if (!el) continue;
        sortables.push(Sortable.create(el, { handle: '.drag-handle', draggable: 'tr', animation: 120,
          onUpdate(evt) {
            const { item, from, oldIndex } = evt;
            item.parentNode.removeChild(item); from.insertBefore(item, from.children[oldIndex] || null);
            moveLine(f, evt.oldDraggableIndex, evt.newDraggableIndex);
          } }));
      }
    }
    const val = (f) => (f.api_name in r.values ? r.values[f.api_name] : r.rec?.[f.api_name]);
    function setVal(f, v) { r.values[f.api_name] = v; delete r.errors['/' + f.api_name]; }
    function moveLine(f, a, b) { const l = r.lines[f.api_name]; if (b < 0 || b >= l.length) return; const [x] = l.splice(a, 1); l.splice(b, 0, x); r.values[f.api_name] = true; }
    function linesOut(f) {
      return r.lines[f.api_name].map((x) => {
        const o = {};
        if (x.id) o.id = x.id;
        for (const c of child(f).fields) if (isEditable(c) && c.api_name in x) o[c.api_name] = x[c.api_name];
        return o;
      });
    }
    async function save(e) {
      e && e.preventDefault();
      r.errors = {}; r.general = ''; r.conflict = null; r.busy = true;
      const body = {};
      for (const [k, v] of Object.entries(r.values)) {
        const f = props.table.fields.find((x) => x.api_name === k);
        body[k] = f && f.type === 'sub_table' ? linesOut(f)
          : f && f.type === 'attachment' ? (v || []).map((x) => (typeof x === 'object' ? x.token : x))
          : f && f.type === 'link' && Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? x.id : x)) : v;
      }
      try {
        let rec;
        if (isNew) rec = await post(`/tables/${props.table.api_name}/records`, body);
        else rec = await patch(`/tables/${props.table.api_name}/records/${props.recordId}`, { ...body, version: r.rec.version });
        r.changed = true; toast(t('record.saved'), 'ok');
        if (isNew) { emit('close', true); return; }
        fill(rec); await nextTick(); bindSortables();
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) { r.conflict = { text: err.text, current: err.error.current }; }
        else if (err instanceof ApiError && err.errors.length) { for (const x of err.errors) r.errors[x.pointer] = msgOf(x); r.general = err.text; }
        else r.general = msgOf(err);
      } finally { r.busy = false; }
    }
    async function reload() { r.conflict = null; await load(); await nextTick(); bindSortables(); }
    async function showTab(tab) {
      r.tab = tab;
      if (isNew) return;
      try {
        if (tab === 'history') r.history = (await get(`/tables/${props.table.api_name}/records/${props.recordId}/history`)).history;
        if (tab === 'runs') r.runs = (await get(`/tables/${props.table.api_name}/records/${props.recordId}/runs`)).runs;
      } catch (e) { r.general = msgOf(e); }
      if (tab === 'form') { await nextTick(); bindSortables(); }
    }
    // Fields in the table's sections (a heading before each), then the rest.
    function orderedFields() {
      const plain = props.table.fields.filter((f) => f.type !== 'sub_table');
      const secs = props.table.sections || [];
      if (!secs.length) return plain;
      const out = [], seen = new Set();
      for (const sec of secs) {
        const fs = sec.fields.map((n) => plain.find((f) => f.api_name === n)).filter(Boolean);
        if (!fs.length) continue;
        out.push({ section: label(sec.label, '') }, ...fs); fs.forEach((f) => seen.add(f.api_name));
      }
      const rest = plain.filter((f) => !seen.has(f.api_name));
      if (rest.length) out.push({ section: t('record.other_fields') }, ...rest);
      return out;
    }
    const fe = (p) => r.errors[p] ? html`<div class="field-error" role="alert" id=${'err' + p.replaceAll('/', '-')}>${r.errors[p]}</div>` : null;

    function subTable(f) {
      const cf = child(f).fields.filter((c) => !['created_by', 'modified_by', 'created_time', 'modified_time'].includes(c.type));
      const lines = r.lines[f.api_name] || [];
      return html`<fieldset class="subtable" data-test=${'subtable-' + f.api_name}><legend>${fieldLabel(f)}</legend>
        <div class="table-scroll"><table>
          <thead><tr><th><span class="sr-only">${t('record.order')}</span></th>${cf.map((c) => html`<th>${fieldLabel(c)}${c.required ? ' *' : ''}</th>`)}<th><span class="sr-only">${t('common.actions')}</span></th></tr></thead>
          <tbody ref=${(el) => { lineLists[f.api_name] = el; }}>
            ${lines.map((line, i) => html`<tr key=${line._k}>
              <td><span class="drag-handle" aria-hidden="true">⋮⋮</span></td>
              ${cf.map((c) => html`<td>${editor(c, line[c.api_name], (v) => { line[c.api_name] = v; r.values[f.api_name] = true; },
                  { 'aria-label': `${fieldLabel(c)} ${i + 1}`, 'data-test': `line-${f.api_name}-${i}-${c.api_name}` })}
                  ${fe(`/${f.api_name}/${i}/${c.api_name}`)}</td>`)}
              <td class="nowrap">
                <button type="button" class="icon" aria-label=${t('record.line_up', { n: i + 1 })} disabled=${i === 0} onClick=${() => moveLine(f, i, i - 1)}>↑</button>
                <button type="button" class="icon" aria-label=${t('record.line_down', { n: i + 1 })} disabled=${i === lines.length - 1} onClick=${() => moveLine(f, i, i + 1)}>↓</button>
                <button type="button" class="icon" aria-label=${t('record.line_remove', { n: i + 1 })} onClick=${() => { lines.splice(i, 1); r.values[f.api_name] = true; }}>✕</button>
              </td></tr>`)}
          </tbody></table></div>
        ${fe('/' + f.api_name)}
        <button type="button" data-test=${'add-line-' + f.api_name} onClick=${() => { lines.push({ _k: uid() }); r.values[f.api_name] = true; }}>＋ ${t('record.add_line')}</button>
      </fieldset>`;
    }

    return () => html`<div class="modal-back" onClick=${(e) => e.target === e.currentTarget && emit('close', r.changed)}>
      <form class="modal record-form" role="dialog" aria-modal="true" aria-labelledby="rf-title" onSubmit=${save}
            onKeydown=${(e) => { if (e.key === 's' && (e.ctrlKey || e.metaKey)) save(e); }}>
        <header class="row"><h2 id="rf-title">${isNew ? t('record.new', { table: label(props.table.label, props.table.api_name) }) : t('record.title', { id: props.recordId })}</h2>
          <span class="spacer"></span>
          <button type="button" class="icon" aria-label=${t('common.close')} onClick=${() => emit('close', r.changed)}>✕</button></header>
        ${isNew ? null : html`<div class="tabs" role="tablist">
          ${['form', 'history', 'comments', 'runs'].map((tab) => html`<button type="button" role="tab" aria-selected=${r.tab === tab} class=${r.tab === tab ? 'on' : ''}
            data-test=${'tab-' + tab} onClick=${() => showTab(tab)}>${t('record.tab_' + tab)}</button>`)}</div>`}
        ${r.conflict ? html`<div class="banner warn" role="alert" data-test="record-conflict">${t('grid.conflict')} ${r.conflict.text}
          <button type="button" onClick=${reload}>${t('grid.reload_record')}</button></div>` : null}
        ${r.general ? html`<div class="banner error" role="alert">${r.general}</div>` : null}
        ${!r.rec ? html`<p class="muted">${t('app.loading')}</p>` : r.tab === 'form' ? html`<div class="form-fields">
          ${orderedFields().map((f) => f.section ? html`<h3 class="form-section" key=${'s' + f.section}>${f.section}</h3>` : html`<div class=${'ctl' + (r.errors['/' + f.api_name] ? ' has-error' : '')} key=${f.api_name}>
            <label for=${'rf-' + f.api_name}>${fieldLabel(f)}${f.required ? ' *' : ''}</label>
            ${f.type === 'link' ? html`<${LinkPicker} field=${f} value=${val(f)} inputId=${'rf-' + f.api_name} onChange=${(v) => setVal(f, v)} />`
              : f.type === 'attachment' ? html`<${Attachments} field=${f} value=${val(f)} inputId=${'rf-' + f.api_name} onChange=${(v) => setVal(f, v)} />`
              : editor(f, val(f), (v) => setVal(f, v), { id: 'rf-' + f.api_name, 'data-test': 'rf-' + f.api_name, 'aria-invalid': !!r.errors['/' + f.api_name] })}
            ${fe('/' + f.api_name)}</div>`)}
          ${subFields.map(subTable)}
        </div>` : r.tab === 'history' ? html`<ol class="history" data-test="history">
          ${r.history.map((h) => html`<li><strong>v${h.version} ${t('history.' + h.action)}</strong> <span class="muted">${String(h.at).slice(0, 19).replace('T', ' ')} · #${h.user_id ?? ''}</span>
            <ul>${Object.entries(h.changes || {}).map(([k, [a, b]]) => html`<li><span class="mono">${k}</span>: ${JSON.stringify(a)} → ${JSON.stringify(b)}</li>`)}</ul></li>`)}
          ${r.history.length ? null : html`<li class="muted">${t('common.none')}</li>`}</ol>`
        : r.tab === 'comments' ? html`<${CommentsPanel} table=${props.table} recordId=${props.recordId} />`
        : html`<table class="list"><thead><tr><th>${t('rules.at')}</th><th>${t('rules.trigger')}</th><th>${t('rules.status')}</th><th>${t('rules.detail')}</th></tr></thead>
          <tbody>${r.runs.map((x) => html`<tr><td>${x.at.slice(0, 19)}</td><td>${x.trigger}</td><td>${x.status}</td><td class="mono small">${JSON.stringify(x.actions || x.error || '')}</td></tr>`)}</tbody></table>`}
        <footer class="row end">
          <button type="button" onClick=${() => emit('close', r.changed)}>${t('common.close')}</button>
          ${r.tab === 'form' ? html`<button type="submit" class="primary" data-test="record-save" disabled=${r.busy}>${t('common.save')}</button>` : null}
        </footer>
      </form></div>`;
  },
};

// A link field: chips of the linked records and a search over the target table.
export const LinkPicker = {
  props: ['field', 'value', 'inputId'],
  emits: ['change'],
  setup(props, { emit }) {
    const target = tableByName(props.field.options.target);
    const many = props.field.options.relationship && props.field.options.relationship !== 'many_to_one';
    const p = reactive({ q: '', results: [], names: {}, open: false, error: '' });
    const pf = target ? primaryField(target) : null;
    const ids = () => (props.value == null ? [] : (Array.isArray(props.value) ? props.value : [props.value]).map((x) => (typeof x === 'object' ? x.id : x)));
    async function names() {
      const missing = ids().filter((id) => !(id in p.names));
      if (!missing.length || !target) return;
      try {
        const d = await post(`/tables/${target.api_name}/records/query`, { filter: { field: 'id', op: 'in', value: missing }, limit: 100, fields: pf ? [pf.api_name] : [] });
        for (const r of d.records) p.names[r.id] = pf ? r[pf.api_name] : '#' + r.id;
      } catch (e) { /* the ids still show */ }
    }
    const search = debounce(async () => {
      if (!target) return;
      try {
        const d = await post(`/tables/${target.api_name}/records/query`, { q: p.q || undefined, limit: 10, fields: pf ? [pf.api_name] : [] });
        p.results = d.records; p.open = true; p.error = '';
        for (const r of d.records) p.names[r.id] = pf ? r[pf.api_name] : '#' + r.id;
      } catch (e) { p.error = msgOf(e); }
    }, 250);
    onMounted(names);
    function pick(r) {
      const cur = ids();
      emit('change', many ? [...new Set([...cur, r.id])] : r.id);
      p.open = false; p.q = '';
    }
    function unpick(id) { emit('change', many ? ids().filter((x) => x !== id) : null); }
    return () => html`<div class="link-picker">
      <div class="row">${ids().map((id) => html`<span class="chip" key=${id}>${p.names[id] ?? '#' + id}
        <button type="button" class="icon" aria-label=${t('common.remove') + ' ' + (p.names[id] ?? id)} onClick=${() => unpick(id)}>✕</button></span>`)}</div>
      <input id=${props.inputId} type="search" role="combobox" aria-expanded=${p.open} aria-autocomplete="list"
        placeholder=${t('record.link_search', { table: target ? label(target.label, target.api_name) : props.field.options.target })}
        value=${p.q} onInput=${(e) => { p.q = e.target.value; search(); }} onFocus=${search}
        onKeydown=${(e) => { if (e.key === 'Enter' && p.results[0]) { e.preventDefault(); pick(p.results[0]); } if (e.key === 'Escape' && p.open) { e.stopPropagation(); e.preventDefault(); p.open = false; } }} />
      ${p.open && p.results.length ? html`<ul class="link-results" role="listbox">${p.results.map((r) => html`<li key=${r.id} role="option">
        <button type="button" class="link" onClick=${() => pick(r)}>${p.names[r.id] ?? '#' + r.id} <span class="muted">#${r.id}</span></button></li>`)}</ul>` : null}
      ${p.error ? html`<div class="field-error">${p.error}</div>` : null}
    </div>`;
  },
};

// Attachments: upload first (POST /attachments), then the field holds the tokens.
export const Attachments = {
  props: ['field', 'value', 'inputId'],
  emits: ['change'],
  setup(props, { emit }) {
    const a = reactive({ busy: false, error: '' });
    const files = () => (props.value || []).map((x) => (typeof x === 'string' ? { token: x, filename: x } : x));
    async function upload(e) {
      const list = [...e.target.files];
      a.busy = true; a.error = '';
      try {
        const added = [];
        for (const f of list) { const fd = new FormData(); fd.append('file', f); added.push(await api('POST', '/attachments', fd)); }
        emit('change', [...files(), ...added]);
      } catch (err) { a.error = msgOf(err); } finally { a.busy = false; e.target.value = ''; }
    }
    return () => html`<div class="attachments">
      <ul>${files().map((f) => html`<li key=${f.token}><a href=${tpath('/attachments/' + f.token)} download>${f.filename}</a>
        <button type="button" class="icon" aria-label=${t('common.remove') + ' ' + f.filename} onClick=${() => emit('change', files().filter((x) => x.token !== f.token))}>✕</button></li>`)}</ul>
      <input id=${props.inputId} type="file" multiple onChange=${upload} disabled=${a.busy} />
      ${a.busy ? html`<progress aria-label=${t('admin.progress')}></progress>` : null}
      ${a.error ? html`<div class="field-error" role="alert">${a.error}</div>` : null}</div>`;
  },
};
