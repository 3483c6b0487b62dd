"""The consultation domain: check-in, queues, presence, pairing, rooms, invites, consent, audit."""
