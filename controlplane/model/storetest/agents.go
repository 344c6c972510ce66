package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// fleetSize is the number of agents of the per-agent cases: more than two
// of etcdstore's groups, the last one short.
const fleetSize = 70

// fleet is deployment(id, env) with n agents, fe-00 to fe-<n-1>.
func fleet(id string, n int) *model.Deployment {
	d := deployment(id, "production")
	one := d.Agents[0]
	d.Agents = nil
	for i := range n {
		a := one
		a.Name, a.TransferredBytes = fmt.Sprintf("fe-%02d", i), int64(i)
		d.Agents = append(d.Agents, a)
	}
	d.Tally = model.TallyAgents(d.Agents)
	return d
}

// putFleet stores fleet("d-1", n).
func putFleet(t *testing.T, s model.Store, n int) *model.Deployment {
	t.Helper()
	d := fleet("d-1", n)
	update(t, s, func(tx model.Tx) error {
		if _, err := tx.NextDeploymentID(); err != nil {
			return err
		}
		return tx.PutDeployment(d)
	})
	return d
}

// header is d without its agents.
func header(d *model.Deployment) *model.Deployment {
	h := *d
	h.Agents = nil
	return &h
}

func agentCases() []Case {
	return []Case{
		{"deployment header and agents one by one", func(t *testing.T, s model.Store) {
			want := putFleet(t, s, fleetSize)
			check := func(when string, tx model.Tx) {
				t.Helper()
				h, err := tx.DeploymentHeader("d-1")
				if err != nil || !reflect.DeepEqual(h, header(want)) {
					t.Errorf("%s: DeploymentHeader: %v\n got %+v\nwant %+v", when, err, h, header(want))
				}
				for _, i := range []int{0, 31, 32, 40, 64, len(want.Agents) - 1} {
					a, err := tx.DeploymentAgent("d-1", i)
					if err != nil || !reflect.DeepEqual(*a, want.Agents[i]) {
						t.Errorf("%s: DeploymentAgent %d: %v, %+v", when, i, err, a)
					}
				}
				d, err := tx.Deployment("d-1")
				if err != nil || !reflect.DeepEqual(d, want) {
					t.Errorf("%s: Deployment: %v; %d agents, want %d (or a field differs)", when, err, len(d.Agents), len(want.Agents))
				}
			}
			view(t, s, func(tx model.Tx) error { check("as put whole", tx); return nil })
			update(t, s, func(tx model.Tx) error {
				want.Agents[40].State, want.Agents[40].TransferredBytes = model.AgentStaged, 4096
				want.Agents = append(want.Agents, want.Agents[0], want.Agents[1])
				want.Agents[fleetSize].Name, want.Agents[fleetSize+1].Name = "late-1", "late-2"
				want.State, want.Error = model.Failed, "header changed alone"
				err := errors.Join(tx.PutDeploymentAgent("d-1", 40, &want.Agents[40]),
					tx.PutDeploymentAgent("d-1", fleetSize, &want.Agents[fleetSize]), // appended
					tx.PutDeploymentAgent("d-1", fleetSize+1, &want.Agents[fleetSize+1]),
					tx.PutDeploymentHeader(&model.Deployment{}), // no such deployment
					tx.PutDeploymentHeader(fleet("d-1", 0)))     // its agents are not read
				if !errors.Is(err, errkind.NotFound) {
					return fmt.Errorf("putting one agent, two at the end, a header: %w", err)
				}
				want.Tally = model.TallyAgents(want.Agents) // moved by the caller, as PutDeploymentAgent asks
				h := header(want)
				if err := tx.PutDeploymentHeader(h); err != nil {
					return err
				}
				check("in the transaction", tx)
				return nil
			})
			view(t, s, func(tx model.Tx) error { check("after the commit", tx); return nil })
		}},
		{"deployment tally", func(t *testing.T, s model.Store) {
			d := fleet("d-1", fleetSize)
			d.Agents[3].State, d.Agents[3].Error, d.Agents[3].Command = model.AgentFailed, "disk full", ""
			d.Agents[40].Ready = true
			d.Tally = &model.AgentTally{Pending: 1000} // not what PutDeployment stores
			update(t, s, func(tx model.Tx) error {
				if _, err := tx.NextDeploymentID(); err != nil {
					return err
				}
				return tx.PutDeployment(d)
			})
			counted := model.TallyAgents(d.Agents)
			if counted.Failed != 1 || counted.Pending != fleetSize-1 || counted.Waiting != fleetSize-2 || counted.Unfinished != 1 {
				t.Fatalf("TallyAgents = %+v", counted)
			}
			tallies := func(when string, header, whole *model.AgentTally) {
				t.Helper()
				view(t, s, func(tx model.Tx) error {
					h, errH := tx.DeploymentHeader("d-1")
					w, errW := tx.Deployment("d-1")
					if err := errors.Join(errH, errW); err != nil {
						return err
					}
					if !reflect.DeepEqual(h.Tally, header) || !reflect.DeepEqual(w.Tally, whole) {
						t.Errorf("%s: header's tally %+v, whole read's %+v; want %+v and %+v", when, h.Tally, w.Tally, header, whole)
					}
					return nil
				})
			}
			tallies("put whole", counted, counted)
			a := d.Agents[5]
			a.State, a.Command = model.AgentStaged, ""
			update(t, s, func(tx model.Tx) error { return tx.PutDeploymentAgent("d-1", 5, &a) })
			d.Agents[5] = a
			tallies("an agent put alone", counted, model.TallyAgents(d.Agents)) // the caller moves the header's
			h := header(fleet("d-1", 0))
			h.Tally = nil
			update(t, s, func(tx model.Tx) error { return tx.PutDeploymentHeader(h) })
			tallies("a header without one (stored before tallies)", nil, model.TallyAgents(d.Agents))
		}},
		{"deployment agents not found or past the end", func(t *testing.T, s model.Store) {
			putFleet(t, s, fleetSize)
			a := &model.DeploymentAgent{Name: "x"}
			err := s.Update(func(tx model.Tx) error {
				for _, i := range []int{-1, fleetSize, fleetSize + agentsPastEnd} {
					if _, err := tx.DeploymentAgent("d-1", i); !errors.Is(err, errkind.NotFound) {
						t.Errorf("DeploymentAgent %d of %d: %v, want NotFound", i, fleetSize, err)
					}
				}
				for _, id := range []string{"d-7", "x-1"} {
					_, errH := tx.DeploymentHeader(id)
					_, errA := tx.DeploymentAgent(id, 0)
					errP := tx.PutDeploymentAgent(id, 0, a)
					for what, err := range map[string]error{"DeploymentHeader": errH, "DeploymentAgent": errA, "PutDeploymentAgent": errP} {
						if !errors.Is(err, errkind.NotFound) {
							t.Errorf("%s of unknown %s: %v, want NotFound", what, id, err)
						}
					}
				}
				for _, i := range []int{-1, fleetSize + 1, fleetSize + agentsPastEnd} {
					if err := tx.PutDeploymentAgent("d-1", i, a); !errors.Is(err, errkind.InvalidArgument) {
						t.Errorf("PutDeploymentAgent %d of %d: %v, want InvalidArgument", i, fleetSize, err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"concurrent agent updates lose nothing", func(t *testing.T, s model.Store) {
			putFleet(t, s, fleetSize)
			// Pairs of writers on agents of one etcd group (0, 1) and on
			// agents of others (33, 69), each adding to its own agent.
			mine := []int{0, 1, 33, 69, 0, 1, 33, 69}
			const rounds = 5
			if err := concurrently(s, len(mine), rounds, func(w, _ int) func(model.Tx) error {
				return func(tx model.Tx) error {
					a, err := tx.DeploymentAgent("d-1", mine[w])
					if err != nil {
						return err
					}
					a.TransferredBytes += 1000
					return tx.PutDeploymentAgent("d-1", mine[w], a)
				}
			}); err != nil {
				t.Fatalf("updates of one process failed: %v", err)
			}
			view(t, s, func(tx model.Tx) error {
				d, err := tx.Deployment("d-1")
				if err != nil {
					return err
				}
				for i, a := range d.Agents {
					want := int64(i)
					if i == 0 || i == 1 || i == 33 || i == 69 {
						want += 2 * rounds * 1000
					}
					if a.TransferredBytes != want {
						t.Errorf("agent %d: %d bytes, want %d: an update was lost or went to another agent", i, a.TransferredBytes, want)
					}
				}
				return nil
			})
		}},
	}
}

// agentsPastEnd is how far past the end of a deployment's agents the
// not-found cases look: beyond the group that holds the last one.
const agentsPastEnd = 40
