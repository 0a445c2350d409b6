"""The programmer's side of the pump link, with its I/O: TCP and in-memory transports, key files
on disk, and the client facade the CLI and the clinic drive. The pure protocol (codec, session,
endpoints) stays in :mod:`itb.telemetry`; this package only moves bytes and files around it."""
