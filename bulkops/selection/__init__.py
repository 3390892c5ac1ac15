"""Choosing versions from the live repository: discovery, rules, version orders, plan files.

Owns: listing a repository's packages and versions, publish-time probing, the select
rules and their TOML files, the version orders (semver, PEP 440, Maven...) and ranges,
and writing a plan file. May import: `bulkops.errors`, `bulkops.model`,
`bulkops.registry`, `bulkops.engine` (its call retries and quota scopes), `bulkops.jobs.rails`.
"""
