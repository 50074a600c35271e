/** `lane-vision import-tm`: a Teachable Machine image model export becomes a model version. */
import * as path from 'node:path';
import { initBackend } from '../../engine/backend.js';
import { importTeachableMachine, openModelStore } from '../../model-store/index.js';
import { downloadReporter } from '../backbone.js';
import { COMMON_OPTIONS, backendOption, needPositionals, parseCommandLine, requiredOption } from '../args.js';
import { BACKEND_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { Output } from '../output.js';

const OPTIONS = { ...COMMON_OPTIONS, store: { type: 'string', short: 's' }, name: { type: 'string' } } as const;

export const importTmCommand: Command = {
  name: 'import-tm',
  summary: 'import a Teachable Machine image model export as a model version',
  help: `Usage: ${PROGRAM} import-tm --store DIR FOLDER|URL [options]

Reads a Teachable Machine image model export (FOLDER with model.json, weights.bin and
metadata.json, as downloaded with "Export Model > TensorFlow.js", or its shareable link /
model.json URL, downloaded once into the model cache) and saves its head
and labels as the next, active version of the store. The lane then classifies with
the export's MobileNet backbone (or the matching preset).

Options:
  -s, --store DIR                     model store to save the version in (created if missing)
  --name <text>                       model name (default: the export's)
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"version", "activated", "store", "labels": [{"label", "code"}],
"backbone": {"id", "source", "preset", "featureSize"}, "backend"}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('import-tm', args, OPTIONS);
    const storeDir = path.resolve(requiredOption('import-tm', 'store', values.store));
    needPositionals('import-tm', positionals, 'FOLDER|URL: name the Teachable Machine export folder or URL', { min: 1, max: 1 });
    const exportDir = /^https?:\/\//i.test(positionals[0]) ? positionals[0] : path.resolve(positionals[0]);
    const out = new Output(values.json === true, streams);

    // Reading the export's weights uses tensors, so a backend must be up.
    const backend = await initBackend(backendOption('import-tm', values.backend));
    out.backend(backend);
    const store = await openModelStore(storeDir);
    const saved = await importTeachableMachine(store, exportDir, { modelName: values.name, onProgress: downloadReporter(out) });
    const { metadata } = saved;
    const descriptor = metadata.backbone;
    out.record({
      command: 'import-tm',
      version: saved.version,
      activated: saved.active,
      store: storeDir,
      modelName: metadata.modelName,
      labels: metadata.classes,
      head: { kind: metadata.head.kind, classCount: metadata.head.classCount },
      backbone: { id: descriptor.id, source: descriptor.source, preset: descriptor.preset, featureSize: descriptor.featureSize },
      backend: backend.name,
    });
    out.line(`imported ${exportDir} as model v${saved.version} in ${storeDir}${saved.active ? ' (active)' : ''}`);
    out.line(`name       ${metadata.modelName}`);
    out.line(`labels     ${metadata.classes.map((c) => `${c.label} (code ${c.code})`).join(', ')}`);
    out.line(`head       ${metadata.head.kind}, ${descriptor.featureSize} features in`);
    out.line(`backbone   ${descriptor.source}${descriptor.preset ? ` (same features as preset ${descriptor.preset})` : ''}`);
    return 0;
  },
};
