// Package e2e runs the runtime exporter against the real runtime service (its binary, on real PostgreSQL) and a
// collector's exporter end built from the factories, with a file_storage persistent queue; its tests kill and
// restart both mid-stream and count the records in Postgres.
package e2e
