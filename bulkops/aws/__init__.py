"""The AWS side: sessions, clients and the CodeArtifact adapter behind `Registry`.

Owns: aioboto3 sessions and client settings, credential masking at the source, the
adapter that turns `Registry` calls into CodeArtifact calls and botocore errors into
bulkops errors, the API's shapes and patterns read from botocore's service model, and
the journal store on S3 (`s3store`: a lease fenced by conditional writes, immutable
record objects, compaction; `s3url`, `s3lease`, `s3calls`, `s3objects`, `s3client`).
May import: `bulkops.errors`, `bulkops.model`, `bulkops.registry`, `bulkops.log`, and the
journal store Protocol.
"""
