// Package e2e holds the end-to-end tests: they build the real binaries
// (cutover-controller, cutover-agent, cutoverctl, cutover-demo) with the
// race detector, start a controller and agents on loopback ports in a
// temporary directory (see internal/localcluster), deploy examples/hello through the
// public AdminService and the real cutoverctl, and check what the agents
// did on disk and what the apps answer over HTTP. TestDemo runs the demo as
// make demo does.
//
// Run them with go test ./e2e/ (skipped with -short).
package e2e
