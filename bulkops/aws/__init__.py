"""The AWS side: sessions, clients and the CodeArtifact adapter behind `Registry`.

Owns: aioboto3 sessions and client settings, credential masking at the source (`session`),
the adapter that turns `Registry` and `Catalog` calls into CodeArtifact calls (`adapter`),
the one translation of botocore errors into bulkops errors (`errors`), and the API's
shapes and patterns read from botocore's service model (`shapes`).
May import: `bulkops.errors`, `bulkops.model`, `bulkops.registry`, `bulkops.log`.
"""
