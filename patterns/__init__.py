"""The AI integration patterns, one package each (a feature: `FEATURE`)."""
