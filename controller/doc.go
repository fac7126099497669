// Package controller will host the rank-0 search loop: a Strategy (a pure
// state machine that proposes trials and observes their results), the
// transport to the workers and the journal. It is filled by the distributed
// runtime; nothing here yet.
package controller
