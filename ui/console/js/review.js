// To review: the lane's review queue (kept on disk by the classify node), each frame with
// why it is there and one button per label to teach it, or dismiss it.
import { $, batched, h, labelBadge, percent } from './dom.js';

const REASON_TEXT = {
  'unknown-product': 'unknown product',
  'reject-class': 'reject class',
  'low-confidence': 'low confidence',
  'small-margin': 'close call',
};

export function createReview(ctx) {
  const { state } = ctx;

  async function teach(id, label) {
    await ctx.act('review-label', { id, label }, `Taught as ${label}`);
  }

  const render = batched(() => {
    const { items, total } = state.review;
    const labels = Object.keys(state.dataset.counts).sort();
    $('#review-count').textContent = String(total);
    $('#review-empty').hidden = items.length > 0;
    $('#review-items').replaceChildren(
      ...items.map((item) =>
        h(
          'figure.tile.review-tile',
          { dataset: { id: item.id } },
          h('img', { src: `review/${item.id}.jpg`, alt: `frame ${item.sha}`, loading: 'lazy', width: 160, height: 120 }),
          h(
            'figcaption',
            {},
            h(`span.chip.${item.reason}`, { title: item.similarity !== undefined ? `similarity to the nearest training frame ${item.similarity.toFixed(2)}` : '' }, REASON_TEXT[item.reason] ?? item.reason),
            h('span.small', {}, ` best ${item.label} ${percent(item.confidence)}`),
          ),
          h(
            'div.label-buttons.writes',
            {},
            labels.map((label) => h('button.secondary.small', { type: 'button', onclick: () => teach(item.id, label) }, labelBadge(label))),
            h('button.link', { type: 'button', onclick: () => ctx.act('review-dismiss', { id: item.id }) }, 'dismiss'),
          ),
        ),
      ),
    );
  });

  ctx.on('review', render);
  ctx.on('dataset', render);
  return {};
}
