"""A job's durable state: its records, the store Protocol and its stores, the chunk list.

Owns: the journal's record format and recovery, the `JournalStore` Protocol (async and
object-shaped, so an object store can implement it), the local file store, the chunk list
and the one atomic owner-only write. May import: `bulkops.errors`, `bulkops.model`,
`bulkops.log`. Nothing here knows about AWS calls, the engine or the CLI.
"""
