"""The AWS side: sessions, clients and the CodeArtifact adapter behind `Registry`.

Owns: aioboto3 sessions and client settings, credential masking at the source (`session`),
the adapter that turns `Registry` and `Catalog` calls into CodeArtifact calls (`adapter`),
the one translation of botocore errors into bulkops errors (`errors`), the API's shapes
and patterns read from botocore's service model (`shapes`), and the journal store on S3
(`s3store`: a lease fenced by conditional writes, immutable record objects, compaction;
`s3url`, `s3lease`, `s3calls`, `s3objects`, `s3client`, and `s3lazy`, the store as
`open_store` makes it). May import: `bulkops.errors`, `bulkops.model`, `bulkops.registry`,
`bulkops.log`, and the journal store Protocol.
"""
