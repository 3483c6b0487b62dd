"""Payload models of the in-call clinical tools: photos and chat (see docs/protocol.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from signaling.care_messages import PLAIN_TEXT
from signaling.consultation_messages import ConsultationRef, Id

CHAT_TEXT_MAX = 1000

ChatText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=CHAT_TEXT_MAX, pattern=PLAIN_TEXT
    ),
]


class PhotoRequestMessage(ConsultationRef):
    participant_id: Id | None = None


class ChatSendMessage(ConsultationRef):
    text: ChatText


class ChatListMessage(ConsultationRef):
    cursor: Annotated[int, Field(ge=0)] = 0
