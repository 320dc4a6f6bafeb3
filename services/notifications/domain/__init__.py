"""Pure rules of the notifications service: when a reminder is due, what it says."""
