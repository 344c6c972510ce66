package hacluster

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
)

// Failover is what KillLeader saw.
type Failover struct {
	// Old is the address of the leader that was killed, OldEpoch its epoch.
	Old      string
	OldEpoch uint64
	// New is the address of the controller that leads after it, NewEpoch
	// its epoch.
	New      string
	NewEpoch uint64
	// Elected is the time from the kill until etcd named the new leader.
	Elected time.Duration
	// Took is the time from the kill until the new leader answered an
	// AdminService call and listed every agent connected to it.
	Took time.Duration
}

// KillLeader kills the leading controller with SIGKILL and waits, up to
// timeout, until another controller leads, answers an AdminService call
// (ListAgents, sent to it directly) and lists every agent of env
// connected. The killed controller stays down: Restart brings it back as
// a follower.
func (c *Cluster) KillLeader(ctx context.Context, env string, timeout time.Duration) (Failover, error) {
	var f Failover
	var err error
	if f.Old, f.OldEpoch, err = c.WaitLeader(ctx, timeout); err != nil {
		return f, fmt.Errorf("no leader before the kill: %w", err)
	}
	killed := time.Now()
	c.Kill(f.Old)
	if f.New, f.NewEpoch, err = c.WaitLeader(ctx, timeout, f.Old); err != nil {
		return f, fmt.Errorf("no new leader after %s was killed: %w", f.Old, err)
	}
	f.Elected = time.Since(killed)
	admin, closeConn, err := c.Client(f.New)
	if err != nil {
		return f, err
	}
	defer closeConn()
	err = poll.Until(ctx, timeout-f.Elected, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.AgentsConnected(ctx, admin, env)
	})
	if err != nil {
		return f, fmt.Errorf("the new leader %s: %w", f.New, err)
	}
	f.Took = time.Since(killed)
	return f, nil
}
