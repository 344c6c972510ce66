// Package storecopy copies a controller's records from one store to
// another: what a controller that ran alone on bbolt does once when it
// moves to etcd (cutover-controller --etcd-import), so that its
// environments, applications, releases, deployments, agents and their
// enrollments, operator tokens and audit log are there for every
// controller of the cluster. Release chunks are not records: they stay in
// the controller's bbolt file, where the etcd store keeps them too.
//
// It works on the domain's interface (model.Store) only.
package storecopy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// auditBatch is how many audit records one transaction copies: an etcd
// transaction takes a bounded number of writes.
const auditBatch = 64

// Counts says how many records of each kind were copied.
type Counts struct {
	Environments, Applications, Releases, Deployments, Agents, Enrollments, OperatorTokens, AuditRecords int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d environments, %d applications, %d releases, %d deployments, %d agents, %d enrollments, %d operator tokens, %d audit records",
		c.Environments, c.Applications, c.Releases, c.Deployments, c.Agents, c.Enrollments, c.OperatorTokens, c.AuditRecords)
}

// InUse says whether s holds records of a controller that ran on it: every
// controller creates an operator token (its bootstrap token) on its first
// start.
func InUse(s model.Store) (bool, error) {
	var used bool
	err := s.View(func(tx model.Tx) error {
		ts, err := tx.OperatorTokens()
		used = len(ts) > 0
		return err
	})
	return used, err
}

// Copy copies every record of from into to, which must not be in use
// (FailedPrecondition otherwise, and nothing is written). The operator
// tokens go last: a copy cut short leaves to not in use, and the next
// Copy writes everything again (the audit records already there are kept,
// not appended twice). Join tokens are not copied: they are short-lived;
// create new ones.
func Copy(from, to model.Store) (Counts, error) {
	var n Counts
	if used, err := InUse(to); err != nil || used {
		if err == nil {
			err = fmt.Errorf("the destination holds the records of a controller already; nothing was copied: %w", errkind.FailedPrecondition)
		}
		return n, err
	}
	steps := []func(model.Store, model.Store, *Counts) error{copyCatalog, copyReleases, copyTrust, copyDeployments, copyAudit, copyTokens}
	for _, step := range steps {
		if err := step(from, to, &n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// copyCatalog copies environments and applications.
func copyCatalog(from, to model.Store, n *Counts) error {
	var envs []*model.Environment
	var apps []*model.Application
	if err := from.View(func(tx model.Tx) error {
		var err error
		if envs, err = tx.Environments(); err != nil {
			return err
		}
		apps, err = tx.Applications()
		return err
	}); err != nil {
		return fmt.Errorf("read environments and applications: %w", err)
	}
	n.Environments, n.Applications = len(envs), len(apps)
	return to.Update(func(tx model.Tx) error {
		for _, e := range envs {
			if err := tx.PutEnvironment(e); err != nil {
				return fmt.Errorf("environment %s: %w", e.Name, err)
			}
		}
		for _, a := range apps {
			if err := tx.PutApplication(a); err != nil {
				return fmt.Errorf("application %s: %w", a.Name, err)
			}
		}
		return nil
	})
}

// copyReleases copies each application's releases with their manifests,
// one transaction per release (a manifest can be large).
func copyReleases(from, to model.Store, n *Counts) error {
	var rs []*model.Release
	if err := from.View(func(tx model.Tx) error {
		apps, err := tx.Applications()
		if err != nil {
			return err
		}
		for _, a := range apps {
			of, err := tx.ReleasesOf(a.Name)
			if err != nil {
				return err
			}
			rs = append(rs, of...)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read releases: %w", err)
	}
	for _, r := range rs {
		var m []byte
		if err := from.View(func(tx model.Tx) (err error) { m, err = tx.Manifest(r.ID); return err }); err != nil {
			return fmt.Errorf("release %s: %w", r.ID, err)
		}
		if err := to.Update(func(tx model.Tx) error { return tx.PutRelease(r, m) }); err != nil {
			return fmt.Errorf("release %s: %w", r.ID, err)
		}
		n.Releases++
	}
	return nil
}

// copyTrust copies the agents the controller knows and their enrollments.
func copyTrust(from, to model.Store, n *Counts) error {
	var agents []*model.Agent
	var enrolled []*model.Enrollment
	if err := from.View(func(tx model.Tx) error {
		var err error
		if agents, err = tx.Agents(); err != nil {
			return err
		}
		enrolled, err = tx.Enrollments()
		return err
	}); err != nil {
		return fmt.Errorf("read agents and enrollments: %w", err)
	}
	for _, a := range agents {
		if err := to.Update(func(tx model.Tx) error { return tx.PutAgent(a) }); err != nil {
			return fmt.Errorf("agent %s: %w", a.Name, err)
		}
	}
	for _, e := range enrolled {
		if err := to.Update(func(tx model.Tx) error { return tx.PutEnrollment(e) }); err != nil {
			return fmt.Errorf("enrollment %s: %w", e.Name, err)
		}
	}
	n.Agents, n.Enrollments = len(agents), len(enrolled)
	return nil
}

// copyDeployments copies the deployments, oldest first, with their SQL
// plans, then reserves their ids in to, so that the next deployment there
// does not take one of them.
func copyDeployments(from, to model.Store, n *Counts) error {
	var ds []*model.Deployment
	if err := from.View(func(tx model.Tx) (err error) { ds, err = tx.Deployments(""); return err }); err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	slices.Reverse(ds) // oldest first
	var last uint64
	for _, d := range ds {
		var plan []byte
		if err := from.View(func(tx model.Tx) error {
			var err error
			plan, err = tx.SQLPlan(d.ID)
			if errors.Is(err, errkind.NotFound) {
				plan, err = nil, nil
			}
			return err
		}); err != nil {
			return fmt.Errorf("deployment %s: %w", d.ID, err)
		}
		if err := to.Update(func(tx model.Tx) error {
			if err := tx.PutDeployment(d); err != nil {
				return err
			}
			if plan == nil {
				return nil
			}
			return tx.PutSQLPlan(d.ID, plan)
		}); err != nil {
			return fmt.Errorf("deployment %s: %w", d.ID, err)
		}
		last = max(last, deploymentNumber(d.ID))
		n.Deployments++
	}
	return to.Update(func(tx model.Tx) error {
		for {
			id, err := tx.NextDeploymentID()
			if err != nil {
				return err
			}
			if deploymentNumber(id) >= last {
				return nil // k itself is skipped: a gap in the ids, no harm
			}
		}
	})
}

// copyAudit appends the audit records that to lacks, oldest first, in
// batches.
func copyAudit(from, to model.Store, n *Counts) error {
	var have uint64
	if err := to.View(func(tx model.Tx) error {
		last, err := tx.LastAudit()
		if last != nil {
			have = last.Seq
		}
		return err
	}); err != nil {
		return fmt.Errorf("read the destination's audit log: %w", err)
	}
	var batch []*model.AuditRecord
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := to.Update(func(tx model.Tx) error {
			for _, r := range batch {
				if err := tx.AppendAudit(r); err != nil {
					return fmt.Errorf("audit record %d: %w", r.Seq, err)
				}
			}
			return nil
		})
		if err == nil {
			n.AuditRecords += len(batch)
		}
		batch = batch[:0]
		return err
	}
	err := from.View(func(tx model.Tx) error {
		return tx.AuditRecords(func(r *model.AuditRecord) error {
			if r.Seq <= have {
				return nil
			}
			batch = append(batch, r)
			if len(batch) < auditBatch {
				return nil
			}
			return flush()
		})
	})
	if err != nil {
		return fmt.Errorf("copy the audit log: %w", err)
	}
	return flush()
}

// copyTokens copies the operator tokens: last, since they make to in use.
func copyTokens(from, to model.Store, n *Counts) error {
	var ts []*model.OperatorToken
	if err := from.View(func(tx model.Tx) (err error) { ts, err = tx.OperatorTokens(); return err }); err != nil {
		return fmt.Errorf("read operator tokens: %w", err)
	}
	n.OperatorTokens = len(ts)
	return to.Update(func(tx model.Tx) error {
		for _, t := range ts {
			if err := tx.PutOperatorToken(t); err != nil {
				return fmt.Errorf("operator token %s: %w", t.ID, err)
			}
		}
		return nil
	})
}

// deploymentNumber returns n of "d-<n>", 0 for another id.
func deploymentNumber(id string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(id, "d-"), 10, 64)
	return n
}
