"""WebRTC media on this node: the forwarding SFU and its packet taps."""
