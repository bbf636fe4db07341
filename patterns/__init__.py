"""The AI integration patterns, one module each. No platform logic here."""
