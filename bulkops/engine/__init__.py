"""The engine: chunks in, calls under the rate limiter and retries, outcomes out.

Owns: the worker pool and its stop/drain, one call's retries (`retry`), per-version
verdicts (`verdicts`), the quota scopes and their adaptive rate (`limits`). It speaks to
CodeArtifact only through `bulkops.registry.Registry` and writes outcomes through an
`OutcomeWriter`. May import: `bulkops.errors`, `bulkops.model`, `bulkops.registry`,
`bulkops.log`.
"""
