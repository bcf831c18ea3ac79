// Form and calendar views.
import { html, t, label, fieldLabel, post, ApiError, msgOf, reactive, onMounted, toast, markRaw } from './lib.js';
import { editor, display, isEditable, fieldByName, primaryField } from './fields.js';

// A form view: the view's fields; a submission creates a record and runs form_submitted rules.
export const FormView = {
  props: ['table', 'view'],
  setup(props) {
    const names = props.view.fields && props.view.fields.length ? props.view.fields : props.table.fields.map((f) => f.api_name);
    const fields = names.map((n) => fieldByName(props.table, n)).filter((f) => f && isEditable(f) && f.type !== 'sub_table');
    const s = reactive({ values: {}, errors: {}, general: '', done: null, busy: false });
    async function submit(e) {
      e.preventDefault(); s.errors = {}; s.general = ''; s.busy = true;
      try {
        const d = await post(`/tables/${props.table.api_name}/views/${props.view.api_name}/submit`, s.values);
        s.done = d.record; s.values = {}; toast(t('form.submitted', { id: d.record.id }), 'ok');
      } catch (err) {
        if (err instanceof ApiError && err.errors.length) for (const x of err.errors) s.errors[x.pointer] = msgOf(x);
        s.general = msgOf(err);
      } finally { s.busy = false; }
    }
    const f = props.view.form || {};
    return () => html`<form class="card form-view" onSubmit=${submit} data-test="form-view">
      <h2>${f.title || label(props.view.label, props.view.api_name)}</h2>
      ${s.general ? html`<div class="banner error" role="alert">${s.general}</div>` : null}
      ${s.done ? html`<div class="banner ok" role="status">${t('form.submitted', { id: s.done.id })}</div>` : null}
      ${fields.map((fd) => html`<div class=${'ctl' + (s.errors['/' + fd.api_name] ? ' has-error' : '')} key=${fd.api_name}>
        <label for=${'fv-' + fd.api_name}>${fieldLabel(fd)}${fd.required ? ' *' : ''}</label>
        ${editor(fd, s.values[fd.api_name], (v) => { s.values[fd.api_name] = v; }, { id: 'fv-' + fd.api_name, 'data-test': 'fv-' + fd.api_name })}
        ${s.errors['/' + fd.api_name] ? html`<div class="field-error" role="alert">${s.errors['/' + fd.api_name]}</div>` : null}</div>`)}
      <button type="submit" class="primary" disabled=${s.busy} data-test="form-submit">${f.submit_label || t('form.submit')}</button>
    </form>`;
  },
};

const pad = (n) => String(n).padStart(2, '0');
const ymd = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

// A calendar view: a month of records placed on their date field.
export const CalendarView = {
  props: ['table', 'view', 'filter'],
  emits: ['open'],
  setup(props, { emit }) {
    const field = fieldByName(props.table, props.view.calendar.field);
    const pf = primaryField(props.table);
    const now = new Date();
    const s = reactive({ y: now.getFullYear(), m: now.getMonth(), byDay: {}, error: '', more: false });
    async function load() {
      const first = new Date(s.y, s.m, 1), last = new Date(s.y, s.m + 1, 0);
      const cond = { field: field.api_name, op: 'between', value: field.type === 'date' ? [ymd(first), ymd(last)] : [`${ymd(first)} 00:00`, `${ymd(last)} 23:59:59`] };
      try {
        const d = await post(`/tables/${props.table.api_name}/records/query`, { filter: props.filter ? { and: [props.filter, cond] } : cond, limit: 1000, sorts: [{ field: field.api_name, direction: 'asc' }] });
        const by = {};
        for (const r of d.records) { const k = String(r[field.api_name]).slice(0, 10); (by[k] ||= []).push(markRaw(r)); }
        s.byDay = by; s.more = d.has_more; s.error = '';
      } catch (e) { s.error = msgOf(e); }
    }
    onMounted(load);
    function shift(n) { const d = new Date(s.y, s.m + n, 1); s.y = d.getFullYear(); s.m = d.getMonth(); load(); }
    return () => {
      const first = new Date(s.y, s.m, 1);
      const start = new Date(s.y, s.m, 1 - ((first.getDay() + 6) % 7));  // weeks start on Monday
      const days = Array.from({ length: 42 }, (_, i) => new Date(start.getFullYear(), start.getMonth(), start.getDate() + i));
      const today = ymd(new Date());
      return html`<div class="calendar" data-test="calendar">
        <div class="row"><button type="button" aria-label=${t('cal.prev')} onClick=${() => shift(-1)}>‹</button>
          <strong aria-live="polite">${s.y}-${pad(s.m + 1)}</strong>
          <button type="button" aria-label=${t('cal.next')} onClick=${() => shift(1)}>›</button>
          <span class="muted small">${fieldLabel(field)}</span>${s.more ? html`<span class="muted small">${t('cal.more')}</span>` : null}</div>
        ${s.error ? html`<div class="banner error">${s.error}</div>` : null}
        <div class="cal-grid" role="grid">
          ${[1, 2, 3, 4, 5, 6, 0].map((w) => html`<div class="cal-head" role="columnheader">${t('cal.d_' + w)}</div>`)}
          ${days.map((d) => { const k = ymd(d); return html`<div role="gridcell" key=${k} class=${'cal-day' + (d.getMonth() !== s.m ? ' other' : '') + (k === today ? ' today' : '')}>
            <div class="cal-num">${d.getDate()}</div>
            ${(s.byDay[k] || []).slice(0, 4).map((r) => html`<button type="button" class="cal-item" onClick=${() => emit('open', r.id)}>${r[pf.api_name] ?? '#' + r.id}</button>`)}
            ${(s.byDay[k] || []).length > 4 ? html`<div class="muted small">+${s.byDay[k].length - 4}</div>` : null}</div>`; })}
        </div></div>`;
    };
  },
};
