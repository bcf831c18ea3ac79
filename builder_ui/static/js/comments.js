// Comments of a record (a tab of the record form): read by anyone who can read the record,
// written by members and above; authors edit/delete their own, admins delete any.
import { html, state, t, get, post, patch, del, ApiError, msgOf, reactive, onMounted } from './lib.js';

const MAX = 5000;

export const CommentsPanel = {
  props: ['table', 'recordId'],
  setup(props) {
    const c = reactive({ list: [], loaded: false, text: '', error: '', busy: false, editing: null, editText: '', editError: '', general: '' });
    const base = () => `/tables/${encodeURIComponent(props.table.api_name)}/records/${props.recordId}/comments`;
    const role = () => (state.tenants.find((x) => x.slug === state.tenant) || {}).role;
    const mayWrite = () => role() !== 'viewer';
    const errText = (e) => (e instanceof ApiError && e.errors.length ? msgOf(e.errors[0]) : msgOf(e));

    async function load() {
      try { c.list = (await get(base())).comments; c.general = ''; } catch (e) { c.general = msgOf(e); }
      c.loaded = true;
    }
    onMounted(load);
    async function add(e) {
      e.preventDefault(); e.stopPropagation();  // not the record form's submit
      c.error = ''; c.busy = true;
      try { const res = await post(base(), { body: c.text }); c.list.push(res.comment); c.text = ''; }
      catch (err) { c.error = errText(err); }  // the typed text stays
      finally { c.busy = false; }
    }
    async function saveEdit(x) {
      c.editError = '';
      try { const res = await patch(`${base()}/${x.id}`, { body: c.editText }); Object.assign(x, res.comment); c.editing = null; }
      catch (err) { c.editError = errText(err); }
    }
    async function remove(x) {
      try { await del(`${base()}/${x.id}`); c.list = c.list.filter((y) => y.id !== x.id); }
      catch (err) { c.general = errText(err); }
    }
    const when = (s) => String(s || '').slice(0, 16).replace('T', ' ');

    return () => html`<section class="comments" data-test="comments" aria-label=${t('record.tab_comments')}>
      ${c.general ? html`<div class="banner error" role="alert">${c.general}</div>` : null}
      <ol class="comment-list">
        ${c.list.map((x) => html`<li key=${x.id} class="comment" data-test=${'comment-' + x.id}>
          <div class="comment-head"><strong>${x.user_name || '#' + (x.user_id ?? '')}</strong>
            <span class="muted small">${when(x.created_at)}${x.edited_at ? ' · ' + t('comments.edited') : ''}</span>
            <span class="spacer"></span>
            ${x.can_edit && c.editing !== x.id ? html`<button type="button" class="link small" data-test=${'comment-edit-' + x.id}
              onClick=${() => { c.editing = x.id; c.editText = x.body; c.editError = ''; }}>${t('common.edit')}</button>` : null}
            ${x.can_delete ? html`<button type="button" class="link small danger-text" data-test=${'comment-delete-' + x.id}
              aria-label=${t('comments.delete_n', { n: x.id })} onClick=${() => remove(x)}>${t('common.delete')}</button>` : null}
          </div>
          ${c.editing === x.id ? html`<div class="comment-edit">
              <textarea rows="3" aria-label=${t('comments.edit_label')} data-test="comment-edit-text" maxlength=${MAX}
                aria-invalid=${!!c.editError} value=${c.editText} onInput=${(e) => { c.editText = e.target.value; }}
                onKeydown=${(e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); c.editing = null; } }}></textarea>
              ${c.editError ? html`<div class="field-error" role="alert">${c.editError}</div>` : null}
              <div class="row end"><button type="button" onClick=${() => { c.editing = null; }}>${t('common.cancel')}</button>
                <button type="button" class="primary" data-test="comment-edit-save" onClick=${() => saveEdit(x)}>${t('common.save')}</button></div></div>`
            : html`<p class="comment-body">${x.body}</p>`}
        </li>`)}
        ${c.loaded && !c.list.length ? html`<li class="muted">${t('comments.none')}</li>` : null}
      </ol>
      ${mayWrite() ? html`<div class="comment-new">
          <label for="comment-new">${t('comments.write')}</label>
          <textarea id="comment-new" rows="3" data-test="comment-text" maxlength=${MAX} aria-invalid=${!!c.error}
            aria-describedby=${c.error ? 'comment-new-err' : undefined} value=${c.text} onInput=${(e) => { c.text = e.target.value; c.error = ''; }}
            onKeydown=${(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) add(e); }}></textarea>
          ${c.error ? html`<div class="field-error" role="alert" id="comment-new-err">${c.error}</div>` : null}
          <div class="row end"><span class="muted small">${c.text.length} / ${MAX}</span>
            <button type="button" class="primary" data-test="comment-add" disabled=${c.busy} onClick=${add}>${t('comments.add')}</button></div></div>`
        : html`<p class="hint" data-test="comments-read-only">${t('comments.viewer_only')}</p>`}
    </section>`;
  },
};
