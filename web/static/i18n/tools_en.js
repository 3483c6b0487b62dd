// English strings of the in-call tools (photos, chat, screen share). Keep keys in step with tools_zh.js.
export default {
  "tools.photo.title": "Photos",
  "tools.photo.document": "Photograph a document",
  "tools.photo.send": "Send a photo",
  "tools.photo.sending": "Sending the photo… {percent}%",
  "tools.photo.sent": "Photo sent.",
  "tools.photo.failed": "The photo could not be sent: {message}",
  "tools.photo.countdown": "The doctor is taking a photo in {n}…",
  "tools.photo.cheese": "Hold still!",

  "tools.gallery.title": "Photos",
  "tools.gallery.take": "Take photo",
  "tools.gallery.requested": "Asked the kiosk for a photo.",
  "tools.gallery.arrived": "New photo ({width} × {height}).",
  "tools.gallery.compare": "Earlier visits",
  "tools.gallery.no_history": "No photos from earlier visits.",
  "tools.gallery.photo_alt": "Photo {when}",
  "tools.gallery.attach": "Attach to report",
  "tools.gallery.side_by_side": "Compare",
  "tools.viewer.zoom_in": "Zoom in",
  "tools.viewer.zoom_out": "Zoom out",
  "tools.viewer.close": "Close",

  "tools.chat.title": "Messages",
  "tools.chat.write": "Write a message",
  "tools.chat.send": "Post",
  "tools.chat.me": "Me",
  "tools.chat.failed": "Not sent: {message}",

  "tools.note.label": "A note to the family waiting",
  "tools.note.placeholder": "I will be with you in five minutes",
  "tools.note.submit": "Write to the family",
  "tools.note.sent": "Note delivered to the kiosk.",

  "tools.screen.share": "Share screen",
  "tools.screen.stop": "Stop sharing",
  "tools.screen.view": "Shared screen",
};
