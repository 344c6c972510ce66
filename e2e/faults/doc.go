// Package faults is cutover's randomized fault suite: each run starts a real
// controller and three agents (internal/localcluster), the agents connected
// through a TCP proxy (Shopify's toxiproxy, as a library), and deploys
// examples/hello with a SQLite database through prepare and continue, and
// sometimes a rollback, while an injector picks faults at random points from
// a seeded PRNG: kill -9 of the controller or of an agent (then a restart),
// SIGSTOP/SIGCONT of either for a few seconds, the agents' connections cut
// or slowed, an agent's disk full. After each run it checks invariants (see
// checks_test.go). A failing run prints its seed and its fault schedule:
//
//	go test ./e2e/faults -run TestFaults -args -seed 7 -runs 1
//
// replays it (the same choices; the timing of the processes is not
// replayed). `make test-faults` makes a longer run; `go test ./...` a short
// one with a fixed seed.
package faults
