// Dashboard builder and display: number cards (threshold turns them red), bar/line/pie
// charts (ECharts) over the aggregate API, auto-refresh and a full-screen wall mode.
import { html, state, t, label, fieldLabel, get, post, patch, del, ApiError, msgOf, loadTables, tableByName, go,
  reactive, ref, onMounted, onBeforeUnmount, nextTick, toast, uid, markRaw, watch } from './lib.js';
import Sortable from '../vendor/sortable.esm.js';
// ECharts (1 MB) is loaded on first use, so it never delays the grid or the designer.
let echartsModule = null;
const loadECharts = () => (echartsModule ||= import('../vendor/echarts.esm.min.js'));

const TYPES = ['number', 'bar', 'line', 'pie', 'table', 'top_n'];
const FNS = ['count', 'sum', 'avg', 'min', 'max', 'count_distinct'];

function widgetBody(w) {
  const b = { metrics: w.metrics };
  if (w.filter) b.filter = w.filter;
  if (w.group_by && w.group_by.length) b.group_by = w.group_by;
  if (w.order) b.order = w.order;
  if (w.limit) b.limit = w.limit;
  return b;
}
function metricName(m) { return m.as || (m.fn === 'count' ? 'count' : `${m.fn}_${m.field}`); }
function alertOf(w, value) {
  if (!w.threshold || typeof value !== 'number') return false;
  const { op, value: v } = w.threshold;
  return op === '>' ? value > v : op === '>=' ? value >= v : op === '<' ? value < v : value <= v;
}

// One chart or card; data = {rows, alert}.
const Widget = {
  props: ['w', 'data'],
  setup(props) {
    const el = ref(null);
    let chart = null, ro = null;
    async function draw() {
      if (props.w.type === 'number' || !el.value || !props.data) return;
      const echarts = await loadECharts();
      if (!el.value) return;
      if (!chart) { chart = markRaw(echarts.init(el.value, null, { renderer: 'canvas' })); ro = new ResizeObserver(() => chart && chart.resize()); ro.observe(el.value); }
      const rows = props.data.rows || [];
      const g = props.w.group_by && props.w.group_by[0] ? props.w.group_by[0].field : null;
      const m = metricName(props.w.metrics[0]);
      const cats = rows.map((r) => (g ? String(r[g] ?? '—') : ''));
      const vals = rows.map((r) => r[m] ?? 0);
      const opt = props.w.type === 'pie'
        ? { tooltip: { trigger: 'item' }, series: [{ type: 'pie', radius: '65%', data: rows.map((r, i) => ({ name: cats[i], value: vals[i] })) }] }
        : { tooltip: { trigger: 'axis' }, grid: { left: 48, right: 16, top: 16, bottom: 32 }, xAxis: { type: 'category', data: cats },
            yAxis: { type: 'value' }, series: [{ type: props.w.type, data: vals, smooth: props.w.type === 'line' }] };
      chart.setOption(opt, true);
    }
    onMounted(draw);
    onBeforeUnmount(() => { ro && ro.disconnect(); chart && chart.dispose(); chart = null; });
    return () => {
      const w = props.w, d = props.data;
      queueMicrotask(draw);
      const title = label(w.title, w.id);
      if (w.type === 'number') {
        const v = d && d.rows && d.rows[0] ? d.rows[0][metricName(w.metrics[0])] : null;
        const alert = d ? (d.alert ?? alertOf(w, v)) : false;
        return html`<div class=${'widget number' + (alert ? ' alert' : '')} data-test=${'widget-' + w.id} data-alert=${alert ? 'true' : 'false'}>
          <div class="wtitle">${title}</div><div class="big" aria-live="polite">${v === null || v === undefined ? '—' : Number(v).toLocaleString()}</div>
          ${w.threshold ? html`<div class="muted small">${t('dash.threshold')} ${w.threshold.op} ${w.threshold.value}</div>` : null}</div>`;
      }
      if (w.type === 'table' || w.type === 'top_n') {
        const rows = (d && d.rows) || [];
        const cols = rows[0] ? Object.keys(rows[0]) : [];
        return html`<div class="widget table" data-test=${'widget-' + w.id}><div class="wtitle">${title}</div>
          <table class="list"><thead><tr>${w.type === 'top_n' ? html`<th>#</th>` : null}${cols.map((c) => html`<th>${c}</th>`)}</tr></thead>
          <tbody>${rows.slice(0, w.type === 'top_n' ? (w.limit || 10) : 100).map((r, i) => html`<tr>${w.type === 'top_n' ? html`<td>${i + 1}</td>` : null}
            ${cols.map((c) => html`<td>${r[c] ?? '—'}</td>`)}</tr>`)}</tbody></table></div>`;
      }
      return html`<div class="widget chart" data-test=${'widget-' + w.id}><div class="wtitle">${title}</div>
        <div class="chart-box" ref=${el} role="img" aria-label=${title}></div></div>`;
    };
  },
};

export const DashboardsScreen = {
  props: ['dashName', 'mode'],
  setup(props) {
    const s = reactive({ list: [], dash: null, data: {}, editing: false, def: null, errors: {}, general: '', auto: true, full: false, busy: false, lastAt: '' });
    const wall = ref(null), editList = ref(null);
    let timer = null, sortable = null;
    // The layout is the widgets' order: drag a widget by its handle to move it.
    watch(editList, (el) => {
      if (sortable) { sortable.destroy(); sortable = null; }
      if (!el) return;
      sortable = Sortable.create(el, { handle: '.drag-handle', draggable: '.widget-edit', animation: 150,
        onUpdate(evt) {
          const { item, from, oldIndex } = evt;
          item.parentNode.removeChild(item); from.insertBefore(item, from.children[oldIndex] || null);
          const l = s.def.widgets; l.splice(evt.newDraggableIndex, 0, l.splice(evt.oldDraggableIndex, 1)[0]);
        } });
    });
    async function refreshList() { s.list = (await get('/dashboards')).dashboards || []; }
    onMounted(async () => {
      try { await Promise.all([refreshList(), state.tables.length ? null : loadTables()]); } catch (e) { s.general = msgOf(e); }
      if (props.dashName === 'new') startEdit(null);
      else if (props.dashName) await open(props.dashName, props.mode === 'edit');
      document.addEventListener('fullscreenchange', onFs);
    });
    onBeforeUnmount(() => { clearInterval(timer); sortable && sortable.destroy(); document.removeEventListener('fullscreenchange', onFs); });
    function onFs() { s.full = !!document.fullscreenElement; }
    async function open(name, edit) {
      try { s.dash = (await get(`/dashboards/${name}`)).dashboard; } catch (e) { s.general = msgOf(e); return; }
      if (edit) startEdit(s.dash); else { s.editing = false; await loadData(); schedule(); }
    }
    async function loadData() {
      try {
        const d = await get(`/dashboards/${s.dash.api_name}/data`);
        s.data = Object.fromEntries(d.widgets.map((w) => [w.id, w]));
        s.lastAt = new Date().toLocaleTimeString();
      } catch (e) { s.general = msgOf(e); }
    }
    function schedule() {
      clearInterval(timer);
      if (s.auto && s.dash) timer = setInterval(loadData, Math.max(10, s.dash.refresh_seconds || 60) * 1000);
    }
    function startEdit(dash) {
      s.editing = true; s.errors = {}; s.general = '';
      s.def = dash ? JSON.parse(JSON.stringify(dash)) : { api_name: '', label: '', refresh_seconds: 60, widgets: [] };
      delete s.def.id; delete s.def.updated_at;
      s.def.widgets = s.def.widgets || [];
      s.data = {};
      s.def.widgets.forEach(preview);
    }
    function addWidget(type) {
      const tb = state.tables.find((x) => !x.parent_table);
      const w = { id: `w${s.def.widgets.length + 1}_${uid().slice(0, 4)}`, type, title: type === 'number' ? t('dash.count') : t('dash.chart'), table: tb ? tb.api_name : '', metrics: [{ fn: 'count' }] };
      if (type !== 'number') { const g = tb && tb.fields.find((f) => f.type === 'single_select'); w.group_by = g ? [{ field: g.api_name }] : []; }
      if (type === 'top_n') { w.order = 'desc'; w.limit = 10; }
      s.def.widgets.push(w); preview(w);
    }
    async function preview(w) {  // live preview through POST /tables/<t>/aggregate
      if (!w.table) return;
      try {
        const d = await post(`/tables/${w.table}/aggregate`, widgetBody(w));
        const v = d.rows[0] ? d.rows[0][metricName(w.metrics[0])] : null;
        s.data[w.id] = { rows: d.rows, alert: w.type === 'number' ? alertOf(w, v) : false };
        delete s.errors['preview:' + w.id];
      } catch (e) { s.errors['preview:' + w.id] = e instanceof ApiError && e.errors.length ? msgOf(e.errors[0]) : msgOf(e); }
    }
    async function save() {
      s.errors = {}; s.general = ''; s.busy = true;
      const d = JSON.parse(JSON.stringify(s.def));
      if (!d.api_name) d.api_name = (typeof d.label === 'string' ? d.label : '').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '') || `dash_${Date.now() % 100000}`;
      if (!d.label) delete d.label;
      for (const w of d.widgets) { if (w.type === 'number') delete w.group_by; if (!w.threshold || w.threshold.value === '' || w.threshold.value === null) delete w.threshold; }
      try {
        const res = s.dash ? await patch(`/dashboards/${s.dash.api_name}`, d) : await post('/dashboards', d);
        toast(t('dash.saved'), 'ok');
        await refreshList();
        go('dashboards', res.dashboard.api_name);
      } catch (e) {
        if (e instanceof ApiError && e.errors.length) { for (const x of e.errors) s.errors[x.pointer || ''] = msgOf(x); s.general = e.text; }
        else s.general = msgOf(e);
      } finally { s.busy = false; }
    }
    async function remove() {
      if (!confirm(t('dash.confirm_delete'))) return;
      await del(`/dashboards/${s.dash.api_name}`); await refreshList(); go('dashboards');
    }
    function fullscreen() {
      const el = wall.value;
      if (document.fullscreenElement) document.exitFullscreen();
      else if (el && el.requestFullscreen) el.requestFullscreen().catch(() => { s.full = !s.full; });
      else s.full = !s.full;
    }
    const fe = (p) => Object.entries(s.errors).filter(([k]) => k === p || k.startsWith(p + '/')).map(([k, m]) => html`<div class="field-error" role="alert">${m}</div>`);

    function widgetEditor(w, i) {
      const tb = tableByName(w.table) || { fields: [] };
      const nums = tb.fields.filter((f) => ['number', 'currency', 'percent', 'formula', 'rollup'].includes(f.type));
      const groupable = tb.fields.filter((f) => ['single_select', 'text', 'boolean', 'date', 'datetime', 'link', 'autonumber'].includes(f.type));
      const p = `/widgets/${i}`;
      const upd = () => preview(w);
      const m = w.metrics[0];
      return html`<div class=${'widget-edit card' + (Object.keys(s.errors).some((k) => k.startsWith(p + '/') || k === p) ? ' has-error' : '')} key=${w.id} data-test=${'wedit-' + i}>
        <div class="param-grid">
          <div class="ctl"><label for=${'w-title-' + i}>${t('dash.title')}</label><input id=${'w-title-' + i} data-test=${'w-title-' + i} value=${label(w.title, '')} onInput=${(e) => (w.title = e.target.value)} />${fe(p + '/title')}</div>
          <div class="ctl"><label for=${'w-type-' + i}>${t('dash.type')}</label><select id=${'w-type-' + i} value=${w.type} onChange=${(e) => { w.type = e.target.value; if (w.type !== 'number' && !w.group_by) w.group_by = []; if (w.type === 'top_n') { w.order = 'desc'; w.limit = w.limit || 10; } upd(); }}>
            ${TYPES.map((x) => html`<option value=${x}>${t('dash.t_' + x)}</option>`)}</select></div>
          <div class="ctl"><label for=${'w-table-' + i}>${t('rules.table')}</label><select id=${'w-table-' + i} value=${w.table} onChange=${(e) => { w.table = e.target.value; w.metrics = [{ fn: 'count' }]; w.group_by = []; upd(); }}>
            ${state.tables.filter((x) => !x.parent_table).map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>${fe(p + '/table')}</div>
          <div class="ctl"><label for=${'w-fn-' + i}>${t('dash.metric')}</label><select id=${'w-fn-' + i} data-test=${'w-fn-' + i} value=${m.fn} onChange=${(e) => { m.fn = e.target.value; if (m.fn === 'count') delete m.field; else if (!m.field && nums[0]) m.field = nums[0].api_name; upd(); }}>
            ${FNS.map((x) => html`<option value=${x}>${t('dash.fn_' + x)}</option>`)}</select>${fe(p + '/metrics')}</div>
          ${m.fn !== 'count' ? html`<div class="ctl"><label for=${'w-mf-' + i}>${t('dash.of_field')}</label><select id=${'w-mf-' + i} value=${m.field || ''} onChange=${(e) => { m.field = e.target.value; upd(); }}>
            ${(m.fn === 'count_distinct' ? tb.fields : nums).map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select></div>` : null}
          ${w.type !== 'number' ? html`<div class="ctl"><label for=${'w-g-' + i}>${t('dash.group_by')}</label><select id=${'w-g-' + i} value=${w.group_by && w.group_by[0] ? w.group_by[0].field : ''}
              onChange=${(e) => { w.group_by = e.target.value ? [{ field: e.target.value }] : []; upd(); }}><option value="">—</option>
            ${groupable.map((f) => html`<option value=${f.api_name}>${fieldLabel(f)}</option>`)}</select>${fe(p + '/group_by')}</div>` : null}
          ${w.type === 'number' ? html`<div class="ctl"><label for=${'w-th-' + i}>${t('dash.threshold')}</label><div class="row">
            <select aria-label=${t('dash.threshold_op')} value=${w.threshold ? w.threshold.op : '>'} onChange=${(e) => { w.threshold = { ...(w.threshold || { value: 0 }), op: e.target.value }; upd(); }}>
              ${['>', '>=', '<', '<='].map((o) => html`<option value=${o}>${o}</option>`)}</select>
            <input id=${'w-th-' + i} type="number" data-test=${'w-threshold-' + i} value=${w.threshold ? w.threshold.value : ''} placeholder=${t('dash.no_threshold')}
              onInput=${(e) => { if (e.target.value === '') delete w.threshold; else w.threshold = { op: (w.threshold && w.threshold.op) || '>', value: Number(e.target.value) }; upd(); }} /></div>${fe(p + '/threshold')}</div>` : null}
        </div>
        ${fe(p)}
        ${s.errors['preview:' + w.id] ? html`<div class="field-error" role="alert">${s.errors['preview:' + w.id]}</div>` : null}
        <div class="row"><span class="drag-handle" aria-hidden="true" title=${t('dash.drag')}>⋮⋮</span><span class="muted small">${t('dash.preview')}</span><span class="spacer"></span>
          <button type="button" class="icon" aria-label=${t('designer.move_up')} disabled=${i === 0} onClick=${() => { const l = s.def.widgets; l.splice(i - 1, 0, l.splice(i, 1)[0]); }}>↑</button>
          <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => s.def.widgets.splice(i, 1)}>✕</button></div>
        <${Widget} w=${w} data=${s.data[w.id]} key=${w.id + w.type} />
      </div>`;
    }

    return () => {
      if (s.editing && s.def) {
        return html`<section class="dash-edit" data-test="dash-editor">
          <header class="screen-head"><h1>${s.dash ? t('dash.edit_title', { name: label(s.dash.label, s.dash.api_name) }) : t('dash.new')}</h1><span class="spacer"></span>
            <button type="button" onClick=${() => (s.dash ? go('dashboards', s.dash.api_name) : go('dashboards'))}>${t('common.cancel')}</button>
            <button type="button" class="primary" data-test="dash-save" disabled=${s.busy} onClick=${save}>${t('common.save')}</button></header>
          ${s.general ? html`<div class="banner error" role="alert">${s.general}</div>` : null}
          <div class="param-grid">
            <div class="ctl"><label for="d-label">${t('dash.name')}</label><input id="d-label" data-test="dash-label" value=${label(s.def.label, '')} onInput=${(e) => (s.def.label = e.target.value)} />${fe('/label')}</div>
            <div class="ctl"><label for="d-api">${t('designer.api_name')}</label><input id="d-api" class="mono" data-test="dash-api-name" readonly=${!!s.dash} value=${s.def.api_name} onInput=${(e) => (s.def.api_name = e.target.value)} />${fe('/api_name')}</div>
            <div class="ctl"><label for="d-ref">${t('dash.refresh')}</label><input id="d-ref" type="number" min="10" value=${s.def.refresh_seconds || ''} onInput=${(e) => (s.def.refresh_seconds = e.target.value ? Number(e.target.value) : undefined)} />${fe('/refresh_seconds')}</div>
          </div>
          <div class="row">${TYPES.map((x) => html`<button type="button" data-test=${'add-widget-' + x} onClick=${() => addWidget(x)}>＋ ${t('dash.t_' + x)}</button>`)}</div>
          <div class="widgets-edit" ref=${editList}>${s.def.widgets.map(widgetEditor)}</div>
        </section>`;
      }
      if (s.dash) {
        return html`<section class=${'dash-view' + (s.full ? ' wall' : '')} ref=${wall} data-test="dash-view">
          <header class="screen-head"><h1>${label(s.dash.label, s.dash.api_name)}</h1><span class="spacer"></span>
            <span class="muted small" aria-live="polite">${t('dash.updated')} ${s.lastAt}</span>
            <label class="switch"><input type="checkbox" role="switch" checked=${s.auto} onChange=${(e) => { s.auto = e.target.checked; schedule(); }} /> ${t('dash.auto', { n: s.dash.refresh_seconds || 60 })}</label>
            <button type="button" onClick=${loadData}>${t('dash.refresh_now')}</button>
            <button type="button" data-test="fullscreen" onClick=${fullscreen}>${s.full ? t('dash.exit_full') : t('dash.full')}</button>
            ${s.full ? null : html`<a class="button" href=${'#/dashboards/' + s.dash.api_name + '/edit'} data-test="dash-edit">${t('common.edit')}</a>
              <button type="button" class="danger" onClick=${remove}>${t('common.delete')}</button>`}</header>
          ${s.general ? html`<div class="banner error" role="alert">${s.general}</div>` : null}
          <div class="widgets">${(s.dash.widgets || []).map((w) => html`<${Widget} key=${w.id} w=${w} data=${s.data[w.id]} />`)}</div>
        </section>`;
      }
      return html`<section class="dash-list">
        <header class="screen-head"><h1>${t('nav.dashboards')}</h1><span class="spacer"></span>
          <a class="button primary" href="#/dashboards/new" data-test="new-dashboard">＋ ${t('dash.new')}</a></header>
        ${s.general ? html`<div class="banner error" role="alert">${s.general}</div>` : null}
        <div class="cards">${s.list.map((d) => html`<a class="card table-card" key=${d.api_name} href=${'#/dashboards/' + d.api_name}>
          <h3>${label(d.label, d.api_name)}</h3><p class="muted">${t('dash.n_widgets', { n: (d.widgets || []).length })}</p></a>`)}
          ${s.list.length ? null : html`<p class="muted">${t('dash.none')}</p>`}</div></section>`;
    };
  },
};
