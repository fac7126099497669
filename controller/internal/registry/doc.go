// Package registry is the name → factory map behind controller/strategy's
// strategy registry and controller's stopper registry (DESIGN.md, style rule
// 5). It is internal to controller/ so that neither package exports a
// general-purpose helper as part of its API.
package registry
