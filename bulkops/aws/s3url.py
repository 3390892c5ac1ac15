"""`s3://BUCKET/PREFIX` checkpoint URLs: parsing, validation, the endpoint, and the key layout.

A job's objects live under `PREFIX/` (see `bulkops.aws.s3store` for what each one is):

    PREFIX/journal/lease                        who owns the journal, until when, at which epoch
    PREFIX/journal/snapshot/EEEEEEEEEE          every line of the epochs before E (header first)
    PREFIX/journal/records/EEEEEEEEEE/SSSSSSSSSSSS   a batch of lines appended at epoch E
    PREFIX/journal/folds/EEEEEEEEEE/SSSSSSSSSSSS     epoch E's records up to S, in one object
    PREFIX/NAME                                 a sibling object ("chunks", "delete.jsonl"...)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bulkops.errors import UsageError

# S3's general purpose bucket naming rules (3-63 characters, lowercase, digits, '.', '-')
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
_SEGMENT_BAD = re.compile(r"[\x00-\x1f\x7f\\{}^%`\[\]\"<>~#|]")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
EPOCH_DIGITS, SEQ_DIGITS = 10, 12


@dataclass(frozen=True, slots=True)
class S3Url:
    """A checkpoint location: a bucket and a key prefix (no leading or trailing '/')."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, name: str) -> str:
        """The key of a sibling object: `PREFIX/NAME`."""
        return f"{self.prefix}/{check_name(name)}"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def base(self) -> str:
        """Every key of the job starts with this."""
        return f"{self.prefix}/"

    @property
    def journal(self) -> str:
        return f"{self.prefix}/journal/"

    @property
    def lease_key(self) -> str:
        return f"{self.journal}lease"

    def snapshot_key(self, epoch: int) -> str:
        return f"{self.journal}snapshot/{epoch:0{EPOCH_DIGITS}d}"

    def records_prefix(self, epoch: int) -> str:
        return f"{self.journal}records/{epoch:0{EPOCH_DIGITS}d}/"

    def record_key(self, epoch: int, seq: int) -> str:
        return f"{self.records_prefix(epoch)}{seq:0{SEQ_DIGITS}d}"

    def fold_key(self, epoch: int, seq: int) -> str:
        return f"{self.journal}folds/{epoch:0{EPOCH_DIGITS}d}/{seq:0{SEQ_DIGITS}d}"


def is_s3_url(text: str) -> bool:
    return text.startswith("s3://")


def parse_s3_url(text: str) -> S3Url:
    """`s3://BUCKET/PREFIX[/]` as an `S3Url`; UsageError (exit 2) naming what is wrong."""
    if not is_s3_url(text):
        raise UsageError(f"{text!r} is not an s3:// URL (s3://BUCKET/PREFIX)")
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket):
        raise UsageError(
            f"{text}: {bucket!r} is not a valid S3 bucket name (3-63 characters: lowercase "
            "letters, digits, '.' and '-', starting and ending with a letter or digit)"
        )
    prefix = prefix.strip("/")
    if not prefix:
        raise UsageError(f"{text}: give a key prefix for the job, e.g. s3://{bucket}/jobs/archive")
    segments = prefix.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or _SEGMENT_BAD.search(segment):
            raise UsageError(
                f"{text}: the prefix segment {segment!r} is not allowed (empty, '.', '..', "
                "or a control or unsafe character)"
            )
    if len(prefix.encode()) > 700:  # room under S3's 1024-byte key limit for our own names
        raise UsageError(f"{text}: the prefix is longer than 700 bytes")
    if "journal" in segments:
        raise UsageError(f"{text}: 'journal' is the store's own name; choose another prefix")
    return S3Url(bucket, prefix)


def check_name(name: str) -> str:
    """A sibling object's short name: one key segment, never the store's own 'journal'."""
    if not _NAME.fullmatch(name) or name == "journal":
        raise ValueError(f"{name!r} is not a sibling object name")
    return name


def resolve_endpoint(explicit: str | None) -> str | None:
    """The S3 endpoint as the AWS CLI picks it: given, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL."""
    if explicit:
        return explicit
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if value := os.environ.get(name):
            return value
    return None
