/**
 * A read-only view of some labels of a dataset, so a job can train on part of a
 * folder-per-class dataset (e.g. the classes a validation split has) without copying it.
 */
import { LaneVisionError } from '../errors.js';
import type { Dataset, DatasetEntry, FingerprintOptions, SkippedItem } from '../dataset/index.js';

/** The view of `dataset` holding only `labels`; throws LABEL_NOT_FOUND for a label it does not have. */
export function selectLabels(dataset: Dataset, labels: readonly string[]): Dataset {
  const have = new Set(dataset.labels());
  const missing = labels.filter((label) => !have.has(label));
  if (missing.length > 0) {
    throw new LaneVisionError(
      'LABEL_NOT_FOUND',
      `${dataset.dir} has no label ${missing.map((l) => `"${l}"`).join(', ')}; it has: ${[...have].join(', ')}`,
    );
  }
  return new LabelSubset(dataset, new Set(labels));
}

class LabelSubset implements Dataset {
  constructor(
    private readonly inner: Dataset,
    private readonly keep: ReadonlySet<string>,
  ) {}

  get dir(): string {
    return this.inner.dir;
  }
  readonly readOnly = true;

  labels(): string[] {
    return this.inner.labels().filter((label) => this.keep.has(label));
  }
  counts(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.inner.counts()).filter(([label]) => this.keep.has(label)));
  }
  get size(): number {
    return Object.values(this.counts()).reduce((a, b) => a + b, 0);
  }
  get revision(): number {
    return this.inner.revision;
  }
  async entries(): Promise<DatasetEntry[]> {
    return (await this.inner.entries()).filter((entry) => this.keep.has(entry.label));
  }
  async entry(id: string): Promise<DatasetEntry | undefined> {
    const found = await this.inner.entry(id);
    return found && this.keep.has(found.label) ? found : undefined;
  }
  fingerprint(options: FingerprintOptions = {}): Promise<string> {
    const labels = (options.labels ?? [...this.keep]).filter((label) => this.keep.has(label));
    return this.inner.fingerprint({ labels });
  }
  refresh(): Promise<void> {
    return this.inner.refresh();
  }
  skipped(): SkippedItem[] {
    return this.inner.skipped();
  }
  async add(): Promise<never> {
    return this.refuse();
  }
  async remove(): Promise<never> {
    return this.refuse();
  }
  async relabel(): Promise<never> {
    return this.refuse();
  }
  async renameLabel(): Promise<never> {
    return this.refuse();
  }
  async removeLabel(): Promise<never> {
    return this.refuse();
  }
  private refuse(): never {
    throw new LaneVisionError('DATASET_READ_ONLY', `This is a read-only selection of labels of ${this.inner.dir}.`);
  }
}
