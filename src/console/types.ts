/** What the operator console keeps and what its page receives: plain data, no Node-RED. */
import type { Advice } from '../advisor/index.js';
import type { CandidateScore, ValidationEstimate } from '../pipeline/index.js';
import type { HeadMetrics, PrecisionThreshold } from '../training/index.js';

export interface ConsoleSettings {
  /** Normalised: one leading slash, no trailing slash. */
  path: string;
  frames: number;
  rejects: number;
  windowMinutes: number;
}

// #region what the page receives

export interface RankedView {
  label: string;
  confidence: number;
}

/** One frame of the ring or the unsure queue; its image is `frames/<id>.jpg` (`?size=large`). */
export interface FrameView {
  id: number;
  /** Arrival time, ms since the epoch. */
  at: number;
  /** False for a frame that came straight from the camera (no model yet, or classify not wired). */
  classified: boolean;
  label?: string;
  confidence?: number;
  accepted?: boolean;
  modelVersion?: number;
  topK?: RankedView[];
  /** classification.timings.totalMs */
  latencyMs?: number;
  /** What the source says the frame shows (msg.label of lane-source), when it knows. */
  truth?: string;
  /** The label it was stored under from this console (so it is not taught twice). */
  stored?: string;
}

export interface StatsView {
  /** Frames per second over the last few seconds. */
  fps: number;
  /** Mean classification time of the latest frames (ms), null before the first. */
  latencyMs: number | null;
  /** Mean confidence (0..1) of the latest frames, null before the first. */
  confidence: number | null;
  windowMinutes: number;
  /** Classified frames per decided label within the window (`unknown` included). */
  counts: Record<string, number>;
  /** Share (0..1) of the window's frames that went to inspection; null when there were none. */
  rejectRate: number | null;
  /** Frames seen since deploy. */
  frames: number;
}

export interface DatasetView {
  counts: Record<string, number>;
  total: number;
  /** The dataset's revision: changes when images come and go, even when the counts stay (a capped label drops its oldest). */
  revision: number;
}

export interface GalleryImage {
  id: string;
  /** First characters of the sha256, to version the thumbnail URL. */
  sha: string;
  addedAt: string;
  source?: string;
}

export interface GalleryView {
  labels: { label: string; count: number; images: GalleryImage[] }[];
  /** Images shown per label at most (newest first). */
  perLabelLimit: number;
}

export interface ModelSummaryView {
  version: number;
  active: boolean;
  createdAt?: string;
  labels: string[];
  accuracy?: number;
  macroF1?: number;
  trainCount?: number;
  holdoutCount?: number;
  /** The accuracy is from one session only (likely optimistic). */
  optimistic?: boolean;
  /** The pipeline in words, e.g. "crop 0.7, logistic, 3 training views". */
  pipeline?: string;
  problem?: string;
}

export interface ModelsView {
  active: number | null;
  versions: ModelSummaryView[];
}

/** A model's hold-out figures as the Train section compares them. */
export interface ModelReport {
  version: number;
  createdAt?: string;
  labels: string[];
  holdout?: HeadMetrics;
  threshold?: PrecisionThreshold;
  trainCount?: number;
  holdoutCount?: number;
  totalMs?: number;
  /** What the accuracy is (kind, optimistic, note). */
  validation?: ValidationEstimate;
  /** The candidates the training compared, the chosen one marked. */
  candidates?: CandidateScore[];
  advice?: Advice;
}

export interface TrainView {
  state: 'idle' | 'running' | 'finished' | 'failed' | 'cancelled';
  phase?: 'starting' | 'features' | 'search' | 'training' | 'fine-tune' | 'saving';
  /** search: the last candidate scored, in words. */
  name?: string;
  done?: number;
  total?: number;
  epoch?: number;
  epochs?: number;
  loss?: number;
  accuracy?: number;
  /** Loss and accuracy per epoch so far (the page draws the curve). */
  history: { epoch: number; loss: number; accuracy: number }[];
  error?: string;
  /** The newly trained version waiting for promote / discard. */
  candidate?: ModelReport;
  /** The version in use when the candidate was shown. */
  inUse?: ModelReport;
}

export interface CaptureView {
  label: string;
  total: number;
  remaining: number;
  added: number;
  duplicates: number;
}

export interface BackboneView {
  state: 'loading' | 'ready' | 'error';
  message?: string;
}

/** The first event of every stream: everything the page shows. */
export interface StateView {
  node: { id: string; name: string; path: string };
  /** Where the write routes live (httpAdminRoot), or null when the admin API is off. */
  adminRoot: string | null;
  /** Frames kept, unsure frames kept, count window (the page keeps as many as the runtime). */
  settings: { frames: number; rejects: number; windowMinutes: number };
  backbone: BackboneView;
  frames: FrameView[];
  rejects: FrameView[];
  stats: StatsView;
  dataset: DatasetView;
  models: ModelsView;
  train: TrainView;
  capture: CaptureView | null;
  review: ReviewView;
  /** Labels marked as reject classes for the next training (Teach tab). */
  rejectLabels: string[];
}

/** Frames queued for an operator's look, newest first. */
export interface ReviewView {
  items: { id: string; reason: string; label: string; confidence: number; margin: number; similarity?: number; modelVersion: number; addedAt: string; sha: string }[];
  total: number;
}

export interface SimilarView {
  frame: FrameView;
  neighbours: { id: string; label: string; similarity: number; sha: string }[];
  indexed: number;
}

// #endregion
