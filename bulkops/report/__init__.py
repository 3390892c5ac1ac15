"""What a job did: records merged per package into the API's shapes, rendered, undone.

Owns: the merge of journal records into per-package outcomes, the renderings (table,
JSON, JSONL, CSV, a manifest of failures) and the undo plan of a set-status job.
May import: `bulkops.errors`, `bulkops.model`, `bulkops.journal`, `bulkops.manifest`.
"""
