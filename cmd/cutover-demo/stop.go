package main

// This file stops what the demo started, and removes its directory.

import (
	"fmt"
	"os"

	"github.com/cutover-dev/cutover/internal/localcluster"
)

// cleanup stops every process, removes the temporary directory (unless
// -keep), and on failure shows the end of each log first.
func (d *demo) cleanup(errp *error) {
	if d.cluster != nil || d.ha != nil {
		if *errp != nil {
			for _, p := range d.procs() {
				fmt.Fprintf(d.out, "\n--- the end of %s's log (%s):\n%s\n", p.Name, p.Log, p.Tail(15))
			}
		}
		d.close()
	}
	if d.keep {
		fmt.Fprintf(d.out, "   Kept %s (data, roots, logs).\n", d.dir)
		return
	}
	if err := os.RemoveAll(d.dir); err != nil && *errp == nil {
		*errp = fmt.Errorf("remove %s: %w", d.dir, err)
		return
	}
	if *errp == nil {
		fmt.Fprintf(d.out, "   Done: every process stopped, %s removed.\n", d.dir)
	}
}

// procs returns every process the demo started.
func (d *demo) procs() []*localcluster.Proc {
	if d.ha != nil {
		return d.ha.Procs()
	}
	return d.cluster.Procs()
}

// close stops every process the demo started.
func (d *demo) close() {
	if d.ha != nil {
		d.ha.Close()
		return
	}
	d.cluster.Close()
}
