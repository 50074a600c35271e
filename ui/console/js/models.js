// Models: every stored version with its figures; switch to any, roll back to the previous one, or download it as ONNX / tfjs.
import { $, batched, dateTime, h, number, percent, toast } from './dom.js';

export function createModels(ctx) {
  const { state } = ctx;

  $('#models-rollback').addEventListener('click', async () => {
    const reply = await ctx.act('rollback', {});
    if (reply) toast(`Rolled back: model v${reply.active} is in use again (was v${reply.previous})`, 'success');
  });

  async function use(version) {
    const reply = await ctx.act('promote', { version });
    if (reply) toast(`Model v${version} is now in use`, 'success');
  }

  const render = batched(() => {
    const { versions, active } = state.models;
    $('#models-empty').hidden = versions.length > 0;
    $('#models-table').hidden = versions.length === 0;
    $('#models-rollback').disabled = active === null;
    $('#models-active').textContent = active ? `In use: v${active}` : 'No model in use yet';
    const candidate = state.train.state === 'finished' ? state.train.candidate?.version : undefined;
    $('#models-body').replaceChildren(
      ...versions.map((v) =>
        h(
          `tr${v.active ? '.active' : ''}`,
          { dataset: { version: String(v.version) } },
          h('th', { scope: 'row' }, `v${v.version}`),
          h('td', {}, dateTime(v.createdAt)),
          h('td.labels-cell', { title: v.labels.join(', ') }, v.labels.join(', ') || '–'),
          h('td.num', { title: [v.pipeline, v.optimistic ? 'one session: likely optimistic' : ''].filter(Boolean).join(' · ') }, v.accuracy !== undefined ? `${percent(v.accuracy, 1)}${v.optimistic ? '*' : ''}` : '–'),
          h('td.num', {}, v.macroF1 !== undefined ? number(v.macroF1, 3) : '–'),
          h('td.num', {}, v.trainCount !== undefined ? `${v.trainCount} / ${v.holdoutCount}` : '–'),
          h(
            'td.exports',
            {},
            v.problem
              ? ''
              : h(
                  'span',
                  { title: 'The version as one model for programs without Lane Vision, with lane-vision-export.json saying how to feed it' },
                  h('a', { href: `api/models/${v.version}/export/onnx/model.onnx`, download: '' }, 'ONNX'),
                  ' · ',
                  h('a', { href: `api/models/${v.version}/export/tfjs/model.json`, download: '' }, 'tfjs'),
                  ' ',
                  h('a', { href: `api/models/${v.version}/export/tfjs/weights.bin`, download: '' }, '+weights'),
                  ' · ',
                  h('a', { href: `api/models/${v.version}/export/onnx/lane-vision-export.json`, download: '' }, 'how to feed it'),
                ),
          ),
          h(
            'td.actions',
            {},
            v.problem
              ? h('span.error', { title: v.problem }, 'unusable')
              : v.active
                ? h('span.chip.accepted', {}, 'in use')
                : h('button.secondary', { type: 'button', onclick: () => use(v.version) }, v.version === candidate ? 'Promote (new)' : 'Use this version'),
          ),
        ),
      ),
    );
  });

  ctx.on('models', render);
  ctx.on('train', render);
  return {};
}
