// Teach: pick frames, click the label they show; capture the next frames; label the unsure
// ones; tidy the dataset gallery (delete, move to another label).
import { $, batched, h, labelBadge, labelColour, paintLabel, toast } from './dom.js';
import { frameTile, updateTile } from './live.js';

export function createTeach(ctx) {
  const { state } = ctx;
  /** Frame ids picked in the recent and unsure lists. */
  const selected = new Set();
  /** Dataset image ids picked in the gallery. */
  const picked = new Set();
  const recentTiles = new Map();
  const unsureTiles = new Map();

  function present() {
    const ids = new Set(state.frames.keys());
    for (const r of state.rejects) ids.add(r.id);
    return ids;
  }

  function toggle(id) {
    if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    renderFrames();
    renderTarget();
  }

  // #region label buttons

  async function teach(label) {
    const ids = [...selected].filter((id) => present().has(id));
    const reply = await ctx.act('capture', ids.length ? { label, frames: ids } : { label });
    if (!reply) return;
    const added = reply.added.length;
    const dup = reply.duplicates.length;
    toast(`${added} frame${added === 1 ? '' : 's'} added to “${label}”${dup ? ` · ${dup} already stored` : ''}`, 'success');
    selected.clear();
    renderFrames();
    renderTarget();
  }

  const renderLabels = batched(() => {
    const labels = ctx.labels();
    const counts = state.dataset.counts;
    const reject = new Set(state.rejectLabels ?? []);
    $('#teach-labels').replaceChildren(
      ...labels.map((label) => {
        const button = h('button.label-button', { type: 'button', onclick: () => teach(label), dataset: { label } }, h('span.label-name', {}, label), h('span.label-count', {}, String(counts[label] ?? 0)));
        paintLabel(button, label);
        // A reject class (other products, the empty belt) is trained like any label but never sorted.
        const mark = h(
          'label.reject-mark.writes.small',
          { title: 'Reject class: frames like these go to inspection, never into a bin' },
          h('input', { type: 'checkbox', checked: reject.has(label), onchange: (e) => ctx.act('mark-reject', { label, reject: e.target.checked }) }),
          ' reject',
        );
        return h('span.label-with-mark', {}, button, mark);
      }),
    );
    $('#teach-no-labels').hidden = labels.length > 0;
    const select = $('#teach-next-label');
    const current = select.value;
    select.replaceChildren(...labels.map((label) => h('option', { value: label }, label)));
    if (labels.includes(current)) select.value = current;
    renderTarget();
  });

  function renderTarget() {
    const ids = [...selected].filter((id) => present().has(id));
    $('#teach-target').textContent = ids.length
      ? `Click a label to store the ${ids.length} selected frame${ids.length === 1 ? '' : 's'}.`
      : 'Click a label to store the latest frame, or select frames below first.';
    $('#teach-clear').disabled = ids.length === 0;
  }

  $('#teach-new').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#teach-new-label');
    const label = input.value.trim();
    if (!label) return input.focus();
    await teach(label);
    input.value = '';
  });
  $('#teach-clear').addEventListener('click', () => {
    selected.clear();
    renderFrames();
    renderTarget();
  });
  $('#teach-select-all').addEventListener('click', () => {
    for (const id of state.frames.keys()) selected.add(id);
    renderFrames();
    renderTarget();
  });

  // #endregion

  // #region next N frames

  $('#teach-next').addEventListener('submit', async (e) => {
    e.preventDefault();
    const label = $('#teach-next-label').value;
    const count = Number($('#teach-next-count').value);
    if (!label) return toast('Create a label first (store one frame under a new label).', 'error');
    await ctx.act('capture', { label, count });
  });
  $('#teach-next-stop').addEventListener('click', () => ctx.act('stop-capture', {}, 'Capture stopped'));

  const renderCapture = batched(() => {
    const capture = state.capture;
    $('#teach-next-running').hidden = !capture;
    $('#teach-next-start').disabled = !!capture;
    if (capture) {
      const done = capture.total - capture.remaining;
      $('#teach-next-progress').value = done / capture.total;
      $('#teach-next-text').textContent = `Capturing “${capture.label}”: ${done} of ${capture.total}${capture.duplicates ? ` (${capture.duplicates} already stored)` : ''}`;
    }
  });

  // #endregion

  // #region frame lists

  function syncTiles(container, tiles, views, showEmpty) {
    const keep = new Set(views.map((v) => v.id));
    for (const id of tiles.keys()) if (!keep.has(id)) tiles.delete(id);
    const kept = present();
    container.replaceChildren(
      ...views.map((view) => {
        const options = { selected: selected.has(view.id), showTruth: true, quiet: true };
        let tile = tiles.get(view.id);
        if (!tile) {
          tile = frameTile(view, { ...options, onClick: () => kept.has(view.id) && toggle(view.id) });
          tiles.set(view.id, tile);
        } else updateTile(tile, view, options);
        // Shown while paused but no longer kept by the runtime: it cannot be stored any more.
        tile.classList.toggle('gone', !present().has(view.id));
        tile.disabled = !present().has(view.id);
        return tile;
      }),
    );
    showEmpty(views.length === 0);
  }

  /**
   * Frames keep arriving, so the lists would move under the operator's pointer: while the
   * pointer is over them or frames are selected they hold still (new frames wait).
   */
  let pointerInside = false;
  let shown = { recent: [], unsure: [] };
  for (const id of ['#teach-frames', '#teach-rejects']) {
    $(id).addEventListener('pointerenter', () => (pointerInside = true));
    $(id).addEventListener('pointerleave', () => {
      pointerInside = false;
      renderFrames();
    });
  }

  function heldViews(wanted, before) {
    const latest = new Map(wanted.map((v) => [v.id, v]));
    const all = new Map([...state.frames.values(), ...state.rejects].map((v) => [v.id, v]));
    return before.map((v) => latest.get(v.id) ?? all.get(v.id) ?? v);
  }

  const renderFrames = batched(() => {
    for (const id of [...selected]) if (!present().has(id)) selected.delete(id);
    const recent = [...state.frames.values()].reverse();
    const unsure = [...state.rejects].reverse();
    const hold = (pointerInside || selected.size > 0) && shown.recent.length > 0;
    if (hold) {
      shown = { recent: heldViews(recent, shown.recent), unsure: heldViews(unsure, shown.unsure) };
      const showing = new Set(shown.recent.map((v) => v.id));
      const waiting = recent.filter((v) => !showing.has(v.id)).length;
      $('#teach-paused').hidden = waiting === 0;
      $('#teach-paused').textContent = `Held still while you pick · ${waiting} newer frame${waiting === 1 ? '' : 's'} waiting`;
    } else {
      shown = { recent, unsure };
      $('#teach-paused').hidden = true;
    }
    syncTiles($('#teach-frames'), recentTiles, shown.recent, (empty) => ($('#teach-frames-empty').hidden = !empty));
    syncTiles($('#teach-rejects'), unsureTiles, shown.unsure, (empty) => ($('#teach-rejects-empty').hidden = !empty));
    $('#teach-rejects-count').textContent = String(state.rejects.length);
    $('#teach-dismiss').disabled = ![...selected].some((id) => state.rejects.some((r) => r.id === id));
  });

  $('#teach-dismiss').addEventListener('click', async () => {
    const ids = state.rejects.map((r) => r.id).filter((id) => selected.has(id));
    if (!ids.length) return;
    if (await ctx.act('dismiss', { frames: ids }, `${ids.length} unsure frame${ids.length === 1 ? '' : 's'} dismissed`)) {
      ids.forEach((id) => selected.delete(id));
    }
  });

  // #endregion

  // #region gallery

  const renderGallery = batched(() => {
    const gallery = state.gallery;
    const root = $('#gallery');
    $('#gallery-total').textContent = `${state.dataset.total} frame${state.dataset.total === 1 ? '' : 's'}`;
    if (!gallery || gallery.labels.length === 0) {
      root.replaceChildren(h('p.muted', {}, 'The dataset is empty. Store a few frames of each product to start.'));
      renderPicked();
      return;
    }
    const known = new Set();
    root.replaceChildren(
      ...gallery.labels.map(({ label, count, images }) => {
        const head = h('header.gallery-head', {}, labelBadge(label), h('span.muted', {}, `${count} frame${count === 1 ? '' : 's'}${count > images.length ? ` · newest ${images.length} shown` : ''}`));
        const grid = h(
          'div.gallery-grid',
          {},
          images.map((image) => {
            known.add(image.id);
            const thumb = h(
              'button.thumb',
              {
                type: 'button',
                title: `${label} · added ${new Date(image.addedAt).toLocaleString()}${image.source ? ' · ' + image.source : ''}`,
                dataset: { image: image.id, label },
                onclick: () => {
                  if (picked.has(image.id)) picked.delete(image.id);
                  else picked.add(image.id);
                  thumb.classList.toggle('selected', picked.has(image.id));
                  thumb.setAttribute('aria-pressed', String(picked.has(image.id)));
                  renderPicked();
                },
              },
              h('img', { src: `images/${encodeURIComponent(image.id)}.jpg?v=${image.sha}`, alt: `${label} example`, loading: 'lazy', width: 96, height: 96 }),
            );
            thumb.classList.toggle('selected', picked.has(image.id));
            thumb.setAttribute('aria-pressed', String(picked.has(image.id)));
            return thumb;
          }),
        );
        const card = h('section.gallery-card', { dataset: { label } }, head, grid);
        card.style.setProperty('--label-colour', labelColour(label));
        return card;
      }),
    );
    for (const id of [...picked]) if (!known.has(id)) picked.delete(id);
    renderPicked();
  });

  function renderPicked() {
    const bar = $('#gallery-actions');
    bar.hidden = picked.size === 0;
    $('#gallery-picked').textContent = `${picked.size} selected`;
    const select = $('#gallery-move-label');
    const current = select.value;
    const labels = ctx.labels();
    select.replaceChildren(h('option', { value: '' }, 'move to…'), ...labels.map((l) => h('option', { value: l }, l)), h('option', { value: '__new' }, 'new label…'));
    if (labels.includes(current)) select.value = current;
  }

  $('#gallery-delete').addEventListener('click', async () => {
    const ids = [...picked];
    if (!ids.length || !confirm(`Delete ${ids.length} frame${ids.length === 1 ? '' : 's'} from the dataset? This cannot be undone.`)) return;
    let done = 0;
    for (const id of ids) {
      if (!(await ctx.act('delete', { id }))) continue;
      done++;
      picked.delete(id);
    }
    if (done) toast(`${done} frame${done === 1 ? '' : 's'} deleted`, 'success');
  });
  $('#gallery-move').addEventListener('click', async () => {
    let label = $('#gallery-move-label').value;
    if (label === '__new') label = (prompt('New label for the selected frames:') || '').trim();
    if (!label) return toast('Pick the label to move the frames to.', 'error');
    const ids = [...picked];
    let done = 0;
    for (const id of ids) {
      if (!(await ctx.act('relabel', { id, label }))) continue;
      done++;
      picked.delete(id);
    }
    if (done) toast(`${done} frame${done === 1 ? '' : 's'} moved to “${label}”`, 'success');
  });
  $('#gallery-clear').addEventListener('click', () => {
    picked.clear();
    renderGallery();
  });

  // #endregion

  ctx.on('dataset', renderLabels);
  ctx.on('reject-labels', renderLabels);
  ctx.on('models', renderLabels);
  ctx.on('frames', renderFrames);
  ctx.on('rejects', renderFrames);
  ctx.on('capture', renderCapture);
  ctx.on('gallery', renderGallery);
  ctx.on('dataset', renderGallery);
  return { shown: renderFrames };
}
