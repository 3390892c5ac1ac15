"""The job's input: manifest rows, manifest files, their validation and chunking.

Owns: the manifest formats (JSON Lines, CSV), row validation against the API's own
patterns, the one scan that validates a manifest and plans its chunks, and the dry-run
estimate. May import: `bulkops.errors`, `bulkops.model`, `bulkops.aws.shapes` (the API's
patterns) and `bulkops.journal` (a scan writes the chunk list through the store).
"""
