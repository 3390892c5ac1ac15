"""A job's durable state: its records, the store Protocol and its stores, the chunk list.

Owns: the journal's record format and recovery (`records`, `journal`), the `JournalStore`
Protocol (`store`: async and object-shaped, so an object store can implement it), the
local file store (`local`), the in-memory store (`memory`), `open_store` (`location`: the
one place a store is made from a location), the chunk list (`chunklist`) and the one
atomic owner-only write (`atomic`). May import: `bulkops.errors`, `bulkops.model`,
`bulkops.log`; and `open_store` hands an `s3://` location to the S3 store in
`bulkops.aws` (imported only then), the one place this package reaches past itself.
Nothing here knows about CodeArtifact calls, the engine or the CLI.
"""
