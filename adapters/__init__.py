"""Platform adapters: events in, replies out. No AI logic here."""
