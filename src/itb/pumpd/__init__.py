"""The pump as a running process: its state directory, clock, telemetry handler and server.

An adapter around the pure core (``itb.pump``, ``itb.telemetry``): this package does the disk,
the clock and the network. See docs/pump-process.md.
"""
