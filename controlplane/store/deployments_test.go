package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
)

func agentsOf(names ...string) []model.DeploymentAgent {
	var as []model.DeploymentAgent
	for _, n := range names {
		as = append(as, model.DeploymentAgent{Name: n, State: model.AgentStaging, ReleaseBytes: 100})
	}
	return as
}

// agentRecords returns the keys of deployment d-1's agent records.
func agentRecords(t *testing.T, s *Store) []uint32 {
	t.Helper()
	var keys []uint32
	_ = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeploymentAgents).Bucket(u64(1))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, uint32(k[0])<<24|uint32(k[1])<<16|uint32(k[2])<<8|uint32(k[3]))
			return nil
		})
	})
	return keys
}

// TestDeploymentAgentRecords: each agent is a record keyed by its
// position; a deployment reads back with its agents in the order put, and
// a put with fewer agents deletes the records past the end.
func TestDeploymentAgentRecords(t *testing.T) {
	changed := agentsOf("fe-1", "fe-2", "fe-3")
	changed[1].State, changed[1].TransferredBytes = model.AgentStaged, 100
	for _, tc := range []struct {
		name   string
		agents []model.DeploymentAgent
		keys   []uint32
	}{
		{"first put, order kept (not sorted by name)", agentsOf("fe-3", "fe-1", "fe-2", "fe-10"), []uint32{0, 1, 2, 3}},
		{"same again", agentsOf("fe-3", "fe-1", "fe-2", "fe-10"), []uint32{0, 1, 2, 3}},
		{"one agent changed, one fewer", changed, []uint32{0, 1, 2}},
		{"reordered", agentsOf("fe-2", "fe-3", "fe-1"), []uint32{0, 1, 2}},
		{"no agents", nil, nil},
		{"agents again", agentsOf("fe-9"), []uint32{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			defer s.Close()
			d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing, CreateTime: time.Unix(5, 0).UTC()}
			err := s.Update(func(tx model.Tx) error {
				if _, err := tx.NextDeploymentID(); err != nil {
					return err
				}
				d.Agents = agentsOf("a", "b", "c", "d", "e")
				if err := tx.PutDeployment(d); err != nil {
					return err
				}
				d.Agents = tc.agents
				return tx.PutDeployment(d)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := agentRecords(t, s); !reflect.DeepEqual(got, tc.keys) {
				t.Errorf("agent records = %v, want %v", got, tc.keys)
			}
			_ = s.View(func(tx model.Tx) error {
				got, err := tx.Deployment("d-1")
				if err != nil || !reflect.DeepEqual(got, tallied(d)) {
					t.Errorf("Deployment = %+v, %v\nwant %+v", got, err, d)
				}
				return nil
			})
		})
	}
}

// benchFleet is a deployment with n agents as they look in stage 1.
func benchFleet(n int) *model.Deployment {
	d := &model.Deployment{ID: "d-1", Environment: "production", State: model.Preparing,
		Applications: []model.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r-2", PreviousReleaseID: "r-1"}},
		CreateTime:   time.Unix(1e9, 0).UTC(), PrepareTime: time.Unix(1e9, 0).UTC(),
		History: []model.Transition{{State: model.Planned, Time: time.Unix(1e9, 0).UTC(), Actor: "alice"}}}
	for i := range n {
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: fmt.Sprintf("fe-%05d", i), State: model.AgentStaging,
			ReleaseBytes: 1 << 30, TransferredBytes: 1 << 20, Command: fmt.Sprintf("cmd-%d", i),
			Plan: []model.HookRef{{Application: "hello", Kind: "before_activate"}, {Application: "hello", Kind: "after_activate"}},
			Runs: []model.TransferRun{{Run: fmt.Sprintf("run-%d", i), Bytes: 1 << 20}}})
	}
	return d
}

// layout is how a deployment is read and written: as schema 5 did (the
// whole deployment, one JSON value) or as the store does now.
type layout struct {
	name string
	get  func(tx *bolt.Tx) (*model.Deployment, error)
	put  func(tx *bolt.Tx, d *model.Deployment) error
}

var benchLayouts = []layout{
	{"schema5-whole-json",
		func(tx *bolt.Tx) (*model.Deployment, error) {
			d := new(model.Deployment)
			return d, json.Unmarshal(tx.Bucket([]byte("bench_schema5")).Get(u64(1)), d)
		},
		func(tx *bolt.Tx, d *model.Deployment) error {
			raw, err := json.Marshal(d)
			if err != nil {
				return err
			}
			bk, err := tx.CreateBucketIfNotExists([]byte("bench_schema5"))
			if err != nil {
				return err
			}
			return bk.Put(u64(1), raw)
		}},
	{"schema6-per-agent",
		func(tx *bolt.Tx) (*model.Deployment, error) { return (&Tx{tx: tx}).Deployment("d-1") },
		func(tx *bolt.Tx, d *model.Deployment) error { return (&Tx{tx: tx}).PutDeployment(d) }},
}

// BenchmarkPutDeployment1000AgentsOneChanged: the cost of recording one
// agent's report in a deployment of 1,000 agents, one durable transaction
// each, in each layout: "put" writes the deployment held in memory,
// "read+put" reads it first, as the deployment service does. page-KiB/op
// is what the transaction allocated in pages: what it wrote; cpu-ms/op
// the CPU it took. The nosync runs leave out the fsyncs, whose time on a
// shared disk varies more than the rest.
func BenchmarkPutDeployment1000AgentsOneChanged(b *testing.B) {
	for _, l := range benchLayouts {
		for _, read := range []bool{false, true} {
			for _, sync := range []bool{true, false} {
				name := l.name + map[bool]string{false: "/put", true: "/read+put"}[read] + map[bool]string{true: "/sync", false: "/nosync"}[sync]
				b.Run(name, func(b *testing.B) { benchPut(b, l, read, sync) })
			}
		}
	}
}

func benchPut(b *testing.B, l layout, read, sync bool) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.db.NoSync = !sync
	d := benchFleet(1000)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := (&Tx{tx: tx}).NextDeploymentID(); err != nil {
			return err
		}
		return l.put(tx, d)
	}); err != nil {
		b.Fatal(err)
	}
	alloc0, cpu0 := pageAlloc(s), cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if read {
				var err error
				if d, err = l.get(tx); err != nil {
					return err
				}
			}
			a := &d.Agents[i%len(d.Agents)]
			a.TransferredBytes += 4096
			a.Runs[0].Bytes += 4096
			return l.put(tx, d)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(pageAlloc(s)-alloc0)/1024/float64(b.N), "page-KiB/op")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time the process used so far, every thread (the
// garbage collector's too): unlike ns/op, it does not grow when other
// work on the machine takes the CPUs.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pageAlloc is how many bytes of pages the file's transactions allocated.
func pageAlloc(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}
