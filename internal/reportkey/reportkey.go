// Package reportkey names where a connection's verification report is kept
// (pgconn.PgConn.CustomData), shared by the pipeline that attaches it and
// package verify that reads it.
package reportkey

// Key is the CustomData key of the verify.Report.
const Key = "pgsecure.verify.report"
