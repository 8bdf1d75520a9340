"""The daemon's core: containers, exec sessions, events, restart reconciliation and wiring. No HTTP, no subprocess details."""
