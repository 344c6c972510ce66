package deployment

import (
	"context"
	"sync"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// watchers holds the channels of WatchDeployment callers, per deployment.
type watchers struct {
	mu   sync.Mutex
	subs map[string]map[chan *model.Deployment]struct{}
}

// publish hands d to every watcher of it. A watcher that has not taken the
// previous value gets the newer one instead: watchers see the latest state,
// not necessarily every step.
func (w *watchers) publish(d *model.Deployment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[d.ID] {
		offer(ch, d)
	}
}

// publishWatched reads deployment id whole and hands it to its watchers,
// if it has any (a store error is logged: the next change tells them).
// Call with s.mu held.
func (s *Service) publishWatched(id string) {
	s.watchers.mu.Lock()
	watched := len(s.watchers.subs[id]) > 0
	s.watchers.mu.Unlock()
	if !watched {
		return
	}
	var d *model.Deployment
	if err := s.store.View(func(tx model.Tx) (err error) { d, err = tx.Deployment(id); return err }); err != nil {
		s.log.Warn("read the deployment for its watchers", "deployment", id, "err", err)
		return
	}
	s.watchers.publish(d)
}

// offer puts d in ch (capacity 1) in place of any value not taken yet. Call
// with w.mu held, so that offers do not interleave.
func offer(ch chan *model.Deployment, d *model.Deployment) {
	select {
	case <-ch:
	default:
	}
	ch <- d
}

// Watch returns a channel that receives deployment id as it is now, then
// after each change, until ctx ends. NotFound if unknown. The values must
// not be modified.
func (s *Service) Watch(ctx context.Context, id string) (<-chan *model.Deployment, error) {
	ch := make(chan *model.Deployment, 1)
	s.watchers.mu.Lock()
	if s.watchers.subs[id] == nil {
		s.watchers.subs[id] = map[chan *model.Deployment]struct{}{}
	}
	s.watchers.subs[id][ch] = struct{}{}
	s.watchers.mu.Unlock()
	unsubscribe := func() {
		s.watchers.mu.Lock()
		delete(s.watchers.subs[id], ch)
		if len(s.watchers.subs[id]) == 0 {
			delete(s.watchers.subs, id)
		}
		s.watchers.mu.Unlock()
	}
	// Read after subscribing, so no change falls between the two. Under
	// s.mu, so that no publish of an older state can follow it.
	s.mu.Lock()
	d, err := s.Get(ctx, id)
	if err != nil {
		s.mu.Unlock()
		unsubscribe()
		return nil, err
	}
	s.watchers.mu.Lock()
	offer(ch, d) // under s.mu: no older state can be published after it
	s.watchers.mu.Unlock()
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		unsubscribe()
	}()
	return ch, nil
}
