"""The words of a reminder's and a follow-up item's life (stored as they are)."""

from __future__ import annotations

# Reminders: pending -> sending (claimed) -> sent | failed | cancelled (or back to pending).
PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
FINISHED = (SENT, FAILED)  # published as notification.sent / notification.failed
UNRESOLVED = (PENDING, SENDING)
# Follow-up items: pending -> queued (in a digest) -> notified | failed | cancelled.
QUEUED, NOTIFIED = "queued", "notified"
