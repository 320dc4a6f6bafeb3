"""Pure rules of the forms service (shared/ and the standard library only)."""
