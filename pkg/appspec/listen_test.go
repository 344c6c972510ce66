package appspec

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestParseListener(t *testing.T) {
	cases := []struct {
		in      string
		want    Listener
		wantErr string
	}{
		{in: "tcp://0.0.0.0:8080", want: Listener{"tcp", "0.0.0.0:8080"}},
		{in: "tcp://:8080", want: Listener{"tcp", ":8080"}},
		{in: "tcp://[::1]:80", want: Listener{"tcp", "[::1]:80"}},
		{in: "unix:///run/app/app.sock", want: Listener{"unix", "/run/app/app.sock"}},
		{in: "0.0.0.0:8080", wantErr: "want tcp://HOST:PORT or unix:///PATH"},
		{in: "udp://:53", wantErr: "scheme must be tcp or unix"},
		{in: "tcp://localhost", wantErr: "want tcp://HOST:PORT"},
		{in: "unix://run/app.sock", wantErr: "clean absolute path"},
		{in: "unix:///run/../app.sock", wantErr: "clean absolute path"},
	}
	for _, tc := range cases {
		got, err := ParseListener(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errkind.InvalidArgument) {
				t.Errorf("ParseListener(%q) = %v, %v; want an InvalidArgument error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.in {
			t.Errorf("ParseListener(%q) = %v (%s), %v; want %v", tc.in, got, got, err, tc.want)
		}
	}
}

func TestListenSpec(t *testing.T) {
	base := "name: web\nrun:\n  command: ./web\n"
	cases := []struct {
		name, yaml, wantErr string
	}{
		{"one socket", base + "  listen: [\"tcp://0.0.0.0:${PORT}\"]\n  health: http://127.0.0.1:${PORT}/healthz\n", ""},
		{"unix and tcp", base + "  listen: [\"tcp://:8080\", \"unix:///run/web.sock\"]\n  health: /healthz\n  stop_signal: SIGQUIT\n", ""},
		{"twice", base + "  listen: [\"tcp://:8080\", \"tcp://:8080\"]\n", "twice"},
		{"bad scheme with a var", base + "  listen: [\"udp://:${PORT}\"]\n", "scheme"},
		{"bad signal", base + "  stop_signal: SIGKILL\n", "run.stop_signal"},
		{"https health", base + "  listen: [\"tcp://:8080\"]\n  health: https://x/healthz\n", "private socket"},
		{"too many", base + "  listen: [" + strings.Repeat("\"tcp://:1\",", MaxListen) + "\"tcp://:2\"]\n", "more than the"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.yaml))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, %v; want an error with %q", s, err, tc.wantErr)
			}
		})
	}
}

func TestListenersHealthPathStopSignal(t *testing.T) {
	s, err := Parse([]byte("name: web\nrun:\n  command: ./web\n  listen: [\"tcp://127.0.0.1:${PORT}\"]\n  health: http://127.0.0.1:${PORT}/healthz?deep=1\n  stop_signal: SIGQUIT\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PORT": "8080"}
	ls, err := s.Listeners(env)
	if err != nil || len(ls) != 1 || ls[0] != (Listener{"tcp", "127.0.0.1:8080"}) {
		t.Fatalf("Listeners = %v, %v", ls, err)
	}
	if p, err := s.HealthPath(env); err != nil || p != "/healthz?deep=1" {
		t.Fatalf("HealthPath = %q, %v", p, err)
	}
	if s.StopSignal() != syscall.SIGQUIT {
		t.Fatalf("StopSignal = %v", s.StopSignal())
	}
	if _, err := s.Listeners(map[string]string{"PORT": ""}); err == nil {
		t.Fatal("Listeners with an empty PORT: no error")
	}
	plain, _ := Parse([]byte("name: web\nrun:\n  command: ./web\n"))
	if plain.StopSignal() != syscall.SIGTERM {
		t.Fatalf("default StopSignal = %v", plain.StopSignal())
	}
	if _, err := plain.HealthPath(nil); err == nil {
		t.Fatal("HealthPath without run.listen: no error")
	}
}
