package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// parseAppVersions turns --app NAME=LABEL values into ApplicationVersions,
// refusing empty parts and an application named twice.
func parseAppVersions(values []string) ([]*cutoverv1.ApplicationVersion, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("no application given: add --app NAME=LABEL (e.g. --app hello=v2)")
	}
	seen := map[string]bool{}
	out := make([]*cutoverv1.ApplicationVersion, 0, len(values))
	for _, v := range values {
		name, label, ok := strings.Cut(v, "=")
		name, label = strings.TrimSpace(name), strings.TrimSpace(label)
		if !ok || name == "" || label == "" {
			return nil, fmt.Errorf("--app %q: want NAME=LABEL, e.g. --app hello=v2", v)
		}
		if seen[name] {
			return nil, fmt.Errorf("--app %q: application %q is given twice; give each application once", v, name)
		}
		seen[name] = true
		out = append(out, &cutoverv1.ApplicationVersion{Name: name, VersionLabel: label})
	}
	return out, nil
}

// envFlags are the environment settings that env create and env update take.
type envFlags struct {
	twoStage        bool
	preparedTTL     time.Duration
	requireApproval bool
	requirePrepared bool
	windows         []string
	keepReleases    int32
	stageRate       int64
	peers           bool
	armDeadline     time.Duration
	hooksDeadline   time.Duration
	commitDeadline  time.Duration
	dbDriver        string
	dbDSN           string
	dbStatement     time.Duration
	dbLock          time.Duration
	dbShadowDSN     string
	noCheck         bool
}

// deadlines returns e's stage 2 deadlines, creating them when unset.
func deadlines(e *cutoverv1.Environment) *cutoverv1.Stage2Deadlines {
	if e.Stage2Deadlines == nil {
		e.Stage2Deadlines = &cutoverv1.Stage2Deadlines{}
	}
	return e.Stage2Deadlines
}

// database returns e's database, creating it when unset.
func database(e *cutoverv1.Environment) *cutoverv1.Database {
	if e.Database == nil {
		e.Database = &cutoverv1.Database{}
	}
	return e.Database
}

// envField ties a command-line flag to the Environment field it sets.
type envField struct {
	flag string
	path string
	set  func(e *cutoverv1.Environment, f *envFlags)
}

// envFields lists, in update_mask order, every settable environment field.
var envFields = []envField{
	{"two-stage", "two_stage", func(e *cutoverv1.Environment, f *envFlags) { e.TwoStage = f.twoStage }},
	{"prepared-ttl", "prepared_ttl", func(e *cutoverv1.Environment, f *envFlags) { e.PreparedTtl = durationpb.New(f.preparedTTL) }},
	{"require-approval", "require_approval", func(e *cutoverv1.Environment, f *envFlags) { e.RequireApproval = f.requireApproval }},
	{"require-prepared", "require_prepared", func(e *cutoverv1.Environment, f *envFlags) { e.RequirePrepared = f.requirePrepared }},
	{"window", "windows", func(e *cutoverv1.Environment, f *envFlags) { e.Windows = nonEmpty(f.windows) }},
	{"keep-releases", "keep_releases", func(e *cutoverv1.Environment, f *envFlags) { e.KeepReleases = f.keepReleases }},
	{"stage-rate", "stage_rate", func(e *cutoverv1.Environment, f *envFlags) { e.StageRate = f.stageRate }},
	{"peers", "peers_disabled", func(e *cutoverv1.Environment, f *envFlags) { e.PeersDisabled = !f.peers }},
	{"arm-deadline", "stage2_deadlines.arm", func(e *cutoverv1.Environment, f *envFlags) { deadlines(e).Arm = durationpb.New(f.armDeadline) }},
	{"hooks-deadline", "stage2_deadlines.hooks", func(e *cutoverv1.Environment, f *envFlags) { deadlines(e).Hooks = durationpb.New(f.hooksDeadline) }},
	{"commit-deadline", "stage2_deadlines.commit", func(e *cutoverv1.Environment, f *envFlags) {
		deadlines(e).Commit = durationpb.New(f.commitDeadline)
	}},
	{"db-driver", "database.driver", func(e *cutoverv1.Environment, f *envFlags) { database(e).Driver = f.dbDriver }},
	{"db-dsn", "database.dsn", func(e *cutoverv1.Environment, f *envFlags) { database(e).Dsn = f.dbDSN }},
	{"db-statement-timeout", "database.statement_timeout", func(e *cutoverv1.Environment, f *envFlags) {
		database(e).StatementTimeout = durationpb.New(f.dbStatement)
	}},
	{"db-lock-timeout", "database.lock_timeout", func(e *cutoverv1.Environment, f *envFlags) { database(e).LockTimeout = durationpb.New(f.dbLock) }},
	{"db-shadow-dsn", "database.shadow_dsn", func(e *cutoverv1.Environment, f *envFlags) { database(e).ShadowDsn = f.dbShadowDSN }},
}

// environment builds the Environment named name from the flags that were
// given (changed reports whether a flag was given), and returns the
// update_mask paths of the fields it set. --db-driver and --db-dsn together
// set the whole database (path "database"): its timeouts are those given,
// 0 when not given, so that --db-driver "" --db-dsn "" removes it.
func (f *envFlags) environment(name string, changed func(flag string) bool) (*cutoverv1.Environment, []string) {
	env := &cutoverv1.Environment{Name: name}
	whole := changed("db-driver") && changed("db-dsn")
	var paths []string
	for _, field := range envFields {
		if whole && strings.HasPrefix(field.path, "database.") {
			field.set(env, f)
			if !slices.Contains(paths, "database") {
				paths = append(paths, "database")
			}
			continue
		}
		if changed(field.flag) {
			field.set(env, f)
			paths = append(paths, field.path)
		}
	}
	if whole && f.dbDriver == "" && f.dbDSN == "" {
		env.Database = &cutoverv1.Database{}
	}
	return env, paths
}

// nonEmpty drops empty strings, so that --window "" clears the windows.
func nonEmpty(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

// envFlagNames lists the settable flags, for messages.
func envFlagNames() string {
	names := make([]string, len(envFields))
	for i, f := range envFields {
		names[i] = "--" + f.flag
	}
	return strings.Join(names, ", ")
}
