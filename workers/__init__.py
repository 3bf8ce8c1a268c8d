"""The Celery runtime: app, task base, relay, beat schedule."""
