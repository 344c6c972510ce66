//go:build ignore

// mkfixture writes controller.db as the store of commit 0e8265e (schema 5,
// JSON values) wrote it, from the records of ../../fixture_values_test.go.
// See README.md beside it for how it is run.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cutover-dev/cutover/controlplane/audit"
	m "github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir string) error {
	s, err := m.Open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	chunk := manifest.Chunk{ID: manifest.HashChunk(fxChunk), Data: fxChunk}
	if err := s.PutChunks([]manifest.Chunk{chunk}); err != nil {
		return err
	}
	err = s.Update(func(tx *m.Tx) error {
		for _, e := range fxEnvs {
			if err := tx.PutEnvironment(e); err != nil {
				return err
			}
		}
		for _, a := range fxApps {
			if err := tx.PutApplication(a); err != nil {
				return err
			}
		}
		for _, r := range fxReleases {
			if err := tx.PutRelease(r, fxManifests[r.ID]); err != nil {
				return err
			}
		}
		for _, d := range fxDeployments {
			id, err := tx.NextDeploymentID()
			if err != nil {
				return err
			}
			if id != d.ID {
				return fmt.Errorf("id %s, want %s", id, d.ID)
			}
			if err := tx.PutDeployment(d); err != nil {
				return err
			}
		}
		if err := tx.PutSQLPlan("d-1", fxPlan); err != nil {
			return err
		}
		for _, a := range fxAgents {
			if err := tx.PutAgent(a); err != nil {
				return err
			}
		}
		for _, t := range fxTokens {
			if err := tx.PutOperatorToken(t); err != nil {
				return err
			}
		}
		for _, t := range fxJoinTokens {
			if err := tx.PutJoinToken(t); err != nil {
				return err
			}
		}
		for _, e := range fxEnrollments {
			if err := tx.PutEnrollment(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	i := 0
	log := audit.New(audit.Config{Store: s, Clock: func() time.Time { return fxAt(time.Duration(i) * time.Minute) }})
	for _, e := range fxAudit {
		if _, err := log.Append(context.Background(), auditlog.Entry{Subject: e.Subject, Roles: e.Roles, Method: e.Method,
			Environment: e.Environment, Deployment: e.Deployment, Summary: e.Summary, Code: e.Code, Reason: e.Reason}); err != nil {
			return err
		}
		i++
	}
	return nil
}
