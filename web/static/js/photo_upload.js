// A photo to the server over the resumable upload of docs/protocol.md (Photos): chunks with
// Content-Range; after a network error the page asks the server how much it holds (HEAD) and
// goes on from there, so a weak link never starts a photo over. And a still from the camera at
// its highest resolution.

// 32 KiB: about a second per chunk at 250 kbit/s, so progress moves and a resend is short.
const CHUNK_BYTES = 32 * 1024;
const MAX_RETRIES = 40;
const RETRY_DELAY_MS = [250, 500, 1000, 2000, 4000];

export class UploadError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function refusal(response) {
  let body = {};
  try {
    body = await response.json();
  } catch (err) {
    // No JSON body: the status says enough.
  }
  const error = body.error || {};
  return new UploadError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Upload `blob` into the consultation; `onProgress(sent, total)` after each acknowledged chunk,
 * `onResume(held, total)` when it goes on after a network error from what the server holds.
 * Resolves to the photo (`{photo_id, width, height, bytes, taken_at, by, ...}`).
 */
export async function uploadPhoto({ token, consultationId, blob, onProgress = () => {}, onResume = () => {} }) {
  const auth = { Authorization: `Bearer ${token}` };
  const started = await fetch(`/api/consultations/${encodeURIComponent(consultationId)}/photos`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ bytes: blob.size }),
  });
  if (started.status !== 201) throw await refusal(started);
  const { upload_id: uploadId, chunk_max: chunkMax } = await started.json();
  const url = `/api/uploads/${encodeURIComponent(uploadId)}`;
  const chunk = Math.min(CHUNK_BYTES, chunkMax || CHUNK_BYTES);
  const total = blob.size;
  let held = 0;
  let retries = 0;
  onProgress(0, total);
  for (;;) {
    const last = Math.min(held + chunk, total) - 1;
    let response;
    try {
      response = await fetch(url, {
        method: "PUT",
        headers: { ...auth, "Content-Range": `bytes ${held}-${last}/${total}` },
        body: blob.slice(held, last + 1),
      });
    } catch (err) {
      // The connection dropped: wait, ask what arrived, resend from there.
      if (++retries > MAX_RETRIES) throw new UploadError(0, "network", err.message);
      await sleep(RETRY_DELAY_MS[Math.min(retries - 1, RETRY_DELAY_MS.length - 1)]);
      held = await heldBytes(url, auth, held);
      onResume(held, total);
      continue;
    }
    if (response.status === 201) {
      onProgress(total, total);
      return response.json();
    }
    if (response.status === 308 || response.status === 416) {
      held = Number(response.headers.get("Upload-Offset") || 0);
      if (response.status === 308) retries = 0;
      onProgress(held, total);
      continue;
    }
    throw await refusal(response);
  }
}

async function heldBytes(url, auth, fallback) {
  try {
    const response = await fetch(url, { method: "HEAD", headers: auth });
    if (response.ok) return Number(response.headers.get("Upload-Offset") || 0);
  } catch (err) {
    // Still offline: resend from where we were; the server skips what it has.
  }
  return fallback;
}

/**
 * A still at the camera's highest resolution. ImageCapture's takePhoto() at the largest size
 * the camera reports, where the browser has it; when that comes back smaller than the camera
 * can deliver (some cameras and drivers take the photo at the video's size), one frame with
 * the call's own track raised to the camera's highest constraints for a moment (a camera runs
 * at one resolution at a time, so a second track would get the call's size). The larger wins.
 * Resolves to {blob, width, height, method}.
 */
export async function captureStill(stream) {
  const live = stream && stream.getVideoTracks().find((t) => t.readyState === "live");
  let shot = null;
  if (live && typeof ImageCapture === "function") {
    try {
      shot = await takePhoto(live);
    } catch (err) {
      console.info("takePhoto unavailable, using a frame instead:", err.message);
    }
  }
  const caps = live && live.getCapabilities ? live.getCapabilities() : {};
  const most = caps.width && caps.height ? caps.width.max * caps.height.max : Infinity;
  if (shot && shot.width * shot.height >= most) return shot;
  const frame = live ? await frameOfRaisedTrack(live, caps) : await frameOfNewTrack();
  return shot && shot.width * shot.height >= frame.width * frame.height ? shot : frame;
}

async function takePhoto(track) {
  const capture = new ImageCapture(track);
  const caps = await capture.getPhotoCapabilities();
  const settings = {};
  if (caps.imageWidth && caps.imageWidth.max) settings.imageWidth = caps.imageWidth.max;
  if (caps.imageHeight && caps.imageHeight.max) settings.imageHeight = caps.imageHeight.max;
  const blob = await capture.takePhoto(settings);
  const bitmap = await createImageBitmap(blob);
  const shot = { blob, width: bitmap.width, height: bitmap.height, method: "takePhoto" };
  bitmap.close();
  return shot;
}

async function frameOfRaisedTrack(track, caps) {
  const before = track.getConstraints();
  try {
    if (caps.width && caps.height) {
      await track.applyConstraints({ width: { exact: caps.width.max }, height: { exact: caps.height.max } })
        .catch(() => track.applyConstraints({ width: { ideal: caps.width.max }, height: { ideal: caps.height.max } }));
    }
    return await frameOf(new MediaStream([track.clone()]));
  } finally {
    await track.applyConstraints(before).catch(() => {});
  }
}

async function frameOfNewTrack() {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 4096 }, height: { ideal: 3072 } },
    audio: false,
  });
  return frameOf(stream);
}

// One frame of `stream` as a JPEG; the stream's tracks (a clone, or a track of its own) are stopped.
async function frameOf(stream) {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  try {
    await video.play();
    await new Promise((resolve) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(resolve) : setTimeout(resolve, 200)));
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
    return { blob, width: canvas.width, height: canvas.height, method: "frame" };
  } finally {
    video.srcObject = null;
    for (const t of stream.getTracks()) t.stop();
  }
}

/** A photo's image through the Bearer-protected route, as an object URL (revoke when done). */
export async function photoUrl(token, photoId) {
  const response = await fetch(`/api/photos/${encodeURIComponent(photoId)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) throw await refusal(response);
  return URL.createObjectURL(await response.blob());
}
