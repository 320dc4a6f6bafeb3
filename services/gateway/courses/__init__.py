"""The gateway's course-platform part: the course platform's CSV exports
(`ibest import futurelearn`) and xAPI statements (`POST /xapi/statements`) become
`clinician.enrolled`, `module.started` and `module.completed`, through one learner mapping,
the catalogue's step and activity maps and one import ledger (docs/course-platform.md)."""
