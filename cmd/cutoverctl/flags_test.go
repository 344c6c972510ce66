package main

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestParseAppVersions(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []*cutoverv1.ApplicationVersion
		wantErr bool
	}{
		{"one", []string{"hello=v2"}, []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}, false},
		{"two keep order", []string{"b=1", "a=2"}, []*cutoverv1.ApplicationVersion{{Name: "b", VersionLabel: "1"}, {Name: "a", VersionLabel: "2"}}, false},
		{"label with equals", []string{"hello=a=b"}, []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "a=b"}}, false},
		{"spaces trimmed", []string{" hello = v2 "}, []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}, false},
		{"none", nil, nil, true},
		{"no equals", []string{"hello"}, nil, true},
		{"empty label", []string{"hello="}, nil, true},
		{"empty name", []string{"=v2"}, nil, true},
		{"twice", []string{"hello=v1", "hello=v2"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAppVersions(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseAppVersions(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("parseAppVersions(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if !proto.Equal(got[i], tt.want[i]) {
					t.Errorf("parseAppVersions(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestEnvFlagsEnvironment(t *testing.T) {
	flags := envFlags{
		twoStage:        true,
		preparedTTL:     48 * time.Hour,
		requireApproval: true,
		windows:         []string{"Mon-Fri 02:00-04:00 Europe/Lisbon", ""},
		keepReleases:    5,
		stageRate:       50 << 20,
		dbDriver:        "postgres",
		dbDSN:           "postgres://app:s3cret@db/app",
		dbLock:          5 * time.Second,
	}
	tests := []struct {
		name      string
		changed   []string
		wantPaths []string
		want      *cutoverv1.Environment
	}{
		{"nothing", nil, nil, &cutoverv1.Environment{Name: "prod"}},
		{"two-stage only", []string{"two-stage"}, []string{"two_stage"}, &cutoverv1.Environment{Name: "prod", TwoStage: true}},
		{"ttl and windows", []string{"window", "prepared-ttl"}, []string{"prepared_ttl", "windows"}, &cutoverv1.Environment{
			Name: "prod", PreparedTtl: durationpb.New(48 * time.Hour), Windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
		}},
		{"all", []string{"two-stage", "prepared-ttl", "require-approval", "window", "keep-releases"},
			[]string{"two_stage", "prepared_ttl", "require_approval", "windows", "keep_releases"},
			&cutoverv1.Environment{
				Name: "prod", TwoStage: true, PreparedTtl: durationpb.New(48 * time.Hour), RequireApproval: true,
				Windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"}, KeepReleases: 5,
			}},
		{"stage rate only", []string{"stage-rate"}, []string{"stage_rate"}, &cutoverv1.Environment{Name: "prod", StageRate: 50 << 20}},
		{"peers off", []string{"peers"}, []string{"peers_disabled"}, &cutoverv1.Environment{Name: "prod", PeersDisabled: true}},
		{"dsn only", []string{"db-dsn"}, []string{"database.dsn"}, &cutoverv1.Environment{
			Name: "prod", Database: &cutoverv1.Database{Dsn: "postgres://app:s3cret@db/app"},
		}},
		{"lock timeout only", []string{"db-lock-timeout"}, []string{"database.lock_timeout"}, &cutoverv1.Environment{
			Name: "prod", Database: &cutoverv1.Database{LockTimeout: durationpb.New(5 * time.Second)},
		}},
		{"driver and dsn: the whole database", []string{"two-stage", "db-driver", "db-dsn"}, []string{"two_stage", "database"}, &cutoverv1.Environment{
			Name: "prod", TwoStage: true, Database: &cutoverv1.Database{Driver: "postgres", Dsn: "postgres://app:s3cret@db/app",
				StatementTimeout: durationpb.New(0), LockTimeout: durationpb.New(5 * time.Second)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, paths := flags.environment("prod", func(f string) bool { return slices.Contains(tt.changed, f) })
			if !slices.Equal(paths, tt.wantPaths) {
				t.Errorf("paths = %v, want %v", paths, tt.wantPaths)
			}
			if !proto.Equal(env, tt.want) {
				t.Errorf("environment = %v, want %v", env, tt.want)
			}
		})
	}
}

func TestEnvFlagsRemoveDatabase(t *testing.T) {
	f := envFlags{}
	env, paths := f.environment("prod", func(flag string) bool { return flag == "db-driver" || flag == "db-dsn" })
	if !slices.Equal(paths, []string{"database"}) || !proto.Equal(env.GetDatabase(), &cutoverv1.Database{}) {
		t.Errorf(`--db-driver "" --db-dsn "": paths %v database %v, want [database] and an empty one`, paths, env.GetDatabase())
	}
}

func TestEnvFlagsClearWindows(t *testing.T) {
	f := envFlags{windows: []string{""}}
	env, paths := f.environment("prod", func(flag string) bool { return flag == "window" })
	if !slices.Equal(paths, []string{"windows"}) || len(env.GetWindows()) != 0 {
		t.Errorf(`--window "": paths %v windows %q, want [windows] and no windows`, paths, env.GetWindows())
	}
}
