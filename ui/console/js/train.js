// Train: start a training, follow it, then judge the new model against the one in use on
// its hold-out frames (accuracy, precision/recall per label, confusion matrix) and promote
// or discard it.
import { $, batched, h, labelBadge, labelColour, number, percent, svg, toast } from './dom.js';

const PHASE_TEXT = {
  starting: 'Starting…',
  features: 'Reading frames through the backbone',
  search: 'Scoring pipelines on held-out frames',
  training: 'Training the classifier',
  'fine-tune': "Fine-tuning the backbone's last blocks",
  saving: 'Saving the new version',
};

export function createTrain(ctx) {
  const { state } = ctx;

  $('#train-start').addEventListener('click', async () => {
    $('#train-start').disabled = true;
    const choice = $('#train-strategy').value;
    const body = choice === 'auto' || choice === 'fine-tune' ? { strategy: choice } : { strategy: 'fixed', head: choice };
    if (!(await ctx.act('train', body))) $('#train-start').disabled = false;
  });
  $('#train-cancel').addEventListener('click', () => ctx.act('cancel-train', {}, 'Cancelling the training…'));
  $('#train-promote').addEventListener('click', async () => {
    const version = state.train.candidate?.version;
    if (version && (await ctx.act('promote', { version }))) toast(`Model v${version} is now in use`, 'success');
  });
  $('#train-discard').addEventListener('click', async () => {
    const version = state.train.candidate?.version;
    if (version && (await ctx.act('discard', { version }))) toast(`Model v${version} discarded; the lane keeps its current model`, 'info');
  });

  const renderReadiness = batched(() => {
    const counts = state.dataset.counts;
    const labels = Object.keys(counts);
    const short = labels.filter((l) => counts[l] < 2);
    const running = state.train.state === 'running';
    let text;
    if (labels.length < 2) text = `Needs at least 2 labels with 2 or more frames each (the dataset has ${labels.length}).`;
    else if (short.length) text = `Every label needs 2 frames or more; too few for ${short.join(', ')}.`;
    else text = `${labels.length} labels · ${state.dataset.total} frames; near-duplicate groups are held out in turn to score the new model honestly.`;
    $('#train-readiness').textContent = text;
    $('#train-start').disabled = running || labels.length < 2 || short.length > 0;
    $('#train-cancel').hidden = !running;
  });

  const renderProgress = batched(() => {
    const t = state.train;
    const running = t.state === 'running';
    $('#train-progress').hidden = !running && t.history.length === 0;
    let fraction = 0;
    let text = '';
    if (running) {
      if (t.phase === 'features' && t.total) {
        fraction = 0.4 * (t.done / t.total);
        text = `${PHASE_TEXT.features}: ${t.done} of ${t.total}${t.what ? ` (${t.what})` : ''}`;
      } else if (t.phase === 'search') {
        // The number of candidates depends on the time budget: the bar creeps towards the end.
        fraction = 0.4 + 0.5 * (1 - 1 / (1 + t.done / 4));
        text = `${PHASE_TEXT.search}: ${t.done} scored, last ${t.name}`;
      } else if (t.phase === 'training' && t.epochs) {
        fraction = 0.4 + 0.55 * (t.epoch / t.epochs);
        text = `Epoch ${t.epoch} of ${t.epochs} · loss ${number(t.loss, 3)} · training accuracy ${percent(t.accuracy)}`;
      } else if (t.phase === 'saving') {
        fraction = 0.97;
        text = PHASE_TEXT.saving;
      } else text = PHASE_TEXT.starting;
    } else if (t.state === 'finished') {
      fraction = 1;
      text = `Finished: model v${t.candidate?.version} trained in ${number((t.candidate?.totalMs ?? 0) / 1000, 1)} s`;
    } else if (t.state === 'failed') text = `Training failed: ${t.error}`;
    else if (t.state === 'cancelled') text = 'Training cancelled.';
    $('#train-bar').value = fraction;
    $('#train-phase').textContent = text;
    $('#train-phase').classList.toggle('error', t.state === 'failed');
    drawCurve(t.history);
    renderReadiness();
  });

  function drawCurve(history) {
    const chart = $('#train-curve');
    if (history.length < 2) {
      chart.replaceChildren();
      return;
    }
    const W = 560;
    const H = 140;
    const pad = { l: 36, r: 36, t: 10, b: 20 };
    const maxEpoch = history.at(-1).epoch;
    const maxLoss = Math.max(...history.map((p) => p.loss), 1e-6);
    const x = (e) => pad.l + ((e - history[0].epoch) / Math.max(1, maxEpoch - history[0].epoch)) * (W - pad.l - pad.r);
    const yLoss = (v) => pad.t + (1 - v / maxLoss) * (H - pad.t - pad.b);
    const yAcc = (v) => pad.t + (1 - v) * (H - pad.t - pad.b);
    const line = (fn) => history.map((p) => `${x(p.epoch).toFixed(1)},${fn(p).toFixed(1)}`).join(' ');
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
    chart.replaceChildren(
      svg('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: 'axis' }),
      svg('polyline', { points: line((p) => yLoss(p.loss)), class: 'loss' }),
      svg('polyline', { points: line((p) => yAcc(p.accuracy)), class: 'acc' }),
      svg('text', { x: 4, y: pad.t + 8, class: 'loss-text' }, number(maxLoss, 2)),
      svg('text', { x: 4, y: H - pad.b, class: 'loss-text' }, '0'),
      svg('text', { x: W - pad.r + 4, y: pad.t + 8, class: 'acc-text' }, '100%'),
      svg('text', { x: W - pad.r + 4, y: H - pad.b, class: 'acc-text' }, '0%'),
      svg('text', { x: W / 2, y: H - 4, class: 'axis-text' }, `epoch ${maxEpoch}`),
    );
  }

  const renderResult = batched(() => {
    const t = state.train;
    const result = $('#train-result');
    result.hidden = !(t.state === 'finished' && t.candidate);
    if (result.hidden) return;
    const candidate = t.candidate;
    const inUse = t.inUse;
    $('#train-result-title').textContent = `New model v${candidate.version}`;
    $('#train-result-summary').replaceChildren(
      h('span.big-figure', {}, percent(candidate.holdout?.accuracy, 1)),
      h('span', {}, candidate.validation?.optimistic ? ' accuracy (one session: likely optimistic)' : ' accuracy on held-out frames'),
      inUse ? h('span.muted', {}, ` · in use now: v${inUse.version}, ${inUse.holdout ? percent(inUse.holdout.accuracy, 1) : 'no figures'}`) : h('span.muted', {}, ' · no model in use yet'),
    );
    $('#train-promote').textContent = `Promote v${candidate.version}`;
    renderComparison(candidate, inUse);
    renderPerClass(candidate, inUse);
    if (candidate.validation) $('#train-estimate-note').textContent = candidate.validation.note;
    renderConfusion($('#train-confusion'), candidate);
    renderCandidates(candidate);
    renderAdvice(candidate);
    $('#train-confusion-inuse-wrap').hidden = !inUse?.holdout;
    if (inUse?.holdout) renderConfusion($('#train-confusion-inuse'), inUse);
  });

  function thresholdText(model) {
    const t = model.threshold;
    if (!t) return '–';
    if (t.threshold === null) return h('span', { title: `${percent(t.targetPrecision)} precision is not reached at any threshold` }, 'not reachable');
    return t.threshold === 0 ? h('span', { title: `${percent(t.targetPrecision)} precision without rejecting any frame` }, 'none needed') : percent(t.threshold);
  }

  function renderComparison(candidate, inUse) {
    const row = (name, fn, help) =>
      h('tr', {}, h('th', { scope: 'row', title: help ?? '' }, name), h('td', {}, fn(candidate)), h('td', {}, inUse ? fn(inUse) : '–'));
    $('#train-compare').replaceChildren(
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { scope: 'col' }, `new v${candidate.version}`), h('th', { scope: 'col' }, inUse ? `in use v${inUse.version}` : 'in use'))),
      h(
        'tbody',
        {},
        row('Accuracy', (m) => percent(m.holdout?.accuracy, 1), 'Share of held-out frames classified right, near-duplicates kept apart'),
        row('Estimate', (m) => (m.validation ? `${m.validation.kind}${m.validation.optimistic ? ' (optimistic)' : ''}` : '–'), 'Where the accuracy comes from'),
        row('Macro F1', (m) => number(m.holdout?.macroF1, 3), 'Mean of the per-label F1 scores'),
        row('Frames trained / scored', (m) => (m.trainCount !== undefined ? `${m.trainCount} / ${m.holdoutCount}` : '–')),
        row('Suggested threshold', thresholdText, 'Lowest confidence that keeps the target precision on held-out frames'),
        row('Labels', (m) => m.labels.join(', ') || '–'),
      ),
    );
  }

  function renderPerClass(candidate, inUse) {
    const old = new Map((inUse?.holdout?.perClass ?? []).map((c) => [c.label, c]));
    const delta = (now, before) => {
      if (before === undefined) return '';
      const d = now - before;
      if (Math.abs(d) < 0.005) return h('span.delta', {}, ' =');
      return h(`span.delta.${d > 0 ? 'up' : 'down'}`, {}, ` ${d > 0 ? '▲' : '▼'}${percent(Math.abs(d))}`);
    };
    $('#train-perclass').replaceChildren(
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Label'), h('th', { scope: 'col' }, 'Precision'), h('th', { scope: 'col' }, 'Recall'), h('th', { scope: 'col' }, 'Held-out frames'))),
      h(
        'tbody',
        {},
        (candidate.holdout?.perClass ?? []).map((c) => {
          const before = old.get(c.label);
          return h(
            'tr',
            {},
            h('th', { scope: 'row' }, labelBadge(c.label)),
            h('td', {}, percent(c.precision), delta(c.precision, before?.precision)),
            h('td', {}, percent(c.recall), delta(c.recall, before?.recall)),
            h('td', {}, String(c.support)),
          );
        }),
      ),
    );
  }

  function renderCandidates(model) {
    const list = model.candidates ?? [];
    $('#train-candidates-wrap').hidden = list.length === 0;
    $('#train-candidates').replaceChildren(
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Pipeline'), h('th', { scope: 'col' }, 'Accuracy'), h('th', { scope: 'col' }, 'Fit s'), h('th', { scope: 'col' }, 'Features s'), h('th', { scope: 'col', title: 'backbone runs per lane frame' }, 'Runs/frame'))),
      h(
        'tbody',
        {},
        list.map((c) =>
          h(
            `tr${c.chosen ? '.active' : ''}`,
            {},
            h('th', { scope: 'row', title: c.stage }, `${c.chosen ? '✔ ' : ''}${c.name}`),
            h('td', {}, c.accuracy === null ? h('span.muted', { title: c.skipped ?? '' }, 'skipped') : percent(c.accuracy, 1)),
            h('td', {}, number(c.fitMs / 1000, 1)),
            h('td', {}, number(c.embedMs / 1000, 1)),
            h('td', {}, String(c.backboneRunsPerFrame)),
          ),
        ),
      ),
    );
  }

  function renderAdvice(model) {
    const advice = model.advice;
    $('#train-advice-wrap').hidden = !advice;
    if (!advice) return;
    $('#train-scenario').textContent = `${advice.scenario}: ${advice.prescription}. ${advice.action}`;
    $('#train-advice').replaceChildren(...advice.recommendations.map((r) => h('li', {}, r)));
  }

  /** Rows: true label, columns: predicted; a cell's shade is its share of the row. */
  function renderConfusion(table, model) {
    const labels = model.holdout?.perClass?.map((c) => c.label) ?? model.labels;
    const matrix = model.holdout?.confusion ?? [];
    table.replaceChildren(
      h('caption', {}, `v${model.version}: rows are the true label, columns what the model said`),
      h('thead', {}, h('tr', {}, h('th', { class: 'corner' }, 'true ↓ / said →'), labels.map((l) => h('th', { scope: 'col', title: l }, h('span.col-label', {}, l))))),
      h(
        'tbody',
        {},
        matrix.map((row, i) => {
          const total = row.reduce((a, b) => a + b, 0) || 1;
          return h(
            'tr',
            {},
            h('th', { scope: 'row', title: labels[i] }, labels[i]),
            row.map((count, j) => {
              const share = count / total;
              const cell = h('td', { title: `${count} of ${total} “${labels[i]}” frames were called “${labels[j]}”` }, String(count));
              const hue = i === j ? '140 55% 38%' : '4 75% 50%';
              cell.style.backgroundColor = count ? `hsl(${hue} / ${0.12 + 0.78 * share})` : '';
              cell.classList.toggle('strong', share > 0.55);
              cell.classList.toggle('diagonal', i === j);
              return cell;
            }),
          );
        }),
      ),
    );
    table.dataset.version = String(model.version);
    table.style.setProperty('--label-colour', labelColour(labels[0] ?? ''));
  }

  ctx.on('dataset', renderReadiness);
  ctx.on('train', renderProgress);
  ctx.on('train', renderResult);
  ctx.on('train-progress', renderProgress);
  return {};
}
