"""The AWS side: sessions, clients and the CodeArtifact adapter behind `Registry`.

Owns: aioboto3 sessions and client settings, credential masking at the source, the
adapter that turns `Registry` calls into CodeArtifact calls and botocore errors into
bulkops errors, and the API's shapes and patterns read from botocore's service model.
May import: `bulkops.errors`, `bulkops.model`, `bulkops.registry`, `bulkops.log`.
"""
