"""Warm-up emails: templates (render), message bytes (message), unsubscribe tokens (tokens),
send pacing (pacing) and a local SMTP sink for rehearsals and tests (sink)."""
