package fleetsim

import "runtime/debug"

// RaiseThreadLimit raises the Go runtime's limit on OS threads (10,000 by
// default) for a process that runs agents simulated agents: each blocks
// in file system calls of its own (its store's writes and fsyncs, the
// files it stages), and on a loaded machine the runtime starts a thread
// for each call that outlasts its time slice. At 5,000 agents the default
// limit was hit in stage 1 ("program exceeds 10000-thread limit"); three
// per agent leaves room. It never lowers the limit.
func RaiseThreadLimit(agents int) {
	if want := 3 * agents; want > 10000 {
		debug.SetMaxThreads(want)
	}
}
