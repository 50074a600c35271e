// The console page: one state object fed by the event stream, five sections drawing from it.
import * as api from './api.js';
import { $, batched, number, setKnownLabels, toast } from './dom.js';
import { createLive } from './live.js';
import { createTeach } from './teach.js';
import { createTrain } from './train.js';
import { createModels } from './models.js';
import { createSimilar } from './similar.js';
import { createReview } from './review.js';

const SECTIONS = ['live', 'teach', 'train', 'models', 'similar'];

/** What the page knows; replaced by the stream's first event, then updated event by event. */
const state = {
  node: null,
  backbone: { state: 'loading' },
  frames: new Map(), // id -> FrameView, insertion order = arrival order
  rejects: [],
  stats: null,
  dataset: { counts: {}, total: 0 },
  models: { active: null, versions: [] },
  train: { state: 'idle', history: [] },
  capture: null,
  review: { items: [], total: 0 },
  rejectLabels: [],
  gallery: null,
  frameLimit: 24,
};

const listeners = new Map(); // topic -> [fn]
function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, []);
  listeners.get(topic).push(fn);
}
function changed(...topics) {
  if (topics.includes('dataset') || topics.includes('models')) setKnownLabels(ctx.labels());
  for (const topic of topics) for (const fn of listeners.get(topic) ?? []) fn();
}

const ctx = {
  state,
  on,
  changed,
  api,
  /** Shows a section, e.g. after clicking a frame for its similar frames. */
  show(section) {
    location.hash = section;
  },
  /** Runs a write, with a toast for the outcome; returns the reply or undefined on failure. */
  async act(action, body, success) {
    try {
      const reply = await api.write(action, body);
      if (success) toast(typeof success === 'function' ? success(reply) : success, 'success');
      return reply;
    } catch (err) {
      toast(err.message, 'error');
      return undefined;
    }
  },
  /** The labels an operator can pick: the dataset's and the model's in use. */
  labels() {
    const labels = new Set(Object.keys(state.dataset.counts));
    const active = state.models.versions.find((v) => v.active);
    for (const label of active?.labels ?? []) labels.add(label);
    return [...labels].sort((a, b) => a.localeCompare(b));
  },
  async refreshGallery() {
    try {
      state.gallery = await api.read('api/gallery');
      changed('gallery');
    } catch (err) {
      toast(`Could not load the dataset: ${err.message}`, 'error');
    }
  },
};

const sections = {
  live: createLive(ctx),
  teach: createTeach(ctx),
  train: createTrain(ctx),
  models: createModels(ctx),
  similar: createSimilar(ctx),
  review: createReview(ctx),
};

// #region header

const renderVitals = batched(() => {
  const s = state.stats;
  $('#vital-fps').textContent = s ? `${number(s.fps, 1)} frames/s` : '– frames/s';
  $('#vital-latency').textContent = s && s.latencyMs !== null ? `${s.latencyMs} ms` : '– ms';
  const active = state.models.active;
  $('#vital-model').textContent = active ? `model v${active}` : 'no model yet';
  $('#vital-model').classList.toggle('warn', !active);
  const bb = state.backbone;
  const backbone = $('#vital-backbone');
  backbone.hidden = bb.state === 'ready';
  backbone.textContent = bb.state === 'loading' ? 'backbone loading…' : `backbone error: ${bb.message ?? ''}`;
  backbone.classList.toggle('error', bb.state === 'error');
});
on('stats', renderVitals);
on('models', renderVitals);
on('backbone', renderVitals);

function setConnection(status) {
  const el = $('#conn');
  el.dataset.status = status;
  el.textContent = { live: 'live', connecting: 'connecting…', offline: 'offline' }[status];
  el.title = status === 'live' ? 'Receiving updates from Node-RED' : 'Waiting for Node-RED; the page reconnects by itself';
}

function showSection() {
  const wanted = location.hash.slice(1);
  const current = SECTIONS.includes(wanted) ? wanted : 'live';
  for (const name of SECTIONS) {
    $(`#${name}`).hidden = name !== current;
    const tab = $(`#tab-${name}`);
    tab.setAttribute('aria-selected', String(name === current));
    tab.tabIndex = name === current ? 0 : -1;
  }
  sections[current].shown?.();
}
window.addEventListener('hashchange', showSection);

// #endregion

// #region event stream

function addFrame(view) {
  state.frames.delete(view.id);
  state.frames.set(view.id, view);
  while (state.frames.size > state.frameLimit) state.frames.delete(state.frames.keys().next().value);
}

const handlers = {
  state(full) {
    const first = state.node === null;
    state.node = full.node;
    api.configure(full);
    document.title = `${full.node.name || 'Lane console'} · Lane Vision`;
    $('#console-name').textContent = full.node.name || full.node.path;
    state.backbone = full.backbone;
    state.frameLimit = full.settings.frames;
    state.frames = new Map(full.frames.map((f) => [f.id, f]));
    state.rejects = full.rejects;
    state.stats = full.stats;
    state.dataset = full.dataset;
    state.models = full.models;
    state.train = full.train;
    state.capture = full.capture;
    state.review = full.review ?? { items: [], total: 0 };
    state.rejectLabels = full.rejectLabels ?? [];
    document.body.classList.toggle('read-only', !api.canWrite());
    changed('frames', 'rejects', 'stats', 'dataset', 'models', 'train', 'capture', 'backbone', 'review');
    ctx.refreshGallery();
    if (first) showSection();
  },
  frame(view) {
    addFrame(view);
    changed('frames');
  },
  rejects(list) {
    state.rejects = list;
    changed('rejects');
  },
  stats(stats) {
    state.stats = stats;
    changed('stats');
  },
  dataset(view) {
    state.dataset = view;
    changed('dataset');
    ctx.refreshGallery();
  },
  models(view) {
    state.models = view;
    changed('models');
  },
  train(view) {
    state.train = view;
    changed('train');
  },
  'train-progress'(progress) {
    const train = state.train;
    Object.assign(train, progress, { state: 'running' });
    if (progress.phase === 'training') train.history.push({ epoch: progress.epoch, loss: progress.loss, accuracy: progress.accuracy });
    changed('train-progress');
  },
  capture(view) {
    state.capture = view;
    changed('capture');
  },
  review(view) {
    state.review = view;
    changed('review');
  },
  'reject-labels'(labels) {
    state.rejectLabels = labels;
    changed('reject-labels');
  },
  backbone(view) {
    state.backbone = view;
    changed('backbone');
  },
  notice({ level, message }) {
    toast(message, level === 'error' ? 'error' : 'info');
  },
};

let source;
let retryMs = 2000;
function openStream() {
  source = api.connect(handlers, (status) => {
    setConnection(status);
    if (status === 'live') retryMs = 2000;
    if (status === 'offline') {
      // The browser gives up on a refused stream (console redeployed elsewhere, Node-RED restarting): try again later.
      source.close();
      setTimeout(openStream, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    }
  });
}

// #endregion

for (const name of SECTIONS) {
  $(`#tab-${name}`).addEventListener('click', (e) => {
    e.preventDefault();
    ctx.show(name);
  });
}
$('nav.tabs').addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
  const current = SECTIONS.indexOf(location.hash.slice(1) || 'live');
  const next = SECTIONS[(current + (e.key === 'ArrowRight' ? 1 : SECTIONS.length - 1)) % SECTIONS.length];
  ctx.show(next);
  $(`#tab-${next}`).focus();
});
openStream();
