/** One frame from a lane source. */
export interface LaneFrame {
  /** Class name (synthetic flavour or folder name); undefined for unlabelled images. */
  label: string | undefined;
  /** Encoded image (JPEG for synthetic frames; the file's own bytes for replay). */
  image: Buffer;
  /** 0, 1, 2, ... in the order frames were handed out, across loops. */
  index: number;
  /** The file a replayed frame came from. */
  path?: string;
}

/** Anything that hands out frames one at a time; `next()` gives null once a source is used up. */
export interface LaneSource {
  next(): Promise<LaneFrame | null>;
}
