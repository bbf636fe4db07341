"""Units that exist only for the tests: a tiny pattern (`echo`) and a tiny platform
(`loopback`), each one folder, plugged in by name like the real ones."""
