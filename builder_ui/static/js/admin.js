// Admin screens (members and roles, connectors, dead letters with replay, audit log,
// import/export) and the approvals inbox.
import { html, state, t, label, get, post, patch, del, api, ApiError, msgOf, reactive, onMounted, watch, toast, tpath, qs } from './lib.js';
import { MembersPanel } from './members.js';
import { PermissionsPanel } from './permissions.js';


// Controls for the flat object schemas connectors declare (config, credentials).
function schemaForm(schema, values, errors, prefix, idp, existing = false) {
  const props = (schema && schema.properties) || {};
  const req = new Set((schema && schema.required) || []);
  return Object.entries(props).map(([k, sc]) => {
    const id = `${idp}-${k}`, ptr = `${prefix}/${k}`;
    const lbl = html`<label for=${id}>${sc.title || k}${req.has(k) ? ' *' : ''}</label>`;
    let ctl;
    if (sc.enum) ctl = html`<select id=${id} value=${values[k] ?? ''} onChange=${(e) => (values[k] = e.target.value)}><option value=""></option>${sc.enum.map((x) => html`<option value=${x}>${x}</option>`)}</select>`;
    else if (sc.type === 'boolean') ctl = html`<input id=${id} type="checkbox" checked=${!!values[k]} onChange=${(e) => (values[k] = e.target.checked)} />`;
    else if (sc.type === 'number' || sc.type === 'integer') ctl = html`<input id=${id} type="number" value=${values[k] ?? sc.default ?? ''} onInput=${(e) => (values[k] = e.target.value === '' ? undefined : Number(e.target.value))} />`;
    else if (sc.type === 'object' || sc.type === 'array') ctl = html`<textarea id=${id} class="mono" rows="2" value=${values[k] === undefined ? '' : JSON.stringify(values[k])}
        onInput=${(e) => { try { values[k] = e.target.value ? JSON.parse(e.target.value) : undefined; } catch (err) { /* kept as typed until valid */ } }}></textarea>`;
    else ctl = html`<input id=${id} type=${sc.format === 'password' || sc.writeOnly ? 'password' : 'text'} autocomplete="off" value=${values[k] ?? ''}
        placeholder=${sc.writeOnly && existing ? t('admin.secret_kept') : ''} onInput=${(e) => (values[k] = e.target.value || undefined)} />`;
    return html`<div class=${'ctl' + (errors[ptr] ? ' has-error' : '')} key=${k}>${lbl}${ctl}
      ${sc.description ? html`<div class="hint">${sc.description}</div>` : null}
      ${errors[ptr] ? html`<div class="field-error" role="alert">${errors[ptr]}</div>` : null}</div>`;
  });
}
const TABS = ['members', 'permissions', 'connectors', 'deadletters', 'audit', 'io'];

export const AdminScreen = {
  props: ['tab'],
  setup(props) {
    const s = reactive({ catalogue: [], installs: [], dead: [], audit: [], error: '', importTable: '', importing: false, progress: 0, importResult: null, auditBefore: null,
      cfg: null, inbox: {} });
    async function load() {
      s.error = '';
      try {
        if (props.tab === 'connectors') {
          const [c, i] = await Promise.all([get('/api/v1/connectors'), get('/connectors')]);
          s.catalogue = c.connectors; s.installs = i.installs;
        }
        if (props.tab === 'deadletters') s.dead = (await get('/outbox?status=dead')).jobs;
        if (props.tab === 'audit') { const d = await get('/audit?limit=100'); s.audit = d.entries; }
      } catch (e) { s.error = msgOf(e); }
    }
    onMounted(load);
    watch(() => props.tab, load);
    async function replay(j) {
      try { await post(`/outbox/${j.id}/replay`); toast(t('admin.replayed'), 'ok'); await load(); } catch (e) { toast(msgOf(e), 'error'); }
    }
    async function toggleInstall(i, on) {
      try { await patch(`/connectors/${i.api_name}`, { enabled: on }); await load(); } catch (e) { toast(msgOf(e), 'error'); }
    }
    function configure(manifest, install) {
      s.cfg = { manifest, install, api_name: install ? install.api_name : manifest.name, config: { ...(install ? install.config : {}) }, credentials: {}, errors: {}, general: '', busy: false };
    }
    async function saveCfg(e) {
      e.preventDefault();
      const c = s.cfg; c.errors = {}; c.general = ''; c.busy = true;
      const body = { config: c.config };
      if (Object.keys(c.credentials).length) body.credentials = c.credentials;
      try {
        if (c.install) await patch(`/connectors/${c.install.api_name}`, body);
        else await post('/connectors', { connector: c.manifest.name, api_name: c.api_name, ...body });
        toast(t('admin.saved'), 'ok'); s.cfg = null; await load();
      } catch (err) {
        if (err instanceof ApiError && err.errors.length) for (const x of err.errors) c.errors[x.pointer] = msgOf(x);
        c.general = msgOf(err);
      } finally { c.busy = false; }
    }
    async function showInbox(i) {
      try { s.inbox[i.api_name] = (await get(`/connectors/${i.api_name}/inbox?status=error`)).entries || []; } catch (e) { toast(msgOf(e), 'error'); }
    }
    async function testInstall(i) {
      try { const r = await post(`/connectors/${i.api_name}/test`); toast(r.ok === false ? msgOf(r) : t('admin.test_ok'), r.ok === false ? 'error' : 'ok'); }
      catch (e) { toast(msgOf(e), 'error'); }
    }
    function doImport(e) {
      e.preventDefault();
      const file = e.target.querySelector('input[type=file]').files[0];
      if (!file || !s.importTable) return;
      const fd = new FormData(); fd.append('file', file);
      const xhr = new XMLHttpRequest();  // XHR for upload progress
      s.importing = true; s.progress = 0; s.importResult = null;
      xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) s.progress = Math.round((ev.loaded / ev.total) * 100); };
      xhr.onload = () => {
        s.importing = false; s.progress = 100;
        let body = null; try { body = JSON.parse(xhr.responseText); } catch (err) { /* not JSON */ }
        s.importResult = xhr.status < 400 ? body : { error: body && body.error ? msgOf(body.error) : xhr.statusText };
      };
      xhr.onerror = () => { s.importing = false; s.importResult = { error: t('admin.network_error') }; };
      xhr.open('POST', tpath(`/tables/${s.importTable}/import`));
      xhr.setRequestHeader('X-CSRF-Token', state.csrf);
      xhr.send(fd);
    }
    const tables = () => state.tables.filter((x) => !x.parent_table);

    function body() {
      switch (props.tab) {
        case 'members': return html`<${MembersPanel} />`;
        case 'permissions': return html`<${PermissionsPanel} />`;
        case 'connectors': return html`<div>
          <h3>${t('admin.installed')}</h3>
          <table class="list"><thead><tr><th>${t('admin.name')}</th><th>${t('admin.connector')}</th><th>${t('admin.status')}</th><th></th></tr></thead>
            <tbody>${s.installs.map((i) => html`<tr key=${i.api_name}><td>${label(i.label, i.api_name)}</td><td>${i.connector}</td>
              <td><label class="switch"><input type="checkbox" role="switch" checked=${i.enabled} onChange=${(e) => toggleInstall(i, e.target.checked)} /> ${i.enabled ? t('admin.enabled') : t('admin.disabled')}</label>
                ${i.last_pull_error ? html`<div class="field-error" data-test="last-pull-error">${i.last_pull_error}</div>` : null}
                ${i.last_event_at ? html`<div class="small muted">${state.lang === 'en' ? 'Last event' : '最近事件'}: ${new Date(i.last_event_at).toLocaleString()}</div>` : null}</td>
              <td><div class="row"><button type="button" onClick=${() => testInstall(i)}>${t('admin.test')}</button>
                <button type="button" onClick=${() => configure(s.catalogue.find((c) => c.name === i.connector) || { name: i.connector }, i)}>${t('admin.configure')}</button>
                ${i.supports_webhook ? html`<button type="button" onClick=${() => showInbox(i)}>${t('admin.inbox_errors')}</button>` : null}</div>
                ${i.webhook_url ? html`<div class="small muted">${t('admin.inbound_url')}: <code>${i.webhook_url}</code></div>` : null}
                ${s.inbox[i.api_name] ? html`<ul class="small">${s.inbox[i.api_name].map((ev) => html`<li>#${ev.id} ${ev.event_type || ''} ${ev.error || ''}</li>`)}
                  ${s.inbox[i.api_name].length ? null : html`<li class="muted">${t('common.none')}</li>`}</ul>` : null}</td></tr>`)}
            ${s.installs.length ? null : html`<tr><td colspan="4" class="muted">${t('common.none')}</td></tr>`}</tbody></table>
          <h3>${t('admin.available')}</h3>
          ${s.cfg ? html`<form class="card cfg-form" onSubmit=${saveCfg} data-test="connector-config">
            <h3>${label(s.cfg.manifest.labels, s.cfg.manifest.name)} — ${s.cfg.install ? t('admin.configure') : t('admin.install')}</h3>
            ${s.cfg.general ? html`<div class="banner error" role="alert">${s.cfg.general}</div>` : null}
            ${s.cfg.install ? null : html`<div class=${'ctl' + (s.cfg.errors['/api_name'] ? ' has-error' : '')}><label for="ci-api">${t('designer.api_name')}</label>
              <input id="ci-api" class="mono" value=${s.cfg.api_name} onInput=${(e) => (s.cfg.api_name = e.target.value)} />
              ${s.cfg.errors['/api_name'] ? html`<div class="field-error">${s.cfg.errors['/api_name']}</div>` : null}</div>`}
            <h4>${t('admin.config')}</h4>${schemaForm(s.cfg.manifest.config_schema, s.cfg.config, s.cfg.errors, '/config', 'cc')}
            <h4>${t('admin.credentials')}</h4>${schemaForm(s.cfg.manifest.credential_schema, s.cfg.credentials, s.cfg.errors, '/credentials', 'cr', !!s.cfg.install)}
            <div class="row end"><button type="button" onClick=${() => (s.cfg = null)}>${t('common.cancel')}</button>
              <button type="submit" class="primary" disabled=${s.cfg.busy}>${t('common.save')}</button></div></form>` : null}
          <div class="cards">${s.catalogue.map((c) => html`<div class="card" key=${c.name}><strong>${label(c.labels, c.name)}</strong>
            <button type="button" class="link" data-test=${'install-' + c.name} onClick=${() => configure(c, null)}>${t('admin.install')}</button>
            <div class="muted small">${c.name} ${c.version}</div>
            <div class="small">${(c.actions || []).map((a) => label(a.labels, a.name || a)).join('、')}</div>
            ${c.supports_webhook ? html`<span class="pill c-blue">webhook</span>` : null}</div>`)}</div></div>`;
        case 'deadletters': return html`<table class="list" data-test="dead-letters"><thead><tr><th>#</th><th>${t('admin.kind')}</th><th>${t('admin.attempts')}</th><th>${t('admin.error')}</th><th></th></tr></thead>
          <tbody>${s.dead.map((j) => html`<tr key=${j.id}><td>${j.id}</td><td>${j.kind}</td><td>${j.attempts}</td><td class="small">${j.last_error || j.error || ''}</td>
            <td><button type="button" onClick=${() => replay(j)}>${t('admin.replay')}</button></td></tr>`)}
          ${s.dead.length ? null : html`<tr><td colspan="5" class="muted">${t('admin.no_dead')}</td></tr>`}</tbody></table>`;
        case 'audit': return html`<table class="list" data-test="audit"><thead><tr><th>${t('rules.at')}</th><th>${t('admin.user')}</th><th>${t('admin.action')}</th><th>${t('admin.object')}</th><th>${t('rules.detail')}</th></tr></thead>
          <tbody>${s.audit.map((a) => html`<tr key=${a.id}><td>${a.at.slice(0, 19).replace('T', ' ')}</td><td>#${a.user_id ?? ''}</td><td>${a.action}</td><td>${a.object_type} ${a.object_id ?? ''}</td>
            <td class="mono small">${JSON.stringify(a.detail).slice(0, 160)}</td></tr>`)}</tbody></table>`;
        case 'io': return html`<div class="io">
          <h3>${t('admin.export')}</h3>
          <ul>${tables().map((x) => html`<li key=${x.id}>${label(x.label, x.api_name)}:
            <a class="button" href=${tpath(`/tables/${x.api_name}/export`) + qs({ format: 'xlsx' })} download>Excel</a>
            <a class="button" href=${tpath(`/tables/${x.api_name}/export`) + qs({ format: 'csv' })} download>CSV</a></li>`)}</ul>
          <h3>${t('admin.import')}</h3>
          <form class="row" onSubmit=${doImport}>
            <select aria-label=${t('rules.table')} value=${s.importTable} onChange=${(e) => (s.importTable = e.target.value)} required>
              <option value="">${t('common.choose')}</option>${tables().map((x) => html`<option value=${x.api_name}>${label(x.label, x.api_name)}</option>`)}</select>
            <label class="sr-only" for="imp-file">${t('admin.file')}</label><input id="imp-file" type="file" accept=".csv,.xlsx" required />
            <button type="submit" disabled=${s.importing}>${t('admin.import')}</button></form>
          ${s.importing || s.progress ? html`<progress max="100" value=${s.progress} aria-label=${t('admin.progress')}></progress>` : null}
          ${s.importResult ? html`<pre class="dry">${JSON.stringify(s.importResult, null, 2)}</pre>` : null}</div>`;
        default: return null;
      }
    }
    return () => html`<section class="admin">
      <header class="screen-head"><h1>${t('nav.admin')}</h1></header>
      <nav class="view-tabs" aria-label=${t('nav.admin')}>${TABS.map((x) => html`<a key=${x} href=${'#/admin/' + x} class=${props.tab === x ? 'active' : ''}>${t('admin.tab_' + x)}</a>`)}</nav>
      ${s.error ? html`<div class="banner error" role="alert">${s.error}</div>` : null}
      ${body()}</section>`;
  },
};

export const ApprovalsScreen = {
  setup() {
    const s = reactive({ items: [], status: 'pending', comments: {}, error: '', busy: {} });
    async function load() {
      try { s.items = (await get('/approvals' + qs({ status: s.status || undefined, mine: s.status === 'pending' ? 'true' : undefined }))).approvals; }
      catch (e) { s.error = msgOf(e); }
    }
    onMounted(load);
    async function decide(a, decision) {
      s.busy[a.id] = true;
      try { await post(`/approvals/${a.id}/decide`, { decision, comment: s.comments[a.id] || '' }); toast(t(decision === 'approve' ? 'appr.approved' : 'appr.rejected'), 'ok'); await load(); }
      catch (e) { toast(msgOf(e), 'error'); } finally { s.busy[a.id] = false; }
    }
    return () => html`<section class="approvals">
      <header class="screen-head"><h1>${t('nav.approvals')}</h1><span class="spacer"></span>
        <select aria-label=${t('admin.status')} value=${s.status} onChange=${(e) => { s.status = e.target.value; load(); }}>
          ${['pending', 'approved', 'rejected', ''].map((x) => html`<option value=${x}>${t('appr.s_' + (x || 'all'))}</option>`)}</select></header>
      ${s.error ? html`<div class="banner error" role="alert">${s.error}</div>` : null}
      <ul class="approval-list">${s.items.map((a) => html`<li class="card" key=${a.id}>
        <div class="row"><strong>${a.title}</strong><span class="spacer"></span><span class=${'pill ' + (a.status === 'approved' ? 'c-green' : a.status === 'rejected' ? 'c-red' : 'c-orange')}>${t('appr.s_' + a.status)}</span></div>
        <div class="muted small">${a.created_at.slice(0, 16).replace('T', ' ')} · ${t('appr.record')} #${a.record_id}</div>
        ${a.status === 'pending' ? html`<label for=${'c' + a.id}>${t('appr.comment')}</label>
          <textarea id=${'c' + a.id} rows="2" value=${s.comments[a.id] || ''} onInput=${(e) => (s.comments[a.id] = e.target.value)}></textarea>
          <div class="row big-buttons"><button type="button" class="primary" disabled=${s.busy[a.id]} onClick=${() => decide(a, 'approve')}>${t('appr.approve')}</button>
            <button type="button" class="danger" disabled=${s.busy[a.id]} onClick=${() => decide(a, 'reject')}>${t('appr.reject')}</button></div>`
          : html`<div class="small">${a.comment || ''}</div>`}
      </li>`)}
      ${s.items.length ? null : html`<li class="muted">${t('appr.none')}</li>`}</ul></section>`;
  },
};
