// One function per request of docs/protocol.md. Each resolves to the `ok` result in the shape
// documented there, or rejects with a SignalError: a reply missing a documented field is a
// protocol fault (`bad_reply`), never something a page works around by guessing.

import { SignalError } from "./signal.js";

const CONSULTATION = ["consultation"];
const RECORDING_STATE = ["consultation_id", "active", "started_at", "recording_id"];

function shaped(what, reply, fields) {
  const missing = reply && typeof reply === "object" ? fields.filter((f) => !(f in reply)) : fields;
  if (missing.length) throw new SignalError("bad_reply", `${what}: the reply has no ${missing.join(", ")}`);
  return reply;
}

export class Api {
  constructor(signal) {
    this.signal = signal;
  }

  async _request(event, payload, fields = []) {
    return shaped(event, await this.signal.request(event, payload), fields);
  }

  // ----- consultations --------------------------------------------------------------------

  /** → {consultation_id, consultation, position, estimated_wait_s}; a registered child by
   * `patientId`, any other by the ticket `patientRef`; `appointmentId` when it was booked. */
  checkIn({ service, outletId, patientRef, patientId, guardianPresent, urgent = false, appointmentId = null }) {
    const patient = patientId ? { patient_id: patientId } : { patient_ref: patientRef };
    const booking = appointmentId ? { appointment_id: appointmentId } : {};
    return this._request(
      "consultation.check_in",
      { service, outlet_id: outletId, ...patient, guardian_present: guardianPresent, urgent, ...booking },
      ["consultation_id", "consultation", "position", "estimated_wait_s"],
    );
  }

  /** → {consultation} (ended, reason `cancelled`) */
  cancel(consultationId) {
    return this._request("consultation.cancel", { consultation_id: consultationId }, CONSULTATION);
  }

  /** → {status, services} */
  setPresence(status) {
    return this._request("presence.set", { status }, ["status", "services"]);
  }

  /** → {entries: [QueueEntry]} */
  listQueue() {
    return this._request("queue.list", {}, ["entries"]);
  }

  /** → {consultation}; `pick` takes a waiting consultation straight from the queue. */
  accept(consultationId, { pick = false } = {}) {
    return this._request("consultation.accept", { consultation_id: consultationId, pick }, CONSULTATION);
  }

  /** → {consultation_id} */
  decline(consultationId) {
    return this._request("consultation.decline", { consultation_id: consultationId }, ["consultation_id"]);
  }

  /** → {consultation, admitted, participant_id} */
  join(consultationId) {
    return this._request("consultation.join", { consultation_id: consultationId }, [
      "consultation",
      "admitted",
      "participant_id",
    ]);
  }

  /** → {consultation_id} */
  leave(consultationId) {
    return this._request("consultation.leave", { consultation_id: consultationId }, ["consultation_id"]);
  }

  /** → {consultation} */
  end(consultationId, reason) {
    return this._request("consultation.end", { consultation_id: consultationId, reason }, CONSULTATION);
  }

  /** → {invite_code, url, expires_at, guest_role} */
  invite(consultationId, guestRole) {
    return this._request("consultation.invite", { consultation_id: consultationId, guest_role: guestRole }, [
      "invite_code",
      "url",
      "expires_at",
      "guest_role",
    ]);
  }

  /** → {consultation} */
  admit(consultationId, guestId, admit) {
    return this._request(
      "consultation.admit",
      { consultation_id: consultationId, guest_id: guestId, admit },
      CONSULTATION,
    );
  }

  /** → {consultation} (waiting at the front of `service`'s queue) */
  transfer(consultationId, service) {
    return this._request("consultation.transfer", { consultation_id: consultationId, service }, CONSULTATION);
  }

  /** → {consultation_id, length} */
  saveNotes(consultationId, notes) {
    return this._request("consultation.notes", { consultation_id: consultationId, notes }, [
      "consultation_id",
      "length",
    ]);
  }

  /** → {consent: Consent | null} */
  setConsent(consultationId, given) {
    return this._request("consultation.consent", { consultation_id: consultationId, given, purpose: "recording" }, [
      "consent",
    ]);
  }

  /** → {consultation_id, events: [AuditEvent], next_cursor}: one page from `cursor` (0: the first) */
  listAudit(consultationId, cursor = 0) {
    return this._request("audit.list", { consultation_id: consultationId, cursor }, [
      "consultation_id",
      "events",
      "next_cursor",
    ]);
  }

  /** → {queues: {service: [QueueEntry]}, clinicians, active: [Consultation], store} */
  overview() {
    return this._request("admin.overview", {}, ["queues", "clinicians", "active", "store"]);
  }

  // ----- care record: patients and reports -------------------------------------------------

  /** → {patient}; `child`: {display_name, birth_year, sex, guardian_name?, guardian_phone?, record_consent} */
  registerPatient(child) {
    return this._request("patient.register", child, ["patient"]);
  }

  /** → {patient} */
  lookupPatient(cardCode) {
    return this._request("patient.lookup", { card_code: cardCode }, ["patient"]);
  }

  /** → {patient_id, visits: [{consultation_id, service, outlet_id, started_at, ended_at, clinician_name, report}]} */
  patientHistory(patientId) {
    return this._request("patient.history", { patient_id: patientId }, ["visits"]);
  }

  /** → {template: {service, fields, family_opt_in}} */
  reportTemplate(service) {
    return this._request("report.template", { service }, ["template"]);
  }

  /** → {report} (the draft) */
  saveReport(consultationId, content) {
    return this._request("report.save", { consultation_id: consultationId, ...content }, ["report"]);
  }

  /** → {report, share_code, share_pin, expires_at} */
  finaliseReport(consultationId) {
    return this._request("report.finalise", { consultation_id: consultationId }, ["report", "share_code", "share_pin"]);
  }

  /** → {report, share_code, share_pin, expires_at} (a new final version) */
  amendReport(consultationId, content, reason) {
    return this._request("report.amend", { consultation_id: consultationId, ...content, reason }, ["report", "share_code"]);
  }

  /** → {report | null, share_code?, share_pin?}: the newest version, or `version` */
  getReport(consultationId, version) {
    const payload = version ? { consultation_id: consultationId, version } : { consultation_id: consultationId };
    return this._request("report.get", payload, ["report"]);
  }

  // ----- recording (each → RecordingState) ------------------------------------------------

  startRecording(consultationId) {
    return this._request("recording.start", { consultation_id: consultationId }, RECORDING_STATE);
  }

  stopRecording(consultationId) {
    return this._request("recording.stop", { consultation_id: consultationId }, RECORDING_STATE);
  }

  recordingState(consultationId) {
    return this._request("recording.state", { consultation_id: consultationId }, RECORDING_STATE);
  }

  acknowledgeRecording(consultationId) {
    return this._request("recording.acknowledge", { consultation_id: consultationId }, RECORDING_STATE);
  }

  // ----- media (acks are `true` unless said otherwise) --------------------------------------

  /** → {sdp} (the server's answer) */
  offer(consultationId, sdp, sources) {
    return this._request("rtc.offer", { consultation_id: consultationId, sdp, sources }, ["sdp"]);
  }

  answer(consultationId, sdp) {
    return this.signal.request("rtc.answer", { consultation_id: consultationId, sdp });
  }

  candidate(consultationId, candidate) {
    return this.signal.request("rtc.candidate", { consultation_id: consultationId, candidate });
  }

  setMediaState(consultationId, source, muted) {
    return this.signal.request("rtc.media_state", { consultation_id: consultationId, source, muted });
  }

  setReceiveMode(consultationId, video) {
    return this.signal.request("rtc.receive_mode", { consultation_id: consultationId, video });
  }

  /** The browser's selected candidate pair: {candidateType, protocol, relayProtocol}. */
  reportPath(consultationId, { candidateType, protocol, relayProtocol }) {
    return this.signal.request("rtc.path", {
      consultation_id: consultationId,
      candidate_type: candidateType,
      protocol,
      relay_protocol: relayProtocol,
    });
  }
}

/** The consultations `session.ready` offers to resume: `resume` is null or {consultation, consultations}. */
export function resumable(ready) {
  return ready.resume ? shaped("session.ready resume", ready.resume, ["consultations"]).consultations : [];
}

/** POST /api/invites/{code}/redeem → {token, consultation_id, guest_id, guest_role}. */
export async function redeemInvite(code, name) {
  const response = await fetch(`/api/invites/${encodeURIComponent(code)}/redeem`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || { code: `http_${response.status}`, message: response.statusText };
    throw new SignalError(error.code, error.message);
  }
  return shaped("invite redeem", body, ["token", "consultation_id", "guest_id", "guest_role"]);
}
