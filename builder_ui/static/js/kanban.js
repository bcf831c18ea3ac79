// Kanban by a single_select field: dragging a card to another column PATCHes the field.
import { html, t, label, fieldLabel, post, patch, ApiError, msgOf, reactive, onMounted, onBeforeUnmount, nextTick, toast, markRaw } from './lib.js';
import { display, primaryField, fieldByName } from './fields.js';
import Sortable from '../vendor/sortable.esm.js';

const EMPTY = '__empty__';

export const Kanban = {
  props: ['table', 'view', 'filter', 'q'],
  emits: ['open'],
  setup(props, { emit }) {
    const field = fieldByName(props.table, props.view.kanban.field);
    const choices = (props.view.kanban.columns && props.view.kanban.columns.length ? props.view.kanban.columns : (field?.options?.choices || []).map((c) => c.label));
    const columns = [...choices, EMPTY];
    const k = reactive({ cards: Object.fromEntries(columns.map((c) => [c, []])), more: {}, error: '', loaded: false });
    const lists = {};
    let sortables = [];
    const pf = primaryField(props.table);
    const cardFields = (props.view.kanban.card_fields || props.view.fields || []).filter((n) => n !== pf.api_name && n !== field.api_name).slice(0, 3)
      .map((n) => fieldByName(props.table, n)).filter(Boolean);

    async function loadColumn(c) {
      const cond = c === EMPTY ? { field: field.api_name, op: 'is_empty' } : { field: field.api_name, op: '=', value: c };
      const filter = props.filter ? { and: [props.filter, cond] } : cond;
      const body = { filter, limit: 100, count: true };
      if (props.q) body.q = props.q;
      if (props.view.sorts && props.view.sorts.length) body.sorts = props.view.sorts;
      const d = await post(`/tables/${props.table.api_name}/records/query`, body);
      k.cards[c] = d.records.map(markRaw); k.more[c] = d.total;
    }
    onMounted(async () => {
      try { await Promise.all(columns.map(loadColumn)); } catch (e) { k.error = msgOf(e); }
      k.loaded = true;
      await nextTick();
      for (const c of columns) {
        const el = lists[c];
        if (!el) continue;
        sortables.push(Sortable.create(el, { group: 'kanban', animation: 150, draggable: '.kcard', delay: 120, delayOnTouchOnly: true,
          onEnd(evt) {
            const { item, from, to, oldIndex } = evt;
            if (from === to) { item.parentNode.removeChild(item); from.insertBefore(item, from.children[oldIndex] || null); return; }
            item.parentNode.removeChild(item); from.insertBefore(item, from.children[oldIndex] || null);
            moveCard(from.dataset.col, to.dataset.col, evt.oldDraggableIndex, evt.newDraggableIndex);
          } }));
      }
    });
    onBeforeUnmount(() => sortables.forEach((s) => s.destroy()));

    async function moveCard(fromCol, toCol, oldIdx, newIdx) {
      const card = k.cards[fromCol][oldIdx];
      if (!card) return;
      k.cards[fromCol].splice(oldIdx, 1);
      k.cards[toCol].splice(newIdx, 0, card);
      k.more[fromCol]--; k.more[toCol]++;
      const value = toCol === EMPTY ? null : toCol;
      try {
        const rec = await patch(`/tables/${props.table.api_name}/records/${card.id}`, { [field.api_name]: value, version: card.version });
        const i = k.cards[toCol].indexOf(card);
        if (i >= 0) k.cards[toCol][i] = markRaw(rec);
        toast(t('kanban.moved', { id: card.id, value: value ?? t('kanban.empty') }), 'ok');
      } catch (e) {
        const i = k.cards[toCol].indexOf(card);
        if (i >= 0) k.cards[toCol].splice(i, 1);
        k.cards[fromCol].splice(oldIdx, 0, card); k.more[fromCol]++; k.more[toCol]--;
        k.error = e instanceof ApiError && e.status === 409 ? t('grid.conflict') + ' ' + e.text : msgOf(e);
      }
    }
    async function keyMove(c, i, dir) {  // keyboard alternative to dragging
      const j = columns.indexOf(c) + dir;
      if (j < 0 || j >= columns.length) return;
      await moveCard(c, columns[j], i, 0);
    }
    return () => html`<div class="kanban-wrap">
      ${k.error ? html`<div class="banner error" role="alert">${k.error} <button type="button" class="link" onClick=${() => (k.error = '')}>${t('common.dismiss')}</button></div>` : null}
      <div class="kanban" data-test="kanban">
        ${columns.map((c) => html`<section class="kcol" key=${c} aria-label=${c === EMPTY ? t('kanban.empty') : c}>
          <h3>${c === EMPTY ? t('kanban.empty') : html`<span class=${'pill c-' + ((field.options.choices || []).find((x) => x.label === c)?.color || 'gray')}>${c}</span>`}
            <span class="muted count">${k.more[c] ?? ''}</span></h3>
          <ul class="klist" data-col=${c} ref=${(el) => { lists[c] = el; }} data-test=${'kcol-' + (c === EMPTY ? 'empty' : c)}>
            ${(k.cards[c] || []).map((r, i) => html`<li class="kcard" key=${r.id} data-id=${r.id} data-test=${'kcard-' + r.id}>
              <button type="button" class="kcard-open" onClick=${() => emit('open', r.id)}
                  onKeydown=${(e) => { if (e.altKey && e.key === 'ArrowRight') { e.preventDefault(); keyMove(c, i, 1); } if (e.altKey && e.key === 'ArrowLeft') { e.preventDefault(); keyMove(c, i, -1); } }}
                  aria-label=${t('kanban.card', { id: r.id })}>
                <strong>${r[pf.api_name] ?? '#' + r.id}</strong>
                ${cardFields.map((f) => html`<div class="kf"><span class="muted">${fieldLabel(f)}</span> ${display(f, r[f.api_name])}</div>`)}
              </button></li>`)}
          </ul></section>`)}
      </div>
      <p class="hint">${t('kanban.hint')}</p></div>`;
  },
};
