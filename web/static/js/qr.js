// QR codes drawn as SVG (crisp on screen and paper) from the qrcode-generator npm package, and
// read from camera frames by the jsqr package; both are served from web/node_modules (/vendor).

const MAKER_URL = "/vendor/qrcode/qrcode.mjs";
const READER_URL = "/vendor/jsqr/jsQR.js";
const SVG = "http://www.w3.org/2000/svg";
const QUIET_ZONE = 4;

let reader = null;

/** An <svg> of `text` as a QR code (error correction M), `label` as its accessible name. */
export async function qrSvg(text, label) {
  const { qrcode } = await import(MAKER_URL);
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  const count = code.getModuleCount();
  const size = count + 2 * QUIET_ZONE;
  let path = "";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (code.isDark(row, col)) path += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.classList.add("qr");
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#fff");
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", path);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}

/** jsQR (a classic script that sets `self.jsQR`), loaded once. */
function loadReader() {
  if (!reader) {
    reader = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = READER_URL;
      script.onload = () => (self.jsQR ? resolve(self.jsQR) : reject(new Error("jsQR missing")));
      script.onerror = () => reject(new Error("the QR reader is not installed on the server"));
      document.head.append(script);
    });
    reader.catch(() => (reader = null));
  }
  return reader;
}

/**
 * Read QR codes from `stream`'s video into `video` until `accept(text)` returns true or
 * `stop()` is called; a few frames a second is plenty for a card held up to the camera.
 */
export async function scanQr(video, stream, accept, { intervalMs = 200 } = {}) {
  const jsQR = await loadReader();
  video.srcObject = stream;
  await video.play().catch(() => {});
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let timer = null;
  const stop = () => {
    clearInterval(timer);
    video.srcObject = null;
  };
  timer = setInterval(() => {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return;
    canvas.width = width;
    canvas.height = height;
    context.drawImage(video, 0, 0, width, height);
    const found = jsQR(context.getImageData(0, 0, width, height).data, width, height, {
      inversionAttempts: "dontInvert",
    });
    if (found && found.data && accept(found.data)) stop();
  }, intervalMs);
  return stop;
}
