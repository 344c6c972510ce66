package stage

import (
	"fmt"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Check verifies, without fetching or writing anything, that each release
// is staged and that its directory still matches its manifest, every
// file's content hashed (a release that runs is trusted as it is). Errors:
// FailedPrecondition naming the first release that is not staged intact.
func (s *Stager) Check(releases []Release) error {
	for _, r := range releases {
		if err := layout.ValidRelease(r.Application, r.ID); err != nil {
			return err
		}
		if err := s.checkOne(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stager) checkOne(r Release) error {
	defer s.lock(r)()
	d, err := s.inspect(r)
	if err != nil || !d.Staged {
		return fmt.Errorf("release %s of %q is not staged on this agent: %w", r.ID, r.Application, errkind.FailedPrecondition)
	}
	if d.Damage != nil {
		return fmt.Errorf("staged release %s of %q no longer matches its manifest: %v: %w", r.ID, r.Application, d.Damage, errkind.FailedPrecondition)
	}
	return nil
}
