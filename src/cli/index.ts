/** The `lane-vision` command line as a library: run it in-process, or reuse its pieces. */
export { runCli, COMMANDS, EXIT_OK, EXIT_FAILED, EXIT_USAGE } from './run.js';
export { UsageError } from './args.js';
export type { Command } from './command.js';
export type { CliStreams } from './output.js';
export { selectLabels } from './dataset-view.js';
export { absoluteSource, loadBackboneForModel, loadNamedBackbone, specForDescriptor } from './backbone.js';
