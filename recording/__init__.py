"""Consent-gated recording beside the media relay: tap, encrypted files, index, lifecycle."""
