package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// HookRunState is where one journaled hook run is.
type HookRunState string

// The hook run states.
const (
	// HookStarted is journaled before the hook's process starts: found
	// without a later HookDone, the hook was interrupted (the agent
	// stopped while it ran) and may have run in part or in full.
	HookStarted HookRunState = "started"
	// HookDone is journaled once the hook ended, with its result, before
	// the result is reported.
	HookDone HookRunState = "done"
)

// HookRun is the journal entry of one hook run by one command.
type HookRun struct {
	// Key is what the run belongs to: a hooks command's id, or the
	// ValidateKey of a commit.
	Key string `json:"key"`
	// Position is the hook's place in the command's list of hooks.
	Position int `json:"position"`
	// ActivationID is the activation the command belongs to.
	ActivationID
	// Application, Kind and Index name the hook in its release's cutover.yaml.
	Application string `json:"application"`
	Kind        string `json:"kind"`
	Index       int    `json:"index"`
	// Release is the release whose hook it is.
	Release string `json:"release,omitempty"`
	// Command is the hook's shell command.
	Command string `json:"command,omitempty"`
	// State is started or done.
	State HookRunState `json:"state"`
	// ExitCode, Duration, Output and Error are the result (done only);
	// Error is empty when the hook succeeded.
	ExitCode int           `json:"exit_code,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
	// StartTime is when the hook was started.
	StartTime time.Time `json:"start_time,omitzero"`
	// UpdateTime is when the entry last changed.
	UpdateTime time.Time `json:"update_time"`
}

// ValidateKey is the hook-run key of the validate hooks that the commit
// of activation id runs: "validate:<deployment id>", and for a rollback by
// command "validate:<deployment id>/rollback.<n>".
func ValidateKey(id ActivationID) string {
	if id.RollbackAttempt == 0 {
		return "validate:" + id.Deployment
	}
	return "validate:" + id.Deployment + "/rollback." + strconv.Itoa(id.RollbackAttempt)
}

func hookRunPrefix(key string) []byte { return append([]byte(key), 0) }

func hookRunKey(key string, position int) []byte {
	return binary.BigEndian.AppendUint32(hookRunPrefix(key), uint32(position))
}

// HookRuns returns the hook runs journaled under key, by position.
func (t *Tx) HookRuns(key string) ([]*HookRun, error) {
	var out []*HookRun
	prefix := hookRunPrefix(key)
	c := t.tx.Bucket(bucketHookRuns).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r HookRun
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("hook run %q is corrupt: %v: %w", k, err, errkind.DataLoss)
		}
		out = append(out, &r)
	}
	return out, nil
}

// PutHookRun creates or replaces a hook run entry (Key and Position say which).
func (t *Tx) PutHookRun(r *HookRun) error {
	if r.Key == "" || r.Position < 0 {
		return fmt.Errorf("hook run without a key or with position %d: %w", r.Position, errkind.InvalidArgument)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketHookRuns).Put(hookRunKey(r.Key, r.Position), b)
}

// DeleteHookRunsBefore removes the hook runs last changed before t, and
// returns how many it removed.
func (t *Tx) DeleteHookRunsBefore(before time.Time) (int, error) {
	b := t.tx.Bucket(bucketHookRuns)
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var r HookRun
		if json.Unmarshal(v, &r) == nil && r.UpdateTime.Before(before) {
			old = append(old, bytes.Clone(k)) // a corrupt entry stays: HookRuns reports it
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}
