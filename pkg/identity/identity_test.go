package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
)

func TestAgentURIRoundTrip(t *testing.T) {
	a := Agent{Environment: "production", Name: "fe-1"}
	if got, want := a.URI(), "cutover://production/agent/fe-1"; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
	if got, want := a.String(), "production/fe-1"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	got, err := ParseAgentURI(a.URI())
	if err != nil || got != a {
		t.Errorf("ParseAgentURI(URI) = %+v, %v; want %+v", got, err, a)
	}
}

func TestParseAgentURI(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want Agent
		ok   bool
	}{
		{"cutover://production/agent/fe-1", Agent{"production", "fe-1"}, true},
		{"cutover://a/agent/b", Agent{"a", "b"}, true},
		{"cutover://" + long + "/agent/" + long, Agent{long, long}, true},
		{"cutover://" + long + "a/agent/b", Agent{}, false},
		{"", Agent{}, false},
		{"cutover://controller", Agent{}, false},
		{"spiffe://production/agent/fe-1", Agent{}, false},
		{"CUTOVER://production/agent/fe-1", Agent{}, false},
		{"cutover://Production/agent/fe-1", Agent{}, false},
		{"cutover://production/agent/FE-1", Agent{}, false},
		{"cutover://production/agent/fe_1", Agent{}, false},
		{"cutover://production/agent/-fe", Agent{}, false},
		{"cutover://production/agent/", Agent{}, false},
		{"cutover:///agent/fe-1", Agent{}, false},
		{"cutover://production/admin/fe-1", Agent{}, false},
		{"cutover://production/agent/fe-1/", Agent{}, false},
		{"cutover://production/agent/fe-1/x", Agent{}, false},
		{"cutover://production:7070/agent/fe-1", Agent{}, false},
		{"cutover://u@production/agent/fe-1", Agent{}, false},
		{"cutover://production/agent/fe-1?x=1", Agent{}, false},
		{"cutover://production/agent/fe-1#x", Agent{}, false},
		{"cutover://production/agent/fe%2D1", Agent{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAgentURI(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseAgentURI(%q) = %+v, %v; want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrNotAgent) {
				t.Errorf("err = %v, want ErrNotAgent", err)
			}
		})
	}
}

func TestAgentFromCert(t *testing.T) {
	ca := identitytest.NewCA(t, "ca")
	tests := []struct {
		name    string
		uris    []string
		want    Agent
		wantErr string
	}{
		{"one agent URI", []string{"cutover://production/agent/fe-1"}, Agent{"production", "fe-1"}, ""},
		{"other schemes ignored", []string{"spiffe://x/y", "cutover://staging/agent/a"}, Agent{"staging", "a"}, ""},
		{"no URI", nil, Agent{}, "no cutover:// URI"},
		{"only other schemes", []string{"spiffe://x/y"}, Agent{}, "no cutover:// URI"},
		{"two agent URIs", []string{"cutover://p/agent/a", "cutover://p/agent/b"}, Agent{}, "has 2"},
		{"controller", []string{ControllerURI}, Agent{}, "controller's"},
		{"controller and agent", []string{"cutover://p/agent/a", ControllerURI}, Agent{}, "controller's"},
		{"malformed", []string{"cutover://p/agent/A"}, Agent{}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := identitytest.New(t, ca, identitytest.Options{CN: "x", URIs: tt.uris})
			got, err := AgentFromCert(c.Cert)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("AgentFromCert = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrNotAgent) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrNotAgent containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := AgentFromCert(nil); !errors.Is(err, ErrNotAgent) {
		t.Errorf("AgentFromCert(nil) = %v", err)
	}
}

func TestIsController(t *testing.T) {
	ca := identitytest.NewCA(t, "ca")
	tests := []struct {
		name string
		uris []string
		want bool
	}{
		{"controller", []string{ControllerURI}, true},
		{"controller among others", []string{"spiffe://a/b", ControllerURI}, true},
		{"agent", []string{"cutover://p/agent/a"}, false},
		{"none", nil, false},
		{"look-alike", []string{"cutover://controller/"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := identitytest.New(t, ca, identitytest.Options{URIs: tt.uris})
			if got := IsController(c.Cert); got != tt.want {
				t.Errorf("IsController = %v, want %v", got, tt.want)
			}
		})
	}
	if IsController(nil) {
		t.Error("IsController(nil)")
	}
}

func TestCAHash(t *testing.T) {
	ca := identitytest.NewCA(t, "ca")
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	got := CAHash(ca.Cert)
	if got != hex.EncodeToString(sum[:]) || len(got) != 64 || strings.ToLower(got) != got {
		t.Errorf("CAHash = %q", got)
	}
	if CAHash(identitytest.NewCA(t, "ca").Cert) == got {
		t.Error("two CAs with the same hash")
	}
}

func FuzzParseAgentURI(f *testing.F) {
	for _, s := range []string{"cutover://production/agent/fe-1", "cutover://controller", "cutover://a/agent/b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAgentURI(s)
		if err != nil {
			return
		}
		if a.URI() != s {
			t.Fatalf("ParseAgentURI(%q) = %+v whose URI is %q", s, a, a.URI())
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseAgentURI(%q) accepted an invalid agent: %v", s, err)
		}
	})
}

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &x509.Certificate{NotBefore: start, NotAfter: start.Add(30 * time.Hour)}
	if got, want := RenewAt(c), start.Add(20*time.Hour); !got.Equal(want) {
		t.Errorf("RenewAt = %v, want %v (two thirds of 30 h)", got, want)
	}
}
