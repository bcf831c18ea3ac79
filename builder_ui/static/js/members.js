// Admin › members: add a person to the tenant with a role (and a first password for someone
// new), change the role, edit the member attributes that row scopes use ($user.region),
// disable / enable (reversible: access, sessions and tokens stop; nothing is deleted),
// remove. Everything through /members.
import { html, t, get, post, patch, del, ApiError, msgOf, reactive, onMounted, toast, uid, state } from './lib.js';

const ROLES = ['owner', 'admin', 'builder', 'member', 'viewer'];

const errOf = (e) => (e instanceof ApiError && e.errors.length ? msgOf(e.errors[0]) : msgOf(e));

export const MembersPanel = {
  setup() {
    const s = reactive({ members: [], error: '', add: { email: '', name: '', role: 'member', password: '' }, addErr: '',
      rowErr: {}, attrs: null });
    async function load() {
      try { s.members = (await get('/members')).members; s.error = ''; } catch (e) { s.error = msgOf(e); }
    }
    onMounted(load);
    async function addMember(e) {
      e.preventDefault(); s.addErr = '';
      const body = { email: s.add.email, role: s.add.role };
      if (s.add.name) body.name = s.add.name;
      if (s.add.password) body.password = s.add.password;
      try {
        await post('/members', body);
        s.add = { email: '', name: '', role: 'member', password: '' };
        await load(); toast(t('admin.member_added'), 'ok');
      } catch (err) { s.addErr = errOf(err); }
    }
    async function setRole(m, role) {
      s.rowErr[m.id] = '';
      try { await patch(`/members/${m.id}`, { role }); m.role = role; toast(t('admin.role_changed'), 'ok'); }
      catch (e) { s.rowErr[m.id] = errOf(e); await load(); }
    }
    async function remove(m) {
      if (!confirm(t('members.confirm_remove', { email: m.email }))) return;
      s.rowErr[m.id] = '';
      try { await del(`/members/${m.id}`); toast(t('members.removed'), 'ok'); await load(); } catch (e) { s.rowErr[m.id] = errOf(e); }
    }
    async function setDisabled(m, disabled) {
      if (disabled && !confirm(t('members.confirm_disable', { email: m.email }))) return;
      s.rowErr[m.id] = '';
      try {
        await post(`/members/${m.id}/${disabled ? 'disable' : 'enable'}`, {});
        toast(t(disabled ? 'members.disabled_done' : 'members.enabled_done', { email: m.email }), 'ok'); await load();
      } catch (e) { s.rowErr[m.id] = errOf(e); }
    }
    // An account disabled by the instance administrator is shown, but not changeable here.
    const status = (m) => (m.account_disabled ? 'account_disabled' : m.disabled ? 'disabled' : 'active');
    function statusCell(m) {
      const st = status(m);
      const label = html`<span class=${'pill' + (st === 'active' ? '' : ' muted')} data-test=${'status-' + m.email}>${t('members.status_' + st)}</span>`;
      if (st === 'account_disabled') return html`${label}<div class="hint">${t('members.account_disabled_hint')}</div>`;
      if (st === 'disabled') {
        return html`${label} <button type="button" class="link" data-test=${'enable-' + m.email}
          aria-label=${t('members.enable') + ' ' + m.email} onClick=${() => setDisabled(m, false)}>${t('members.enable')}</button>`;
      }
      if (state.user && state.user.id === m.id) return label;  // nobody disables themselves
      return html`${label} <button type="button" class="link" data-test=${'disable-' + m.email}
        aria-label=${t('members.disable') + ' ' + m.email} onClick=${() => setDisabled(m, true)}>${t('members.disable')}</button>`;
    }
    function editAttrs(m) {
      s.attrs = { id: m.id, rows: Object.entries(m.attributes || {}).map(([k, v]) => ({ k: uid(), key: k, value: String(v ?? '') })), error: '' };
      if (!s.attrs.rows.length) s.attrs.rows.push({ k: uid(), key: '', value: '' });
    }
    async function saveAttrs(m) {
      const a = s.attrs; a.error = '';
      const out = {};
      for (const r of a.rows) {
        const key = r.key.trim();
        if (!key) continue;
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) { a.error = t('members.bad_key', { key }); return; }
        out[key] = r.value;
      }
      try { await patch(`/members/${m.id}`, { attributes: out }); s.attrs = null; toast(t('admin.saved'), 'ok'); await load(); }
      catch (e) { a.error = errOf(e); }
    }
    const attrText = (m) => Object.entries(m.attributes || {}).map(([k, v]) => `${k}: ${v}`).join(' · ');

    return () => html`<div class="members">
      ${s.error ? html`<div class="banner error" role="alert">${s.error}</div>` : null}
      <table class="list" data-test="members"><thead><tr><th>${t('admin.email')}</th><th>${t('admin.name')}</th><th>${t('admin.role')}</th>
        <th>${t('members.attributes')}</th><th>${t('members.status')}</th><th></th></tr></thead>
        <tbody>${s.members.map((m) => [html`<tr key=${m.id} data-test=${'member-' + m.email} class=${status(m) === 'active' ? '' : 'muted'}><td>${m.email}</td><td>${m.name}</td>
          <td><select aria-label=${t('admin.role') + ' ' + m.email} value=${m.role} aria-invalid=${!!s.rowErr[m.id]} onChange=${(e) => setRole(m, e.target.value)}>
            ${ROLES.map((r) => html`<option value=${r}>${t('role.' + r)}</option>`)}</select>
            ${s.rowErr[m.id] ? html`<div class="field-error" role="alert">${s.rowErr[m.id]}</div>` : null}</td>
          <td class="small">${attrText(m) || html`<span class="muted">—</span>`}
            <button type="button" class="link" aria-label=${t('members.edit_attributes') + ' ' + m.email} data-test=${'attrs-' + m.email} onClick=${() => editAttrs(m)}>${t('common.edit')}</button></td>
          <td class="small">${statusCell(m)}</td>
          <td><button type="button" class="icon danger" aria-label=${t('members.remove') + ' ' + m.email} data-test=${'remove-' + m.email} onClick=${() => remove(m)}>✕</button></td></tr>`,
          s.attrs && s.attrs.id === m.id ? html`<tr key=${'attrs' + m.id} class="attrs-row"><td colspan="6">
            <div class="card attrs-editor" role="group" aria-label=${t('members.edit_attributes') + ' ' + m.email}>
              <p class="hint">${t('members.attributes_hint')}</p>
              ${s.attrs.rows.map((r, i) => html`<div class="row" key=${r.k}>
                <input aria-label=${t('members.attr_key', { n: i + 1 })} class="mono" placeholder="region" data-test=${'attr-key-' + i} value=${r.key} onInput=${(e) => (r.key = e.target.value)} />
                <input aria-label=${t('members.attr_value', { n: i + 1 })} placeholder="华东" data-test=${'attr-value-' + i} value=${r.value} onInput=${(e) => (r.value = e.target.value)} />
                <button type="button" class="icon" aria-label=${t('common.remove')} onClick=${() => s.attrs.rows.splice(i, 1)}>✕</button></div>`)}
              ${s.attrs.error ? html`<div class="field-error" role="alert">${s.attrs.error}</div>` : null}
              <div class="row"><button type="button" data-test="attr-add" onClick=${() => s.attrs.rows.push({ k: uid(), key: '', value: '' })}>＋ ${t('members.add_attribute')}</button>
                <span class="spacer"></span>
                <button type="button" onClick=${() => (s.attrs = null)}>${t('common.cancel')}</button>
                <button type="button" class="primary" data-test="attr-save" onClick=${() => saveAttrs(m)}>${t('common.save')}</button></div>
            </div></td></tr>` : null])}</tbody></table>
      <form class="row wrap" onSubmit=${addMember} data-test="add-member">
        <label for="nm-email">${t('admin.add_member')}</label>
        <input id="nm-email" type="email" required placeholder="name@company.com" aria-invalid=${!!s.addErr} value=${s.add.email} onInput=${(e) => (s.add.email = e.target.value)} />
        <input aria-label=${t('admin.name')} placeholder=${t('admin.name')} value=${s.add.name} onInput=${(e) => (s.add.name = e.target.value)} />
        <select aria-label=${t('admin.role')} value=${s.add.role} onChange=${(e) => (s.add.role = e.target.value)}>${ROLES.map((r) => html`<option value=${r}>${t('role.' + r)}</option>`)}</select>
        <input type="password" autocomplete="new-password" aria-label=${t('members.first_password')} placeholder=${t('members.first_password')}
          value=${s.add.password} onInput=${(e) => (s.add.password = e.target.value)} />
        <button type="submit">${t('common.add')}</button></form>
      <p class="hint">${t('members.password_hint')}</p>
      ${s.addErr ? html`<div class="field-error" role="alert">${s.addErr}</div>` : null}</div>`;
  },
};
