/** Settings and runtime surface of a lane-camera node. */
import type { Node, NodeDef } from 'node-red';
import type { CameraKind, CameraMode } from '../../src/camera/index.js';

export interface LaneCameraDef extends NodeDef {
  kind?: CameraKind;
  /** snapshot, mjpeg: http(s)://...; rtsp: rtsp://... */
  url?: string;
  /** usb: /dev/video0 */
  device?: string;
  /** usb: asked of the camera, e.g. 1280x720 (blank: its default). */
  size?: string;
  /** folder: watched for new image files; relative to the Node-RED user directory. */
  folder?: string;
  /** folder: ms a file must stay unchanged before it is read. */
  settle?: string | number;
  /** folder: also send the images already there. */
  existing?: boolean;
  /** https: check the camera's certificate (default true). */
  tlsVerify?: boolean;
  /** rtsp, usb: ffmpeg's path (blank: PATH). */
  ffmpeg?: string;
  /** rtsp: tcp (default) or udp. */
  transport?: 'tcp' | 'udp';
  /** rtsp, usb: `jpeg` (default) or `raw` RGB pixels scaled by ffmpeg to `rawSize`. */
  output?: 'jpeg' | 'raw';
  /** raw output: WIDTHxHEIGHT, the backbone's input size (default 224x224). */
  rawSize?: string;
  mode?: CameraMode;
  /** free-run: frames per second at most. */
  fps?: string | number;
  /** triggered: seconds a trigger waits for a frame. */
  timeout?: string | number;
  /** Seconds between reconnects at most (the backoff grows up to this). */
  retryMax?: string | number;
  roiLeft?: string | number;
  roiTop?: string | number;
  roiWidth?: string | number;
  roiHeight?: string | number;
}

export interface LaneCameraCredentials {
  user?: string;
  password?: string;
}

export interface LaneCameraNode extends Node<LaneCameraCredentials> {
  /** The ffmpeg process of an RTSP / USB camera, while one runs (tests check it ends with the node). */
  ffmpegPid?: number;
}
