"""The Socket.IO wire protocol: authentication, event validation, dispatch to rooms and media."""
