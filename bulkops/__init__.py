"""bulkops: bulk lifecycle operations on AWS CodeArtifact package versions."""

__version__ = "0.1.0"
