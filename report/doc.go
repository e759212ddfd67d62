// Package report renders the results of mplock's runs: a human table with a
// plain-language verdict, JSON (one document), CSV (one row per run), and,
// for benchmarks, Go benchmark lines and charts. The machine-readable forms are
// a contract for scripts: their fields are documented here and in the README,
// and only ever added to.
package report
