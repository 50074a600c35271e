/**
 * "Why did it say that?": the stored frames nearest to a frame, by cosine similarity of
 * the same feature vectors the heads use (a brute-force scan: a lane dataset holds
 * hundreds to a few thousand frames, which scan in well under a millisecond each).
 */
import type { Backbone } from '../engine/types.js';
import type { Dataset } from '../dataset/index.js';
import { embedImages, embedImagesSettled, type FeatureCache } from '../features/index.js';
import type { FitPolicy, ImageInput } from '../image/types.js';
import { normaliseFeature } from '../training/index.js';

export interface SimilarImage {
  id: string;
  label: string;
  path: string;
  /** Cosine similarity, 1 = same direction. */
  similarity: number;
}

interface IndexedImage {
  id: string;
  label: string;
  path: string;
  unit: Float32Array;
}

export class SimilarityIndex {
  private readonly items: IndexedImage[] = [];

  constructor(readonly backbone: Backbone, private readonly fit: FitPolicy = backbone.fit, private readonly cache?: FeatureCache | null) {}

  /** Indexes every readable image of a dataset (features come from the cache when present). */
  static async fromDataset(dataset: Dataset, backbone: Backbone, options: { fit?: FitPolicy; cache?: FeatureCache | null; signal?: AbortSignal } = {}): Promise<SimilarityIndex> {
    const index = new SimilarityIndex(backbone, options.fit, options.cache);
    const entries = (await dataset.entries()).filter((e) => !e.problem);
    const report = await embedImagesSettled(backbone, entries.map((e) => e.path), options);
    report.results.forEach((result, i) => {
      if (!('error' in result)) index.add(entries[i], result.features);
    });
    return index;
  }

  get size(): number {
    return this.items.length;
  }

  add(image: { id: string; label: string; path: string }, features: Float32Array): void {
    this.items.push({ id: image.id, label: image.label, path: image.path, unit: normaliseFeature(features) });
  }

  /** The k stored images most similar to a feature vector, most similar first. */
  nearest(features: Float32Array, k = 5): SimilarImage[] {
    const query = normaliseFeature(features);
    const scored = this.items.map((item) => {
      let dot = 0;
      for (let i = 0; i < query.length; i++) dot += query[i] * item.unit[i];
      return { item, dot };
    });
    scored.sort((a, b) => b.dot - a.dot);
    return scored.slice(0, Math.max(0, k)).map(({ item, dot }) => ({ id: item.id, label: item.label, path: item.path, similarity: dot }));
  }

  /** The k stored images most similar to a frame. */
  async similar(input: ImageInput, k = 5): Promise<SimilarImage[]> {
    const { results } = await embedImages(this.backbone, [input], { fit: this.fit, cache: this.cache });
    return this.nearest(results[0].features, k);
  }
}
