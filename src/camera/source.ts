/**
 * A camera named by one string (the command line's --source): http(s):// (snapshot or MJPEG,
 * found out from the answer), rtsp://, a video device (/dev/videoN) or a folder to watch.
 */
import * as fs from 'node:fs';
import { LaneVisionError } from '../errors.js';
import { rtspCamera, usbCamera, type FfmpegCameraOptions } from './ffmpeg.js';
import { folderCamera } from './folder-watch.js';
import { httpCamera, mjpegCamera, snapshotCamera, type HttpCameraOptions } from './http-sources.js';
import type { CameraKind, Connector } from './types.js';

export interface CameraSourceOptions extends FfmpegCameraOptions, Omit<HttpCameraOptions, 'url'> {
  /** Force the kind instead of guessing it from the string. */
  kind?: CameraKind;
  settleMs?: number;
  /** Folder: also the images already there. */
  existing?: boolean;
}

/** The kind a source string names; http(s) URLs are `http` until the camera's answer tells snapshot from MJPEG. */
export function sourceKind(source: string): CameraKind | 'http' {
  const text = source.trim();
  if (/^https?:\/\//i.test(text)) return 'http';
  if (/^rtsps?:\/\//i.test(text)) return 'rtsp';
  if (/^\/dev\/video\d+$/.test(text) || /^\/dev\/v4l\//.test(text)) return 'usb';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new LaneVisionError('CAMERA_BAD_SOURCE', `Unknown camera address "${text}": use http(s)://, rtsp://, /dev/videoN or a folder`);
  }
  if (fs.existsSync(text) && fs.statSync(text).isDirectory()) return 'folder';
  throw new LaneVisionError('CAMERA_BAD_SOURCE', `"${text}" is neither a camera URL (http(s)://, rtsp://), a video device (/dev/videoN) nor an existing folder`);
}

export function openCameraSource(source: string, options: CameraSourceOptions = {}): Connector {
  const text = source.trim();
  const kind = options.kind ?? sourceKind(text);
  switch (kind) {
    case 'http':
      return httpCamera({ ...options, url: text });
    case 'snapshot':
      return snapshotCamera({ ...options, url: text });
    case 'mjpeg':
      return mjpegCamera({ ...options, url: text });
    case 'rtsp':
      return rtspCamera({ ...options, url: withCredentials(text, options.credentials) });
    case 'usb':
      return usbCamera({ ...options, device: text });
    case 'folder':
      return folderCamera({ folder: text, settleMs: options.settleMs, existing: options.existing });
  }
}

/** RTSP credentials go in the URL: ffmpeg answers the camera's basic or digest challenge itself. */
export function withCredentials(url: string, credentials: { user: string; password: string } | undefined): string {
  if (!credentials?.user) return url;
  try {
    const parsed = new URL(url);
    parsed.username = encodeURIComponent(credentials.user);
    parsed.password = encodeURIComponent(credentials.password);
    return parsed.toString();
  } catch {
    return url; // rtspCamera says what is wrong with it
  }
}
