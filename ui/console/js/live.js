// Live: the latest frame large with its decision, the latest frames, and the counts per label.
import { $, batched, h, labelBadge, labelColour, percent, timeAgo } from './dom.js';

/** Tiles keyed by frame id, so an <img> is never reloaded when the strip is redrawn. */
export function frameTile(view, { onClick, ...options } = {}) {
  const tile = h(
    'button.tile',
    { type: 'button', dataset: { frame: String(view.id), ...(view.truth ? { truth: view.truth } : {}) }, onclick: onClick },
    h('img', { src: `frames/${view.id}.jpg`, alt: view.label ? `frame classified ${view.label}` : 'frame', loading: 'lazy', width: 200, height: 150 }),
    h('span.tile-caption'),
  );
  updateTile(tile, view, options);
  return tile;
}

/** Classification of a frame arrives a moment after the frame itself when the camera is wired to the console too. */
const CLASSIFY_GRACE_MS = 2000;

/**
 * Options: selected; showTruth (the source's label); quiet (say nothing of a frame without
 * a result); waiting (a model is in use, so a result is on its way).
 */
export function updateTile(tile, view, { selected = false, showTruth = false, quiet = false, waiting = false } = {}) {
  const caption = tile.querySelector('.tile-caption');
  const parts = [];
  if (view.classified && view.accepted) {
    parts.push(labelBadge(view.label));
    parts.push(h('span.conf', {}, percent(view.confidence)));
  } else if (view.classified) {
    // Below the threshold the decision is "unknown"; the best guess is what helps labelling.
    const guess = view.topK?.[0]?.label;
    const badge = guess ? labelBadge(guess, 'unsure', `${guess}?`) : labelBadge(view.label, 'unsure');
    badge.title = `unsure: decided as ${view.label}${guess ? `, best guess ${guess}` : ''}`;
    parts.push(badge, h('span.conf', {}, percent(view.confidence)));
  } else if (!quiet) {
    parts.push(h('span.muted', {}, waiting && Date.now() - view.at < CLASSIFY_GRACE_MS ? 'classifying…' : 'not classified'));
  }
  if (view.stored) parts.push(h('span.stored', { title: `stored in the dataset as “${view.stored}” from this console` }, `✓ ${view.stored}`));
  else if (showTruth && view.truth) parts.push(h('span.truth', { title: 'what the source says this frame shows' }, `source: ${view.truth}`));
  if (view.stored) tile.dataset.stored = view.stored;
  caption.replaceChildren(...parts);
  tile.classList.toggle('selected', selected);
  tile.classList.toggle('is-unknown', view.classified && !view.accepted);
  tile.setAttribute('aria-pressed', String(selected));
}

export function createLive(ctx) {
  const { state } = ctx;
  const strip = $('#live-strip');
  const tiles = new Map();

  /** The frame to show large: the newest classified one while a model classifies, else the newest. */
  function currentFrame(frames) {
    const newest = frames[0];
    if (!newest || newest.classified || !state.models.active) return newest;
    const classified = frames.find((f) => f.classified);
    return classified && newest.at - classified.at < CLASSIFY_GRACE_MS ? classified : newest;
  }

  const renderFrames = batched(() => {
    const frames = [...state.frames.values()].reverse(); // newest first
    const latest = currentFrame(frames);
    $('#live-empty').hidden = frames.length > 0;
    // Shown once the first frame's image has loaded (showImage), so never as an empty frame.
    $('#live-current-wrap').hidden = !latest || shownFrameId === null;
    if (latest) renderCurrent(latest);
    const keep = new Set(frames.map((f) => f.id));
    for (const id of tiles.keys()) if (!keep.has(id)) tiles.delete(id);
    strip.replaceChildren(
      ...frames.map((view) => {
        const options = { waiting: state.models.active !== null };
        let tile = tiles.get(view.id);
        if (!tile) {
          tile = frameTile(view, { ...options, onClick: () => openSimilar(view.id) });
          tile.title = 'Show the stored frames most like this one';
          tiles.set(view.id, tile);
        } else updateTile(tile, view, options);
        return tile;
      }),
    );
  });

  function openSimilar(frameId) {
    ctx.similarFrame = frameId;
    ctx.changed('similar-request');
    ctx.show('similar');
  }

  /**
   * The large image and its verdict always show one frame. A new image is fetched and
   * decoded off screen first; then image and verdict are swapped in the same task, both
   * marked with the frame id. (Setting src on the shown <img> let the old picture stay up
   * under the new verdict until the new one had loaded.)
   */
  let shownFrameId = null;
  let loadingFrameId = null;
  /** The latest view asked for; a newer frame or result replaces it while an image loads. */
  let wantedView = null;

  function renderCurrent(view) {
    // Ids grow with arrival (and across deploys): a late result of an older frame never takes the view back.
    if (view.id < Math.max(shownFrameId ?? -Infinity, loadingFrameId ?? -Infinity)) return;
    wantedView = view;
    if (view.id === shownFrameId) {
      renderVerdict(view); // the same frame, its result (or stored mark) changed
      return;
    }
    if (view.id === loadingFrameId) return; // shown with its latest view once loaded
    loadingFrameId = view.id;
    const next = new Image(480, 360);
    next.src = `frames/${view.id}.jpg?size=large`;
    next.decode().then(
      () => {
        if (loadingFrameId !== view.id) return; // a newer frame was asked for meanwhile
        loadingFrameId = null;
        const current = wantedView.id === view.id ? wantedView : view;
        showImage(next, current);
        renderVerdict(current);
        // A newer frame may have come while this one loaded.
        if (wantedView.id !== view.id) renderCurrent(wantedView);
      },
      () => {
        // The runtime no longer keeps it (its ring moved on): keep showing the last one.
        if (loadingFrameId !== view.id) return;
        loadingFrameId = null;
        if (wantedView.id !== view.id) renderCurrent(wantedView);
      },
    );
  }

  function showImage(img, view) {
    const shown = $('#live-current');
    img.id = 'live-current';
    img.title = shown.title;
    img.dataset.frameId = String(view.id);
    img.alt = view.label ? `latest frame, classified ${view.label}` : 'latest frame';
    img.onclick = () => openSimilar(view.id);
    shown.replaceWith(img);
    shownFrameId = view.id;
    $('#live-current-wrap').hidden = false;
  }

  function renderVerdict(view) {
    const verdict = $('#live-verdict');
    verdict.dataset.frameId = String(view.id);
    $('#live-current').alt = view.label ? `latest frame, classified ${view.label}` : 'latest frame';
    if (!view.classified) {
      verdict.replaceChildren(h('span.big-label.muted', {}, 'not classified'), h('p.hint', {}, state.models.active ? 'waiting for the classify node…' : 'No model yet: teach a few frames per label, then train.'));
    } else {
      const label = h('span.big-label', {}, view.label);
      label.style.setProperty('--label-colour', labelColour(view.label));
      verdict.replaceChildren(
        label,
        h(
          'div.verdict-row',
          {},
          h('span.big-conf', {}, percent(view.confidence)),
          h(`span.chip.${view.accepted ? 'accepted' : 'unknown'}`, {}, view.accepted ? 'accepted' : `unsure: best guess ${view.topK?.[0]?.label ?? '–'}`),
        ),
        h('p.meta', {}, `model v${view.modelVersion} · ${view.latencyMs !== undefined ? Math.round(view.latencyMs) + ' ms · ' : ''}${timeAgo(view.at)}`),
        h(
          'ol.topk',
          {},
          (view.topK ?? []).map((r) => {
            const bar = h('span.bar-fill');
            bar.style.width = percent(r.confidence, 1);
            bar.style.background = labelColour(r.label);
            return h('li', {}, h('span.topk-label', {}, r.label), h('span.bar', {}, bar), h('span.topk-value', {}, percent(r.confidence)));
          }),
        ),
      );
    }
  }

  const renderCounts = batched(() => {
    const stats = state.stats;
    const list = $('#live-counts');
    $('#live-window').textContent = stats ? `last ${stats.windowMinutes} min` : '';
    if (!stats || Object.keys(stats.counts).length === 0) {
      list.replaceChildren(h('p.muted', {}, 'No classified frames in this window yet.'));
      return;
    }
    const entries = Object.entries(stats.counts).sort((a, b) => b[1] - a[1]);
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    const max = entries[0][1];
    list.replaceChildren(
      ...entries.map(([label, n]) => {
        const fill = h('span.bar-fill');
        fill.style.width = `${(n / max) * 100}%`;
        fill.style.background = labelColour(label);
        return h('div.count-row', {}, h('span.count-label', { title: label }, label), h('span.bar', {}, fill), h('span.count-value', {}, `${n}`, h('small', {}, ` ${percent(n / total)}`)));
      }),
    );
    $('#live-total').textContent = `${total} classified · ${stats.frames} frames since deploy`;
  });

  ctx.on('frames', renderFrames);
  ctx.on('models', renderFrames);
  ctx.on('stats', renderCounts);
  return {};
}
