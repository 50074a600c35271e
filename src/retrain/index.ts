export {
  retrain,
  DEFAULT_BUDGET_SECONDS,
  DEFAULT_FOLDS,
  isRetraining,
  withRetrainLock,
  MIN_IMAGES_PER_LABEL,
  type RetrainOptions,
  type RetrainResult,
  type RetrainMetrics,
  type RetrainProgress,
  type RetrainDataset,
  type RetrainStore,
} from './retrain.js';
export {
  TrainingWorker,
  trainThreadFrom,
  enginePreferenceOf,
  TRAIN_THREAD_ENV_VAR,
  TRAIN_ONNX_THREADS_ENV_VAR,
  DEFAULT_TRAIN_ONNX_THREADS,
  type TrainThread,
  type TrainingWorkerOptions,
  type TrainingWorkerEvents,
  type WorkerRetrainOptions,
} from './training-worker.js';
export type { LoadedInWorker } from '../threads/backbone-thread.js';
export { FINE_TUNE_MIN_VIEWS, FINE_TUNE_HEAD, FINE_TUNE_FINAL_TRAINING, type FineTuneSettings, type FineTuneReport } from './fine-tune-retrain.js';
