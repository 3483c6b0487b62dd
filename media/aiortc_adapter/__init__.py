"""The only place that touches private aiortc and aioice names (listed in :mod:`.registry`).

The rest of the relay uses what this package exports: a forwarding peer connection whose
receivers hand each packet to a sink and whose senders take packets pushed in, ICE hooks, and
read-outs of aiortc objects for tests and benchmarks (:mod:`.inspection`).
"""

from media.aiortc_adapter.ice import (
    CandidatePath,
    announce_address,
    restrict_host_addresses,
    selected_path,
)
from media.aiortc_adapter.peer_connection import CodecPolicy, ForwardingPeerConnection
from media.aiortc_adapter.receiver import ForwardingReceiver, PacketSink, codec_data
from media.aiortc_adapter.sender import ForwardingSender, SenderFeedback

__all__ = [
    "CandidatePath",
    "CodecPolicy",
    "ForwardingPeerConnection",
    "ForwardingReceiver",
    "ForwardingSender",
    "PacketSink",
    "SenderFeedback",
    "announce_address",
    "codec_data",
    "restrict_host_addresses",
    "selected_path",
]
