// Package worker will host the loop of ranks ≥ 1: receive a trial, train the
// child network with package train, send the result back. A panic, NaN or
// timeout in a child becomes a failed result, and the worker goes on. It is
// filled by the distributed runtime; nothing here yet.
package worker
