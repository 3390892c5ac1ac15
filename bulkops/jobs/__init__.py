"""A job from start to finish: start, resume, guarded runs, safe delete, supervision.

Owns: starting a job (checks, chunk list, journal, engine run), resuming it, the safety
rails around a run, both phases of a safe delete, signal handling and progress, and the
demo. May import every package below it: `bulkops.manifest`, `bulkops.journal`,
`bulkops.engine`, `bulkops.aws`, `bulkops.report`, `bulkops.selection`. Never `bulkops.cli`.
"""
