"""Platform adapters, one package each (a platform: `PLATFORM`): events in, replies out.
No AI logic here."""
