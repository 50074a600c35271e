// Similar: the stored frames nearest to a frame (same features the classifier uses), with
// their labels: why the model said what it said. Each one offers "label as" its label for
// the frame asked about (the same capture write the Teach tab uses).
import { $, batched, h, labelBadge, number, percent, toast } from './dom.js';
import { frameTile, updateTile } from './live.js';

/** Cosine similarity of the features, as a plain number (1 = the same picture): not a confidence. */
function similarityText(value) {
  return `similarity ${number(value, 2)}`;
}

export function createSimilar(ctx) {
  let shownFor = null;

  /** The asked frame's own decision; it may arrive after the click. */
  function renderQuery() {
    if (shownFor === null) return;
    const frame = ctx.state.frames.get(shownFor) ?? ctx.state.rejects.find((r) => r.id === shownFor);
    if (!frame) return; // left the ring: keep what is shown
    $('#similar-query-label').replaceChildren(
      frame.classified ? labelBadge(frame.label, frame.accepted ? '' : 'unsure') : h('span.muted', {}, 'not classified'),
      frame.classified ? h('span.similarity', {}, ` confidence ${percent(frame.confidence)} · model v${frame.modelVersion}`) : '',
      frame.stored ? h('span.stored', { title: `stored in the dataset as “${frame.stored}” from this console` }, ` ✓ ${frame.stored}`) : '',
    );
    for (const button of document.querySelectorAll('#similar-grid .label-as')) button.disabled = Boolean(frame.stored);
  }

  async function labelAs(frameId, label) {
    const reply = await ctx.act('capture', { label, frames: [frameId] });
    if (!reply) return;
    toast(reply.added.length ? `Frame added to “${label}”` : `Already stored as “${reply.duplicates[0]?.label ?? label}”`, 'success');
  }

  async function load(frameId) {
    shownFor = frameId;
    renderPicker();
    $('#similar-empty').hidden = true;
    $('#similar-view').hidden = false;
    $('#similar-query').src = `frames/${frameId}.jpg?size=large`;
    $('#similar-query').dataset.frameId = String(frameId);
    renderQuery();
    const grid = $('#similar-grid');
    grid.replaceChildren(h('p.muted', {}, 'Looking through the dataset…'));
    try {
      const result = await ctx.api.read(`api/similar?frame=${frameId}&k=8`);
      if (shownFor !== frameId) return;
      const votes = new Map();
      for (const n of result.neighbours) votes.set(n.label, (votes.get(n.label) ?? 0) + 1);
      const [topLabel, topVotes] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [];
      $('#similar-summary').textContent = result.neighbours.length
        ? `${topVotes} of the ${result.neighbours.length} nearest stored frames are “${topLabel}” (${result.indexed} frames searched). Similarity is the cosine of the features: 1 is the same picture, lower is less alike; it is not a confidence.`
        : 'The dataset is empty: nothing to compare with.';
      grid.replaceChildren(
        ...result.neighbours.map((n) =>
          h(
            'figure.neighbour',
            { dataset: { label: n.label } },
            h('img', { src: `images/${encodeURIComponent(n.id)}.jpg?v=${n.sha}`, alt: `stored ${n.label} frame`, width: 160, height: 160 }),
            h(
              'figcaption',
              {},
              labelBadge(n.label),
              h('span.similarity', { title: 'cosine similarity of the features (1 = the same picture); not a confidence' }, similarityText(n.similarity)),
              h(
                'button.label-as.writes.small',
                { type: 'button', dataset: { label: n.label }, title: `Store the frame asked about under “${n.label}”`, onclick: () => labelAs(frameId, n.label) },
                `label as ${n.label}`,
              ),
            ),
          ),
        ),
      );
      renderQuery(); // "label as" is off once the frame is stored
    } catch (err) {
      if (shownFor !== frameId) return;
      grid.replaceChildren(h('p.error', {}, err.message));
      toast(err.message, 'error');
    }
  }

  // The frames to pick from: the unsure ones first (the usual question), then the latest.
  const tiles = new Map();
  const renderPicker = batched(() => {
    const views = [...[...ctx.state.rejects].reverse(), ...[...ctx.state.frames.values()].reverse().filter((f) => !ctx.state.rejects.some((r) => r.id === f.id))];
    const keep = new Set(views.map((v) => v.id));
    for (const id of tiles.keys()) if (!keep.has(id)) tiles.delete(id);
    $('#similar-picker').replaceChildren(
      ...views.map((view) => {
        let tile = tiles.get(view.id);
        if (!tile) {
          tile = frameTile(view, { onClick: () => load(view.id) });
          tiles.set(view.id, tile);
        }
        updateTile(tile, view, { selected: view.id === shownFor });
        return tile;
      }),
    );
  });

  ctx.on('similar-request', () => load(ctx.similarFrame));
  ctx.on('frames', renderPicker);
  ctx.on('frames', renderQuery);
  ctx.on('rejects', renderPicker);
  return { shown: renderPicker };
}
