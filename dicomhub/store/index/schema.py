"""The index schema, written once for every SQL dialect dicomhub supports.

The layout follows what the REST API and search need: one row per resource with
its parent link, the main DICOM tags as (resource, tag) rows with a normalized copy
for case-insensitive matching, and per-resource metadata, attachments and labels.
Counters for ``/statistics`` live in ``counters`` so they never need a table scan.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

SCHEMA_VERSION = 1

metadata = MetaData()

resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("level", SmallInteger, nullable=False),
    Column("parent_id", Integer, ForeignKey("resources.id", ondelete="CASCADE")),
    # patients: whether recycling may delete it, and the order in which it may.
    Column("protected", Boolean, nullable=False, default=False),
    Column("recycle_seq", BigInteger),
    # patients, studies, series: not stable until StableAge seconds without news.
    Column("stable", Boolean, nullable=False, default=True),
    Column("last_update", BigInteger),  # unix time, for the stability checker
)
Index("ix_resources_parent", resources.c.parent_id)
Index("ix_resources_level_id", resources.c.level, resources.c.id)
# Partial indexes: the recycling order is that of patients, and the stability checker
# looks for the few resources still receiving instances. Instance rows (nearly all)
# stay out of both, so storing an instance adds no entry to them, and touching its
# parents moves entries in a small index: with four processes storing, 2-7 % less CPU
# per index transaction (fewer pages to read again after another's commit), and two
# fewer index entries per instance on disk.
# The queries spell the same conditions (``level = 0``, ``stable = false``), which is
# what lets SQLite's planner use these indexes.
PATIENT_ROWS = "level = 0"
UNSTABLE_ROWS = "stable = false"
Index(
    "ix_resources_patient_recycling",
    resources.c.protected,
    resources.c.recycle_seq,
    sqlite_where=text(PATIENT_ROWS),
    postgresql_where=text(PATIENT_ROWS),
)
Index(
    "ix_resources_unstable_since",
    resources.c.last_update,
    sqlite_where=text(UNSTABLE_ROWS),
    postgresql_where=text(UNSTABLE_ROWS),
)
#: Indexes of earlier versions, dropped when an index is opened.
RETIRED_INDEXES = ("ix_resources_recycle", "ix_resources_unstable")

main_tags = Table(
    "main_tags",
    metadata,
    Column(
        "resource_id", Integer, ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("tag", Integer, primary_key=True),
    Column("value", Text, nullable=False),
    Column("norm", Text, nullable=False),  # uppercased, for case-insensitive matching
    sqlite_with_rowid=False,
)
Index("ix_main_tags_lookup", main_tags.c.tag, main_tags.c.norm)

resource_metadata = Table(
    "metadata",
    metadata,
    Column(
        "resource_id", Integer, ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("type", Integer, primary_key=True),
    Column("value", Text, nullable=False),
    Column("revision", Integer, nullable=False, default=0),
    sqlite_with_rowid=False,
)

attachments = Table(
    "attachments",
    metadata,
    Column(
        "resource_id", Integer, ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("content_type", Integer, primary_key=True),
    Column("uuid", String(64), nullable=False),
    Column("compressed_size", BigInteger, nullable=False),
    Column("uncompressed_size", BigInteger, nullable=False),
    Column("compression", SmallInteger, nullable=False),
    Column("uncompressed_md5", String(32), nullable=False),
    Column("compressed_md5", String(32), nullable=False),
    Column("revision", Integer, nullable=False, default=0),
    sqlite_with_rowid=False,
)
Index("ix_attachments_uuid", attachments.c.uuid)

labels = Table(
    "labels",
    metadata,
    Column(
        "resource_id", Integer, ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("label", String(64), primary_key=True),
    sqlite_with_rowid=False,
)
Index("ix_labels_label", labels.c.label)

changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("change_type", Integer, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("public_id", String(64), nullable=False),
    Column("date", String(16), nullable=False),
    # never reuse a sequence number, even after DELETE /changes
    sqlite_autoincrement=True,
)

exports = Table(
    "exports",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("level", SmallInteger, nullable=False),
    Column("public_id", String(64), nullable=False),
    Column("remote_modality", Text, nullable=False),
    Column("patient_id", Text, nullable=False),
    Column("study_uid", Text, nullable=False),
    Column("series_uid", Text, nullable=False),
    Column("sop_uid", Text, nullable=False),
    Column("date", String(16), nullable=False),
    sqlite_autoincrement=True,
)

properties = Table(
    "properties",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

COUNTER_NAMES = (
    "patients",
    "studies",
    "series",
    "instances",
    "compressed_size",
    "uncompressed_size",
)

# Jobs live in the index, not in a process: any HTTP worker answers for any job, the
# primary worker's runner claims Pending rows, and the rows survive a restart.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # submission order, ties on priority
    Column("type", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("progress", Integer, nullable=False, default=0),
    Column("creation_time", String(32), nullable=False),
    Column("completion_time", String(32)),
    Column("runtime", BigInteger, nullable=False, default=0),  # milliseconds spent running
    Column("error_code", Integer, nullable=False, default=0),
    Column("error_details", Text, nullable=False, default=""),
    Column("request", String(16)),  # "cancel" or "pause", asked of the runner
    Column("user_data", Text),  # JSON
    Column("parameters", Text, nullable=False),  # JSON, what a restart needs
    Column("content", Text, nullable=False),  # JSON, the "Content" of GET /jobs/{id}
    Column("outputs", Text, nullable=False),  # JSON {key: {"path", "mime", "filename"}}
)
Index("ix_jobs_state", jobs.c.state, jobs.c.priority, jobs.c.seq)

# The job events (submitted, success, failure) of every worker, in one order: the
# scripts' job callbacks run in the primary worker, which follows this table
# (``core.change_feed``). As in Orthanc, job events are not in ``/changes``. Only
# the newest rows are kept (``IndexSession.log_job_events``). A table added after the
# first release: ``create_all`` adds it to an existing index.
job_events = Table(
    "job_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("change_type", Integer, nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("date", String(16), nullable=False),
    # never reuse a sequence number, so that a follower's cursor stays valid
    sqlite_autoincrement=True,
)
