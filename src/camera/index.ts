/** Real lane cameras: HTTP snapshot and MJPEG, RTSP and USB through ffmpeg, a watched folder; reconnects, pacing, triggers, ROI. */
export { CAMERA_KINDS, type CameraKind, type CameraMode, type CameraFrame, type CameraState, type CameraCounters, type CameraImage, type Connector, type Roi } from './types.js';
export { Camera, cropRoi, checkRoi, DEFAULT_RETRY_MIN_MS, DEFAULT_RETRY_MAX_MS, MAX_CAMERA_FPS, type CameraOptions } from './camera.js';
export { snapshotCamera, mjpegCamera, httpCamera, redactUrl, type HttpCameraOptions } from './http-sources.js';
export { HttpAuthenticator, parseChallenges, type Credentials } from './http-auth.js';
export { MjpegParser, multipartBoundary } from './mjpeg-parser.js';
export { JpegSplitter } from './jpeg-splitter.js';
export { rtspCamera, usbCamera, findFfmpeg, checkRawOutput, MAX_RAW_SIDE, type RawOutput, type RtspCameraOptions, type UsbCameraOptions } from './ffmpeg.js';
export { RawFrameSplitter } from './raw-splitter.js';
export { folderCamera, DEFAULT_SETTLE_MS, type FolderCameraOptions } from './folder-watch.js';
export { openCameraSource, sourceKind, withCredentials, type CameraSourceOptions } from './source.js';
