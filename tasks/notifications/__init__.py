"""Notifications: email, signed webhooks and SMS, with an auditable delivery log."""
