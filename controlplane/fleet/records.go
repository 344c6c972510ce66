package fleet

import (
	"sync"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// maxRecordGroup is the most agent records stored in one transaction:
// within etcd's default --max-txn-ops (128), as the deployment service's
// groups of reports.
const maxRecordGroup = 48

// records stores agents' records (a connect, a status) in groups: each
// caller queues its record and waits until it is committed; whoever finds
// no commit running commits the queued groups up to its own, one
// transaction and one fsync each, then hands the next group to one of its
// waiters. When thousands of agents connect or report their status at
// once, the store commits once per group instead of once per agent, and
// nothing is acknowledged before its record is durable. A group keeps the
// latest record of each agent it holds; groups commit in order.
type records struct {
	store model.Store

	mu         sync.Mutex
	waiting    []*recordGroup // not committed yet, oldest first
	committing bool           // a caller is committing
}

// recordGroup is records committed together.
type recordGroup struct {
	recs map[string]model.Agent
	done chan struct{} // closed once committed; err is set
	lead chan struct{} // (cap 1) the previous committer hands the commits over
	err  error
}

// put stores rec durably, in a group with others queued meanwhile.
func (r *records) put(rec model.Agent) error {
	r.mu.Lock()
	n := len(r.waiting)
	if n == 0 || len(r.waiting[n-1].recs) >= maxRecordGroup {
		r.waiting = append(r.waiting, &recordGroup{recs: map[string]model.Agent{}, done: make(chan struct{}), lead: make(chan struct{}, 1)})
	}
	g := r.waiting[len(r.waiting)-1]
	g.recs[rec.Name] = rec
	if r.committing {
		r.mu.Unlock()
		select {
		case <-g.done:
			return g.err
		case <-g.lead: // g is first now: commit it
		}
		r.mu.Lock()
	}
	r.committing = true
	for {
		h := r.waiting[0]
		r.waiting = r.waiting[1:]
		r.mu.Unlock()
		h.err = r.store.Update(func(tx model.Tx) error {
			for _, rec := range h.recs {
				if err := tx.PutAgent(&rec); err != nil {
					return err
				}
			}
			return nil
		})
		close(h.done)
		r.mu.Lock()
		if h == g {
			break
		}
	}
	if len(r.waiting) > 0 {
		r.waiting[0].lead <- struct{}{}
	} else {
		r.committing = false
	}
	r.mu.Unlock()
	return g.err
}
