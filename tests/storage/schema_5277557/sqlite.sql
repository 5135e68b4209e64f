-- The warehouse schema as commit 5277557 created it (sqlite): what `warehouse.connect` made with
-- `metadata.create_all` before the migrations (baocao.warehouse's tables and baocao.yearly's agency_scores).
-- Produced once, so that the tests need no git history:
--   mkdir /tmp/old5277557 && git archive 5277557 | tar -x -C /tmp/old5277557
--   cd /tmp/old5277557 && <worktree>/.venv/bin/python -c '
--     import sqlalchemy as sa; from sqlalchemy.dialects import sqlite
--     from baocao import warehouse, yearly  # yearly adds agency_scores to warehouse.metadata
--     for t in warehouse.metadata.sorted_tables:
--         print(str(sa.schema.CreateTable(t).compile(dialect=sqlite.dialect())).strip() + ";")
--         for i in sorted(t.indexes, key=lambda i: i.name):
--             print(str(sa.schema.CreateIndex(i).compile(dialect=sqlite.dialect())).strip() + ";")'
-- Statements end with ";" at the end of a line; lines starting with "--" are comments.

CREATE TABLE agency_scores (
	report_type VARCHAR(32) NOT NULL,
	period_id VARCHAR(16) NOT NULL,
	regime VARCHAR(16) NOT NULL,
	code VARCHAR(32) NOT NULL,
	block VARCHAR(16) NOT NULL,
	name VARCHAR(500) NOT NULL,
	infrastructure NUMERIC(12, 3),
	human_resources NUMERIC(12, 3),
	applications NUMERIC(12, 3),
	policy NUMERIC(12, 3),
	readiness_score NUMERIC(12, 3),
	level VARCHAR(16),
	source VARCHAR(100) NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (report_type, period_id, regime, code)
);
CREATE TABLE batches (
	batch_id VARCHAR(64) NOT NULL,
	source VARCHAR(100) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	state VARCHAR(16) NOT NULL,
	window_from DATETIME,
	window_to DATETIME NOT NULL,
	pulled INTEGER NOT NULL,
	staged INTEGER NOT NULL,
	quarantined INTEGER NOT NULL,
	merged INTEGER NOT NULL,
	started_at DATETIME NOT NULL,
	finished_at DATETIME,
	PRIMARY KEY (batch_id)
);
CREATE TABLE catalogue_imports (
	source VARCHAR(100) NOT NULL,
	imported_at DATETIME NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	entries INTEGER NOT NULL,
	PRIMARY KEY (source, imported_at)
);
CREATE TABLE dossiers (
	code VARCHAR(100) NOT NULL,
	agency_code VARCHAR(32),
	procedure_code VARCHAR(64),
	field_code VARCHAR(64),
	field_name VARCHAR(500),
	channel VARCHAR(32),
	status VARCHAR(32),
	received_at DATETIME,
	due_at DATETIME,
	finished_at DATETIME,
	fee_required BOOLEAN,
	paid_online BOOLEAN,
	digitized BOOLEAN,
	result_electronic BOOLEAN,
	rating INTEGER,
	updated_at DATETIME,
	deleted BOOLEAN NOT NULL,
	source VARCHAR(100) NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (code)
);
CREATE INDEX ix_dossiers_received ON dossiers (received_at);
CREATE TABLE petitions (
	code VARCHAR(100) NOT NULL,
	agency_code VARCHAR(32) NOT NULL,
	received_at DATETIME NOT NULL,
	due_at DATETIME NOT NULL,
	answered_at DATETIME,
	satisfied BOOLEAN,
	source VARCHAR(100) NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (code)
);
CREATE INDEX ix_petitions_due ON petitions (due_at);
CREATE TABLE procedure_history (
	code VARCHAR(64) NOT NULL,
	agency_code VARCHAR(32) NOT NULL,
	name VARCHAR(1000),
	field_code VARCHAR(64),
	online_type VARCHAR(16),
	fee_required BOOLEAN,
	online_payment BOOLEAN,
	published_on_time BOOLEAN,
	publication_updated_on_time BOOLEAN,
	content_complete BOOLEAN,
	source VARCHAR(100),
	batch_id VARCHAR(64),
	valid_from DATETIME NOT NULL,
	valid_to DATETIME,
	PRIMARY KEY (code, agency_code, valid_from)
);
CREATE TABLE procedures (
	code VARCHAR(64) NOT NULL,
	agency_code VARCHAR(32) NOT NULL,
	name VARCHAR(1000),
	field_code VARCHAR(64),
	online_type VARCHAR(16) NOT NULL,
	fee_required BOOLEAN,
	online_payment BOOLEAN,
	published_on_time BOOLEAN,
	publication_updated_on_time BOOLEAN,
	content_complete BOOLEAN,
	source VARCHAR(100) NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (code, agency_code)
);
CREATE TABLE quarantine (
	id INTEGER NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	source VARCHAR(100) NOT NULL,
	stage VARCHAR(16) NOT NULL,
	record_key VARCHAR(100) NOT NULL,
	rule VARCHAR(200) NOT NULL,
	detail VARCHAR(1000) NOT NULL,
	at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_quarantine_batch_id ON quarantine (batch_id);
CREATE TABLE report_tthc_rows (
	period_id VARCHAR(16) NOT NULL,
	regime VARCHAR(16) NOT NULL,
	agency VARCHAR(32) NOT NULL,
	field VARCHAR(64) NOT NULL,
	level VARCHAR(16) NOT NULL,
	field_name VARCHAR(500) NOT NULL,
	received_total INTEGER NOT NULL,
	received_online INTEGER NOT NULL,
	received_direct INTEGER NOT NULL,
	carried_over INTEGER NOT NULL,
	resolved_total INTEGER NOT NULL,
	resolved_early INTEGER NOT NULL,
	resolved_on_time INTEGER NOT NULL,
	resolved_late INTEGER NOT NULL,
	in_progress_total INTEGER NOT NULL,
	in_progress_within INTEGER NOT NULL,
	in_progress_overdue INTEGER NOT NULL,
	on_time_rate NUMERIC(5, 2),
	computed_at DATETIME NOT NULL,
	PRIMARY KEY (period_id, regime, agency, field)
);
CREATE TABLE source_state (
	source VARCHAR(100) NOT NULL,
	watermark DATETIME NOT NULL,
	batch_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (source)
);
CREATE TABLE submissions (
	id INTEGER NOT NULL,
	report_type VARCHAR(32) NOT NULL,
	period_id VARCHAR(16) NOT NULL,
	regime VARCHAR(16) NOT NULL,
	sender VARCHAR(32) NOT NULL,
	version INTEGER NOT NULL,
	live_slot VARCHAR(200),
	idempotency_key VARCHAR(128) NOT NULL,
	submission_id VARCHAR(64) NOT NULL,
	format VARCHAR(8) NOT NULL,
	content_type VARCHAR(64) NOT NULL,
	payload BLOB NOT NULL,
	signature TEXT,
	sha256 VARCHAR(64) NOT NULL,
	supersedes VARCHAR(128),
	state VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	last_status INTEGER,
	last_error TEXT,
	receipt_id VARCHAR(128),
	receipt TEXT,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (live_slot),
	UNIQUE (idempotency_key)
);
CREATE TABLE submission_attempts (
	id INTEGER NOT NULL,
	submission INTEGER NOT NULL,
	at DATETIME NOT NULL,
	status INTEGER,
	outcome VARCHAR(64) NOT NULL,
	detail TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(submission) REFERENCES submissions (id)
);
CREATE INDEX ix_submission_attempts_submission ON submission_attempts (submission);
