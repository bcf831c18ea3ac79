// Data screen: view tabs, toolbar (search, filter builder, fields, save view), the virtual
// grid (keyset pages + offset jumps, only visible rows rendered), kanban and the record form.
import { html, state, t, label, fieldLabel, get, post, patch, del, api, ApiError, msgOf, loadTables, tableByName, go,
  ref, reactive, computed, watch, onMounted, onBeforeUnmount, nextTick, toast, uid, debounce, markRaw, shallowRef }
  from './lib.js';
import { display, editor, toInput, fromInput, isEditable, INLINE_EDITABLE, primaryField, fieldByName, opsFor, opLabel, NUMERIC } from './fields.js';
import { FilterBuilder } from './filter.js';
import { RecordForm } from './record.js';
import { Kanban } from './kanban.js';
import { FormView, CalendarView } from './views_extra.js';

const RH = 34;            // row height (px)
const BLOCK = 60;         // rows per page request (a screenful and a half)
const KEEP_BLOCKS = 40;   // pages kept in memory around the viewport
// Fields a grid can be grouped by: few distinct values, one value per record.
const GROUPABLE = new Set(['single_select', 'boolean', 'text', 'number', 'currency', 'percent', 'date', 'email', 'phone',
  'created_by', 'modified_by', 'link']);
export function groupable(f) {
  return GROUPABLE.has(f.type) && !(f.type === 'link' && f.options?.relationship && f.options.relationship !== 'many_to_one');
}

function defaultWidth(f) {
  if (NUMERIC.has(f.type) || f.type === 'boolean') return 110;
  if (['long_text', 'address', 'multi_select'].includes(f.type)) return 220;
  return 160;
}

export const DataScreen = {
  props: ['tableName', 'viewName'],
  setup(props) {
    const s = reactive({ table: null, views: [], view: null, filter: null, sorts: [], q: '', fields: [], error: '',
      showFilter: false, showFields: false, showSaveView: false, formId: null, formNew: false, reloadKey: 0, groupBy: '' });
    async function load() {
      // The shell has the tables already; the views load in parallel with the first page
      // unless the route names a view (whose filter the first page needs).
      if (!tableByName(props.tableName)) await loadTables();
      s.table = tableByName(props.tableName);
      if (!s.table) { s.error = t('grid.no_table'); return; }
      const views = get(`/tables/${s.table.api_name}/views`).then((d) => d.views).catch(() => []);
      if (!props.viewName) { applyView(null); s.views = await views; return; }
      s.views = await views;
      applyView(s.views.find((v) => v.api_name === props.viewName) || null);
    }
    function applyView(v) {
      s.view = v;
      s.filter = v?.filter ? JSON.parse(JSON.stringify(v.filter)) : null;
      s.sorts = v?.sorts ? JSON.parse(JSON.stringify(v.sorts)) : [];
      s.fields = v?.fields?.length ? [...v.fields] : s.table.fields.filter((f) => f.type !== 'json').map((f) => f.api_name);
      const gf = v?.group_by?.[0] && fieldByName(s.table, v.group_by[0]);
      s.groupBy = gf && groupable(gf) ? gf.api_name : '';
      s.reloadKey++;
    }
    onMounted(load);
    watch(() => props.viewName, (name) => { if (s.table) applyView(s.views.find((v) => v.api_name === name) || null); });
    const onSearch = debounce((v) => { s.q = v; s.reloadKey++; }, 300);

    function toggleField(name, on) {
      if (on) { const order = s.table.fields.map((f) => f.api_name); s.fields = order.filter((n) => n === name || s.fields.includes(n)); }
      else s.fields = s.fields.filter((n) => n !== name);
      s.reloadKey++;
    }
    async function addRecord() {
      try {
        const rec = await post(`/tables/${s.table.api_name}/records`, {});
        toast(t('grid.added', { id: rec.id }), 'ok');
        s.reloadKey++;
        grid.value && grid.value.focusLast && nextTick(() => grid.value.focusLast());
      } catch (e) { s.formNew = true; s.formId = null; }  // required fields: fill the form
    }
    const grid = ref(null);
    return () => {
      if (s.error) return html`<p class="banner error">${s.error}</p>`;
      if (!s.table) return html`<p class="muted">${t('app.loading')}</p>`;
      const tb = s.table;
      const isKanban = s.view && s.view.type === 'kanban';
      const isGrid = !s.view || s.view.type === 'grid';
      return html`<section class=${'data-screen' + (isGrid ? ' has-grid' : '')}>
        <header class="screen-head">
          <h1>${label(tb.label, tb.api_name)}</h1>
          <nav class="view-tabs" aria-label=${t('grid.views')}>
            <a href=${'#/table/' + tb.api_name} class=${!s.view ? 'active' : ''}>${t('grid.all_records')}</a>
            ${s.views.map((v) => html`<a key=${v.api_name} href=${'#/table/' + tb.api_name + '/' + v.api_name}
              class=${s.view && s.view.api_name === v.api_name ? 'active' : ''} data-test=${'view-tab-' + v.api_name}>
              ${{ kanban: '▦ ', form: '✎ ', calendar: '▤ ' }[v.type] || ''}${label(v.label, v.api_name)}</a>`)}
          </nav>
          <span class="spacer"></span>
          <a class="button" href=${'#/designer/' + tb.api_name}>${t('grid.design')}</a>
        </header>
        <div class="toolbar" role="toolbar" aria-label=${t('grid.toolbar')}>
          <label class="search"><span class="sr-only">${t('grid.search')}</span>
            <input type="search" placeholder=${t('grid.search')} aria-label=${t('grid.search')} data-test="grid-search"
              onInput=${(e) => onSearch(e.target.value)} /></label>
          <button type="button" aria-expanded=${s.showFilter} data-test="filter-toggle" class=${s.filter ? 'on' : ''}
            onClick=${() => (s.showFilter = !s.showFilter)}>⚲ ${t('grid.filter')}${s.filter ? ' •' : ''}</button>
          <button type="button" aria-expanded=${s.showFields} onClick=${() => (s.showFields = !s.showFields)}>☰ ${t('grid.fields')}</button>
          ${s.sorts.length ? html`<span class="chip">${t('grid.sorted_by')}: ${s.sorts.map((x) => (x.direction === 'desc' ? '↓' : '↑') + x.field).join(', ')}
            <button type="button" class="icon" aria-label=${t('grid.clear_sort')} onClick=${() => { s.sorts = []; s.reloadKey++; }}>✕</button></span>` : null}
          ${isGrid ? html`<label class="group-by"><span>${t('grid.group_by')}</span>
            <select data-test="group-by" value=${s.groupBy} onChange=${(e) => { s.groupBy = e.target.value; s.reloadKey++; }}>
              <option value="">${t('grid.no_grouping')}</option>
              ${tb.fields.filter(groupable).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select></label>` : null}
          <span class="spacer"></span>
          <button type="button" data-test="save-view" onClick=${() => (s.showSaveView = true)}>${t('grid.save_view')}</button>
          <button type="button" class="primary" data-test="add-record" onClick=${addRecord}>＋ ${t('grid.add_record')}</button>
        </div>
        ${s.showFilter ? html`<${FilterBuilder} table=${tb} value=${s.filter}
            onApply=${(f) => { s.filter = f; s.reloadKey++; }} onClose=${() => (s.showFilter = false)} />` : null}
        ${s.showFields ? html`<div class="popover fields-pop" role="group" aria-label=${t('grid.fields')}>
            ${tb.fields.map((f) => html`<label class="check" key=${f.api_name}><input type="checkbox" checked=${s.fields.includes(f.api_name)}
              onChange=${(e) => toggleField(f.api_name, e.target.checked)} /> ${fieldLabel(f)}</label>`)}</div>` : null}
        ${s.view && s.view.type === 'form' ? html`<${FormView} key=${'f' + s.view.api_name} table=${tb} view=${s.view} />`
          : s.view && s.view.type === 'calendar' ? html`<${CalendarView} key=${'c' + s.reloadKey} table=${tb} view=${s.view} filter=${s.filter}
              onOpen=${(id) => { s.formNew = false; s.formId = id; }} />`
          : isKanban
          ? html`<${Kanban} key=${'k' + s.reloadKey} table=${tb} view=${s.view} filter=${s.filter} q=${s.q}
              onOpen=${(id) => { s.formNew = false; s.formId = id; }} />`
          : html`<${Grid} ref=${grid} key=${'g' + s.reloadKey} table=${tb} filter=${s.filter} sorts=${s.sorts} q=${s.q} fields=${s.fields} groupBy=${s.groupBy}
              onSort=${(sorts) => { s.sorts = sorts; s.reloadKey++; }}
              onOpen=${(id) => { s.formNew = false; s.formId = id; }} />`}
        ${s.formId || s.formNew ? html`<${RecordForm} table=${tb} recordId=${s.formId}
            onClose=${(changed) => { s.formId = null; s.formNew = false; if (changed) s.reloadKey++; }} />` : null}
        ${s.showSaveView ? html`<${SaveView} table=${tb} screen=${s} onClose=${async (v) => {
            s.showSaveView = false;
            if (v) { s.views = (await get(`/tables/${tb.api_name}/views`)).views; go('table', tb.api_name, v.api_name); }
          }} />` : null}
      </section>`;
    };
  },
};

// -- the virtual grid ------------------------------------------------------------------------
export const Grid = {
  props: ['table', 'filter', 'sorts', 'q', 'fields', 'groupBy'],
  emits: ['sort', 'open'],
  setup(props, { emit, expose }) {
    const cols = computed(() => props.fields.map((n) => fieldByName(props.table, n)).filter(Boolean));
    const widths = reactive({});
    const g = reactive({ total: null, top: 0, height: 600, version: 0, active: { r: 0, c: 0 }, editing: false, edit: '',
      error: '', conflict: null, loadingFirst: true, counted: false });
    const blocks = new Map();   // block key -> {rows, next, pos}: a number, or "group:block" when grouped
    const inflight = new Map();
    const scroller = ref(null);
    const base = `/tables/${props.table.api_name}`;
    const gen = uid();
    window.__zsGrid = { blocks, g };  // for the benchmark and tests

    // Grouping: group headers (value, count from the aggregate API, open/closed) interleaved
    // with each open group's rows; each group pages through its own filtered query, so the
    // rows under a header always have its value whatever the database's sort order is.
    const groupField = props.groupBy ? fieldByName(props.table, props.groupBy) : null;
    const grp = { list: [], starts: [], capped: false };
    function groupFilter(gi) {
      const v = grp.list[gi].value, name = groupField.api_name;
      const own = v === null || v === undefined || v === '' ? { field: name, op: 'is_empty' } : { field: name, op: '=', value: v };
      return props.filter ? { and: [props.filter, own] } : own;
    }
    function layout() {
      let pos = 0;
      grp.starts = grp.list.map((x) => { const at = pos; pos += 1 + (x.open ? x.count : 0); return at; });
      g.total = pos; g.version++;
    }
    // Display index -> {gi, k}: k = -1 for the header, else the row's index in its group.
    function locate(i) {
      let lo = 0, hi = grp.starts.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (grp.starts[mid] <= i) lo = mid; else hi = mid - 1; }
      return { gi: lo, k: i - grp.starts[lo] - 1 };
    }
    const headerAt = (i) => (groupField && grp.list.length ? (locate(i).k < 0 ? locate(i).gi : -1) : -1);
    async function loadGroups() {
      const body = { group_by: [{ field: groupField.api_name }], metrics: [{ fn: 'count', as: 'count' }] };
      if (props.filter) body.filter = props.filter;
      try {
        const d = await post(`${base}/aggregate`, body);
        grp.list = d.rows.map((r) => ({ value: r[groupField.api_name], count: r.count, open: true }));
        grp.capped = d.rows.length >= 1000;
        if (props.q) {  // the aggregate has no full-text search: count each group's matches
          for (let i = 0; i < grp.list.length; i += 4) {
            await Promise.all(grp.list.slice(i, i + 4).map((x, j) => query({ filter: groupFilter(i + j), count: true, limit: 1, fields: listFields.value.slice(0, 1) })
              .then((c) => { x.count = c.total; })));
          }
          grp.list = grp.list.filter((x) => x.count > 0);
        }
        layout();
      } catch (e) { g.error = msgOf(e); }
      g.loadingFirst = false; g.counted = true;
      ensureVisible();
    }
    function toggleGroup(gi) { grp.list[gi].open = !grp.list[gi].open; layout(); ensureVisible(); }

    // Sub-table lines are not fetched for the list (they cost a query per page); the cell
    // opens the record form instead.
    const listFields = computed(() => cols.value.filter((f) => f.type !== 'sub_table').map((f) => f.api_name));
    function query(extra) {
      const body = { limit: BLOCK, fields: listFields.value, ...extra };
      const filter = extra.filter || props.filter;
      if (filter) body.filter = filter;
      if (props.sorts && props.sorts.length) body.sorts = props.sorts;
      if (props.q) body.q = props.q;
      return post(`${base}/records/query`, body);
    }
    function fetchBlock(key) {
      if (blocks.has(key) || inflight.has(key)) return inflight.get(key) || Promise.resolve();
      const grouped = typeof key === 'string';
      const [gi, b] = grouped ? key.split(':').map(Number) : [null, key];
      const prev = blocks.get(grouped ? `${gi}:${b - 1}` : b - 1);
      const extra = b === 0 ? {} : prev && prev.next ? { cursor: prev.next } : { offset: b * BLOCK };
      if (grouped) extra.filter = groupFilter(gi);
      const p = query(extra).then((d) => {
        blocks.set(key, { rows: d.records.map((r) => markRaw(r)), next: d.next_cursor, pos: grouped ? grp.starts[gi] + 1 + b * BLOCK : b * BLOCK });
        if (grouped) {
          // a record changed since the count: the group's header says what its rows say
          const seen = b * BLOCK + d.records.length;
          const x = grp.list[gi];
          if (!d.has_more && x.count !== seen) { x.count = seen; layout(); }
        } else if (b === 0) {
          // Rows show at once; the exact count (a scan of every match) follows in a second
          // request, only when there is more than one page.
          g.total = d.records.length + (d.has_more ? BLOCK : 0); g.loadingFirst = false; g.counted = !d.has_more;
          if (d.has_more) query({ count: true, limit: 1, fields: listFields.value.slice(0, 1) })
            .then((c) => { g.total = c.total; g.counted = true; ensureVisible(); }).catch(() => {});
        }
        evict(blocks.get(key).pos); g.version++;
      }).catch((e) => { g.error = msgOf(e); g.loadingFirst = false; }).finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    }
    function evict(center) {
      if (blocks.size <= KEEP_BLOCKS) return;
      const keys = [...blocks.keys()].sort((a, b) => Math.abs(blocks.get(b).pos - center) - Math.abs(blocks.get(a).pos - center));
      for (const k of keys.slice(0, blocks.size - KEEP_BLOCKS)) if (k !== 0) blocks.delete(k);
    }
    function rowAt(i) {
      if (!groupField) { const b = blocks.get(Math.floor(i / BLOCK)); return b ? b.rows[i % BLOCK] : undefined; }
      if (!grp.list.length) return undefined;
      const { gi, k } = locate(i);
      if (k < 0) return undefined;
      const b = blocks.get(`${gi}:${Math.floor(k / BLOCK)}`);
      return b ? b.rows[k % BLOCK] : undefined;
    }
    function ensureVisible() {
      const first = Math.max(0, Math.floor(g.top / RH) - 5);
      const last = Math.min((g.total ?? BLOCK) - 1, Math.ceil((g.top + g.height) / RH) + 5);
      if (!groupField) {
        for (let b = Math.floor(first / BLOCK); b <= Math.floor(Math.max(first, last) / BLOCK); b++) fetchBlock(b);
        return;
      }
      if (!grp.list.length) return;
      const keys = new Set();
      for (let i = first; i <= last; i++) { const { gi, k } = locate(i); if (k >= 0) keys.add(`${gi}:${Math.floor(k / BLOCK)}`); }
      keys.forEach(fetchBlock);
    }
    let raf = 0;
    function onScroll() {
      if (raf) return;
      raf = requestAnimationFrame(() => { raf = 0; g.top = scroller.value.scrollTop; g.height = scroller.value.clientHeight; ensureVisible(); });
    }
    let ro, firstLoad;
    onMounted(() => {
      g.height = scroller.value.clientHeight;
      firstLoad = groupField ? loadGroups() : fetchBlock(0);
      ro = new ResizeObserver(() => { if (scroller.value) { g.height = scroller.value.clientHeight; ensureVisible(); } });
      ro.observe(scroller.value);
    });
    onBeforeUnmount(() => { ro && ro.disconnect(); if (window.__zsGrid && window.__zsGrid.blocks === blocks) window.__zsGrid = null; });

    // -- keyboard and editing -------------------------------------------------------------
    function moveTo(r, c) {
      const n = g.total ?? 0;
      r = Math.max(0, Math.min(n - 1, r)); c = Math.max(0, Math.min(cols.value.length - 1, c));
      g.active = { r, c };
      const el = scroller.value, headH = 36;
      if (r * RH < el.scrollTop) el.scrollTop = r * RH;
      else if ((r + 1) * RH + headH > el.scrollTop + el.clientHeight) el.scrollTop = (r + 1) * RH + headH - el.clientHeight;
      nextTick(() => { const cell = el.querySelector('.cell.active'); if (cell && cell.scrollIntoView) cell.scrollIntoView({ block: 'nearest', inline: 'nearest' }); });
    }
    function startEdit(initial) {
      const f = cols.value[g.active.c], row = rowAt(g.active.r);
      if (!f || !row) return;
      if (!isEditable(f) || !INLINE_EDITABLE.has(f.type)) { if (f.type === 'sub_table' || f.type === 'multi_select' || f.type === 'attachment') emit('open', row.id); return; }
      if (f.type === 'boolean') { commit(f, row, !row[f.api_name]); return; }
      g.editing = true; g.edit = initial !== undefined ? initial : toInput(f, row[f.api_name]);
      nextTick(() => { const inp = scroller.value.querySelector('.cell-editor'); if (inp) { inp.focus(); if (initial === undefined && inp.select) inp.select(); } });
    }
    function stopEdit(save, moveDown) {
      if (!g.editing) return;
      const f = cols.value[g.active.c], row = rowAt(g.active.r);
      g.editing = false;
      if (save && row) {
        const val = fromInput(f, g.edit);
        if (JSON.stringify(val) !== JSON.stringify(row[f.api_name] ?? null)) commit(f, row, val);
      }
      if (moveDown) moveTo(g.active.r + 1, g.active.c);
      nextTick(() => scroller.value && scroller.value.focus());
    }
    async function commit(f, row, val) {
      g.error = '';
      try {
        const rec = await patch(`${base}/records/${row.id}`, { [f.api_name]: val, version: row.version });
        replaceRow(row.id, rec);
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) g.conflict = { id: row.id, current: e.error.current, text: e.text };
        else g.error = (e instanceof ApiError && e.errors[0]) ? msgOf(e.errors[0]) : msgOf(e);
      }
    }
    function replaceRow(id, rec) {
      for (const b of blocks.values()) {
        const i = b.rows.findIndex((r) => r.id === id);
        if (i >= 0) { b.rows[i] = markRaw({ ...b.rows[i], ...rec }); g.version++; return; }
      }
    }
    // Clicks and keys since the grid was asked to jump to a new last row: a user who has
    // already picked a cell keeps it (focusLast must not pull the cursor away mid-edit).
    let interactions = 0;
    function onKey(e) {
      interactions++;
      if (g.editing) return;
      const { r, c } = g.active, page = Math.max(1, Math.floor(g.height / RH) - 1);
      const k = e.key;
      const moves = { ArrowDown: [r + 1, c], ArrowUp: [r - 1, c], ArrowLeft: [r, c - 1], ArrowRight: [r, c + 1],
        PageDown: [r + page, c], PageUp: [r - page, c], Home: [r, 0], End: [r, cols.value.length - 1] };
      if (k === 'Tab') { e.preventDefault(); moveTo(r, c + (e.shiftKey ? -1 : 1)); return; }
      if (moves[k]) { e.preventDefault(); if (e.ctrlKey && k === 'ArrowDown') moveTo((g.total || 1) - 1, c); else if (e.ctrlKey && k === 'ArrowUp') moveTo(0, c); else moveTo(...moves[k]); return; }
      if (k === 'Enter' || k === 'F2' || (k === ' ' && headerAt(r) >= 0)) { e.preventDefault(); const gh = headerAt(r); if (gh >= 0) toggleGroup(gh); else startEdit(); return; }
      if (k === ' ' && cols.value[c]?.type === 'boolean') { e.preventDefault(); startEdit(); return; }
      if ((k === 'Delete' || k === 'Backspace')) { const f = cols.value[c], row = rowAt(r); if (f && row && isEditable(f) && INLINE_EDITABLE.has(f.type)) { e.preventDefault(); commit(f, row, null); } return; }
      if (k.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey) {
        const f = cols.value[c];
        if (f && INLINE_EDITABLE.has(f.type) && !['single_select', 'boolean', 'date', 'datetime'].includes(f.type) && isEditable(f)) { e.preventDefault(); startEdit(k); }
      }
    }
    function onEditorKey(e) {
      e.stopPropagation();  // the grid's own key handler must not see the editor's keys
      if (e.key === 'Escape') { e.preventDefault(); stopEdit(false); }
      else if (e.key === 'Enter') { e.preventDefault(); stopEdit(true, true); }
      else if (e.key === 'Tab') { e.preventDefault(); stopEdit(true); moveTo(g.active.r, g.active.c + (e.shiftKey ? -1 : 1)); }
    }
    function headerClick(f) {
      const ft = state.fieldTypes.find((x) => x.type === f.type);
      if (ft && ft.sortable === false) return;
      const cur = (props.sorts || []).find((x) => x.field === f.api_name);
      const next = !cur ? [{ field: f.api_name, direction: 'asc' }] : cur.direction === 'asc' ? [{ field: f.api_name, direction: 'desc' }] : [];
      emit('sort', next);
    }
    function startResize(e, f) {
      e.preventDefault(); e.stopPropagation();
      const x0 = e.clientX, w0 = widths[f.api_name] || defaultWidth(f);
      const mv = (ev) => { widths[f.api_name] = Math.max(60, w0 + ev.clientX - x0); };
      const up = () => { window.removeEventListener('mousemove', mv); window.removeEventListener('mouseup', up); };
      window.addEventListener('mousemove', mv); window.addEventListener('mouseup', up);
    }
    function resizeKey(e, f) {
      const w = widths[f.api_name] || defaultWidth(f);
      if (e.key === 'ArrowLeft') { widths[f.api_name] = Math.max(60, w - 10); e.preventDefault(); }
      if (e.key === 'ArrowRight') { widths[f.api_name] = w + 10; e.preventDefault(); }
    }
    async function reloadConflict() {
      const c = g.conflict; g.conflict = null;
      try { replaceRow(c.id, await get(`${base}/records/${c.id}`)); } catch (e) { g.error = msgOf(e); }
    }
    expose({ focusLast: () => { const asked = interactions; const go2 = () => { if (interactions !== asked) return; moveTo((g.total || 1) - 1, 0); scroller.value && scroller.value.focus(); }; Promise.resolve(groupField ? firstLoad : fetchBlock(0)).then(() => setTimeout(go2, 50)); } });

    function groupHead(gi, i, width) {
      const x = grp.list[gi], f = groupField;
      const blank = x.value === null || x.value === undefined || x.value === '';
      return html`<div class="grow group-head" role="row" aria-rowindex=${i + 2} key=${'g' + gi} style=${{ top: (i * RH) + 'px', width: width + 'px' }}
          data-row=${i} data-test=${'group-' + (blank ? '' : String(x.value))}>
        <div role="gridcell" aria-colspan=${cols.value.length + 1} aria-selected=${g.active.r === i}
            class=${'cell group-cell' + (g.active.r === i ? ' active' : '')} onMousedown=${() => { stopEdit(true); g.active = { r: i, c: g.active.c }; }}>
          <button type="button" class="group-toggle" tabindex="-1" aria-expanded=${x.open} onClick=${() => toggleGroup(gi)}
              aria-label=${t('grid.group_toggle', { name: fieldLabel(f), value: blank ? t('grid.group_empty') : String(x.value) })}>
            <span aria-hidden="true">${x.open ? '▾' : '▸'}</span></button>
          <span class="group-label">${fieldLabel(f)}:</span>
          <span class="group-value">${blank ? html`<span class="muted">${t('grid.group_empty')}</span>` : display(f, x.value)}</span>
          <span class="group-count" data-test="group-count">${x.count}</span>
        </div></div>`;
    }

    return () => {
      void g.version;
      const total = g.total ?? 0;
      const first = Math.max(0, Math.floor(g.top / RH) - 3);
      const last = Math.min(total, Math.ceil((g.top + g.height) / RH) + 3);
      const widthOf = (f) => widths[f.api_name] || defaultWidth(f);
      const totalW = 64 + cols.value.reduce((a, f) => a + widthOf(f), 0);
      const rows = [];
      for (let i = first; i < last; i++) {
        const gh = headerAt(i);
        if (gh >= 0) { rows.push(groupHead(gh, i, totalW)); continue; }
        const row = rowAt(i);
        rows.push(html`<div class="grow" role="row" aria-rowindex=${i + 2} key=${i} style=${{ top: (i * RH) + 'px', width: totalW + 'px' }} data-row=${i}>
          <div class="cell rownum" role="rowheader"><button type="button" class="link" tabindex="-1" aria-label=${t('grid.open_record', { id: row ? row.id : '' })}
            onClick=${() => row && emit('open', row.id)} data-test=${row ? 'open-' + row.id : undefined}>${row ? row.id : '…'}</button></div>
          ${cols.value.map((f, c) => {
            const active = g.active.r === i && g.active.c === c;
            const editing = active && g.editing;
            return html`<div role="gridcell" key=${f.api_name} aria-selected=${active}
                class=${'cell' + (active ? ' active' : '') + (NUMERIC.has(f.type) ? ' num' : '')} style=${{ width: widthOf(f) + 'px' }}
                data-field=${f.api_name} onMousedown=${() => { interactions++; if (!(active && g.editing)) { stopEdit(true); g.active = { r: i, c }; } }}
                onDblclick=${() => startEdit()}>
              ${editing ? (f.type === 'single_select'
                ? html`<select class="cell-editor" aria-label=${fieldLabel(f)} value=${g.edit} onKeydown=${onEditorKey}
                    onChange=${(e) => { g.edit = e.target.value; stopEdit(true); }} onBlur=${() => stopEdit(true)}>
                    <option value="">—</option>${(f.options?.choices || []).map((ch) => html`<option value=${ch.label}>${ch.label}</option>`)}</select>`
                : html`<input class="cell-editor" aria-label=${fieldLabel(f)} value=${g.edit}
                    type=${NUMERIC.has(f.type) ? 'number' : f.type === 'date' ? 'date' : f.type === 'datetime' ? 'datetime-local' : 'text'} step="any"
                    onInput=${(e) => (g.edit = e.target.value)} onKeydown=${onEditorKey} onBlur=${() => stopEdit(true)} />`)
                : row ? (f.type === 'sub_table' ? html`<span class="muted">⋯ ${t('grid.lines')}</span>` : display(f, row[f.api_name])) : null}
            </div>`;
          })}
        </div>`);
      }
      return html`<div class="grid-wrap">
        ${g.error ? html`<div class="banner error" role="alert" data-test="grid-error">${g.error}
          <button type="button" class="link" onClick=${() => (g.error = '')}>${t('common.dismiss')}</button></div>` : null}
        ${g.conflict ? html`<div class="banner warn" role="alert" data-test="conflict">${t('grid.conflict')} ${g.conflict.text}
          <button type="button" onClick=${reloadConflict}>${t('grid.reload_record')}</button></div>` : null}
        <div class="grid-scroll" ref=${scroller} tabindex="0" role="grid" aria-label=${label(props.table.label, props.table.api_name)}
             aria-rowcount=${total + 1} aria-colcount=${cols.value.length + 1} onScroll=${onScroll} onKeydown=${onKey} data-test="grid">
          <div class="ghead" role="row" style=${{ width: totalW + 'px' }}>
            <div class="cell rownum" role="columnheader">#</div>
            ${cols.value.map((f) => {
              const so = (props.sorts || []).find((x) => x.field === f.api_name);
              return html`<div class="cell" role="columnheader" key=${f.api_name} style=${{ width: widthOf(f) + 'px' }}
                  aria-sort=${so ? (so.direction === 'desc' ? 'descending' : 'ascending') : 'none'}>
                <button type="button" class="hbtn" tabindex="-1" onClick=${() => headerClick(f)} title=${t('grid.sort_hint')}>
                  ${fieldLabel(f)} ${so ? (so.direction === 'desc' ? '↓' : '↑') : ''}</button>
                <span class="resizer" role="separator" aria-orientation="vertical" tabindex="0" aria-label=${t('grid.resize', { name: fieldLabel(f) })}
                  onMousedown=${(e) => startResize(e, f)} onKeydown=${(e) => resizeKey(e, f)}></span>
              </div>`;
            })}
          </div>
          <div class="gbody" style=${{ height: (total * RH) + 'px', width: totalW + 'px' }}>${rows}</div>
          ${!g.loadingFirst && total === 0 ? html`<p class="empty">${t('grid.empty')}</p>` : null}
        </div>
        <div class="grid-foot muted" aria-live="polite" data-test="grid-count">${!g.counted ? t('grid.counting') : (groupField ? t('grid.groups_total', { groups: grp.list.length, n: grp.list.reduce((a, x) => a + x.count, 0) })
          + (grp.capped ? ' · ' + t('grid.groups_capped') : '') : t('grid.total', { n: total }))}${' · '}${t('grid.keys_hint')}</div>
      </div>`;
    };
  },
};

// -- save the current filter/sorts/columns as a view --------------------------------------------
const SaveView = {
  props: ['table', 'screen'],
  emits: ['close'],
  setup(props, { emit }) {
    const selects = props.table.fields.filter((f) => f.type === 'single_select');
    const dates = props.table.fields.filter((f) => ['date', 'datetime', 'created_time', 'modified_time'].includes(f.type));
    const v = reactive({ label: '', api_name: '', type: 'grid', kanbanField: selects[0]?.api_name || '', calField: dates[0]?.api_name || '',
      roles: [...(props.screen.view?.roles || [])], errors: {}, general: '', busy: false, update: !!props.screen.view });
    async function save(e) {
      e.preventDefault(); v.errors = {}; v.general = ''; v.busy = true;
      const sc = props.screen;
      const body = { label: v.label || undefined, type: v.type, fields: sc.fields, sorts: sc.sorts };
      if (sc.filter) body.filter = sc.filter;
      if (sc.groupBy && v.type === 'grid') body.group_by = [sc.groupBy];
      if (v.type === 'kanban') body.kanban = { field: v.kanbanField };
      if (v.type === 'calendar') body.calendar = { field: v.calField };
      if (v.type === 'form') { body.form = { title: v.label || undefined }; delete body.sorts; }
      if (v.roles.length) body.roles = v.roles;
      try {
        let res;
        if (v.update && sc.view) {
          res = await patch(`/tables/${props.table.api_name}/views/${sc.view.api_name}`, { filter: sc.filter || null, sorts: sc.sorts, fields: sc.fields, roles: v.roles.length ? v.roles : null,
            ...(sc.view.type === 'grid' ? { group_by: sc.groupBy ? [sc.groupBy] : [] } : {}) });
        } else {
          body.api_name = v.api_name || (v.label || '').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '') || `view_${Date.now() % 100000}`;
          if (!/^[a-z]/.test(body.api_name)) body.api_name = 'view_' + body.api_name;
          res = await post(`/tables/${props.table.api_name}/views`, body);
        }
        toast(t('view.saved'), 'ok');
        emit('close', res.view);
      } catch (err) {
        if (err instanceof ApiError && err.errors.length) for (const x of err.errors) v.errors[x.pointer] = msgOf(x);
        else v.general = msgOf(err);
      } finally { v.busy = false; }
    }
    const fe = (p) => v.errors[p] ? html`<div class="field-error" role="alert">${v.errors[p]}</div>` : null;
    return () => html`<div class="modal-back" onClick=${(e) => e.target === e.currentTarget && emit('close')}>
      <form class="modal small" role="dialog" aria-modal="true" aria-labelledby="sv-title" onSubmit=${save}
            onKeydown=${(e) => e.key === 'Escape' && emit('close')}>
        <h2 id="sv-title">${t('view.save_title')}</h2>
        ${props.screen.view ? html`<label class="check"><input type="checkbox" checked=${v.update} onChange=${(e) => (v.update = e.target.checked)} />
          ${t('view.update_current', { name: label(props.screen.view.label, props.screen.view.api_name) })}</label>` : null}
        ${v.update && props.screen.view ? null : html`
          <label for="sv-label">${t('view.name')}</label>
          <input id="sv-label" data-test="view-name" value=${v.label} onInput=${(e) => (v.label = e.target.value)} required />${fe('/label')}
          <label for="sv-api">${t('designer.api_name')}</label>
          <input id="sv-api" class="mono" data-test="view-api-name" value=${v.api_name} placeholder="to_ship" onInput=${(e) => (v.api_name = e.target.value)} />${fe('/api_name')}
          <label for="sv-type">${t('view.type')}</label>
          <select id="sv-type" data-test="view-type" value=${v.type} onChange=${(e) => (v.type = e.target.value)}>
            ${['grid', 'kanban', 'form', 'calendar'].map((x) => html`<option value=${x}>${t('view.' + x)}</option>`)}</select>${fe('/type')}
          ${v.type === 'calendar' ? html`<label for="sv-cf">${t('view.calendar_field')}</label>
            <select id="sv-cf" value=${v.calField} onChange=${(e) => (v.calField = e.target.value)}>
              ${dates.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>${fe('/calendar/field')}${fe('/calendar')}` : null}
          ${v.type === 'kanban' ? html`<label for="sv-kf">${t('view.kanban_field')}</label>
            <select id="sv-kf" data-test="view-kanban-field" value=${v.kanbanField} onChange=${(e) => (v.kanbanField = e.target.value)}>
              ${selects.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>${fe('/kanban/field')}${fe('/kanban')}` : null}`}
        <fieldset class="roles"><legend>${t('view.roles')}</legend>
          ${['owner', 'admin', 'builder', 'member', 'viewer'].map((r) => html`<label class="check"><input type="checkbox" checked=${v.roles.includes(r)}
            onChange=${(e) => { v.roles = e.target.checked ? [...v.roles, r] : v.roles.filter((x) => x !== r); }} /> ${t('role.' + r)}</label>`)}
          <p class="hint">${t('view.roles_hint')}</p>${fe('/roles')}</fieldset>
        <p class="hint">${t('view.uses_current')}</p>
        ${v.general ? html`<div class="field-error" role="alert">${v.general}</div>` : null}
        ${Object.entries(v.errors).filter(([p]) => !['/label', '/api_name', '/type', '/kanban/field', '/kanban'].includes(p)).map(([p, m]) => html`<div class="field-error">${p}: ${m}</div>`)}
        <div class="row end"><button type="button" onClick=${() => emit('close')}>${t('common.cancel')}</button>
          <button type="submit" class="primary" data-test="view-save" disabled=${v.busy}>${t('common.save')}</button></div>
      </form></div>`;
  },
};
