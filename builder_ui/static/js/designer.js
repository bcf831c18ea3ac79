// Table designer: drag field types from the palette onto the form canvas, reorder, configure
// in the side panel, design sub-table columns; save through the API with errors at the controls.
import { html, state, t, label, fieldLabel, get, post, patch, del, ApiError, msgOf, loadTables, tableByName,
  ftype, go, ref, reactive, computed, onMounted, onBeforeUnmount, nextTick, toast, uid, CHOICE_COLORS, debounce }
  from './lib.js';
import Sortable from '../vendor/sortable.esm.js';

const SYSTEM_TYPES = new Set(['created_by', 'modified_by', 'created_time', 'modified_time']);
const FUNCS = ['IF', 'AND', 'OR', 'NOT', 'SUM', 'ROUND', 'CONCAT', 'LEFT', 'RIGHT', 'MID', 'LEN', 'TODAY', 'NOW', 'DATEADD',
  'DATEDIF', 'ISBLANK', 'ANY', 'ALL', 'COUNT', 'AVG', 'MIN', 'MAX', 'ABS', 'UPPER', 'LOWER', 'TRIM', 'HOURS_BETWEEN',
  'DAYS_BETWEEN', 'YEAR', 'MONTH', 'DAY', 'TEXT', 'VALUE', 'FLOOR', 'CEILING', 'COALESCE', 'CONTAINS', 'FIND', 'REPLACE'];

function slug(s) {
  return (s || '').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').replace(/^(\d)/, 'f_$1').slice(0, 60);
}

function defaultOptions(type) {
  if (type === 'single_select' || type === 'multi_select') return { choices: [{ label: t('designer.option') + ' 1', color: 'blue' }] };
  if (type === 'autonumber') return { pattern: 'NO{seq:05}' };
  if (type === 'formula') return { expression: '', result_type: 'number' };
  if (type === 'link') return { target: '' };
  if (type === 'sub_table') return { fields: [] };
  if (type === 'lookup') return { through: '', field: '' };
  if (type === 'rollup') return { through: '', fn: 'count' };
  if (type === 'currency') return { decimals: 2 };
  return {};
}

function newField(type, taken) {
  let n = 1;
  while (taken.has(`${type}_${n}`)) n++;
  const ft = ftype(type);
  return { _k: uid(), _orig: null, _auto: true, api_name: `${type}_${n}`, label: label(ft?.label, type), type,
    required: false, default: null, options: defaultOptions(type), columns: type === 'sub_table' ? [] : undefined };
}

function fromServer(f, tables) {
  const out = { _k: uid(), _orig: f.api_name, _auto: false, _server: JSON.parse(JSON.stringify(f)), id: f.id, api_name: f.api_name,
    label: label(f.label, ''), type: f.type, required: !!f.required, default: f.default ?? null,
    options: JSON.parse(JSON.stringify(f.options || {})) };
  if (f.type === 'sub_table') {
    const child = tables.find((x) => x.api_name === f.options.table);
    out.columns = (child ? child.fields : f.options.fields || []).map((c) => ({ ...fromServer(c, tables), _childTable: child?.api_name }));
  }
  return out;
}

// The definition the API gets for one field.
function toDef(f, { withColumns = true } = {}) {
  const d = { api_name: f.api_name, type: f.type };
  if (f.label) d.label = f.label;
  if (f.required) d.required = true;
  if (f.default !== null && f.default !== '' && f.default !== undefined) d.default = f.default;
  let opts = { ...f.options };
  if (f.type === 'sub_table') {
    opts = { ...opts, fields: withColumns ? (f.columns || []).map((c) => toDef(c)) : opts.fields };
    if (!opts.table) delete opts.table;
  }
  if (f.type === 'formula' && !opts.result_type) delete opts.result_type;
  if (Object.keys(opts).length || ['single_select', 'multi_select', 'formula', 'link', 'sub_table'].includes(f.type)) d.options = opts;
  return d;
}

// Local expression check while typing: brackets, quotes, unknown names. The server's check
// (with positions) runs on save and its message lands on the same control.
export function checkExpression(src, names) {
  if (!src || !src.trim()) return t('designer.formula_empty');
  let depth = 0, quote = null;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quote) { if (c === '\\') i++; else if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')') { depth--; if (depth < 0) return t('designer.formula_paren_extra', { pos: i + 1 }); }
  }
  if (quote) return t('designer.formula_quote');
  if (depth > 0) return t('designer.formula_paren_open');
  const stripped = src.replace(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, '""');
  const words = stripped.match(/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/g) || [];
  const kw = new Set(['and', 'or', 'not', 'in', 'True', 'False', 'None', 'true', 'false', 'null', 'if', 'else', 'record']);
  for (const w of words) {
    const head = w.split('.')[0];
    if (kw.has(head) || FUNCS.includes(head.toUpperCase()) || names.has(head)) continue;
    return t('designer.formula_unknown', { name: head });
  }
  if (/[+\-*/<>=]\s*$/.test(stripped)) return t('designer.formula_incomplete');
  return null;
}

export const TableDesigner = {
  props: ['tableName'],
  setup(props) {
    const isNew = !props.tableName || props.tableName === 'new';
    const d = reactive({ api_name: '', label: '', labelAuto: true, fields: [], selected: null, loaded: isNew, saving: false,
      dirty: false, server: null, sections: [] });  // sections: [{k, label}]; a field's .section is a section's k
    const errors = reactive({ table: {}, byKey: {}, general: '' });
    const canvas = ref(null), palette = ref(null), colCanvas = ref(null);
    let sortables = [];

    async function load() {
      if (isNew) return;
      await loadTables();
      const tb = tableByName(props.tableName);
      if (!tb) { errors.general = t('designer.not_found'); d.loaded = true; return; }
      d.server = tb; d.api_name = tb.api_name; d.label = label(tb.label, ''); d.labelAuto = false;
      d.fields = tb.fields.map((f) => fromServer(f, state.tables));
      loadSections(tb);
      d.loaded = true;
    }
    function loadSections(tb) {
      d.sections = (tb.sections || []).map((x) => ({ k: uid(), label: label(x.label, '') }));
      (tb.sections || []).forEach((x, i) => x.fields.forEach((n) => { const f = d.fields.find((y) => y.api_name === n); if (f) f.section = d.sections[i].k; }));
    }
    function sectionsOut() {
      return d.sections.map((x) => ({ label: x.label || t('designer.section'), fields: d.fields.filter((f) => f.section === x.k).map((f) => f.api_name) }))
        .filter((x) => x.fields.length);
    }
    const sectionsChanged = () => JSON.stringify(sectionsOut()) !== JSON.stringify((d.server?.sections || []).map((x) => ({ label: label(x.label, ''), fields: x.fields })));

    const sel = computed(() => d.fields.find((f) => f._k === d.selected) || null);
    const taken = () => new Set(d.fields.map((f) => f.api_name));

    function addField(type, index = d.fields.length) {
      const f = newField(type, taken());
      d.fields.splice(index, 0, f);
      d.selected = f._k; d.dirty = true;
      nextTick(() => bindColumnCanvas());
      return f;
    }
    function addColumn(f, type, index) {
      const names = new Set(f.columns.map((c) => c.api_name));
      const c = newField(type, names);
      f.columns.splice(index ?? f.columns.length, 0, c); d.dirty = true;
    }
    function removeField(f) {
      d.fields.splice(d.fields.indexOf(f), 1); if (d.selected === f._k) d.selected = null; d.dirty = true;
    }
    function move(list, from, to) { const [x] = list.splice(from, 1); list.splice(to, 0, x); d.dirty = true; }

    // SortableJS moves DOM nodes itself; Vue owns the DOM, so each drop is undone in the DOM
    // and replayed on the reactive list.
    function undoDom(evt, removeItem) {
      const { item, from, oldIndex } = evt;
      if (removeItem) {  // a clone drag from the palette: put Vue's own node back where the clone is
        if (evt.clone && evt.clone.parentNode) evt.clone.parentNode.replaceChild(item, evt.clone);
        else if (item.parentNode) item.parentNode.removeChild(item);
        return;
      }
      item.parentNode.removeChild(item);
      from.insertBefore(item, from.children[oldIndex] || null);
    }
    // Where a palette item was dropped: the number of fields before it.
    function indexAmong(item, cls) {
      let n = 0;
      for (let el = item.previousElementSibling; el; el = el.previousElementSibling) if (el.classList.contains(cls)) n++;
      return n;
    }
    function bindPalette() {
      if (!palette.value) return;
      sortables.push(Sortable.create(palette.value, { group: { name: 'fields', pull: 'clone', put: false }, sort: false,
        animation: 120, draggable: '.palette-item' }));
    }
    function bindCanvas() {
      if (!canvas.value) return;
      sortables.push(Sortable.create(canvas.value, { group: { name: 'fields', pull: false, put: true }, animation: 120,
        draggable: '.canvas-field', handle: '.canvas-field',
        onAdd(evt) { const type = evt.item.dataset.type, at = indexAmong(evt.item, 'canvas-field'); undoDom(evt, true); if (type) addField(type, at); },
        onUpdate(evt) { undoDom(evt); move(d.fields, evt.oldDraggableIndex, evt.newDraggableIndex); } }));
    }
    let colSortable = null;
    function bindColumnCanvas() {
      if (colSortable) { colSortable.destroy(); colSortable = null; }
      if (!colCanvas.value || !sel.value || sel.value.type !== 'sub_table') return;
      const f = sel.value;
      colSortable = Sortable.create(colCanvas.value, { group: { name: 'fields', pull: false, put: true }, animation: 120,
        draggable: '.col-item', handle: '.drag-handle',
        onAdd(evt) { const type = evt.item.dataset.type, at = indexAmong(evt.item, 'col-item'); undoDom(evt, true); if (type && type !== 'sub_table') addColumn(f, type, at); },
        onUpdate(evt) { undoDom(evt); move(f.columns, evt.oldDraggableIndex, evt.newDraggableIndex); } });
    }
    onMounted(async () => { await load(); await nextTick(); bindPalette(); bindCanvas(); });
    // Unsaved changes: the browser asks before the tab closes.
    const beforeUnload = (e) => { if (d.dirty) { e.preventDefault(); e.returnValue = ''; } };
    window.addEventListener('beforeunload', beforeUnload);
    onBeforeUnmount(() => { sortables.forEach((s) => s.destroy()); if (colSortable) colSortable.destroy(); window.removeEventListener('beforeunload', beforeUnload); });

    function select(f) { d.selected = f._k; nextTick(bindColumnCanvas); if (f.type === 'formula' && f.options.expression) runCheck(f); }
    function touch(f, key, value) {
      f[key] = value; d.dirty = true;
      if (key === 'label' && f._auto && !f._orig) { const s = slug(value); if (s && /^[a-z]/.test(s)) f.api_name = s; }
      if (key === 'api_name') f._auto = false;
    }

    // -- save ---------------------------------------------------------------------------------
    function clearErrors() { errors.table = {}; errors.byKey = {}; errors.general = ''; }
    function putError(pointer, msg, fieldIndexBase = null) {
      const m = pointer.match(/^\/fields\/(\d+)(\/.*)?$/);
      if (m) {
        const f = fieldIndexBase ?? d.fields[+m[1]];
        if (f) { (errors.byKey[f._k] ||= {})[m[2] || ''] = msg; return; }
      }
      if (pointer === '/api_name' || pointer === '/label') { errors.table[pointer] = msg; return; }
      errors.general = errors.general ? errors.general + ' ' + msg : msg;
    }
    function applyApiError(e, fieldForPointers = null) {
      if (!(e instanceof ApiError)) { errors.general = msgOf(e); return; }
      if (!e.errors.length) { if (fieldForPointers) (errors.byKey[fieldForPointers._k] ||= {})[''] = e.text; else errors.general = e.text; return; }
      for (const x of e.errors) {
        if (fieldForPointers) (errors.byKey[fieldForPointers._k] ||= {})[x.pointer || ''] = msgOf(x);
        else putError(x.pointer || '', msgOf(x));
      }
      const firstKey = Object.keys(errors.byKey)[0];
      if (firstKey && !errors.byKey[d.selected]) d.selected = firstKey;
      nextTick(() => {
        bindColumnCanvas();
        const el = document.querySelector('.designer .has-error input, .designer .has-error textarea, .designer .has-error select');
        if (el) el.focus();
      });
    }

    async function save() {
      clearErrors(); d.saving = true;
      try {
        if (isNew || !d.server) {
          const body = { api_name: d.api_name || slug(d.label) || '', label: d.label || undefined, fields: d.fields.map((f) => toDef(f)) };
          if (sectionsOut().length) body.sections = sectionsOut();
          if (!body.label) delete body.label;
          const res = await post('/tables', body);
          d.dirty = false; await loadTables(); toast(t('designer.saved'), 'ok');
          go('designer', res.table.api_name);
          return;
        }
        await saveExisting();
        d.dirty = false; toast(t('designer.saved'), 'ok');
        await loadTables();
        const tb = tableByName(d.api_name);
        if (tb) { d.server = tb; d.fields = tb.fields.map((f) => fromServer(f, state.tables)); loadSections(tb); d.selected = null; }
      } catch (e) {
        applyApiError(e);
        toast(t('designer.save_failed'), 'error');
      } finally { d.saving = false; }
    }

    async function saveExisting() {
      const tb = d.server;
      const base = `/tables/${encodeURIComponent(tb.api_name)}`;
      if (d.label !== label(tb.label, '')) await patch(base, { label: d.label });
      const keep = new Set(d.fields.filter((f) => f._orig).map((f) => f._orig));
      for (const f of tb.fields) if (!keep.has(f.api_name)) await wrap(null, () => del(`${base}/fields/${f.api_name}`));
      for (let i = 0; i < d.fields.length; i++) {
        const f = d.fields[i];
        if (!f._orig) {
          const res = await wrap(f, () => post(`${base}/fields`, toDef(f)));
          f._orig = f.api_name; f.id = res.field?.id;
          const moved = await wrap(f, () => patch(`${base}/fields/${f.api_name}`, { position: i }));
          // what the server now has: a later failure and a retry must PATCH, not re-create
          f._server = JSON.parse(JSON.stringify(moved.field || { ...toDef(f), position: i }));
          if (f.type === 'sub_table') f.columns.forEach((c, j) => { c._orig = c.api_name; c._server = { ...toDef(c), position: j }; });
          continue;
        }
        const now = toDef(f, { withColumns: false });
        const was = toDef(fromServer(f._server, state.tables), { withColumns: false });
        const changes = {};
        for (const k of new Set([...Object.keys(now), ...Object.keys(was)])) {
          if (JSON.stringify(now[k]) !== JSON.stringify(was[k])) changes[k] = now[k] ?? null;
        }
        if (changes.options && f.type === 'sub_table') delete changes.options;
        if (f._server.position !== i) changes.position = i;
        if (Object.keys(changes).length) {
          const res = await wrap(f, () => patch(`${base}/fields/${f._orig}`, changes));
          f._orig = f.api_name;
          if (res.field) f._server = JSON.parse(JSON.stringify(res.field));
        }
        if (f.type === 'sub_table') await saveColumns(f);
      }
      if (sectionsChanged()) {
        try { await patch(base, { sections: sectionsOut() }); } catch (e) {
          if (e instanceof ApiError) e.errors = e.errors.map((x) => ({ ...x, pointer: '/sections' }));
          throw e;
        }
      }
    }
    async function saveColumns(f) {
      const child = state.tables.find((x) => x.api_name === f.options.table);
      if (!child) return;
      const cbase = `/tables/${encodeURIComponent(child.api_name)}/fields`;
      const keep = new Set(f.columns.filter((c) => c._orig).map((c) => c._orig));
      for (const c of child.fields) if (!keep.has(c.api_name)) await wrap(f, () => del(`${cbase}/${c.api_name}`));
      for (let j = 0; j < f.columns.length; j++) {
        const c = f.columns[j];
        const prefix = `/options/fields/${j}`;
        if (!c._orig) {
          const res = await wrap(f, () => post(cbase, toDef(c)), prefix);
          c._orig = c.api_name; c._server = JSON.parse(JSON.stringify(res.field || { ...toDef(c), position: j }));
          continue;
        }
        const now = toDef(c), was = toDef(fromServer(c._server, state.tables));
        const changes = {};
        for (const k of new Set([...Object.keys(now), ...Object.keys(was)])) if (JSON.stringify(now[k]) !== JSON.stringify(was[k])) changes[k] = now[k] ?? null;
        if (c._server.position !== j) changes.position = j;
        if (Object.keys(changes).length) {
          const res = await wrap(f, () => patch(`${cbase}/${c._orig}`, changes), prefix);
          c._orig = c.api_name; if (res.field) c._server = JSON.parse(JSON.stringify(res.field));
        }
      }
    }
    // Runs one request of a multi-request save; its pointers are relative to the field.
    async function wrap(f, fn, prefix = '') {
      try { return await fn(); } catch (e) {
        if (f && e instanceof ApiError) {
          const i = d.fields.indexOf(f);
          const errs = e.errors.length ? e.errors : [{ pointer: '', message: e.message, message_zh: e.error.message_zh }];
          e.errors = errs.map((x) => ({ ...x, pointer: `/fields/${i}${prefix}${x.pointer || ''}` }));
        }
        throw e;
      }
    }

    // -- formula check -------------------------------------------------------------------------
    const formulaMsg = ref('');
    const runCheck = debounce((f) => {
      const names = new Set(d.fields.filter((x) => x !== f).map((x) => x.api_name));
      names.add('id');
      formulaMsg.value = checkExpression(f.options.expression, names) || '';
      if (!formulaMsg.value) runPreview(f);
    }, 250);

    // -- formula preview: the server checks the formula and computes it on a sample record
    // (the one picked, else the first). Only for a saved table; nothing is written.
    const pv = reactive({ key: null, recordId: '', busy: false, result: null, error: '' });
    let pvSeq = 0;
    async function runPreview(f) {
      if (!d.server || !f.options.expression || !f.options.expression.trim()) return;
      const seq = ++pvSeq;
      pv.key = f._k; pv.busy = true; pv.error = '';
      const body = { expression: f.options.expression };
      if (String(pv.recordId).trim()) body.record_id = Number(pv.recordId);
      try {
        const res = await post(`/tables/${encodeURIComponent(d.server.api_name)}/formula-preview`, body);
        if (seq === pvSeq) pv.result = res;
      } catch (e) {
        if (seq !== pvSeq) return;
        pv.result = null;
        pv.error = e instanceof ApiError && e.errors.length ? msgOf(e.errors[0]) : msgOf(e);
      } finally { if (seq === pvSeq) pv.busy = false; }
    }
    function previewText(res) {
      const v = res.value;
      if (v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length)) return t('designer.preview_blank');
      if (v === true || v === false) return v ? t('common.yes') : t('common.no');
      if (typeof v === 'object') return JSON.stringify(v);
      return String(v);
    }
    function previewBox(f) {
      if (!d.server) return html`<p class="hint" data-test="formula-preview">${t('designer.preview_save_first')}</p>`;
      const mine = pv.key === f._k;
      const res = mine ? pv.result : null, err = mine ? pv.error : '';
      return html`<div class="formula-preview" role="group" aria-label=${t('designer.preview')}>
        <div class="row">
          <label for="f-pv-rec">${t('designer.preview_record')}</label>
          <input id="f-pv-rec" type="number" min="1" step="1" size="8" data-test="formula-preview-record" value=${pv.recordId}
            placeholder=${t('designer.preview_first')} onInput=${(ev) => { pv.recordId = ev.target.value; }}
            onKeydown=${(ev) => { if (ev.key === 'Enter') { ev.preventDefault(); runPreview(f); } }} />
          <button type="button" data-test="formula-preview-run" disabled=${!f.options.expression} onClick=${() => runPreview(f)}>${t('designer.preview_run')}</button>
        </div>
        <div class="preview-out" role="status" aria-live="polite" data-test="formula-preview">
          ${mine && pv.busy ? html`<span class="muted">${t('app.loading')}</span>`
            : err ? html`<span class="field-error">${err}</span>`
            : !res ? html`<span class="muted">${t('designer.preview_hint')}</span>`
            : res.empty ? html`<span class="muted">${t('designer.preview_empty_table')}</span>`
            : html`<span>${t('designer.preview_on', { id: res.record_id })}</span>
                <output class="preview-value mono" data-test="formula-preview-value">${previewText(res)}</output>
                <span class="type-tag">${res.type}</span>
                ${res.error ? html`<div class="field-error">${t('designer.preview_cannot')} ${msgOf(res.error)}</div>` : null}`}
        </div></div>`;
    }

    // -- rendering -----------------------------------------------------------------------------
    const err = (f, p) => (errors.byKey[f._k] || {})[p];
    function ctl(id, lbl, input, msg, extra = '') {
      return html`<div class=${'ctl ' + (msg ? 'has-error ' : '') + extra}>
        <label for=${id}>${lbl}</label>${input}
        ${msg ? html`<div class="field-error" role="alert" id=${id + '-err'}>${msg}</div>` : null}</div>`;
    }
    function inputCtl(id, lbl, value, onInput, msg, attrs = {}) {
      return ctl(id, lbl, html`<input id=${id} value=${value ?? ''} onInput=${(e) => onInput(e.target.value)}
        aria-invalid=${!!msg} aria-describedby=${msg ? id + '-err' : undefined} ...${attrs} />`, msg);
    }

    function choicesEditor(f) {
      const list = f.options.choices || (f.options.choices = []);
      return html`<fieldset class="choices"><legend>${t('designer.options')}</legend>
        ${list.map((c, i) => html`<div class=${'choice-row' + (err(f, `/options/choices/${i}/label`) ? ' has-error' : '')} key=${i}>
          <span class=${'swatch c-' + (c.color || 'gray')}></span>
          <input aria-label=${t('designer.option_label', { n: i + 1 })} value=${c.label} data-test=${'choice-' + i}
            onInput=${(e) => { c.label = e.target.value; d.dirty = true; }} />
          <select aria-label=${t('designer.option_color', { n: i + 1 })} value=${c.color || 'gray'}
            onChange=${(e) => { c.color = e.target.value; d.dirty = true; }}>
            ${CHOICE_COLORS.map((col) => html`<option value=${col}>${t('color.' + col)}</option>`)}</select>
          <button type="button" class="icon" aria-label=${t('designer.option_up')} disabled=${i === 0} onClick=${() => move(list, i, i - 1)}>↑</button>
          <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { list.splice(i, 1); d.dirty = true; }}>✕</button>
          ${err(f, `/options/choices/${i}/label`) ? html`<div class="field-error" role="alert">${err(f, `/options/choices/${i}/label`)}</div>` : null}
        </div>`)}
        ${err(f, '/options/choices') ? html`<div class="field-error" role="alert">${err(f, '/options/choices')}</div>` : null}
        <button type="button" data-test="add-choice" onClick=${() => { list.push({ label: '', color: CHOICE_COLORS[(list.length + 4) % CHOICE_COLORS.length] }); d.dirty = true;
          nextTick(() => { const el = document.querySelector(`[data-test=choice-${list.length - 1}]`); el && el.focus(); }); }}>＋ ${t('designer.add_option')}</button>
      </fieldset>`;
    }

    function columnsEditor(f) {
      return html`<fieldset class="columns"><legend>${t('designer.subtable_columns')}</legend>
        <p class="hint">${t('designer.subtable_hint')}</p>
        <ol class="col-canvas" ref=${colCanvas} data-test="subtable-canvas" aria-label=${t('designer.subtable_columns')}>
          ${f.columns.map((c, j) => html`<li class=${'col-item' + (Object.keys(errors.byKey[f._k] || {}).some((p) => p.startsWith(`/options/fields/${j}/`)) ? ' has-error' : '')} key=${c._k}>
            <span class="drag-handle" aria-hidden="true">⋮⋮</span>
            <input aria-label=${t('designer.col_label', { n: j + 1 })} value=${c.label} placeholder=${t('designer.label')}
              onInput=${(e) => touch(c, 'label', e.target.value)} />
            <input aria-label=${t('designer.col_api', { n: j + 1 })} value=${c.api_name} class="mono"
              onInput=${(e) => touch(c, 'api_name', e.target.value)} />
            <span class="type-tag">${label(ftype(c.type)?.label, c.type)}</span>
            <label class="check"><input type="checkbox" checked=${c.required} onChange=${(e) => touch(c, 'required', e.target.checked)} />${t('designer.required')}</label>
            <button type="button" class="icon" aria-label=${t('designer.col_up')} disabled=${j === 0} onClick=${() => move(f.columns, j, j - 1)}>↑</button>
            <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { f.columns.splice(j, 1); d.dirty = true; }}>✕</button>
            ${Object.entries(errors.byKey[f._k] || {}).filter(([p]) => p.startsWith(`/options/fields/${j}/`) || p === `/options/fields/${j}`)
              .map(([p, m]) => html`<div class="field-error" role="alert">${m}</div>`)}
          </li>`)}
          ${f.columns.length ? null : html`<li class="drop-hint">${t('designer.drop_columns')}</li>`}
        </ol>
        <div class="row"><label for="add-col-type" class="sr-only">${t('designer.add_column')}</label>
          <select id="add-col-type" data-test="add-column-type">${state.fieldTypes.filter((x) => !x.computed && x.type !== 'sub_table')
            .map((x) => html`<option value=${x.type}>${label(x.label)}</option>`)}</select>
          <button type="button" data-test="add-column" onClick=${() => addColumn(f, document.getElementById('add-col-type').value)}>＋ ${t('designer.add_column')}</button></div>
      </fieldset>`;
    }

    // Lookup / rollup: follow a link or sub-table field, then pick a field of the rows there.
    function throughEditor(f, e) {
      const via = d.fields.filter((x) => x.type === 'link' || x.type === 'sub_table');
      const thr = d.fields.find((x) => x.api_name === f.options.through);
      const targetFields = !thr ? [] : thr.type === 'sub_table' ? thr.columns
        : ((state.tables.find((x) => x.api_name === thr.options.target) || { fields: [] }).fields);
      const set = (k, v) => { if (v === '' || v === undefined) delete f.options[k]; else f.options[k] = v; d.dirty = true; };
      return html`
        ${ctl('f-through', t('designer.through'), html`<select id="f-through" value=${f.options.through || ''} onChange=${(ev) => set('through', ev.target.value)}>
          <option value="">${t('common.choose')}</option>${via.map((x) => html`<option value=${x.api_name}>${x.label || x.api_name}</option>`)}</select>`, e('/options/through'))}
        ${f.type === 'rollup' ? ctl('f-fn', t('designer.rollup_fn'), html`<select id="f-fn" value=${f.options.fn} onChange=${(ev) => set('fn', ev.target.value)}>
          ${['count', 'sum', 'avg', 'min', 'max', 'count_distinct'].map((x) => html`<option value=${x}>${t('dash.fn_' + x)}</option>`)}</select>`, e('/options/fn')) : null}
        ${f.type === 'lookup' || f.options.fn !== 'count' ? ctl('f-of', t('designer.of_field'), html`<select id="f-of" value=${f.options.field || ''} onChange=${(ev) => set('field', ev.target.value)}>
          <option value="">${t('common.choose')}</option>${targetFields.map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>`, e('/options/field')) : null}`;
    }
    function panel(f) {
      if (!f) return html`<div class="panel-empty muted">${t('designer.select_hint')}</div>`;
      const e = (p) => err(f, p);
      const known = ['', '/label', '/api_name', '/required', '/default', '/type', '/options/expression', '/options/pattern', '/options/target', '/options/result_type', '/options/choices', '/options/decimals', '/options/through', '/options/fn', '/options/field'];
      const other = Object.entries(errors.byKey[f._k] || {}).filter(([p]) => !known.includes(p) && !p.startsWith('/options/choices/') && !p.startsWith('/options/fields/'));
      const tables = state.tables.filter((x) => !x.parent_table);
      return html`<div class="field-panel" aria-label=${t('designer.field_settings')}>
        <h3>${t('designer.field_settings')} <span class="type-tag">${label(ftype(f.type)?.label, f.type)}</span></h3>
        ${e('') ? html`<div class="field-error" role="alert">${e('')}</div>` : null}
        ${other.map(([p, m]) => html`<div class="field-error" role="alert">${p}: ${m}</div>`)}
        ${inputCtl('f-label', t('designer.label'), f.label, (v) => touch(f, 'label', v), e('/label'), { 'data-test': 'field-label' })}
        ${inputCtl('f-api', t('designer.api_name'), f.api_name, (v) => touch(f, 'api_name', v), e('/api_name'), { class: 'mono', 'data-test': 'field-api-name' })}
        ${d.sections.length ? ctl('f-section', t('designer.section'), html`<select id="f-section" data-test="field-section" value=${f.section || ''}
            onChange=${(ev) => { f.section = ev.target.value || undefined; d.dirty = true; }}>
            <option value="">—</option>${d.sections.map((x) => html`<option value=${x.k}>${x.label || t('designer.section')}</option>`)}</select>`) : null}
        ${SYSTEM_TYPES.has(f.type) || ftype(f.type)?.computed ? null : html`<div class=${'ctl check' + (e('/required') ? ' has-error' : '')}>
          <label><input type="checkbox" checked=${f.required} data-test="field-required" onChange=${(ev) => touch(f, 'required', ev.target.checked)} /> ${t('designer.required')}</label>
          ${e('/required') ? html`<div class="field-error" role="alert">${e('/required')}</div>` : null}</div>`}
        ${['text', 'number', 'currency', 'percent', 'single_select', 'email', 'phone', 'url', 'long_text'].includes(f.type)
          ? inputCtl('f-default', t('designer.default'), f.default ?? '', (v) => touch(f, 'default', v === '' ? null : (['number', 'currency', 'percent'].includes(f.type) && !isNaN(+v) ? +v : v)), e('/default')) : null}
        ${['single_select', 'multi_select'].includes(f.type) ? choicesEditor(f) : null}
        ${f.type === 'autonumber' ? inputCtl('f-pattern', t('designer.pattern'), f.options.pattern, (v) => { f.options.pattern = v; d.dirty = true; }, e('/options/pattern'), { class: 'mono', 'data-test': 'field-pattern' }) : null}
        ${f.type === 'autonumber' ? html`<p class="hint">${t('designer.pattern_hint')}</p>` : null}
        ${['number', 'currency', 'percent'].includes(f.type) ? inputCtl('f-decimals', t('designer.decimals'), f.options.decimals ?? '', (v) => { if (v === '') delete f.options.decimals; else f.options.decimals = +v; d.dirty = true; }, e('/options/decimals'), { type: 'number', min: 0, max: 8 }) : null}
        ${f.type === 'link' ? ctl('f-target', t('designer.link_target'), html`<select id="f-target" value=${f.options.target} data-test="field-target"
            onChange=${(ev) => { f.options.target = ev.target.value; d.dirty = true; }}>
            <option value="">${t('common.choose')}</option>
            ${tables.map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>`, e('/options/target')) : null}
        ${f.type === 'formula' ? html`
          ${ctl('f-expr', t('designer.formula'), html`<textarea id="f-expr" class="mono" rows="3" data-test="field-formula"
              aria-invalid=${!!(e('/options/expression') || formulaMsg.value)} aria-describedby="f-expr-check"
              onInput=${(ev) => { f.options.expression = ev.target.value; d.dirty = true; delete (errors.byKey[f._k] || {})['/options/expression']; runCheck(f); }}
              value=${f.options.expression}></textarea>`, e('/options/expression'))}
          <div id="f-expr-check" class=${formulaMsg.value ? 'field-error' : 'ok-note'} role="status" data-test="formula-check">
            ${formulaMsg.value || (f.options.expression ? t('designer.formula_ok') : '')}</div>
          ${previewBox(f)}
          <p class="hint">${t('designer.formula_fields')}: ${d.fields.filter((x) => x !== f).map((x) => x.api_name).join(', ')}</p>
          ${ctl('f-rt', t('designer.result_type'), html`<select id="f-rt" value=${f.options.result_type || ''} onChange=${(ev) => { f.options.result_type = ev.target.value; d.dirty = true; }}>
            ${['number', 'currency', 'percent', 'text', 'boolean', 'date', 'datetime'].map((x) => html`<option value=${x}>${label(ftype(x)?.label, x)}</option>`)}</select>`, e('/options/result_type'))}` : null}
        ${f.type === 'sub_table' ? columnsEditor(f) : null}
        ${f.type === 'lookup' || f.type === 'rollup' ? throughEditor(f, e) : null}
        <button type="button" class="danger" onClick=${() => removeField(f)}>${t('designer.remove_field')}</button>
      </div>`;
    }

    return () => {
      if (!d.loaded) return html`<p class="muted">${t('app.loading')}</p>`;
      const hasErrors = errors.general || Object.keys(errors.table).length || Object.keys(errors.byKey).length;
      return html`<section class="designer">
        <header class="screen-head">
          <h1>${isNew ? t('designer.new_title') : t('designer.title', { name: d.label || d.api_name })}</h1>
          <span class="spacer"></span>
          ${d.dirty ? html`<span class="muted" data-test="unsaved">${t('designer.unsaved')}</span>` : null}
          ${!isNew ? html`<a class="button" href=${'#/table/' + d.api_name}>${t('designer.open_data')}</a>` : null}
          <button class="primary" type="button" data-test="save-table" disabled=${d.saving} onClick=${save}>${d.saving ? t('common.saving') : t('common.save')}</button>
        </header>
        ${hasErrors ? html`<div class="banner error" role="alert" data-test="save-errors">${t('designer.fix_errors')} ${errors.general}</div>` : null}
        <div class="table-props">
          ${inputCtl('t-label', t('designer.table_label'), d.label, (v) => { d.label = v; d.dirty = true; if (isNew && d.labelAuto) { const s = slug(v); if (s) d.api_name = s; } }, errors.table['/label'], { 'data-test': 'table-label' })}
          ${inputCtl('t-api', t('designer.api_name'), d.api_name, (v) => { d.api_name = v; d.labelAuto = false; d.dirty = true; }, errors.table['/api_name'], { class: 'mono', 'data-test': 'table-api-name', readonly: !isNew })}
        </div>
        <div class="designer-grid">
          <aside class="palette-wrap" aria-label=${t('designer.palette')}>
            <h2>${t('designer.palette')}</h2>
            <p class="hint">${t('designer.palette_hint')}</p>
            <ul class="palette" ref=${palette}>
              ${state.fieldTypes.filter((x) => !SYSTEM_TYPES.has(x.type)).map((x) => html`<li class="palette-item" data-type=${x.type} key=${x.type}>
                <button type="button" data-test=${'palette-' + x.type} onClick=${() => addField(x.type)}
                  aria-label=${t('designer.add_type', { type: label(x.label) })}>${label(x.label)}</button></li>`)}
            </ul>
          </aside>
          <div class="canvas-wrap">
            <h2>${t('designer.canvas')}</h2>
            <div class="sections-bar" role="group" aria-label=${t('designer.sections')}>
              <span class="muted small">${t('designer.sections')}:</span>
              ${d.sections.map((x, i) => html`<span class="chip" key=${x.k}>
                <input aria-label=${t('designer.section_name', { n: i + 1 })} value=${x.label} data-test=${'section-' + i} size="8"
                  onInput=${(e) => { x.label = e.target.value; d.dirty = true; }} />
                <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => { d.fields.forEach((f) => { if (f.section === x.k) f.section = undefined; }); d.sections.splice(i, 1); d.dirty = true; }}>✕</button></span>`)}
              <button type="button" data-test="add-section" onClick=${() => { d.sections.push({ k: uid(), label: t('designer.section') + ' ' + (d.sections.length + 1) }); d.dirty = true; }}>＋ ${t('designer.add_section')}</button>
            </div>
            <ol class="canvas" ref=${canvas} data-test="canvas" aria-label=${t('designer.canvas')}>
              ${d.fields.map((f, i) => html`<li class=${'canvas-field' + (d.selected === f._k ? ' selected' : '') + (errors.byKey[f._k] ? ' has-error' : '')}
                  key=${f._k} data-test=${'canvas-field-' + f.api_name}>
                <button type="button" class="canvas-select" onClick=${() => select(f)} aria-pressed=${d.selected === f._k}>
                  <span class="drag-handle" aria-hidden="true">⋮⋮</span>
                  <span class="f-label">${f.label || f.api_name}${f.required ? html`<span class="req" aria-label=${t('designer.required')}>*</span>` : null}</span>
                  <span class="type-tag">${label(ftype(f.type)?.label, f.type)}</span>
                  <span class="mono muted">${f.api_name}</span>
                  ${f.type === 'sub_table' ? html`<span class="muted">(${f.columns.length} ${t('designer.columns_n')})</span>` : null}
                  ${f.section && d.sections.find((x) => x.k === f.section) ? html`<span class="pill c-purple">${d.sections.find((x) => x.k === f.section).label}</span>` : null}
                  ${errors.byKey[f._k] ? html`<span class="err-dot" aria-label=${t('designer.has_error')}>!</span>` : null}
                </button>
                <span class="move-btns">
                  <button type="button" class="icon" aria-label=${t('designer.move_up')} disabled=${i === 0} onClick=${() => move(d.fields, i, i - 1)}>↑</button>
                  <button type="button" class="icon" aria-label=${t('designer.move_down')} disabled=${i === d.fields.length - 1} onClick=${() => move(d.fields, i, i + 1)}>↓</button>
                </span>
              </li>`)}
              ${d.fields.length ? null : html`<li class="drop-hint">${t('designer.drop_here')}</li>`}
            </ol>
          </div>
          <aside class="side-panel">${panel(sel.value)}</aside>
        </div>
      </section>`;
    };
  },
};
