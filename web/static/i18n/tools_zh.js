// 通话中工具（照片、消息、共享屏幕）的中文文字。键与 tools_en.js 保持一致。
export default {
  "tools.photo.title": "照片",
  "tools.photo.document": "拍摄文件或处方",
  "tools.photo.send": "发送照片",
  "tools.photo.sending": "正在发送照片… {percent}%",
  "tools.photo.sent": "照片已发送。",
  "tools.photo.failed": "照片发送失败：{message}",
  "tools.photo.countdown": "医生将在 {n} 秒后拍照…",
  "tools.photo.cheese": "请保持不动！",

  "tools.gallery.title": "照片",
  "tools.gallery.take": "拍照",
  "tools.gallery.requested": "已请求终端拍照。",
  "tools.gallery.arrived": "新照片（{width} × {height}）。",
  "tools.gallery.compare": "以往就诊",
  "tools.gallery.no_history": "以往就诊没有照片。",
  "tools.gallery.photo_alt": "照片 {when}",
  "tools.gallery.attach": "附到报告",
  "tools.gallery.side_by_side": "对比",
  "tools.viewer.zoom_in": "放大",
  "tools.viewer.zoom_out": "缩小",
  "tools.viewer.close": "关闭",

  "tools.chat.title": "消息",
  "tools.chat.write": "输入消息",
  "tools.chat.send": "发送",
  "tools.chat.me": "我",
  "tools.chat.failed": "未发送：{message}",

  "tools.note.label": "给候诊家庭的留言",
  "tools.note.placeholder": "我五分钟后为您接诊",
  "tools.note.submit": "给家庭留言",
  "tools.note.sent": "留言已发送到终端。",

  "tools.screen.share": "共享屏幕",
  "tools.screen.stop": "停止共享",
  "tools.screen.view": "共享的屏幕",
};
