// Package analyze reads a run's event log (package journal) and turns it
// into a terminal summary, a trial table (CSV, Parquet), statistics of the
// decisions that made networks good, the next-best distinct architectures,
// and a self-contained HTML report with plots. It reads only the log and
// the architectures in it (journal, arch), never the runtime, so a run
// copied off the cluster can be analysed without MPI or data sets.
package analyze
