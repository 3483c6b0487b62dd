"""Every table of the records database, declared once (the migrations create the same schema;
``tests/records/test_migrations.py`` checks that they agree).

Columns ending in ``_sealed`` hold ``key id + nonce + AES-GCM ciphertext`` (:mod:`records.sealing`);
``*_hash`` columns hold a keyed hash for look-ups. Indexes are named for the query they serve.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from records.columns import BigId, UtcDateTime

ID = 64
SUBJECT = 128


class Table(DeclarativeBase):
    """The declarative base of the records tables."""


class AuditRow(Table):
    """One audit entry; ``consultation_id`` is empty for entries about a patient alone."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(String(ID))
    patient_id: Mapped[str | None] = mapped_column(String(ID))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(SUBJECT))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, object]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_by_consultation", "consultation_id", "id"),
        Index("ix_audit_count_by_action", "consultation_id", "action"),
        Index("ix_audit_by_patient", "patient_id", "id"),
    )


class ConsentRow(Table):
    """Evidence of a guardian's consent (to record a consultation, or to keep a patient record)
    and of its withdrawal."""

    __tablename__ = "consent_evidence"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    consultation_id: Mapped[str | None] = mapped_column(String(ID))
    patient_id: Mapped[str | None] = mapped_column(String(ID))
    purpose: Mapped[str] = mapped_column(String(64))
    given_by: Mapped[str] = mapped_column(String(SUBJECT))
    role: Mapped[str] = mapped_column(String(16))
    outlet_id: Mapped[str] = mapped_column(String(SUBJECT))
    given_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(SUBJECT))

    __table_args__ = (
        Index("ix_consent_by_consultation", "consultation_id", "id"),
        Index("ix_consent_by_patient", "patient_id", "id"),
    )


class RecordingRow(Table):
    """A recording index entry: the document ``recording.index`` reads typed, by its two ids."""

    __tablename__ = "recordings"
    recording_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(ID), index=True)
    document: Mapped[dict[str, object]] = mapped_column(JSON)


class RecordKeyRow(Table):
    """Keys the database itself needs (the look-up hash key), sealed under the keyring."""

    __tablename__ = "record_keys"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRow(Table):
    """One-time imports already done (the Redis store's audit and recording index)."""

    __tablename__ = "imports"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(UtcDateTime)
    summary: Mapped[dict[str, object]] = mapped_column(JSON)


class PatientRow(Table):
    """A child known across visits: pseudonymous id, card code (hash for look-up, sealed copy to
    print again), sealed name and guardian details, birth year and sex in the clear."""

    __tablename__ = "patients"
    patient_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    card_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    birth_year: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(12))
    guardian_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    guardian_phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    registered_outlet: Mapped[str] = mapped_column(String(SUBJECT), index=True)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)


def figure_order_index(group: str | None, duration: str) -> str:
    """The index that lists the visits in the order of a duration (``wait_s``, ``length_s``)
    within each group of a grouping (``None``, ``outlet``, ``service``, ``clinician``): SQLite
    reads the percentiles through it (:mod:`records.stats`)."""
    return f"ix_visits_{group or 'all'}_by_{duration}"


_FILTERS = ("checked_in_at", "outlet_id", "service", "clinician_id")
# The programme figures' groupings and the visit column each groups by.
GROUP_COLUMNS = {"outlet": "outlet_id", "service": "service", "clinician": "clinician_id"}
# Migration 0005: what the figures read of the visits checked in in a range.
FIGURES_READ = (
    "checked_in_at",
    "outlet_id",
    "service",
    "clinician_id",
    "patient_id",
    "outcome",
    "wait_s",
    "length_s",
    "visited_before_at",
    "seen_before_at",
    "seen_before_at_outlet",
    "seen_before_at_service",
    "seen_before_at_clinician",
)
# Migration 0005: the columns of each, by name: the group's, the duration, then what the
# figures filter on (so the index alone answers).
FIGURE_ORDER_INDEXES = {
    figure_order_index(group, duration): [
        *([] if group is None else [GROUP_COLUMNS[group]]),
        duration,
        *(c for c in _FILTERS if group is None or c != GROUP_COLUMNS[group]),
    ]
    for group in (None, *GROUP_COLUMNS)
    for duration in ("wait_s", "length_s")
}


def group_pass_index(group: str) -> str:
    """The index a grouping's pass reads (:mod:`records.stats`): its visits in (group, wait)
    order with every column the pass counts, so both engines aggregate the groups as they come
    instead of sorting the range's visits by group."""
    return f"ix_visits_{group}_for_figures"


# Migration 0006: each replaces the grouping's (group, wait) order index, whose columns it
# starts with (the ranks of the waits read it as before); the pass counts the visits checked in
# in the range, and those whose follow-up is due or report was finalised in it.
GROUP_PASS_INDEXES = {
    group_pass_index(group): [
        *FIGURE_ORDER_INDEXES[figure_order_index(group, "wait_s")],
        "length_s",
        "patient_id",
        "outcome",
        f"seen_before_at_{group}",
        "follow_up_due_s",
        "follow_up_kept",
        "report_finalised_at",
        "report_refers",
    ]
    for group in GROUP_COLUMNS
}
_REPLACED = {figure_order_index(group, "wait_s") for group in GROUP_COLUMNS}


class VisitRow(Table):
    """One consultation as the records keep it: who, what service, where, when, outcome; and
    what the programme figures read of it (:mod:`records.visit_facts` keeps those up to date)."""

    __tablename__ = "visits"
    consultation_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.patient_id"))
    service: Mapped[str] = mapped_column(String(64))
    outlet_id: Mapped[str] = mapped_column(String(SUBJECT))
    checked_in_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clinician_id: Mapped[str | None] = mapped_column(String(SUBJECT))
    clinician_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    outcome: Mapped[str | None] = mapped_column(String(32))
    # Migration 0005: the figures' facts.
    wait_s: Mapped[float | None] = mapped_column(Float)
    length_s: Mapped[float | None] = mapped_column(Float)
    follow_up_due_s: Mapped[float | None] = mapped_column(Float)
    follow_up_kept: Mapped[bool] = mapped_column(Boolean, server_default=false())
    report_finalised_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    report_refers: Mapped[bool] = mapped_column(Boolean, server_default=false())
    visited_before_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seen_before_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seen_before_at_outlet: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seen_before_at_service: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seen_before_at_clinician: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_visits_by_patient", "patient_id", "checked_in_at"),
        Index("ix_visits_by_time", "checked_in_at"),
        Index("ix_visits_by_outlet_time", "outlet_id", "checked_in_at"),
        # The programme figures (migration 0005): every column they read, so a year's scan
        # reads this index alone; and one clinician's.
        Index("ix_visits_for_figures", *FIGURES_READ),
        Index("ix_visits_by_clinician_time", "clinician_id", "checked_in_at"),
        Index("ix_visits_by_outcome", "outcome", *_FILTERS),
        Index(
            "ix_visits_by_follow_up_due",
            "follow_up_due_s",
            "outlet_id",
            "service",
            "clinician_id",
            "follow_up_kept",
        ),
        Index(
            "ix_visits_by_report_final",
            "report_finalised_at",
            "outlet_id",
            "service",
            "clinician_id",
            "report_refers",
        ),
        *(
            Index(name, *columns)
            for name, columns in FIGURE_ORDER_INDEXES.items()
            if name not in _REPLACED
        ),
        *(Index(name, *columns) for name, columns in GROUP_PASS_INDEXES.items()),
    )


class ReportRow(Table):
    """One version of a consultation's report; the sealed body holds every free-text field."""

    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(String(ID))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.patient_id"))
    service: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    follow_up_days: Mapped[int | None] = mapped_column(Integer)
    has_referral: Mapped[bool] = mapped_column(Boolean)
    shared_with_family: Mapped[bool] = mapped_column(Boolean)
    clinician_id: Mapped[str] = mapped_column(String(SUBJECT))
    clinician_name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finalised_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("consultation_id", "version", name="uq_report_version"),
        Index("ix_reports_by_patient", "patient_id", "consultation_id"),
        Index("ix_reports_by_final_time", "status", "finalised_at"),
        # A consultation's final versions (migration 0004): without it SQLite joined the
        # figures' visits to every final report through the index above.
        Index("ix_reports_by_consultation_status", "consultation_id", "status", "version"),
    )


class ShareRow(Table):
    """The family's copy of a consultation's report: a code for the link, a sealed PIN, and the
    wrong-PIN counter behind the lockout."""

    __tablename__ = "report_shares"
    share_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(ID), unique=True)
    pin_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PhotoRow(Table):
    """A still from a consultation: metadata in the clear, the image (metadata stripped) sealed
    under the keyring with the photo's id as context. ``show_family``: the clinician lets the
    family's copy of the report show it (when the report attaches it)."""

    __tablename__ = "photos"
    photo_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(ID))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.patient_id"))
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_subject: Mapped[str] = mapped_column(String(SUBJECT))
    by_role: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    image_sealed: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_photos_by_consultation", "consultation_id", "taken_at"),
        Index("ix_photos_by_patient", "patient_id", "taken_at"),
    )


class PhotoUploadRow(Table):
    """An upload under way: who may send its bytes, how many there are, how many arrived, and
    (once complete) the photo it became, so a resent last chunk gets the same answer."""

    __tablename__ = "photo_uploads"
    upload_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(ID))
    by_subject: Mapped[str] = mapped_column(String(SUBJECT))
    by_role: Mapped[str] = mapped_column(String(16))
    total_bytes: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    photo_id: Mapped[str | None] = mapped_column(String(ID))

    __table_args__ = (
        Index("ix_photo_uploads_by_consultation", "consultation_id", "expires_at"),
        Index("ix_photo_uploads_by_expiry", "expires_at"),
    )


class PhotoChunkRow(Table):
    """One received chunk of an upload, sealed (context: upload id and offset)."""

    __tablename__ = "photo_upload_chunks"
    upload_id: Mapped[str] = mapped_column(
        ForeignKey("photo_uploads.upload_id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ChatRow(Table):
    """One chat message of a consultation; ``to_subject`` is set on a message a clinician sent
    to an outlet still waiting (only that outlet received it)."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(ID), unique=True)
    consultation_id: Mapped[str] = mapped_column(String(ID))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_subject: Mapped[str] = mapped_column(String(SUBJECT))
    role: Mapped[str] = mapped_column(String(16))
    to_subject: Mapped[str | None] = mapped_column(String(SUBJECT))
    name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    text_sealed: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_chat_by_consultation", "consultation_id", "id"),)


# Bookings that hold their slot: a cancelled or missed one frees it for someone else.
ACTIVE_BOOKING = "status IN ('booked', 'checked_in')"


class ScheduleRow(Table):
    """When a clinician covers a service: weekly hours and dated exceptions (local times of the
    programme's zone, as the document of :class:`records.schedule.Schedule`), and slot length."""

    __tablename__ = "clinic_schedules"
    clinician_id: Mapped[str] = mapped_column(String(SUBJECT), primary_key=True)
    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_min: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(SUBJECT))

    __table_args__ = (Index("ix_schedules_by_service", "service"),)


class AppointmentRow(Table):
    """A booked slot. At most one active booking holds a clinician's slot start (the partial
    unique index is the exactly-once guarantee across processes, on both engines)."""

    __tablename__ = "appointments"
    appointment_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.patient_id"))
    service: Mapped[str] = mapped_column(String(64))
    outlet_id: Mapped[str] = mapped_column(String(SUBJECT))
    clinician_id: Mapped[str] = mapped_column(String(SUBJECT))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    booked_by: Mapped[str] = mapped_column(String(SUBJECT))
    booked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    follow_up_of: Mapped[str | None] = mapped_column(String(ID))
    consultation_id: Mapped[str | None] = mapped_column(String(ID))
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(
            "uq_appointments_active_slot",
            "clinician_id",
            "start_at",
            unique=True,
            sqlite_where=text(ACTIVE_BOOKING),
            postgresql_where=text(ACTIVE_BOOKING),
        ),
        Index("ix_appointments_by_time", "start_at"),
        # The programme figures (migration 0005): what they read of the bookings in a range.
        Index(
            "ix_appointments_for_figures",
            "start_at",
            "status",
            "outlet_id",
            "service",
            "clinician_id",
        ),
        Index("ix_appointments_by_outlet_time", "outlet_id", "start_at"),
        Index("ix_appointments_by_clinician_time", "clinician_id", "start_at"),
        Index("ix_appointments_by_status_time", "status", "start_at"),
        Index("ix_appointments_by_follow_up", "follow_up_of"),
        Index("ix_appointments_by_patient_time", "patient_id", "start_at"),
    )


class ReminderAttemptRow(Table):
    """One attempt to deliver an appointment reminder to the operator's webhook."""

    __tablename__ = "reminder_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    appointment_id: Mapped[str] = mapped_column(String(ID))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (Index("ix_reminder_attempts_by_appointment", "appointment_id", "id"),)
