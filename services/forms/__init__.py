"""The forms service: clinicians answer surveys by signed link; site teams and patients
record outcome questionnaires."""
