// Package worker is what runs inside an mplock worker process: the bank loop
// (this file set), and the roles of the other coordinated runs. A worker is
// entered only through the hidden `mplock worker <role>` command, started by
// a coordinator; the types here (specs on the command line, reports on a
// pipe) are the contract between the two.
package worker
