// Camera and microphone: open them, meter the microphone, and measure the link to the server.

const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// Below these the kiosk advises an audio-only consultation (video needs ~300 kbps each way).
export const WEAK_LINK = { rttMs: 400, kbps: 350 };

/** Open camera and microphone (or only the microphone); null when neither is available. */
export async function openMedia({ video = true } = {}) {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: AUDIO_CONSTRAINTS,
      video: video ? VIDEO_CONSTRAINTS : false,
    });
  } catch (err) {
    if (!video) throw err;
    // No camera (or refused): fall back to the microphone alone.
    return navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS, video: false });
  }
}

export function stopMedia(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/** Calls `onLevel(0..1)` with the microphone's loudness about ten times a second. */
export class LevelMeter {
  constructor(stream, onLevel) {
    this.context = new AudioContext();
    const source = this.context.createMediaStreamSource(stream);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    source.connect(this.analyser);
    const samples = new Float32Array(this.analyser.fftSize);
    this.timer = setInterval(() => {
      this.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      // Speech sits around 0.02-0.2 RMS: stretch it so a normal voice fills most of the bar.
      onLevel(Math.min(1, rms * 5));
    }, 100);
  }

  stop() {
    clearInterval(this.timer);
    this.context.close();
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timed(promiseFactory) {
  const started = performance.now();
  await promiseFactory();
  return performance.now() - started;
}

/**
 * Round trip (median of several pings) and downlink/uplink bitrate to this server.
 * Returns {rttMs, downKbps, upKbps, weak}.
 */
export async function measureLink({ pings = 5, downKib = 256, upKib = 128 } = {}) {
  const rtts = [];
  for (let i = 0; i < pings; i += 1) {
    rtts.push(await timed(() => fetch("/api/netcheck/ping", { cache: "no-store" }).then((r) => r.json())));
  }
  const rttMs = median(rtts);
  const downMs = await timed(() =>
    fetch(`/api/netcheck/download?kib=${downKib}`, { cache: "no-store" }).then((r) => r.arrayBuffer()),
  );
  const body = new Uint8Array(upKib * 1024);
  crypto.getRandomValues(body.subarray(0, 65536));
  const upMs = await timed(() =>
    fetch("/api/netcheck/upload", { method: "POST", body, cache: "no-store" }).then((r) => r.json()),
  );
  // Take out one round trip so the figure is the transfer, not the request latency.
  const kbps = (kib, ms) => (8 * kib * 1024) / 1000 / (Math.max(ms - rttMs, 1) / 1000);
  const downKbps = kbps(downKib, downMs);
  const upKbps = kbps(upKib, upMs);
  const weak = rttMs > WEAK_LINK.rttMs || downKbps < WEAK_LINK.kbps || upKbps < WEAK_LINK.kbps;
  return { rttMs, downKbps, upKbps, weak };
}
