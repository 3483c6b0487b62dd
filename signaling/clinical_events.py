"""The ``photo.*`` and ``chat.*`` events: validated, handed to the photo and chat services."""

from __future__ import annotations

from typing import Any

from records.chat_service import ChatService
from records.photo_service import PhotoService
from rooms.roles import CLINICIAN_ROLES, Role
from signaling.clinical_messages import ChatListMessage, ChatSendMessage, PhotoRequestMessage
from signaling.consultation_messages import ConsultationRef
from signaling.dispatch import Ack, Caller, EventSpec, event

_IN_CALL = [Role.OUTLET, *CLINICIAN_ROLES, Role.GUEST]


class ClinicalEvents:
    """Socket.IO handlers of photos and chat."""

    def __init__(self, photos: PhotoService, chat: ChatService) -> None:
        self._photos = photos
        self._chat = chat

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("photo.request", PhotoRequestMessage, CLINICIAN_ROLES, self.request_photo),
            event(
                "photo.list",
                ConsultationRef,
                [Role.OUTLET, *CLINICIAN_ROLES, Role.ADMIN],
                self.list_photos,
            ),
            event("chat.send", ChatSendMessage, _IN_CALL, self.send),
            event("chat.list", ChatListMessage, [*_IN_CALL, Role.ADMIN], self.list_chat),
        ]

    async def request_photo(self, caller: Caller, msg: PhotoRequestMessage) -> Ack:
        target = await self._photos.request(
            caller.identity, msg.consultation_id, msg.participant_id
        )
        return {"ok": {"consultation_id": msg.consultation_id, "participant_id": target}}

    async def list_photos(self, caller: Caller, msg: ConsultationRef) -> Ack:
        photos = await self._photos.photos(caller.identity, msg.consultation_id)
        return {
            "ok": {
                "consultation_id": msg.consultation_id,
                "photos": [p.to_wire() for p in photos],
            }
        }

    async def send(self, caller: Caller, msg: ChatSendMessage) -> Ack:
        message = await self._chat.send(caller.identity, msg.consultation_id, msg.text)
        return {"ok": {"message": message.to_wire()}}

    async def list_chat(self, caller: Caller, msg: ChatListMessage) -> Ack:
        messages, cursor = await self._chat.page(caller.identity, msg.consultation_id, msg.cursor)
        return {
            "ok": {
                "consultation_id": msg.consultation_id,
                "messages": [m.to_wire() for m in messages],
                "cursor": cursor,
            }
        }
