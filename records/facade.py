"""``Records``: the records database opened, migrated and split into one facade per aggregate."""

from __future__ import annotations

import logging
import secrets

from recording.keys import Keyring
from records.appointments import AppointmentRecords
from records.audit_trail import SqlAuditTrail
from records.chat import ChatRecords
from records.consents import ConsentRecords
from records.database import RecordsDatabase, redacted
from records.patients import PatientRecords
from records.photos import PhotoRecords
from records.recording_index import SqlRecordingIndex
from records.reports import ReportRecords
from records.schedule import ScheduleRecords
from records.sealing import LOOKUP_KEY_BYTES, Sealer, open_bytes, seal_bytes
from records.shares import ReportShares, ShareRules
from records.stats import ProgrammeStats
from records.tables import RecordKeyRow
from records.visits import VisitRecords

logger = logging.getLogger(__name__)

_LOOKUP_KEY = "lookup"
_LOOKUP_CONTEXT = b"teleconsult:record_keys:lookup"


class Records:
    """Every facade over one database; :meth:`open` before use, :meth:`close` after."""

    def __init__(self, url: str, keyring: Keyring, share_rules: ShareRules) -> None:
        self.database = RecordsDatabase(url)
        self.keyring = keyring
        self.sealer = Sealer(keyring)
        self.audit = SqlAuditTrail(self.database)
        self.recordings = SqlRecordingIndex(self.database)
        self.consents = ConsentRecords(self.database)
        self.patients = PatientRecords(self.database, self.sealer)
        self.visits = VisitRecords(self.database, self.sealer)
        self.reports = ReportRecords(self.database, self.sealer)
        self.shares = ReportShares(self.database, self.sealer, share_rules)
        self.photos = PhotoRecords(self.database, self.sealer)
        self.chat = ChatRecords(self.database, self.sealer)
        self.schedule = ScheduleRecords(self.database)
        self.appointments = AppointmentRecords(self.database)
        self.stats = ProgrammeStats(self.database)

    async def open(self) -> None:
        """Migrate to the newest schema and load (or, the first time, make) the look-up key."""
        await self.database.upgrade()
        self.sealer.set_lookup_key(await self._lookup_key())
        logger.info(
            "records database ready url=%s revision=%s",
            redacted(self.database.url),
            await self.database.revision(),
        )

    async def close(self) -> None:
        await self.database.close()

    async def _lookup_key(self) -> bytes:
        async with self.database.transaction() as session:
            await self.database.serialise(session, "record_keys")
            row = await session.get(RecordKeyRow, _LOOKUP_KEY)
            if row is None:
                key = secrets.token_bytes(LOOKUP_KEY_BYTES)
                session.add(
                    RecordKeyRow(
                        name=_LOOKUP_KEY, sealed=seal_bytes(self.keyring, key, _LOOKUP_CONTEXT)
                    )
                )
                return key
            return open_bytes(self.keyring, row.sealed, _LOOKUP_CONTEXT)
