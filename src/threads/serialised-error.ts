/**
 * Errors crossing `postMessage` between a worker thread and the main thread: plain data on
 * the way, a LaneVisionError (with its code) again on arrival.
 */
import { LaneVisionError } from '../errors.js';

export interface SerialisedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function serialiseError(err: unknown): SerialisedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, code: typeof code === 'string' ? code : undefined, stack: err.stack };
  }
  return { name: 'Error', message: String(err) };
}

/** The error again, a LaneVisionError if it was one; its stack says which thread threw it. */
export function deserialiseError(data: SerialisedError): Error {
  let err: Error;
  if (data.name === 'LaneVisionError' && data.code) err = new LaneVisionError(data.code, data.message);
  else {
    err = new Error(data.message);
    err.name = data.name;
    if (data.code) Object.assign(err, { code: data.code });
  }
  if (data.stack) err.stack = data.stack;
  return err;
}
