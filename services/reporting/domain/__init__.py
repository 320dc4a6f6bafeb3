"""Pure reporting logic: facts per entity, per-site totals, figures and disclosure control."""
